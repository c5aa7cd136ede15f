"""Losses with Keras 3 semantics.

Functions (``categorical_crossentropy(y_true, y_pred)`` ...) return the per-sample losses as a
numpy array (reduced over the last axis); classes (``CategoricalCrossentropy(from_logits=False)``)
return the reduced scalar (default reduction ``"sum_over_batch_size"``: the mean of the per-sample
losses). Probabilities are renormalised and clipped to [1e-7, 1 - 1e-7] as Keras does.

In ``fit`` the loss also gives the gradient with respect to the model output in the same pass
(``_value_and_grad``), and a softmax output layer with a cross-entropy loss is fused into one
log-softmax cross-entropy on the logits (``_logits_value_and_grad``).

>>> import fastnn
>>> fastnn.losses.SparseCategoricalCrossentropy()([1], [[0.1, 0.9]]).round(4)
0.1054
"""
import numpy as np

EPSILON = 1e-7
_F32 = np.float32


def _f32(x):
    return np.asarray(getattr(x, "data", x), dtype=_F32)


def _log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _one_hot(labels, n):
    out = np.zeros((labels.size, n), _F32)
    out[np.arange(labels.size), labels.reshape(-1)] = 1.0
    return out


def _sparse_labels(y_true, y_pred, who):
    """Integer labels of shape y_pred.shape[:-1] (accepts a trailing axis of 1), range-checked."""
    y = np.asarray(getattr(y_true, "data", y_true))
    if y.shape != y_pred.shape[:-1]:
        if y.shape == y_pred.shape[:-1] + (1,):
            y = y.reshape(y.shape[:-1])
        else:
            raise ValueError(f"{who}: labels of shape {y.shape} do not match predictions of shape {y_pred.shape} "
                             f"(expected labels of shape {y_pred.shape[:-1]})")
    if y.dtype.kind == "f":
        if np.isnan(y).any():
            raise ValueError(f"{who}: labels contain NaN")
        if (y != np.round(y)).any():
            raise ValueError(f"{who}: sparse labels must be integer class ids, got non-integer values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{who}: sparse labels must be integers, got dtype {y.dtype}")
    n = y_pred.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= n):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"{who}: label {int(bad)} is out of range for {n} classes (predictions of shape "
                         f"{y_pred.shape}): labels must be in [0, {n})")
    return y.astype(np.intp)


def _dense_targets(y_true, y_pred, who):
    """Float targets of y_pred's shape ((N,) is accepted for (N, 1) predictions), NaN-checked."""
    y = _f32(y_true)
    if y.shape != y_pred.shape:
        if y.size == y_pred.size and y.shape[:1] == y_pred.shape[:1]:
            y = y.reshape(y_pred.shape)
        else:
            raise ValueError(f"{who}: targets of shape {y.shape} do not match predictions of shape {y_pred.shape}")
    if np.isnan(y).any():
        raise ValueError(f"{who}: targets contain NaN")
    return y


# ---- per-sample values and gradients (numpy) -----------------------------------------------------
# each returns (per_sample_losses, d(sum of per-sample losses)/d y_pred)

def _cce_probs(y, p, axis=-1):
    s = p.sum(axis=axis, keepdims=True)
    pn = p / s
    pc = np.clip(pn, EPSILON, 1.0 - EPSILON)
    loss = -(y * np.log(pc)).sum(axis=axis)
    g = np.where((pn > EPSILON) & (pn < 1.0 - EPSILON), -y / pc, 0.0).astype(_F32)
    dp = (g - (g * pn).sum(axis=axis, keepdims=True)) / s
    return loss, dp


def _cce_logits(y, z, axis=-1):
    logp = _log_softmax(z)
    loss = -(y * logp).sum(axis=-1)
    dz = np.exp(logp) * y.sum(axis=-1, keepdims=True) - y
    return loss, dz


def _bce_probs(y, p):
    pc = np.clip(p, EPSILON, 1.0 - EPSILON)
    per = -(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))
    inside = (p > EPSILON) & (p < 1.0 - EPSILON)
    g = np.where(inside, (pc - y) / (pc * (1.0 - pc)), 0.0).astype(_F32) / _F32(p.shape[-1])
    return per.mean(axis=-1), g


def _bce_logits(y, z):
    per = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    e = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return per.mean(axis=-1), ((sig - y) / _F32(z.shape[-1])).astype(_F32)


def _mse(y, p):
    d = p - y
    return np.square(d).mean(axis=-1), d * _F32(2.0 / p.shape[-1])


def _mae(y, p):
    d = p - y
    return np.abs(d).mean(axis=-1), np.sign(d) * _F32(1.0 / p.shape[-1])


def _smooth(y, label_smoothing, n):
    return y * _F32(1.0 - label_smoothing) + _F32(label_smoothing / n) if label_smoothing else y


# ---- public per-sample functions ------------------------------------------------------------------

def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``-sum(y_true * log(y_pred))`` over the last axis; one-hot ``y_true``."""
    p = _f32(y_pred)
    y = _smooth(_dense_targets(y_true, p, "categorical_crossentropy"), label_smoothing, p.shape[-1])
    return (_cce_logits if from_logits else _cce_probs)(y, p)[0]


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    """Per-sample cross-entropy with integer class ids ``y_true`` of shape (N,) or (N, 1)."""
    p = _f32(y_pred)
    y = _one_hot(_sparse_labels(y_true, p, "sparse_categorical_crossentropy"), p.shape[-1]).reshape(p.shape)
    return (_cce_logits if from_logits else _cce_probs)(y, p)[0]


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample mean over the last axis of ``-(y log p + (1 - y) log(1 - p))``."""
    p = _f32(y_pred)
    y = _dense_targets(y_true, p, "binary_crossentropy")
    if label_smoothing:
        y = y * _F32(1.0 - label_smoothing) + _F32(0.5 * label_smoothing)
    return (_bce_logits if from_logits else _bce_probs)(y, p)[0]


def mean_squared_error(y_true, y_pred):
    """Per-sample mean over the last axis of ``(y_true - y_pred)**2``."""
    p = _f32(y_pred)
    return _mse(_dense_targets(y_true, p, "mean_squared_error"), p)[0]


def mean_absolute_error(y_true, y_pred):
    """Per-sample mean over the last axis of ``|y_true - y_pred|``."""
    p = _f32(y_pred)
    return _mae(_dense_targets(y_true, p, "mean_absolute_error"), p)[0]


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error

# ---- classes ----------------------------------------------------------------------------------------
_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None)


class Loss:
    """Base loss: ``loss(y_true, y_pred, sample_weight=None)`` -> reduced float32 scalar."""

    _sparse = False       # targets are integer class ids
    _softmax_fusable = False  # a softmax output can be fused into this loss (cross-entropies)

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: invalid reduction {reduction!r}; expected one of {_REDUCTIONS}")
        self.name = name or _snake(type(self).__name__)
        self.reduction = reduction

    # per-sample (losses, grad of their sum) for y_pred given prepared targets
    def _per_sample(self, y, p):
        raise NotImplementedError

    def _prepare_targets(self, y_true, y_pred):
        """Validated targets for predictions ``y_pred`` (an array or a shape-only array)."""
        return _dense_targets(y_true, y_pred, self.name)

    def _reduce(self, per, sample_weight=None):
        if sample_weight is not None:
            w = _f32(sample_weight)
            per = per * w.reshape(w.shape + (1,) * (per.ndim - w.ndim))
        if self.reduction in ("none", None):
            return per
        total = per.sum(dtype=np.float64)
        if self.reduction == "sum":
            return _F32(total)
        return _F32(total / max(per.size, 1))

    def __call__(self, y_true, y_pred, sample_weight=None):
        p = _f32(y_pred)
        return self._reduce(self._per_sample(self._prepare_targets(y_true, p), p)[0], sample_weight)

    def _value_and_grad(self, p, y):
        """Reduced loss (float) and its gradient w.r.t. ``p``, for prepared targets ``y``."""
        per, g = self._per_sample(y, p)
        scale = 1.0 if self.reduction == "sum" else 1.0 / max(per.size, 1)
        return float(per.sum(dtype=np.float64)) * scale, g * _F32(scale)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake(name):
    from fastnn.layers.base import _snake_case
    return _snake_case(name)


class CategoricalCrossentropy(Loss):
    """Cross-entropy with one-hot targets; ``from_logits=False`` expects probabilities."""

    _softmax_fusable = True

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _prepare_targets(self, y_true, y_pred):
        y = _dense_targets(y_true, y_pred, self.name)
        return _smooth(y, self.label_smoothing, y_pred.shape[-1])

    def _per_sample(self, y, p):
        return (_cce_logits if self.from_logits else _cce_probs)(y, p)

    def _logits_value_and_grad(self, z, y):
        per, g = _cce_logits(y, z)
        scale = 1.0 if self.reduction == "sum" else 1.0 / max(per.size, 1)
        return float(per.sum(dtype=np.float64)) * scale, g * _F32(scale)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis)
        return config


class SparseCategoricalCrossentropy(Loss):
    """Cross-entropy with integer class-id targets of shape (N,) or (N, 1)."""

    _sparse = True
    _softmax_fusable = True

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported yet")
        self.from_logits = bool(from_logits)

    def _prepare_targets(self, y_true, y_pred):
        return _sparse_labels(y_true, y_pred, self.name)

    def _per_sample(self, y, p):
        return (_cce_logits if self.from_logits else _cce_probs)(_one_hot(y, p.shape[-1]).reshape(p.shape), p)

    def _logits_value_and_grad(self, z, y):
        logp = _log_softmax(z)
        rows = np.arange(y.size)
        picked = logp.reshape(-1, z.shape[-1])[rows, y.reshape(-1)]
        n = max(y.size, 1)
        scale = 1.0 if self.reduction == "sum" else 1.0 / n
        g = np.exp(logp).reshape(-1, z.shape[-1])
        g[rows, y.reshape(-1)] -= 1.0
        return -float(picked.sum(dtype=np.float64)) * scale, (g * _F32(scale)).reshape(z.shape)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, ignore_class=None)
        return config


class BinaryCrossentropy(Loss):
    """Binary cross-entropy averaged over the last axis; ``from_logits=False`` expects probabilities."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _prepare_targets(self, y_true, y_pred):
        y = _dense_targets(y_true, y_pred, self.name)
        return y * _F32(1.0 - self.label_smoothing) + _F32(0.5 * self.label_smoothing) if self.label_smoothing else y

    def _per_sample(self, y, p):
        return (_bce_logits if self.from_logits else _bce_probs)(y, p)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis)
        return config


class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred)**2``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name, reduction)

    def _per_sample(self, y, p):
        return _mse(y, p)


class MeanAbsoluteError(Loss):
    """Mean of ``|y_true - y_pred|``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name, reduction)

    def _per_sample(self, y, p):
        return _mae(y, p)


class LossFunctionWrapper(Loss):
    """Wraps a user function ``fn(y_true, y_pred) -> per-sample losses`` written with Tensor ops."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn

    def _per_sample(self, y, p):
        from fastnn.tensor import Tensor
        t = Tensor(p, requires_grad=True)
        per = self.fn(Tensor(y), t)
        per.sum().backward()
        return np.asarray(per.data, dtype=_F32), t.grad.data


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy, "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "MSE": MeanSquaredError, "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
}
_BY_FUNCTION = {categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError,
                mean_absolute_error: MeanAbsoluteError}
_CLASSES = {cls.__name__: cls for cls in _BY_FUNCTION.values()}


def get(identifier):
    """Resolve a loss name ("mse", "sparse_categorical_crossentropy"), function or Loss to a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown loss function: {identifier!r}. Known: {sorted(_BY_NAME)}")
        return cls()
    if identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
