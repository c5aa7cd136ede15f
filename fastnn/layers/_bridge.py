"""Glue between layers and the autograd op set.

Layers run the op set's Functions directly at the numpy level in the training step (``run`` /
``grads``: forward and backward of a Function instance with no Tensor and no graph), and
``layer(x)`` wraps a whole layer's ``_forward``/``_backward`` pair in one Function so it is
differentiable on Tensors. Imports of the autograd are deferred to first use.
"""
import numpy as np

_classes = None
_pair_classes = {}


def run(fn_cls, needs, *args, **kwargs):
    """Forward of a fresh ``fn_cls`` instance on arrays; returns (instance, output array).

    ``needs`` is the ``needs_input_grad`` tuple (one bool per positional argument): it tells forward
    what to save for backward."""
    fn = fn_cls.__new__(fn_cls)
    fn.needs_input_grad = needs
    return fn, fn.forward(*args, **kwargs)


def grads(fn, needs, grad):
    """Backward of a Function instance made by ``run``, asking only for the gradients in ``needs``."""
    fn.needs_input_grad = needs
    return fn.backward(grad)


def _layer_functions():
    global _classes
    if _classes is None:
        from fastnn.tensor import Function

        class LayerFunction(Function):
            """A whole layer as one node: forward is ``layer._forward``, backward ``layer._backward``
            (which also writes the weight gradients into the layer's Variables)."""

            def forward(self, x, layer=None, training=False):
                self.layer = layer
                y, self.ctx = layer._forward(np.ascontiguousarray(x, dtype=np.float32), training)
                return y

            def backward(self, grad):
                need = self.needs_input_grad[0]
                dx = self.layer._backward(self.ctx, np.ascontiguousarray(grad, dtype=np.float32), need)
                return (dx if need else None,)

        _classes = LayerFunction
    return _classes


def pair_function(name, fwd, bwd):
    """A Function class computing ``fwd(x)`` forward and ``bwd(x, y, dy)`` backward (cached by name)."""
    cls = _pair_classes.get(name)
    if cls is None:
        from fastnn.tensor import Function

        def forward(self, x):
            self.x = x
            self.y = fwd(x)
            return self.y

        def backward(self, grad):
            return (bwd(self.x, self.y, grad),)

        cls = type(f"Activation_{name}", (Function,), {"forward": forward, "backward": backward})
        _pair_classes[name] = cls
    return cls


def _as_input(x):
    from fastnn.tensor import Tensor
    if isinstance(x, Tensor):
        return x
    return np.ascontiguousarray(x, dtype=np.float32)


def apply_layer(layer, inputs, training):
    return _layer_functions().apply(_as_input(inputs), layer=layer, training=bool(training))


def apply_function(fn_cls, x, **kwargs):
    return fn_cls.apply(_as_input(x), **kwargs)


def input_shape_of(inputs, layer):
    """Shape of a Tensor/array/list input, rejecting scalars with a message naming the layer."""
    shape = getattr(inputs, "shape", None)
    if shape is None:
        shape = np.shape(inputs)
    shape = tuple(shape)
    if len(shape) == 0:
        raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) expects inputs with a batch "
                         f"dimension, got a scalar")
    return shape
