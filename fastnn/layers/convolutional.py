"""Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D (channels_last, Keras 3 arguments)."""
import numpy as np

from fastnn._naming import shape_str
from fastnn._ops import conv as _conv
from fastnn.layers.base import _NO_RECORD, Layer, _KernelLayer, _tensor
from fastnn.layers.core import _positive_int
from fastnn.tensor import recording


def _pair(layer, arg, value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0 for v in value):
        raise ValueError(f"{layer}: `{arg}` must be a positive int or a pair of positive ints, got {value!r}")
    return tuple(int(v) for v in value)


def _padding(layer, padding):
    padding = str(padding).lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"{layer}: `padding` must be 'valid' or 'same', got {padding!r}")
    return padding


def _channels_last(layer, data_format):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer}: only data_format='channels_last' is supported, got {data_format!r}")


def _out_size(size, k, s, d, padding):
    """Keras/TF output length: valid floor((in - d(k-1) - 1)/s) + 1, same ceil(in/s)."""
    if size is None:
        return None
    if padding == "same":
        return -(-size // s)
    return (size - d * (k - 1) - 1) // s + 1


def _spatial_output(layer, input_shape, window, strides, dilation, padding, what):
    if len(input_shape) != 4:
        raise ValueError(f"{layer} expects 4-D inputs (batch, height, width, channels), got shape "
                         f"{shape_str(input_shape)}")
    oh = _out_size(input_shape[1], window[0], strides[0], dilation[0], padding)
    ow = _out_size(input_shape[2], window[1], strides[1], dilation[1], padding)
    if (oh is not None and oh <= 0) or (ow is not None and ow <= 0):
        raise ValueError(f"{layer}: computed output size would be negative or zero: input shape "
                         f"{shape_str(input_shape)}, {what}, padding='{padding}'")
    return oh, ow


class Conv2D(_KernelLayer):
    """2-D convolution over NHWC inputs, kernel (KH, KW, C_in, filters).

    Args: filters; kernel_size (int or pair); strides=(1, 1); padding "valid"/"same";
    dilation_rate=(1, 1); activation; use_bias; kernel/bias initializers and regularizers.

    >>> import fastnn
    >>> fastnn.layers.Conv2D(8, 3)(np.ones((1, 28, 28, 1), np.float32)).shape
    (1, 26, 26, 8)
    """
    _op = _conv.Conv2D

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 groups=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        who = f"Conv2D '{self.name}'"
        self.filters = _positive_int(who, "filters", filters)
        self.kernel_size = _pair(who, "kernel_size", kernel_size)
        self.strides = _pair(who, "strides", strides)
        self.dilation_rate = _pair(who, "dilation_rate", dilation_rate)
        self.padding = _padding(who, padding)
        self._constants = dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)
        _channels_last(who, data_format)
        if groups != 1:
            raise ValueError(f"{who}: only groups=1 is supported, got {groups!r}")
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        oh, ow = _spatial_output(f"Conv2D '{self.name}'", input_shape, self.kernel_size, self.strides,
                                 self.dilation_rate, self.padding,
                                 f"kernel_size={self.kernel_size}, strides={self.strides}, "
                                 f"dilation_rate={self.dilation_rate}")
        if input_shape[3] is None:
            raise ValueError(f"Conv2D '{self.name}' needs a known channel dimension, got shape "
                             f"{shape_str(input_shape)}")
        return (input_shape[0], oh, ow, self.filters)

    def build(self, input_shape):
        self._build_kernel(self.kernel_size + (input_shape[3], self.filters))

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[3] != self._input_shape[3]:
            raise ValueError(f"Conv2D '{self.name}' expects inputs of shape {shape_str(self._input_shape)} "
                             f"({self._input_shape[3]} channels), got {shape_str(input_shape)}")
        self.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format="channels_last", dilation_rate=self.dilation_rate, groups=1)
        return config


class _Pooling2D(Layer):
    _op = None  # the Function class of fastnn._ops.conv

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} '{self.name}'"
        self.pool_size = _pair(who, "pool_size", pool_size)
        self.strides = self.pool_size if strides is None else _pair(who, "strides", strides)
        self.padding = _padding(who, padding)
        _channels_last(who, data_format)

    def compute_output_shape(self, input_shape):
        oh, ow = _spatial_output(f"{type(self).__name__} '{self.name}'", input_shape, self.pool_size, self.strides,
                                 (1, 1), self.padding, f"pool_size={self.pool_size}, strides={self.strides}")
        return (input_shape[0], oh, ow, input_shape[3])

    def _forward(self, x, training, need_dx=True):
        fn = self._op((need_dx,) if _tensor._grad_enabled else _NO_RECORD)  # recording(), inlined
        return fn.forward(x, pool_size=self.pool_size, strides=self.strides, padding=self.padding), fn

    def _backward(self, ctx, dy):
        return ctx.backward(dy)[0]

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, padding=self.padding,
                      data_format="channels_last")
        return config


class MaxPooling2D(_Pooling2D):
    """Max over ``pool_size`` windows (strides default to pool_size; floor: 24 -> 12)."""
    _op = _conv.MaxPool2D


class AveragePooling2D(_Pooling2D):
    """Mean over ``pool_size`` windows (cells outside the image are not counted with padding='same')."""
    _op = _conv.AvgPool2D


class GlobalAveragePooling2D(Layer):
    """Mean over height and width: (None, H, W, C) -> (None, C) (``keepdims=True``: (None, 1, 1, C))."""

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _channels_last(f"GlobalAveragePooling2D '{self.name}'", data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"GlobalAveragePooling2D '{self.name}' expects 4-D inputs (batch, height, width, "
                             f"channels), got shape {shape_str(input_shape)}")
        return (input_shape[0], 1, 1, input_shape[3]) if self.keepdims else (input_shape[0], input_shape[3])

    def _forward(self, x, training, need_dx=True):
        fn = _conv.GlobalAvgPool2D(recording((need_dx,)))
        y = fn.forward(x)
        return (y.reshape(y.shape[0], 1, 1, y.shape[1]) if self.keepdims else y), fn

    def _backward(self, ctx, dy):
        return ctx.backward(dy.reshape(dy.shape[0], -1))[0]

    def get_config(self):
        config = super().get_config()
        config.update(data_format="channels_last", keepdims=self.keepdims)
        return config
