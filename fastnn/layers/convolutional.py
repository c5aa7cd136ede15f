"""Conv2D (with groups), DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, MaxPooling2D, AveragePooling2D,
GlobalAveragePooling2D, GlobalMaxPooling2D (channels_last, Keras 3 arguments)."""
import numpy as np

from fastnn import initializers, regularizers
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
        self.groups = _positive_int(who, "groups", groups)
        if self.filters % self.groups:
            raise ValueError(f"{who}: filters={self.filters} must be divisible by groups={self.groups}")
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)
        if self.groups > 1:  # one conv per channel group; the activation runs after the op
            self._op, self._fused = _conv.GroupedConv2D, None
            self._constants = dict(groups=self.groups, **self._constants)

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
        if input_shape[3] % self.groups:
            raise ValueError(f"Conv2D '{self.name}': the {input_shape[3]} input channels must be divisible by "
                             f"groups={self.groups}")
        self._build_kernel(self.kernel_size + (input_shape[3] // self.groups, self.filters))

    def _check_input_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[3] != self._input_shape[3]:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs of shape {shape_str(self._input_shape)} "
                             f"({self._input_shape[3]} channels), got {shape_str(input_shape)}")
        self.compute_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, strides=self.strides,
                      padding=self.padding, data_format="channels_last", dilation_rate=self.dilation_rate,
                      groups=self.groups, activity_regularizer=None, kernel_constraint=None, bias_constraint=None)
        return config


def _kernel_and_bias(layer, kernel_shape, bias_size):
    """The weights "kernel" and (with use_bias) "bias" (bias_size,) of a layer whose bias is not sized by the
    kernel's last axis."""
    layer.kernel = layer.add_weight(kernel_shape, layer.kernel_initializer, name="kernel",
                                    regularizer=layer.kernel_regularizer)
    if layer.use_bias:
        layer.bias = layer.add_weight((bias_size,), layer.bias_initializer, name="bias",
                                      regularizer=layer.bias_regularizer)


class DepthwiseConv2D(Conv2D):
    """Depthwise 2-D convolution: each input channel convolved with its own ``depth_multiplier`` filters;
    kernel (KH, KW, C, depth_multiplier), output channels C * depth_multiplier (channel c's filters at
    c*DM ... c*DM + DM - 1), bias (C*DM,).

    >>> import fastnn
    >>> fastnn.layers.DepthwiseConv2D(3, padding="same")(np.ones((1, 8, 8, 4), np.float32)).shape
    (1, 8, 8, 4)
    """
    _op = _conv.DepthwiseConv2D

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, depthwise_constraint=None, bias_constraint=None, **kwargs):
        self.depth_multiplier = _positive_int("DepthwiseConv2D", "depth_multiplier", depth_multiplier)
        super().__init__(1, kernel_size, strides, padding, data_format, dilation_rate, 1, activation, use_bias,
                         depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        self._fused = None  # the depthwise kernel has no fused activation: it runs after the op

    def compute_output_shape(self, input_shape):
        self.filters = None if input_shape[-1] is None else input_shape[-1] * self.depth_multiplier
        return super().compute_output_shape(input_shape)

    def build(self, input_shape):
        _kernel_and_bias(self, self.kernel_size + (input_shape[3], self.depth_multiplier),
                         input_shape[3] * self.depth_multiplier)

    def _forward(self, x, training, need_dx=True, logits=False, padding=None):
        """``padding`` overrides the layer's (a plan runs ZeroPadding2D + this 'valid' layer as padding='same'
        when ``_same_pads`` equals that layer's padding)."""
        if padding is None:
            return super()._forward(x, training, need_dx, logits)
        constants = self._constants
        self._constants = dict(constants, padding=padding)
        try:
            return super()._forward(x, training, need_dx, logits)
        finally:
            self._constants = constants

    def _same_pads(self, input_shape):
        """((top, bottom), (left, right)): the zeros padding='same' adds around inputs of ``input_shape`` (TF's
        rule: out = ceil(in / stride), the total padding split with the extra row/column at the end); None when a
        size is unknown."""
        pads = []
        for size, k, s, d in zip(input_shape[1:3], self.kernel_size, self.strides, self.dilation_rate):
            if size is None:
                return None
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)

    def get_config(self):
        config = super().get_config()
        for key in ("filters", "groups"):
            del config[key]
        config["depth_multiplier"] = self.depth_multiplier
        for old, new in (("kernel_initializer", "depthwise_initializer"), ("kernel_regularizer", "depthwise_regularizer"),
                         ("kernel_constraint", "depthwise_constraint")):
            config[new] = config.pop(old)
        return config


class Conv2DTranspose(Conv2D):
    """Transposed 2-D convolution (the adjoint of Conv2D, "deconvolution"): kernel (KH, KW, filters, C)
    (Keras's layout: output channels third); output size H*SH ("same") or (H-1)*SH + max(KH, SH) ("valid")."""
    _op = _conv.Conv2DTranspose

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", output_padding=None, data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides, padding, data_format, dilation_rate, 1, activation, use_bias,
                         kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
                         activity_regularizer, kernel_constraint, bias_constraint, **kwargs)
        self.output_padding = None
        if output_padding is not None:
            who = f"Conv2DTranspose '{self.name}'"
            self.output_padding = (output_padding,) * 2 if isinstance(output_padding, int) else tuple(output_padding)
            if len(self.output_padding) != 2 or any(not 0 <= op < s for op, s in zip(self.output_padding, self.strides)):
                raise ValueError(f"{who}: output_padding must be a pair of ints >= 0 and below the strides "
                                 f"{self.strides}, got {output_padding!r}")
            span = [(k - 1) * d + 1 for k, d in zip(self.kernel_size, self.dilation_rate)]
            if self.padding == "same" and any(sp % 2 + op == 0 for sp, op in zip(span, self.output_padding)):
                raise ValueError(f"{who}: with padding='same', an even kernel_size {self.kernel_size} needs "
                                 f"output_padding >= 1, got {output_padding!r}")
            self._constants = dict(output_padding=self.output_padding, **self._constants)
        self._fused = None  # the activation runs after the op

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4 or input_shape[3] is None:
            raise ValueError(f"Conv2DTranspose '{self.name}' expects 4-D inputs with known channels, got shape "
                             f"{shape_str(input_shape)}")
        hw = [_conv.transpose_length(input_shape[1 + i], self.kernel_size[i], self.strides[i], self.dilation_rate[i],
                                     self.padding, None if self.output_padding is None else self.output_padding[i])
              for i in range(2)]
        return (input_shape[0], hw[0], hw[1], self.filters)

    def build(self, input_shape):
        _kernel_and_bias(self, self.kernel_size + (self.filters, input_shape[3]), self.filters)

    def get_config(self):
        config = super().get_config()
        del config["groups"]
        config["output_padding"] = self.output_padding
        return config


class SeparableConv2D(DepthwiseConv2D):
    """Depthwise convolution (kernel (KH, KW, C, depth_multiplier), no bias) followed by a 1x1 convolution
    (pointwise_kernel (1, 1, C*depth_multiplier, filters)) with the bias (filters,) and the activation."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None, dilation_rate=(1, 1),
                 depth_multiplier=1, activation=None, use_bias=True, depthwise_initializer="glorot_uniform",
                 pointwise_initializer="glorot_uniform", bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 depthwise_constraint=None, pointwise_constraint=None, bias_constraint=None, **kwargs):
        _unsupported_constraint = pointwise_constraint
        super().__init__(kernel_size, strides, padding, depth_multiplier, data_format, dilation_rate, activation,
                         use_bias, depthwise_initializer, bias_initializer, depthwise_regularizer, bias_regularizer,
                         activity_regularizer, depthwise_constraint, bias_constraint, **kwargs)
        if _unsupported_constraint is not None:
            raise ValueError(f"SeparableConv2D '{self.name}': pointwise_constraint is not supported yet")
        self.separable_filters = _positive_int(f"SeparableConv2D '{self.name}'", "filters", filters)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        return shape[:3] + (self.separable_filters,)

    def build(self, input_shape):
        dm = self.kernel_size + (input_shape[3], self.depth_multiplier)
        self.depthwise_kernel = self.add_weight(dm, self.kernel_initializer, name="depthwise_kernel",
                                                regularizer=self.kernel_regularizer)
        self.pointwise_kernel = self.add_weight((1, 1, input_shape[3] * self.depth_multiplier,
                                                 self.separable_filters), self.pointwise_initializer,
                                                name="pointwise_kernel", regularizer=self.pointwise_regularizer)
        self.bias = self.add_weight((self.separable_filters,), self.bias_initializer, name="bias",
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def _forward(self, x, training, need_dx=True, logits=False):
        t = self._trainable
        dw = _conv.DepthwiseConv2D(recording((need_dx, t)))
        z = dw.forward(x, self.depthwise_kernel.data, None, None, **self._constants)
        pw = _conv.Conv2D(recording((True, t, t and self.use_bias)))
        fused = "relu" if self._act == "relu" else None
        y = pw.forward(z, self.pointwise_kernel.data, self.bias.data if self.use_bias else None, fused)
        actx = None
        if fused is None:
            y, actx = self._act_forward(y, logits)
        return y, (dw, pw, actx)

    def _backward(self, ctx, dy):
        dw, pw, actx = ctx
        dz = self._backward_into(pw, self._act_backward(actx, dy), self.pointwise_kernel, self.bias)
        return self._backward_into(dw, dz, self.depthwise_kernel)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.separable_filters, pointwise_constraint=None,
                      pointwise_initializer=initializers.serialize(self.pointwise_initializer),
                      pointwise_regularizer=regularizers.serialize(self.pointwise_regularizer))
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
        _channels_last(f"{type(self).__name__} '{self.name}'", data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects 4-D inputs (batch, height, width, "
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


class GlobalMaxPooling2D(GlobalAveragePooling2D):
    """Max over height and width: (None, H, W, C) -> (None, C) (``keepdims=True``: (None, 1, 1, C))."""

    def _forward(self, x, training, need_dx=True):
        fn = _conv.MaxPool2D(recording((need_dx,)))
        y = fn.forward(x, pool_size=(x.shape[1], x.shape[2]))
        return (y if self.keepdims else y.reshape(y.shape[0], y.shape[3])), fn

    def _backward(self, ctx, dy):
        return ctx.backward(dy.reshape(dy.shape[0], 1, 1, -1))[0]
