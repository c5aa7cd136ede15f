"""Arithmetic, reductions, shape ops and indexing as Functions (numpy: memory-bound and tiny).

Binary ops follow numpy broadcasting; their backward sums the gradient over the broadcast axes
(``_unbroadcast``). Python numbers and arrays act as constants (their gradient is None).
"""
import numpy as np

from fastnn.tensor import Function

_F32 = np.float32


def _unbroadcast(g, shape):
    """Sum g (a broadcast result's gradient) down to `shape`."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _norm_axes(axis, ndim):
    """axis (int or sequence, negatives allowed) -> sorted tuple of non-negative axes; None stays."""
    if axis is None:
        return None
    if type(axis) is int and -ndim <= axis < ndim:  # the common case, fast
        return (axis % ndim,)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    return tuple(sorted(out))


def _expand_reduced(g, axes, keepdims, shape):
    """Give a reduction's gradient back its reduced axes (as size 1) so it broadcasts to `shape`."""
    if keepdims or g.ndim == 0:
        return g
    return g.reshape(tuple([1 if i in axes else n for i, n in enumerate(shape)]))


def _broadcast_grad(g, shape):
    """A fresh C-contiguous array of `shape` holding g broadcast (reductions' backward)."""
    out = np.empty(shape, _F32)
    out[...] = g
    return out


class Add(Function):
    """a + b (Sub: a - b). Saves the shapes of the inputs whose gradient is wanted (those are arrays)."""
    _op = np.add   # a ufunc is not a descriptor: self._op is the plain function
    _negate_b = False

    def forward(self, a, b):
        na, nb = self.needs_input_grad
        if na:
            self.sa = a.shape
        if nb:
            self.sb = b.shape
        return self._op(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        return (_unbroadcast(g, self.sa) if na else None,
                _unbroadcast(-g if self._negate_b else g, self.sb) if nb else None)


class Sub(Add):
    _op = np.subtract
    _negate_b = True


class Mul(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.multiply(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        return (_unbroadcast(g * b, np.shape(a)) if na else None,
                _unbroadcast(g * a, np.shape(b)) if nb else None)


class Div(Function):
    def forward(self, a, b):
        self.a, self.b = a, b
        return np.divide(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        ga = g / b
        # d(a/b)/db = -a/b^2 = -(g/b) * (a/b)
        return (_unbroadcast(ga, np.shape(a)) if na else None,
                _unbroadcast(-ga * np.divide(a, b), np.shape(b)) if nb else None)


class Neg(Function):
    def forward(self, a):
        return np.negative(a)

    def backward(self, g):
        return (-g,)


class Pow(Function):
    """a ** p for a constant scalar p."""

    def forward(self, a, p):
        self.a, self.p = a, p
        return np.power(a, _F32(p))

    def backward(self, g):
        a, p = self.a, self.p
        if p == 0:
            return (np.zeros_like(a), None)
        if p == 2:
            return (g * (a + a), None)
        return (g * (_F32(p) * np.power(a, _F32(p - 1))), None)


class Exp(Function):
    def forward(self, a):
        self.out = np.exp(a)
        return self.out

    def backward(self, g):
        return (g * self.out,)


class Log(Function):
    def forward(self, a):
        self.a = a
        return np.log(a)

    def backward(self, g):
        return (g / self.a,)


class Sum(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.axes = axes = _norm_axes(axis, a.ndim)
        self.keepdims, self.shape = keepdims, a.shape
        return a.sum(axis=axes, keepdims=keepdims)

    def backward(self, g):
        shape = self.shape
        return (_broadcast_grad(_expand_reduced(g, self.axes, self.keepdims, shape), shape),)


class Mean(Function):
    def forward(self, a, axis=None, keepdims=False):
        self.axes = axes = _norm_axes(axis, a.ndim)
        self.keepdims = keepdims
        count = a.size
        if axes is not None:
            count = 1
            for i in axes:
                count *= a.shape[i]
        if count == 0:
            raise ValueError(f"mean over an empty axis of a tensor of shape {a.shape}")
        self.scale, self.shape = _F32(1.0 / count), a.shape
        return a.mean(axis=axes, keepdims=keepdims)

    def backward(self, g):
        shape = self.shape
        return (_broadcast_grad(_expand_reduced(g, self.axes, self.keepdims, shape) * self.scale, shape),)


class Max(Function):
    """Maximum over axes; the gradient is shared equally by tied maxima."""

    def forward(self, a, axis=None, keepdims=False):
        if a.size == 0:
            raise ValueError(f"max of an empty tensor of shape {a.shape}")
        self.a = a
        self.axes = _norm_axes(axis, a.ndim)
        self.keepdims = keepdims
        self.out = np.max(a, axis=self.axes, keepdims=True)
        return self.out if keepdims else np.squeeze(self.out, self.axes)

    def backward(self, g):
        mask = (self.a == self.out).astype(_F32)
        mask /= mask.sum(axis=self.axes, keepdims=True)
        return (_expand_reduced(g, self.axes, self.keepdims, mask.shape) * mask,)


class Reshape(Function):
    def forward(self, a, shape):
        self.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {a.shape} "
                             f"({a.size} elements) into shape {tuple(shape)}") from None

    def backward(self, g):
        return (g.reshape(self.shape),)


class Transpose(Function):
    """Permute axes (``axes=None`` reverses them, like numpy's ``.T``)."""

    def forward(self, a, axes=None):
        if axes is not None and sorted(int(x) % max(a.ndim, 1) for x in axes) != list(range(a.ndim)):
            raise ValueError(f"transpose: axes {tuple(axes)} are not a permutation of the "
                             f"{a.ndim} axes of a tensor of shape {a.shape}")
        self.axes = axes
        return np.transpose(a, axes)

    def backward(self, g):
        inv = None if self.axes is None else np.argsort([int(x) % g.ndim for x in self.axes])
        return (np.transpose(g, inv),)


def _is_basic_index(index):
    basic = (int, np.integer, slice, type(None), type(Ellipsis))
    if isinstance(index, tuple):
        return all(isinstance(i, basic) for i in index)
    return isinstance(index, basic)


class GetItem(Function):
    """a[index]: basic slicing, integer and boolean arrays (repeated indices accumulate)."""

    def forward(self, a, index):
        self.shape = a.shape
        self.index = index
        return a[index]

    def backward(self, g):
        da = np.zeros(self.shape, _F32)
        if _is_basic_index(self.index):
            da[self.index] = g
        else:
            np.add.at(da, self.index, g)
        return (da,)
