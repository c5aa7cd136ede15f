"""Activation layers: Activation(name or callable), Softmax, ReLU, LeakyReLU (Keras 3 arguments)."""
from fastnn import activations
from fastnn.layers.base import Layer, _WithActivation


class Activation(_WithActivation, Layer):
    """Applies an activation function: ``Activation("relu")``, ``Activation("softmax")``."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._init_activation(activation)

    def _forward(self, x, training, need_dx=True, logits=False):
        return self._act_forward(x, logits)

    def _backward(self, ctx, dy):
        return self._act_backward(ctx, dy)

    def get_config(self):
        config = super().get_config()
        config["activation"] = activations.serialize(self.activation)
        return config


class Softmax(Activation):
    """Keras ``layers.Softmax(axis=-1)``: softmax over the last axis (fused into a cross-entropy loss
    when it ends the model)."""

    def __init__(self, axis=-1, **kwargs):
        if axis != -1:
            raise ValueError(f"Softmax: only axis=-1 is supported, got axis={axis!r}")
        super().__init__("softmax", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config["axis"] = -1
        return config


class ReLU(Activation):
    """max(x, 0) as a layer (Keras defaults only: no max_value, slope or threshold)."""

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        if max_value is not None or negative_slope or threshold:
            raise ValueError("ReLU: only max_value=None, negative_slope=0 and threshold=0 are supported")
        super().__init__("relu", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        return config


class LeakyReLU(Activation):
    """x if x >= 0 else negative_slope * x (the layer's Keras default slope is 0.3)."""

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__("leaky_relu", **kwargs)
        self.negative_slope = float(negative_slope)
        self._act_kwargs = {"alpha": self.negative_slope}

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config["negative_slope"] = self.negative_slope
        return config
