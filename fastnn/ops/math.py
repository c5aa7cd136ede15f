"""keras.ops's math ops: erf, logsumexp and top_k."""
import numpy as np

from fastnn._ops import math as _m
from fastnn._ops.array import TakeAlongAxis
from fastnn.ops._args import operand, value


def erf(x):
    """The error function 2/sqrt(pi) * integral_0^x exp(-t^2) dt."""
    return _m.Erf.apply(operand(x))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over ``axis`` (None: all), computed without overflow; its gradient is softmax."""
    return _m.LogSumExp.apply(operand(x), axis=axis, keepdims=keepdims)


def top_k(x, k, sorted=True):  # noqa: A002 (Keras's name)
    """The k largest entries along the last axis and their indices: (values Tensor, int32 numpy array).

    Always sorted, largest first (``sorted=False`` leaves the order unspecified, so this order serves
    it too); equal values keep their index order, as in TensorFlow. Gradients flow to the values."""
    x = operand(x)
    if x.ndim == 0 or not 0 <= k <= x.shape[-1]:
        raise ValueError(f"top_k: k={k} must be in [0, {x.shape[-1] if x.ndim else 0}], the size of the "
                         f"last axis of x (shape {x.shape})")
    idx = np.argsort(-value(x), axis=-1, kind="stable")[..., :k]
    return TakeAlongAxis.apply(x, indices=idx, axis=-1), idx.astype(np.int32)
