"""keras.ops's numpy-like ops: arithmetic, elementwise math, reductions, shape ops, joining, indexing
and array creation over the op set (fastnn._ops). Tensor arguments receive gradients; anything else
(arrays, numbers, lists) is a constant."""
import numpy as np

from fastnn._ops import activation as _act
from fastnn._ops import array as _array
from fastnn._ops import basic as _b
from fastnn._ops import math as _m
from fastnn._ops.array import norm_axes, norm_axis
from fastnn._ops.linear import MatMul
from fastnn.ops._args import index_array, inferred_dtype, operand, result_dtype, value
from fastnn.tensor import Tensor

_F32 = np.float32


# ---- arithmetic (numpy broadcasting) --------------------------------------------------------------
def add(x1, x2):
    """x1 + x2."""
    return _b.Add.apply(operand(x1), operand(x2))


def subtract(x1, x2):
    """x1 - x2."""
    return _b.Sub.apply(operand(x1), operand(x2))


def multiply(x1, x2):
    """x1 * x2."""
    return _b.Mul.apply(operand(x1), operand(x2))


def divide(x1, x2):
    """x1 / x2."""
    return _b.Div.apply(operand(x1), operand(x2))


def negative(x):
    """-x."""
    return _b.Neg.apply(operand(x))


def maximum(x1, x2):
    """Elementwise max; on ties each input gets half the gradient (torch's rule; TF gives x1 all)."""
    return _m.Maximum.apply(operand(x1), operand(x2))


def minimum(x1, x2):
    """Elementwise min; on ties each input gets half the gradient (torch's rule; TF gives x1 all)."""
    return _m.Minimum.apply(operand(x1), operand(x2))


def matmul(x1, x2):
    """Matrix product with numpy.matmul semantics (1-D promotion, broadcast batch axes), on the GEMM."""
    return MatMul.apply(operand(x1), operand(x2))


def dot(x1, x2):
    """numpy.dot: a product when either is a scalar, matmul when x2 has rank <= 2, otherwise the sum
    over the last axis of x1 and the second-to-last axis of x2."""
    a, b = operand(x1), operand(x2)
    if a.ndim == 0 or b.ndim == 0:
        return _b.Mul.apply(a, b)
    if b.ndim <= 2:
        return MatMul.apply(a, b)
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"dot: shapes {a.shape} and {b.shape} are not aligned: {a.shape[-1]} (last axis of "
                         f"x1) != {b.shape[-2]} (second-to-last axis of x2)")
    # b (J..., K, M) -> (K, J...*M): one matmul, then a's leading axes, J... and M
    perm = (b.ndim - 2,) + tuple(range(b.ndim - 2)) + (b.ndim - 1,)
    b2 = _b.Reshape.apply(_b.Transpose.apply(b, axes=perm), shape=(b.shape[-2], -1))
    out = MatMul.apply(a, b2)
    return _b.Reshape.apply(out, shape=a.shape[:-1] + b.shape[:-2] + b.shape[-1:])


# ---- elementwise math -----------------------------------------------------------------------------
def square(x):
    """x * x."""
    return _b.Pow.apply(operand(x), 2)


def sqrt(x):
    """Square root."""
    return _m.Sqrt.apply(operand(x))


def exp(x):
    """e ** x (C++ kernel)."""
    return _act.Exp.apply(operand(x))


def log(x):
    """Natural logarithm (C++ kernel)."""
    return _act.Log.apply(operand(x))


def abs(x):  # noqa: A001 (Keras's name)
    """|x|; gradient sign(x)."""
    return _m.Abs.apply(operand(x))


def sign(x):
    """-1, 0 or 1 by the sign of x; its gradient is zero, so the result is cut from the graph."""
    return Tensor(np.sign(value(x)))


def tanh(x):
    """Hyperbolic tangent (C++ kernel)."""
    return _act.Tanh.apply(operand(x))


def clip(x, x_min, x_max):
    """x limited to [x_min, x_max] (constants: bounds get no gradient)."""
    return _m.Clip.apply(operand(x), x_min=value(x_min), x_max=value(x_max))


def where(condition, x1=None, x2=None):
    """x1 where condition is true (nonzero), else x2, broadcast together; with neither x1 nor x2, the
    indices where condition is true (a tuple of int arrays, one per axis, like numpy.nonzero)."""
    cond = value(condition).astype(bool)
    if x1 is None and x2 is None:
        return tuple(i.astype(np.int32) for i in np.nonzero(cond))
    if x1 is None or x2 is None:
        raise ValueError("where: x1 and x2 must be given together (or both left out)")
    return _m.Where.apply(operand(x1), operand(x2), condition=cond)


# ---- reductions -----------------------------------------------------------------------------------
def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (None: all; int or tuple, negatives allowed)."""
    x = operand(x)
    return _b.Sum.apply(x, axis=norm_axes("sum", axis, x.shape), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (None: all)."""
    x = operand(x)
    return _b.Mean.apply(x, axis=norm_axes("mean", axis, x.shape), keepdims=keepdims)


def max(x, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Maximum over ``axis`` (None: all), at least ``initial`` when given; tied maxima share the gradient."""
    x = operand(x)
    out = _b.Max.apply(x, axis=norm_axes("max", axis, x.shape), keepdims=keepdims)
    return out if initial is None else maximum(out, initial)


def min(x, axis=None, keepdims=False, initial=None):  # noqa: A001
    """Minimum over ``axis`` (None: all), at most ``initial`` when given: -max(-x), exact in float."""
    out = negative(max(negative(x), axis=axis, keepdims=keepdims))
    return out if initial is None else minimum(out, initial)


def _arg_reduce(op, fn, x, axis, keepdims):
    x = value(x)
    if axis is not None:
        axis = norm_axis(op, axis, x.shape)
    if x.size == 0:
        raise ValueError(f"{op}: empty tensor of shape {x.shape}")
    return np.asarray(fn(x, axis=axis, keepdims=keepdims), np.int32)  # a 0-d array, not a scalar, for axis=None


def argmax(x, axis=None, keepdims=False):
    """Index of the (first) maximum along ``axis`` (None: of x flattened), an int32 numpy array."""
    return _arg_reduce("argmax", np.argmax, x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """Index of the (first) minimum along ``axis`` (None: of x flattened), an int32 numpy array."""
    return _arg_reduce("argmin", np.argmin, x, axis, keepdims)


def cumsum(x, axis=None, dtype=None):
    """Cumulative sum along ``axis`` (None: of x flattened); an integer ``dtype`` gives a numpy array."""
    d = result_dtype("cumsum", dtype)
    if d is not None:
        return np.cumsum(value(x), axis=axis, dtype=d)
    return _m.CumSum.apply(operand(x), axis=axis)


# ---- shape --------------------------------------------------------------------------------------
def reshape(x, newshape):
    """x with shape ``newshape`` (one entry may be -1)."""
    newshape = (newshape,) if isinstance(newshape, (int, np.integer)) else tuple(newshape)
    return _b.Reshape.apply(operand(x), shape=newshape)


def transpose(x, axes=None):
    """x with its axes permuted (None: reversed)."""
    return _b.Transpose.apply(operand(x), axes=None if axes is None else tuple(axes))


def expand_dims(x, axis):
    """x with a new axis of size 1 at ``axis`` (int or tuple; positions in the result)."""
    x = operand(x)
    count = 1 if isinstance(axis, (int, np.integer)) else len(axis)
    out_rank = (1,) * (x.ndim + count)
    axes = norm_axes("expand_dims", axis, out_rank)
    if len(set(axes)) != count:
        raise ValueError(f"expand_dims: repeated axis in {axis} (shape {x.shape})")
    rest = iter(x.shape)
    return _b.Reshape.apply(x, shape=tuple(1 if i in axes else next(rest) for i in range(len(out_rank))))


def squeeze(x, axis=None):
    """x without its axes of size 1 (``axis``: only those, each of which must have size 1)."""
    x = operand(x)
    axes = norm_axes("squeeze", axis, x.shape)
    if axes is None:
        axes = tuple(i for i, n in enumerate(x.shape) if n == 1)
    for i in axes:
        if x.shape[i] != 1:
            raise ValueError(f"squeeze: axis {i} has size {x.shape[i]}, not 1 (shape {x.shape})")
    return _b.Reshape.apply(x, shape=tuple(n for i, n in enumerate(x.shape) if i not in axes))


# ---- joining, splitting, indexing ---------------------------------------------------------------
def concatenate(xs, axis=0):
    """xs joined along the existing axis ``axis``."""
    return _array.Concatenate.apply(*[operand(x) for x in xs], axis=axis)


def stack(x, axis=0):
    """The tensors of the sequence ``x`` (one shape) stacked along a new axis ``axis``."""
    return _array.Stack.apply(*[operand(t) for t in x], axis=axis)


def split(x, indices_or_sections, axis=0):
    """x cut along ``axis`` into a list of Tensors: N equal sections for an int, else at the indices given."""
    x = operand(x)
    ax = norm_axis("split", axis, x.shape)
    n = x.shape[ax]
    if isinstance(indices_or_sections, (int, np.integer)):
        parts = int(indices_or_sections)
        if parts <= 0 or n % parts:
            raise ValueError(f"split: axis {axis} of size {n} (shape {x.shape}) does not split into "
                             f"{parts} equal sections")
        bounds = [i * (n // parts) for i in range(parts + 1)]
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    lead = (slice(None),) * ax
    return [_b.GetItem.apply(x, index=lead + (slice(a, b),)) for a, b in zip(bounds, bounds[1:])]


def take(x, indices, axis=None):
    """Elements of x at ``indices`` along ``axis`` (None: of x flattened); negative indices count from the end."""
    return _array.Take.apply(operand(x), indices=index_array(indices), axis=axis)


# ---- array creation -------------------------------------------------------------------------------
def _full(op, shape, fill, dtype):
    d = result_dtype(op, dtype)
    if d is not None:
        return np.full(shape, fill, d)
    return Tensor(np.full(shape, fill, _F32))


def zeros(shape, dtype=None):
    """A tensor of zeros (float32 Tensor, or an integer/bool numpy array for such a dtype)."""
    return _full("zeros", shape, 0, dtype)


def ones(shape, dtype=None):
    """A tensor of ones (float32 Tensor, or an integer/bool numpy array for such a dtype)."""
    return _full("ones", shape, 1, dtype)


def zeros_like(x, dtype=None):
    """Zeros of x's shape (and of x's dtype when that is integer/bool and dtype is None)."""
    d = inferred_dtype("zeros_like", x, dtype)
    return _full("zeros_like", np.shape(value(x)), 0, d)


def ones_like(x, dtype=None):
    """Ones of x's shape (and of x's dtype when that is integer/bool and dtype is None)."""
    d = inferred_dtype("ones_like", x, dtype)
    return _full("ones_like", np.shape(value(x)), 1, d)
