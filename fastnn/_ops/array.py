"""Joining and gathering as Functions (numpy): concatenate, stack, take and take_along_axis, plus the
axis checks of the op set's newer ops. Errors name the op and the shapes involved."""
import numpy as np

from fastnn._ops.basic import _norm_axes
from fastnn.tensor import Function

_F32 = np.float32


def norm_axes(op, axis, shape):
    """axis (int, sequence or None) -> sorted tuple of non-negative axes of a tensor of `shape`; a bad
    axis raises ValueError naming `op` and the shape."""
    try:
        return _norm_axes(axis, len(shape))
    except ValueError as e:
        raise ValueError(f"{op}: {e} (shape {tuple(shape)})") from None


def norm_axis(op, axis, shape):
    """A single int axis of a tensor of `shape`, made non-negative (ValueError naming `op` if bad)."""
    if not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{op}: axis must be an int, got {axis!r}")
    return norm_axes(op, axis, shape)[0]


class Concatenate(Function):
    """xs joined along ``axis`` (keyword); backward splits the gradient at the saved offsets."""

    def forward(self, *xs, axis=0):
        shapes = [np.shape(x) for x in xs]
        if not shapes or not shapes[0]:
            raise ValueError(f"concatenate: needs one or more tensors of rank >= 1, got shapes {shapes}")
        self.axis = ax = norm_axis("concatenate", axis, shapes[0])
        first = shapes[0][:ax] + shapes[0][ax + 1:]
        if any(len(s) != len(shapes[0]) or s[:ax] + s[ax + 1:] != first for s in shapes):
            raise ValueError(f"concatenate: shapes must match except on axis {axis}, got shapes {shapes}")
        self.offsets = np.cumsum([s[ax] for s in shapes[:-1]])  # where each input starts along axis
        return np.concatenate(xs, axis=ax)

    def backward(self, g):
        parts = np.split(g, self.offsets, axis=self.axis)
        return tuple(p if need else None for p, need in zip(parts, self.needs_input_grad))


class Stack(Function):
    """xs (all of one shape) stacked along a new axis ``axis`` (keyword) of the output."""

    def forward(self, *xs, axis=0):
        shapes = [np.shape(x) for x in xs]
        if not shapes or any(s != shapes[0] for s in shapes):
            raise ValueError(f"stack: needs one or more tensors of the same shape, got shapes {shapes}")
        self.axis = norm_axis("stack", axis, shapes[0] + (len(xs),))  # an axis of the output
        return np.stack(xs, axis=self.axis)

    def backward(self, g):
        return tuple(np.take(g, i, axis=self.axis) if need else None
                     for i, need in enumerate(self.needs_input_grad))


class Take(Function):
    """``x.take(indices, axis)``: indices (int array, negatives count from the end) and axis (int, or None:
    x flattened) are keywords; backward adds the gradient back at the indices (repeats accumulate)."""

    def forward(self, x, indices, axis=None):
        self.shape = x.shape
        if axis is None:
            x, axis = x.reshape(-1), 0
        self.axis = axis = norm_axis("take", axis, x.shape)
        self.taken_shape = x.shape
        n = x.shape[axis]
        if indices.size and not (-n <= indices.min() and indices.max() < n):
            raise ValueError(f"take: indices must lie in [-{n}, {n}) for axis {axis} of a tensor of shape "
                             f"{self.shape}, got values from {indices.min()} to {indices.max()}")
        self.indices = indices = np.where(indices < 0, indices + n, indices)
        return np.take(x, indices, axis=axis)

    def backward(self, g):
        dx = np.zeros(self.taken_shape, _F32)
        k, axis = self.indices.ndim, self.axis
        # g: x.shape[:axis] + indices.shape + x.shape[axis+1:]; add.at wants the indices' axes first
        g = np.moveaxis(g, list(range(axis, axis + k)), list(range(k)))
        np.add.at(np.moveaxis(dx, axis, 0), self.indices, g)
        return (dx.reshape(self.shape),)


class TakeAlongAxis(Function):
    """``np.take_along_axis(x, indices, axis)`` with indices (int array) and axis as keywords (top_k's values)."""

    def forward(self, x, indices, axis=-1):
        self.shape, self.indices = x.shape, indices
        self.axis = norm_axis("take_along_axis", axis, x.shape)
        return np.take_along_axis(x, indices, axis=self.axis)

    def backward(self, g):
        dx = np.zeros(self.shape, _F32)
        index = list(np.ix_(*(np.arange(n) for n in g.shape)))  # every position of g ...
        index[self.axis] = self.indices                            # ... with its source along axis
        np.add.at(dx, tuple(index), g)
        return (dx,)
