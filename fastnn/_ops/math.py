"""Elementwise math and reductions beyond basic.py, as Functions (numpy: not hot kernels): abs, sqrt, erf,
maximum/minimum, clip, where, logsumexp and cumsum.

Ties: maximum/minimum give each of two equal inputs half the gradient, as torch does (TensorFlow, and
so Keras on it, gives it all to x1); basic.Max shares tied maxima the same way.
"""
import math

import numpy as np

from fastnn._ops.array import norm_axes, norm_axis
from fastnn._ops.basic import _expand_reduced, _unbroadcast
from fastnn.tensor import Function

_F32 = np.float32
_erf = np.vectorize(math.erf, otypes=[np.float64])  # numpy has no erf: float64, rounded to float32 by apply
_TWO_OVER_SQRT_PI = _F32(2.0 / math.sqrt(math.pi))


class Abs(Function):
    """|x|; the gradient is sign(x) (0 at 0, as in torch)."""

    def forward(self, x):
        self.sign = np.sign(x)
        return np.abs(x)

    def backward(self, g):
        return (g * self.sign,)


class Sqrt(Function):
    """sqrt(x); saves its output (d/dx = 1 / (2 sqrt(x)))."""

    def forward(self, x):
        self.out = np.sqrt(x)
        return self.out

    def backward(self, g):
        return (g / (self.out + self.out),)


class Erf(Function):
    """The error function; d/dx = 2/sqrt(pi) * exp(-x^2)."""

    def forward(self, x):
        self.x = x
        return _erf(x)

    def backward(self, g):
        return (g * (_TWO_OVER_SQRT_PI * np.exp(-np.square(self.x))),)


class Maximum(Function):
    """Elementwise max of two broadcast operands (Minimum: min); tied elements split the gradient."""
    _op, _wins = np.maximum, np.greater  # ufuncs are not descriptors: self._op is the plain function

    def forward(self, a, b):
        self.sa, self.sb = np.shape(a), np.shape(b)
        # a's share of the gradient, in the broadcast shape: 1 where a wins, 1/2 on ties, 0 where b wins
        self.wa = self._wins(a, b) + _F32(0.5) * np.equal(a, b)
        return self._op(a, b)

    def backward(self, g):
        na, nb = self.needs_input_grad
        ga = g * self.wa
        return (_unbroadcast(ga, self.sa) if na else None, _unbroadcast(g - ga, self.sb) if nb else None)


class Minimum(Maximum):
    _op, _wins = np.minimum, np.less


class Clip(Function):
    """x limited to [x_min, x_max] (keywords: constants); the gradient passes where x_min <= x <= x_max
    (both ends included, as in torch and TensorFlow)."""

    def forward(self, x, x_min, x_max):
        self.shape = x.shape
        self.mask = (x >= x_min) & (x <= x_max)
        return np.clip(x, x_min, x_max)

    def backward(self, g):
        return (_unbroadcast(g * self.mask, self.shape),)


class Where(Function):
    """x1 where ``condition`` (keyword, bool array) holds, else x2; all three broadcast together."""

    def forward(self, x1, x2, condition):
        self.condition, self.s1, self.s2 = condition, np.shape(x1), np.shape(x2)
        return np.where(condition, x1, x2)

    def backward(self, g):
        n1, n2 = self.needs_input_grad
        zero = _F32(0)
        return (_unbroadcast(np.where(self.condition, g, zero), self.s1) if n1 else None,
                _unbroadcast(np.where(self.condition, zero, g), self.s2) if n2 else None)


class LogSumExp(Function):
    """log(sum(exp(x))) over ``axis`` (keyword; None: all), max-subtracted; saves softmax(x) over those
    axes, which is the gradient."""

    def forward(self, x, axis=None, keepdims=False):
        if x.size == 0:
            raise ValueError(f"logsumexp: empty tensor of shape {x.shape}")
        self.axes = axes = norm_axes("logsumexp", axis, x.shape)
        self.keepdims, self.shape = keepdims, x.shape
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, _F32(0))  # all -inf (or an inf): nothing to subtract
        with np.errstate(divide="ignore"):  # log(0) = -inf: the answer for all -inf
            lse = m + np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True))  # keepdims shape
        if self.needs_input_grad[0]:
            self.p = np.exp(x - lse)
        return lse if keepdims else np.squeeze(lse, axis=axes)  # axes None: every axis has size 1

    def backward(self, g):
        return (_expand_reduced(g, self.axes, self.keepdims, self.shape) * self.p,)


class CumSum(Function):
    """Cumulative sum along ``axis`` (keyword; None: over x flattened); backward is the reversed cumsum
    (of a flat gradient when axis is None), reshaped to x."""

    def forward(self, x, axis=None):
        self.shape = x.shape
        if axis is None:
            x, axis = x.reshape(-1), 0
        self.axis = norm_axis("cumsum", axis, x.shape)
        return np.cumsum(x, axis=self.axis, dtype=_F32)

    def backward(self, g):
        rev = np.flip(np.cumsum(np.flip(g, self.axis), axis=self.axis, dtype=_F32), self.axis)
        return (np.ascontiguousarray(rev).reshape(self.shape),)
