"""Losses as autograd Functions over the fused loss kernels. Each returns the mean loss as a scalar
(Keras's default reduction "sum_over_batch_size": mean of the per-sample losses, which for the
pointwise losses is the mean over all elements). Targets are constants (their gradient is None).

- ``SoftmaxCrossEntropy(logits, target)``: softmax + cross-entropy fused (log-sum-exp), ``target``
  integer class ids (shape (B,) or (B, 1)) or a (B, K) distribution; backward ``(softmax - t) / B``.
- ``CategoricalCrossentropy(probs, target, epsilon=1e-7)``: Keras's ``from_logits=False`` form for
  models ending in softmax: renormalise rows, clip to [eps, 1 - eps], ``-sum t log p``.
- ``BinaryCrossentropy(y_pred, y_true, from_logits=False, epsilon=1e-7)``, ``MeanSquaredError``,
  ``MeanAbsoluteError``: pointwise, y_true reshaped to y_pred's shape when the sizes match.
Logits / probabilities of rank > 2 are treated as rows of their last axis.
"""
import numpy as np

from fastnn import backend as _backend
from fastnn.tensor import Function

_K = _backend.cpu
_F32 = np.float32


def _rows(x, target, name):
    """x as (rows, K) and target as (rows,) ids or (rows, K) distribution."""
    x = np.asarray(x, dtype=_F32)
    if x.ndim < 2:
        raise ValueError(f"{name}: expected predictions of shape (batch, classes), got {x.shape}")
    K = x.shape[-1]
    t = np.asarray(target)
    if t.shape == x.shape and K != 1:
        return x.reshape(-1, K), t.reshape(-1, K)
    if t.shape in (x.shape[:-1], x.shape[:-1] + (1,)):
        return x.reshape(-1, K), t.reshape(-1)
    raise ValueError(f"{name}: target shape {t.shape} matches neither the predictions {x.shape} "
                     f"(a distribution) nor {x.shape[:-1]} (integer class ids)")


class SoftmaxCrossEntropy(Function):
    """Mean cross-entropy of softmax(logits) against class ids or a distribution (fused)."""

    def forward(self, logits, target):
        self.shape = np.shape(logits)
        x, t = _rows(logits, target, "cross_entropy")
        rows, lse = _K.softmax_xent_forward(x, t)
        if self.needs_input_grad[0]:
            self.x, self.t, self.lse = x, t, lse
        return np.asarray(rows.mean(dtype=np.float64), dtype=_F32)

    def backward(self, grad):
        g = np.float32(grad) / np.float32(self.x.shape[0])
        return _K.softmax_xent_backward(g, self.x, self.lse, self.t).reshape(self.shape), None


class CategoricalCrossentropy(Function):
    """Keras's probability-input categorical cross-entropy (renormalise, clip, -sum t log p), mean
    over rows; ``target`` integer class ids or a distribution (keyword ``epsilon``)."""

    def forward(self, probs, target, epsilon=1e-7):
        self.shape = np.shape(probs)
        p, t = _rows(probs, target, "categorical_crossentropy")
        if self.needs_input_grad[0]:
            self.p, self.t, self.eps = p, t, epsilon
        return np.asarray(_K.prob_xent_forward(p, t, epsilon=epsilon).mean(dtype=np.float64), dtype=_F32)

    def backward(self, grad):
        g = np.float32(grad) / np.float32(self.p.shape[0])
        return _K.prob_xent_backward(g, self.p, self.t, epsilon=self.eps).reshape(self.shape), None


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
        return np.asarray(getattr(_K, self.kernel + "_forward")(p, y, **kw), dtype=_F32)

    def backward(self, grad):
        return getattr(_K, self.kernel + "_backward")(self.p, self.y, grad=float(grad), **self.kw), None


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

    >>> import numpy as np, fastnn.ops.loss as L
    >>> round(L.cross_entropy(np.zeros((2, 4)), [0, 3]).item(), 6) == round(float(np.log(4)), 6)
    True
    """
    return SoftmaxCrossEntropy.apply(logits, labels)
