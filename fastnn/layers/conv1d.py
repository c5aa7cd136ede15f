"""Conv1D (valid/same/causal padding, dilation) on the 2-D convolution kernels: a sequence (B, L, C) is the
image (B, 1, L, C) and the kernel (K, C, OC) the kernel (1, K, C, OC), both as free reshapes."""
import numpy as np

from fastnn._naming import shape_str
from fastnn._ops import conv as _conv
from fastnn.layers.base import _KernelLayer
from fastnn.layers.convolutional import _channels_last
from fastnn.layers.core import _positive_int


def _single(layer, arg, value):
    """A 1-D window argument (int or 1-tuple) as a positive int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{layer}: `{arg}` must be an int or a tuple of 1 int, got {value!r}")
        value = value[0]
    return _positive_int(layer, arg, value)


def _padding1d(layer, padding, allowed=("valid", "same", "causal")):
    padding = str(padding).lower()
    if padding not in allowed:
        raise ValueError(f"{layer}: `padding` must be one of {', '.join(repr(p) for p in allowed)}, got {padding!r}")
    return padding


def length_out(size, k, s, d, padding):
    """Keras's output length: valid floor((L - d(k-1) - 1)/s) + 1, same and causal ceil(L/s)."""
    if size is None:
        return None
    if padding in ("same", "causal"):
        return -(-size // s)
    return (size - d * (k - 1) - 1) // s + 1


def check_sequence(layer, input_shape):
    if len(input_shape) != 3:
        raise ValueError(f"{layer} expects 3-D inputs (batch, steps, channels), got shape {shape_str(input_shape)}")


class _Conv1DFunction(_conv.Conv2D):
    """Conv2D on (B, 1, L, C) views: x (B, L, C), kernel (K, C, OC) -> (B, OL, OC)."""

    def forward(self, x, kernel, bias=None, activation=None, strides=1, padding="valid", dilation_rate=1):
        out = super().forward(x.reshape(x.shape[0], 1, x.shape[1], x.shape[2]), kernel.reshape((1,) + kernel.shape),
                              bias, activation, (1, strides), padding, (1, dilation_rate))
        self.shape3 = x.shape
        return out.reshape(out.shape[0], out.shape[2], out.shape[3])

    def backward(self, grad):
        grads = super().backward(grad.reshape(grad.shape[0], 1, grad.shape[1], grad.shape[2]))
        dx, dk = grads[0], grads[1] if len(grads) > 1 else None
        dx = None if dx is None else dx.reshape(self.shape3)
        dk = None if dk is None else dk.reshape(dk.shape[1:])
        return (dx, dk) + tuple(grads[2:])


class Conv1D(_KernelLayer):
    """1-D convolution over (batch, steps, channels), kernel (kernel_size, C_in, filters).

    Args: filters; kernel_size; strides=1; padding "valid"/"same"/"causal" (output t sees inputs <= t);
    dilation_rate=1; activation; use_bias; kernel/bias initializers and regularizers.

    >>> import fastnn
    >>> fastnn.layers.Conv1D(8, 3, padding="causal")(np.ones((2, 10, 4), np.float32)).shape
    (2, 10, 8)
    """
    _op = _Conv1DFunction

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None, dilation_rate=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        who = f"Conv1D '{self.name}'"
        self.filters = _positive_int(who, "filters", filters)
        self.kernel_size = (_single(who, "kernel_size", kernel_size),)
        self.strides = (_single(who, "strides", strides),)
        self.dilation_rate = (_single(who, "dilation_rate", dilation_rate),)
        if self.strides[0] > 1 and self.dilation_rate[0] > 1:
            raise ValueError(f"{who}: `strides > 1` not supported in conjunction with `dilation_rate > 1`. Received: "
                             f"strides={self.strides} and dilation_rate={self.dilation_rate}")
        self.padding = _padding1d(who, padding)
        self._constants = dict(strides=self.strides[0], padding=self.padding, dilation_rate=self.dilation_rate[0])
        _channels_last(who, data_format)
        if groups != 1:
            raise ValueError(f"{who}: only groups=1 is supported, got {groups!r}")
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        who = f"Conv1D '{self.name}'"
        check_sequence(who, input_shape)
        if input_shape[2] is None:
            raise ValueError(f"{who} needs a known channel dimension, got shape {shape_str(input_shape)}")
        length = length_out(input_shape[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0], self.padding)
        if length is not None and length <= 0:
            raise ValueError(f"{who}: computed output size would be negative or zero: input shape "
                             f"{shape_str(input_shape)}, kernel_size={self.kernel_size}, strides={self.strides}, "
                             f"dilation_rate={self.dilation_rate}, padding='{self.padding}'")
        return (input_shape[0], length, self.filters)

    def build(self, input_shape):
        self._build_kernel(self.kernel_size + (input_shape[2], self.filters))

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 3 or input_shape[2] != self._input_shape[2]:
            raise ValueError(f"Conv1D '{self.name}' expects inputs of shape {shape_str(self._input_shape)} "
                             f"({self._input_shape[2]} channels), got {shape_str(input_shape)}")
        self.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides, padding=self.padding,
                      data_format="channels_last", dilation_rate=self.dilation_rate, groups=1,
                      activity_regularizer=None, kernel_constraint=None, bias_constraint=None)
        return config
