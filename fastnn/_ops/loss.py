"""Losses as Functions over the fused loss kernels: the only callers of those kernels (the Keras loss
classes in ``fastnn.losses`` and ``cross_entropy`` both go through them). Each returns the mean loss as
a scalar (Keras's default reduction "sum_over_batch_size": mean of the per-sample losses, which for the
pointwise losses is the mean over all elements) and keep it in float64 in ``fn.value`` (a Python float:
epoch averages of it do not depend on the batch order); the cross-entropies also keep the per-row
losses in ``fn.rows`` (for sample weights and the other reductions). Targets are constants.

- ``SoftmaxCrossEntropy(logits, target)``: softmax + cross-entropy fused (log-sum-exp), ``target``
  integer class ids (shape (B,) or (B, 1)) or a (B, K) distribution; backward ``(softmax - t) / B``.
- ``CategoricalCrossentropy(probs, target, epsilon=1e-7)``: Keras's ``from_logits=False`` form for
  models ending in softmax: renormalise rows, clip to [eps, 1 - eps], ``-sum t log p``.
- ``BinaryCrossentropy(y_pred, y_true, from_logits=False, epsilon=1e-7)``, ``MeanSquaredError``,
  ``MeanAbsoluteError``: pointwise, y_true reshaped to y_pred's shape when the sizes match.
Logits / probabilities of rank > 2 are treated as rows of their last axis.
"""
import numpy as np

from fastnn.backend import of
from fastnn.tensor import Function

_F32 = np.float32


def _rows(x, target, name):
    """x as (rows, K), target as (rows,) ids or (rows, K) distribution, and x's shape."""
    x = np.asarray(x, dtype=_F32)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected predictions of shape (batch, classes), got {x.shape}")
    K = x.shape[-1]
    t = np.asarray(target)
    if t.shape == x.shape and K != 1:
        return x.reshape(-1, K), t.reshape(-1, K), x.shape
    if t.shape in (x.shape[:-1], x.shape[:-1] + (1,)):
        return x.reshape(-1, K), t.reshape(-1), x.shape
    raise ValueError(f"{name}: target shape {t.shape} matches neither the predictions {x.shape} "
                     f"(a distribution) nor {x.shape[:-1]} (integer class ids)")


def _mean(fn, rows):
    """Sets fn.value to the float64 mean of the per-row losses; returns it as a float32 scalar array."""
    fn.value = float(np.add.reduce(rows, dtype=np.float64)) / rows.size
    return np.asarray(fn.value, dtype=_F32)


class SoftmaxCrossEntropy(Function):
    """Mean cross-entropy of softmax(logits) against class ids or a distribution (fused)."""

    def forward(self, logits, target):
        x, t, self.shape = _rows(logits, target, "cross_entropy")
        rows, lse = of(x).softmax_xent_forward(x, t)
        self.rows = rows
        if self.needs_input_grad[0]:
            self.x, self.t, self.lse = x, t, lse
        return _mean(self, rows)

    def backward(self, grad):
        g = np.float32(grad) / np.float32(self.x.shape[0])
        return of(self.x).softmax_xent_backward(g, self.x, self.lse, self.t).reshape(self.shape), None


class CategoricalCrossentropy(Function):
    """Keras's probability-input categorical cross-entropy (renormalise, clip, -sum t log p), mean
    over rows; ``target`` integer class ids or a distribution (keyword ``epsilon``)."""

    def forward(self, probs, target, epsilon=1e-7):
        p, t, self.shape = _rows(probs, target, "categorical_crossentropy")
        if self.needs_input_grad[0]:
            self.p, self.t, self.eps = p, t, epsilon
        self.rows = rows = of(p).prob_xent_forward(p, t, epsilon=epsilon)
        return _mean(self, rows)

    def backward(self, grad):
        g = np.float32(grad) / np.float32(self.p.shape[0])
        return of(self.p).prob_xent_backward(g, self.p, self.t, epsilon=self.eps).reshape(self.shape), None


class _Pointwise(Function):
    """Mean over all elements of a pointwise loss ``kernel``; y_true gets no gradient."""
    kernel = None

    def forward(self, y_pred, y_true, **kw):
        p = np.asarray(y_pred, dtype=_F32)
        y = np.asarray(y_true, dtype=_F32)
        if y.shape != p.shape:
            if y.size != p.size:
                raise ValueError(f"{self.kernel}: y_true shape {y.shape} does not match y_pred shape {p.shape}")
            y = y.reshape(p.shape)
        if self.needs_input_grad[0]:
            self.p, self.y, self.kw = p, y, kw
        self.value = getattr(of(p), self.kernel + "_forward")(p, y, **kw)
        return np.asarray(self.value, dtype=_F32)

    def backward(self, grad):
        return getattr(of(self.p), self.kernel + "_backward")(self.p, self.y, grad=float(grad), **self.kw), None


class MeanSquaredError(_Pointwise):
    """mean((y_pred - y_true)^2)."""
    kernel = "mean_squared_error"


class MeanAbsoluteError(_Pointwise):
    """mean(|y_pred - y_true|)."""
    kernel = "mean_absolute_error"


class BinaryCrossentropy(_Pointwise):
    """Keras binary cross-entropy, mean over elements: y_pred probabilities clipped to
    [eps, 1 - eps] (keyword ``epsilon``), or logits with keyword ``from_logits=True``."""

    def forward(self, y_pred, y_true, from_logits=False, epsilon=1e-7):
        self.kernel = "binary_crossentropy_logits" if from_logits else "binary_crossentropy"
        return super().forward(y_pred, y_true, epsilon=epsilon)


def cross_entropy(logits, labels):
    """Mean softmax cross-entropy of ``logits`` (B, K) against integer class ids ``labels`` (B,)
    (or a (B, K) distribution), fused into one kernel per direction. Returns a scalar Tensor.

    >>> import numpy as np, fastnn._ops.loss as L
    >>> round(L.cross_entropy(np.zeros((2, 4)), [0, 3]).item(), 6) == round(float(np.log(4)), 6)
    True
    """
    return SoftmaxCrossEntropy.apply(logits, labels)
