"""keras.ops's neural-network ops: activations, softmax, convolution, pooling and one_hot. The
convolution and pooling kernels are 2-D and channels_last only: inputs (batch, height, width, channels),
kernels (height, width, in_channels, out_channels)."""
import math

import numpy as np

from fastnn._ops import activation as _act
from fastnn._ops.conv import AvgPool2D, Conv2D, MaxPool2D
from fastnn.ops._args import as_tensor, index_array, operand, result_dtype
from fastnn.tensor import Tensor

_TANH_GELU_SCALE = math.sqrt(2.0 / math.pi)


def relu(x):
    """max(x, 0) (C++ kernel)."""
    return _act.Relu.apply(operand(x))


def sigmoid(x):
    """1 / (1 + exp(-x)) (C++ kernel)."""
    return _act.Sigmoid.apply(operand(x))


def softmax(x, axis=-1):
    """Softmax along the int ``axis`` (C++ kernel)."""
    if not isinstance(axis, (int, np.integer)):
        raise NotImplementedError(f"softmax: axis must be an int, got {axis!r} (several axes: reshape first)")
    return _act.Softmax.apply(operand(x), axis=int(axis))


def log_softmax(x, axis=-1):
    """log(softmax(x)) along the int ``axis`` (C++ kernel)."""
    if not isinstance(axis, (int, np.integer)):
        raise NotImplementedError(f"log_softmax: axis must be an int, got {axis!r} (several axes: reshape first)")
    return _act.LogSoftmax.apply(operand(x), axis=int(axis))


def gelu(x, approximate=True):
    """GELU: with ``approximate`` (Keras's default for ops.gelu) the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), built from differentiable ops; otherwise the exact
    x * Phi(x) (C++ kernel)."""
    if not approximate:
        return _act.Gelu.apply(operand(x))
    x = as_tensor(x)
    inner = (x + x ** 3 * 0.044715) * _TANH_GELU_SCALE
    return x * 0.5 * (1.0 + _act.Tanh.apply(inner))


def _check_2d_channels_last(op, x, data_format):
    """Only what the kernels run: 4-D inputs, channels_last. Anything else says what is missing."""
    if data_format not in (None, "channels_last", "channels_first"):
        raise ValueError(f"{op}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    if data_format == "channels_first":
        raise NotImplementedError(f"{op}: data_format='channels_first' is not implemented (the kernels are "
                                  f"channels_last): transpose the inputs to (batch, ..., channels)")
    if x.ndim in (3, 5):
        raise NotImplementedError(f"{op}: {x.ndim - 2}-D is not implemented, only 2-D (inputs of rank 4, "
                                  f"(batch, height, width, channels)); got inputs of shape {x.shape}")
    if x.ndim != 4:
        raise ValueError(f"{op}: inputs must have rank 3, 4 or 5 (batch, spatial..., channels), got shape "
                         f"{x.shape}")


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """2-D convolution of inputs (B, H, W, C) with kernel (KH, KW, C, OC), no bias; ``padding`` "valid"
    or "same"; strides and dilation_rate an int or a pair."""
    inputs, kernel = operand(inputs), operand(kernel)
    _check_2d_channels_last("conv", inputs, data_format)
    return Conv2D.apply(inputs, kernel, None, strides=strides, padding=padding.lower(),
                        dilation_rate=dilation_rate)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max over windows of ``pool_size`` (int or pair) of inputs (B, H, W, C); strides default to pool_size."""
    inputs = operand(inputs)
    _check_2d_channels_last("max_pool", inputs, data_format)
    return MaxPool2D.apply(inputs, pool_size=pool_size, strides=strides, padding=padding.lower())


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Mean over windows of inputs (B, H, W, C), counting only cells inside the image (Keras "same")."""
    inputs = operand(inputs)
    _check_2d_channels_last("average_pool", inputs, data_format)
    return AvgPool2D.apply(inputs, pool_size=pool_size, strides=strides, padding=padding.lower())


def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """x (integer class ids) as one-hot vectors of length ``num_classes`` on a new axis ``axis`` of the
    result; ids outside [0, num_classes) give all zeros. float32 Tensor (constant), or a numpy array for
    an integer/bool dtype."""
    if sparse:
        raise NotImplementedError("one_hot: fastnn has no sparse tensors")
    ids = index_array(x)
    d = result_dtype("one_hot", dtype)
    hot = ids[..., None] == np.arange(num_classes)  # (..., num_classes)
    rank = hot.ndim
    if not -rank <= axis < rank:
        raise ValueError(f"one_hot: axis {axis} is out of range for a result of rank {rank} (x of shape "
                         f"{ids.shape})")
    hot = np.moveaxis(hot, -1, axis)
    return Tensor(hot.astype(np.float32)) if d is None else np.ascontiguousarray(hot, dtype=d)
