"""keras.ops's core ops: dtype conversion, shape and stop_gradient."""
import numpy as np

from fastnn._graph import KerasTensor
from fastnn.ops._args import inferred_dtype, result_dtype, value
from fastnn.tensor import Tensor


def cast(x, dtype):
    """x as ``dtype``: float32 gives a Tensor (a Tensor passes unchanged, so gradients flow); an integer
    or bool dtype gives a numpy array (floats truncated toward zero), which carries no gradient."""
    d = result_dtype("cast", dtype)
    if d is None:
        return x if isinstance(x, Tensor) else Tensor(x)
    return value(x).astype(d)


def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """x as a Tensor (float32), or as a numpy array when ``dtype`` is an integer/bool dtype or is None and
    x is an integer/bool array (Keras keeps that dtype). A Tensor passes unchanged."""
    if sparse or ragged:
        raise NotImplementedError("convert_to_tensor: fastnn has no sparse or ragged tensors")
    d = inferred_dtype("convert_to_tensor", x, dtype)
    if d is None:
        return x if isinstance(x, Tensor) else Tensor(x)
    return value(x).astype(d)


def convert_to_numpy(x):
    """x as a numpy array (a Tensor's float32 data, shared)."""
    return value(x)


def shape(x):
    """The shape of x as a tuple of ints (of a symbolic KerasTensor: its shape, None for the batch)."""
    if isinstance(x, KerasTensor):
        return x.shape
    return tuple(int(n) for n in np.shape(value(x)))


def stop_gradient(variable):
    """A Tensor with ``variable``'s values, cut from the graph: no gradient flows back through it."""
    return variable.detach() if isinstance(variable, Tensor) else Tensor(variable)
