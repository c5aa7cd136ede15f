"""Training passes a distributed fit puts in place of a layer's own while it runs (Dropout drawing its rows'
numbers, synchronized BatchNormalization): instance attributes that shadow the class's ``_forward`` and
``_backward``, which the plan calls; ``restore`` removes them, giving the layer its own passes back."""


def own(layer):
    """The layer's own (forward, backward) methods, bound."""
    cls = type(layer)
    return cls._forward.__get__(layer), cls._backward.__get__(layer)


def replace(layer, forward, backward):
    layer._forward, layer._backward = forward, backward


def restore(layers):
    for layer in layers:
        layer.__dict__.pop("_forward", None)
        layer.__dict__.pop("_backward", None)
