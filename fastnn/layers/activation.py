"""Activation layers: Activation(name or callable), Softmax, ReLU, LeakyReLU, ELU, PReLU (Keras 3 arguments)."""
import numpy as np

from fastnn import activations, initializers, regularizers
from fastnn.layers.base import Layer, _WithActivation


class Activation(_WithActivation, Layer):
    """Applies an activation function: ``Activation("relu")``, ``Activation("softmax")``."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._init_activation(activation)
        # what BatchNormalization._forward(..., activation=) can apply in its store for this layer (a plan fuses a
        # BatchNormalization followed by this layer: fastnn.models.plan)
        self._bn_fusable = self._act if self._act in ("relu", "relu6") else None

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
    """Keras 3 ``ReLU(max_value=None, negative_slope=0.0, threshold=0.0)``:
    ``y = clip(x if x > threshold else 0, 0, max_value) - negative_slope * max(threshold - x, 0)``
    (``x`` itself above the threshold: threshold=0 is max(x, 0)). The defaults run the relu kernel,
    max_value=6 the relu6 kernel; other settings compute in numpy.
    """

    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kwargs):
        for arg, value in (("max_value", max_value), ("negative_slope", negative_slope), ("threshold", threshold)):
            if (value is None and arg != "max_value") or (value is not None and value < 0.0):
                raise ValueError(f"{arg} of a ReLU layer cannot be None or a negative value. Received: "
                                 f"{arg}={value}")
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)
        plain = not self.negative_slope and not self.threshold
        kernel = "relu" if plain and max_value is None else "relu6" if plain and self.max_value == 6.0 else None
        super().__init__(kernel or "linear", **kwargs)
        self._general = kernel is None
        self._bn_fusable = kernel

    def _forward(self, x, training, need_dx=True, logits=False):
        if not self._general:
            return super()._forward(x, training, need_dx, logits)
        thr, slope, top = np.float32(self.threshold), np.float32(self.negative_slope), self.max_value
        above = x > thr
        y = np.where(above, x, np.float32(0))
        keep = above
        if top is not None:
            keep = above & (y < np.float32(top)) & (y > 0)
            y = np.clip(y, np.float32(0), np.float32(top))
        below = x < thr
        if slope:
            y = y - slope * np.maximum(thr - x, np.float32(0))
        return y.astype(np.float32, copy=False), (keep, below, slope)

    def _backward(self, ctx, dy):
        if not self._general:
            return super()._backward(ctx, dy)
        keep, below, slope = ctx
        return (dy * keep + (dy * (slope * below) if slope else 0)).astype(np.float32, copy=False)

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config.update(max_value=self.max_value, negative_slope=self.negative_slope, threshold=self.threshold)
        return config


class PReLU(Layer):
    """``x if x >= 0 else alpha * x`` with a learned ``alpha`` of shape input_shape[1:] (axes listed in
    ``shared_axes``, counted with the batch axis as 0, have size 1: one alpha shared along them)."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None, shared_axes=None,
                 **kwargs):
        super().__init__(**kwargs)
        if alpha_constraint is not None:
            raise ValueError(f"PReLU '{self.name}': alpha_constraint is not supported yet")
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        self.shared_axes = None if shared_axes is None else \
            [int(a) for a in (shared_axes if isinstance(shared_axes, (list, tuple)) else [shared_axes])]

    def build(self, input_shape):
        shape = list(input_shape[1:])
        for axis in self.shared_axes or ():
            if not 1 <= axis <= len(shape):
                raise ValueError(f"PReLU '{self.name}': shared_axes entry {axis} is outside the input axes 1.."
                                 f"{len(shape)}")
            shape[axis - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU '{self.name}' needs known sizes on the axes it does not share, got input "
                             f"shape {input_shape}")
        self.alpha = self.add_weight(shape, self.alpha_initializer, name="alpha", regularizer=self.alpha_regularizer)

    def _forward(self, x, training, need_dx=True, logits=False):
        alpha = self.alpha.data
        neg = x < 0
        return np.where(neg, alpha * x, x).astype(np.float32, copy=False), (x, neg)

    def _backward(self, ctx, dy):
        x, neg = ctx
        if self._trainable:
            g = np.where(neg, dy * x, np.float32(0))
            shape = self.alpha.shape
            axes = tuple(i for i in range(g.ndim) if i == 0 or shape[i - 1] == 1 and g.shape[i] != 1)
            self.alpha.grad = g.sum(axis=axes).reshape(shape).astype(np.float32)
        return np.where(neg, self.alpha.data * dy, dy).astype(np.float32, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update(alpha_initializer=initializers.serialize(self.alpha_initializer),
                      alpha_regularizer=regularizers.serialize(self.alpha_regularizer), alpha_constraint=None,
                      shared_axes=self.shared_axes)
        return config


class _OneArgActivation(Activation):
    """An activation kernel with one constant (LeakyReLU's negative_slope, ELU's alpha), named ``_arg`` in the
    config and passed to the kernel as alpha."""
    _kernel = _arg = None

    def __init__(self, value, **kwargs):
        super().__init__(self._kernel, **kwargs)
        setattr(self, self._arg, float(value))
        self._act_kwargs = {"alpha": float(value)}

    def get_config(self):
        config = super().get_config()
        del config["activation"]
        config[self._arg] = getattr(self, self._arg)
        return config


class LeakyReLU(_OneArgActivation):
    """x if x >= 0 else negative_slope * x (the layer's Keras default slope is 0.3)."""
    _kernel, _arg = "leaky_relu", "negative_slope"

    def __init__(self, negative_slope=0.3, **kwargs):
        super().__init__(negative_slope, **kwargs)


class ELU(_OneArgActivation):
    """``x if x > 0 else alpha * (exp(x) - 1)`` (Keras default alpha=1.0), on the elu kernel."""
    _kernel, _arg = "elu", "alpha"

    def __init__(self, alpha=1.0, **kwargs):
        super().__init__(alpha, **kwargs)
