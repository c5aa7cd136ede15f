"""Core layers: Input, Dense, Activation, Dropout, Flatten, Reshape (Keras 3 arguments and defaults)."""
import math

import numpy as np

from fastnn import activations, backend, initializers, regularizers
from fastnn import random as _random
from fastnn.ops.activation import Dropout as _dropout_function
from fastnn.layers._bridge import grads, run
from fastnn.layers.base import Layer, shape_str

_MASK64 = (1 << 64) - 1


def _positive_int(layer, arg, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: received an invalid value for `{arg}`, expected a positive integer. "
                         f"Received: {arg}={value!r}")
    return int(value)


def _unsupported(layer, **kwargs):
    for key, value in kwargs.items():
        if value is not None:
            raise ValueError(f"{layer}: `{key}` is not supported by fastnn yet (got {value!r})")


class InputLayer(Layer):
    """Declares the input shape of a Sequential model (what ``Input(shape)`` returns)."""

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        if shape is None and batch_shape is None:
            raise ValueError("InputLayer: you must pass a `shape` argument (without the batch dimension)")
        super().__init__(name=name, dtype=dtype, **kwargs)
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        self._batch_input_shape = tuple(batch_shape) if batch_shape is not None else (batch_size,) + tuple(shape)

    @property
    def shape(self):
        return self._batch_input_shape

    def get_config(self):
        return {"batch_shape": self._batch_input_shape, "dtype": "float32", "name": self.name}

    def _forward(self, x, training):
        return x, None

    def _backward(self, ctx, dy, need_dx):
        return dy


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    """The input of a model: ``Sequential([Input((28, 28)), Flatten(), ...])``.

    >>> import fastnn
    >>> fastnn.layers.Input((784,)).shape
    (None, 784)
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name)


class _WithActivation:
    """Activation handling shared by Dense, Conv2D and Activation.

    Built-in activations run as op-set Functions; a custom callable runs on a Tensor through the
    autograd. ``logits=True`` in ``_forward`` skips a final softmax (the model fuses it into the loss).
    """

    _act_kwargs = {}  # keyword constants of the activation Function (LeakyReLU's slope)

    def _init_activation(self, activation):
        self.activation = activations.get(activation)
        self._act = activations.canonical_name(activation)  # None for a custom callable

    def _act_forward(self, z, logits=False):
        if self._act == "linear" or (logits and self._act == "softmax"):
            return z, None
        if self._act is None:
            from fastnn.tensor import Tensor
            t = Tensor(z, requires_grad=True)
            out = self.activation(t)
            return np.asarray(out.data, dtype=np.float32), (t, out)
        fn, y = run(activations.function_class(self._act), (True,), z, **self._act_kwargs)
        return y, fn

    @staticmethod
    def _act_backward(actx, dy):
        if actx is None:
            return dy
        if isinstance(actx, tuple):
            t, out = actx
            out.backward(dy)
            return t.grad.data
        return grads(actx, (True,), dy)[0]


class _KernelLayer(_WithActivation, Layer):
    """Shared by Dense and Conv2D: activation, kernel + optional bias with initializers/regularizers, and
    the backward of an op Function called as ``fn(x, kernel, bias_or_None, ...)``."""

    def _init_kernel_layer(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint):
        _unsupported(f"{type(self).__name__} '{self.name}'", activity_regularizer=activity_regularizer,
                     kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self._init_activation(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def _build_kernel(self, kernel_shape):
        self.kernel = self.add_weight(kernel_shape, self.kernel_initializer, "kernel",
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight(kernel_shape[-1:], self.bias_initializer, "bias",
                                        regularizer=self.bias_regularizer)

    def _run(self, fn_cls, x, logits, **kwargs):
        bias = self.bias.value if self.use_bias else None
        fn, z = run(fn_cls, (True, True, self.use_bias), x, self.kernel.value, bias, **kwargs)
        if kwargs.get("activation"):  # fused into the op
            return z, (fn, None)
        y, actx = self._act_forward(z, logits)
        return y, (fn, actx)

    def _backward(self, ctx, dy, need_dx):
        fn, actx = ctx
        t = self._trainable
        out = grads(fn, (need_dx, t, t and self.use_bias), self._act_backward(actx, dy))
        if t:
            self.kernel.grad = out[1]
            if self.use_bias:
                self.bias.grad = out[2]
        return out[0]

    def get_config(self):
        config = super().get_config()
        config.update(activation=activations.serialize(self.activation), use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer),
                      kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                      bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return config


class Dense(_KernelLayer):
    """Densely-connected layer: ``activation(inputs @ kernel + bias)``, kernel (in, units).

    Args: units; activation (None = linear); use_bias; kernel_initializer ("glorot_uniform");
    bias_initializer ("zeros"); kernel_regularizer / bias_regularizer (e.g. "l2" or L2(0.01)).
    A relu activation is fused into the GEMM's epilogue.

    >>> import fastnn
    >>> fastnn.layers.Dense(4, activation="relu")(np.ones((2, 3), np.float32)).shape
    (2, 4)
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(f"Dense '{self.name}'", "units", units)
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense '{self.name}' needs inputs with a known last dimension (features), "
                             f"got shape {shape_str(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape):
        from fastnn.ops.linear import Linear
        self._linear = Linear
        self._build_kernel((input_shape[-1], self.units))

    def _check_input_shape(self, input_shape):
        n_in = self._input_shape[-1]
        if len(input_shape) < 2 or input_shape[-1] != n_in:
            raise ValueError(f"Dense '{self.name}' expects inputs with {n_in} features (shape "
                             f"{shape_str(self._input_shape)}), got {shape_str(input_shape)}")

    def _forward(self, x, training, logits=False):
        return self._run(self._linear, x, logits, activation="relu" if self._act == "relu" else None)

    def _infer(self, x):
        # predict's fast path: one GEMM with the bias (+relu) epilogue, no Function, nothing saved
        if x.ndim != 2 or self._act is None:
            return self._forward(x, False)[0]
        relu = self._act == "relu"
        z = backend.cpu.gemm(x, self.kernel.value, None, False, False, 1.0, 0.0,
                             self.bias.value if self.use_bias else None, "relu" if relu else "none", None)
        return z if relu else self._act_forward(z)[0]

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


class Activation(_WithActivation, Layer):
    """Applies an activation function: ``Activation("relu")``, ``Activation("softmax")``."""

    def __init__(self, activation, **kwargs):
        super().__init__(**kwargs)
        self._init_activation(activation)

    def _forward(self, x, training, logits=False):
        return self._act_forward(x, logits)

    def _backward(self, ctx, dy, need_dx):
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


class Dropout(Layer):
    """Inverted dropout: at training time zeroes each input with probability ``rate`` and scales the
    rest by ``1 / (1 - rate)``; identity at inference. ``seed`` fixes the masks."""

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout '{self.name}': invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1 (1 excluded). Received: rate={rate!r}")
        _unsupported(f"Dropout '{self.name}'", noise_shape=noise_shape)
        self.rate, self.seed = float(rate), seed
        self._seed = None
        self._offset = 0  # Philox counter offset: each call draws elements [offset, offset + size)

    def _forward(self, x, training):
        if not training or self.rate == 0.0:
            return x, None
        if self._seed is None:  # drawn on first use (after set_random_seed), restored by load_model
            self._seed = (self.seed if self.seed is not None else _random.next_seed()) & _MASK64
        fn, y = run(_dropout_function, (True,), x, rate=self.rate, seed=self._seed, offset=self._offset)
        self._offset = (self._offset + x.size) & _MASK64
        return y, fn

    def _backward(self, ctx, dy, need_dx):
        return dy if ctx is None else grads(ctx, (True,), dy)[0]

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed, noise_shape=None)
        return config


class Flatten(Layer):
    """Flattens every axis but the batch axis: (None, 28, 28) -> (None, 784)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten '{self.name}': only data_format='channels_last' is supported, "
                             f"got {data_format!r}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def _forward(self, x, training):
        return x.reshape(x.shape[0], -1), x.shape

    def _backward(self, ctx, dy, need_dx):
        return dy.reshape(ctx)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = "channels_last"
        return config


class Reshape(Layer):
    """Reshapes the non-batch axes to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"Reshape '{self.name}': invalid target_shape {self.target_shape}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape and size != known):
            raise ValueError(f"Reshape '{self.name}': the total size of the tensor must be unchanged. Received: "
                             f"input_shape={shape_str(input_shape)}, target_shape={self.target_shape}")
        return (input_shape[0],) + tuple(size // known if d == -1 else d for d in self.target_shape)

    def _forward(self, x, training):
        return x.reshape((x.shape[0],) + self.target_shape), x.shape

    def _backward(self, ctx, dy, need_dx):
        return dy.reshape(ctx)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config
