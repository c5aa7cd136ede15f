"""How fastnn.ops reads its arguments: differentiable operands, raw values, index arrays and dtypes."""
import numpy as np

from fastnn.tensor import Tensor

_F32 = np.dtype(np.float32)


def operand(x):
    """A Function operand: a Tensor as is (gradients flow through it), anything else a float32 array."""
    return x if isinstance(x, Tensor) else np.asarray(x, _F32)


def as_tensor(x):
    """x as a Tensor: a Tensor as is, anything else a new constant float32 Tensor."""
    return x if isinstance(x, Tensor) else Tensor(x)


def value(x):
    """The array behind x (a Tensor's data, anything else as numpy makes it), for non-differentiable ops."""
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def index_array(x):
    """An integer index array from x (a Tensor holds integer values as float32)."""
    x = value(x)
    return x if x.dtype.kind in "iu" else x.astype(np.intp)


def result_dtype(op, dtype):
    """The dtype rule of fastnn.ops: None for float32 (the result is a Tensor), the numpy dtype for an
    integer or bool dtype (the result is a numpy array); other floats raise NotImplementedError."""
    if dtype is None or dtype is float:
        return None
    try:
        d = np.dtype(dtype)
    except TypeError:
        if "float" in str(dtype):  # bfloat16: not a numpy dtype
            d = None
        else:
            raise ValueError(f"{op}: unknown dtype {dtype!r}") from None
    if d == _F32:
        return None
    if d is not None and d.kind in "iub":
        return d
    raise NotImplementedError(f"{op}: fastnn computes in float32 only, dtype {dtype!r} is not supported; "
                              f"use 'float32' or an integer/bool dtype")


def inferred_dtype(op, x, dtype):
    """result_dtype, except that dtype=None keeps the integer/bool dtype of a non-Tensor x (as Keras does)."""
    if dtype is None and not isinstance(x, Tensor):
        d = np.asarray(x).dtype
        if d == np.int64 and not isinstance(x, (np.ndarray, np.generic)):
            d = np.dtype(np.int32)  # Python ints: Keras makes int32 (numpy arrays keep their dtype)
        return d if d.kind in "iub" else None
    return result_dtype(op, dtype)
