"""Stateful metrics with Keras 3 semantics: ``update_state``, ``result``, ``reset_state``.

Metrics accumulate over the epoch (``fit`` resets them at each epoch start), so Precision, Recall
and F1Score are computed from the epoch's counts, never averaged over batches.
``"accuracy"`` in ``compile`` resolves to binary / sparse categorical / categorical accuracy from
the shapes of the targets and predictions, as Keras does.

>>> import fastnn
>>> m = fastnn.metrics.SparseCategoricalAccuracy()
>>> m.update_state([1, 0], [[0.2, 0.8], [0.3, 0.7]])
>>> float(m.result())
0.5
"""
import numpy as np

from fastnn._naming import _snake_case
from fastnn.losses import _f32, _one_hot

EPSILON = 1e-7


class Metric:
    """Base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``."""

    _argmax_only = False  # the metric only needs argmax of the predictions (so logits serve)

    def __init__(self, name=None, dtype=None):
        self.name = name or _snake_case(type(self).__name__)
        self.reset_state()

    def reset_state(self):
        raise NotImplementedError

    def result(self):
        raise NotImplementedError

    def _update(self, y, p):
        """Accumulate a batch: ``y`` targets (integer labels or float arrays), ``p`` float32 predictions."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(f"{self.name}: sample_weight is not supported yet")
        y_true = np.asarray(y_true)
        self._update(y_true, _f32(y_pred))

    def __call__(self, y_true, y_pred, sample_weight=None):
        self.update_state(y_true, y_pred, sample_weight)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": "float32"}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _MeanOfMatches(Metric):
    """Mean of a per-sample 0/1 match array over everything seen."""

    _direction = "up"  # larger is better (EarlyStopping's mode="auto")

    def reset_state(self):
        self._total, self._count = 0.0, 0

    def result(self):
        return np.float32(self._total / self._count) if self._count else np.float32(0.0)

    def _matches(self, y, p):
        raise NotImplementedError

    def _update(self, y, p):
        m = self._matches(y, p)
        self._total += float(np.count_nonzero(m)) if m.dtype == bool else float(m.sum())
        self._count += m.size


def _labels(y, p):
    """Integer labels for predictions p (N, ..., C): y of shape p.shape[:-1] or with a trailing 1."""
    return y.reshape(y.shape[:-1]) if y.ndim == p.ndim else y


class Accuracy(_MeanOfMatches):
    """How often predictions equal targets exactly."""

    def _matches(self, y, p):
        return np.asarray(y, np.float32).reshape(p.shape) == p


class BinaryAccuracy(_MeanOfMatches):
    """How often ``(y_pred > threshold)`` equals the binary target."""

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        self.threshold = float(threshold)
        super().__init__(name, dtype)

    def _matches(self, y, p):
        return (p > self.threshold) == (np.asarray(y, np.float32).reshape(p.shape) > 0.5)

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class CategoricalAccuracy(_MeanOfMatches):
    """How often ``argmax(y_pred)`` equals ``argmax(y_true)`` (one-hot targets)."""

    _argmax_only = True

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(name, dtype)

    def _matches(self, y, p):
        return y.argmax(axis=-1) == p.argmax(axis=-1)


class SparseCategoricalAccuracy(_MeanOfMatches):
    """How often ``argmax(y_pred)`` equals the integer label."""

    _argmax_only = True

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(name, dtype)

    def _matches(self, y, p):
        return _labels(y, p) == p.argmax(axis=-1)


class _Confusion(Metric):
    """Counts over all elements of binarised predictions (``y_pred > thresholds``), as Keras's
    Precision/Recall do for one-hot or binary targets."""

    _direction = "up"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None:
            raise ValueError(f"{type(self).__name__}: top_k is not supported yet")
        self.thresholds = 0.5 if thresholds is None else float(thresholds)
        self.class_id = class_id
        super().__init__(name, dtype)

    def reset_state(self):
        self.true_positives = self.false_positives = self.false_negatives = 0.0

    def _update(self, y, p):
        y = np.asarray(y)
        if y.shape != p.shape:
            sparse = p.shape[-1] > 1 and y.size * p.shape[-1] == p.size
            y = _one_hot(_labels(y, p).astype(np.intp), p.shape[-1]) if sparse else y.reshape(p.shape)
        if self.class_id is not None:
            y, p = y[..., self.class_id], p[..., self.class_id]
        pos, true = p > self.thresholds, y > 0.5
        self.true_positives += float(np.count_nonzero(pos & true))
        self.false_positives += float(np.count_nonzero(pos & ~true))
        self.false_negatives += float(np.count_nonzero(~pos & true))

    def get_config(self):
        return {**super().get_config(), "thresholds": self.thresholds, "top_k": None, "class_id": self.class_id}


class Precision(_Confusion):
    """``tp / (tp + fp)`` over the epoch (threshold 0.5)."""

    def result(self):
        d = self.true_positives + self.false_positives
        return np.float32(self.true_positives / d if d else 0.0)


class Recall(_Confusion):
    """``tp / (tp + fn)`` over the epoch (threshold 0.5)."""

    def result(self):
        d = self.true_positives + self.false_negatives
        return np.float32(self.true_positives / d if d else 0.0)


class F1Score(Metric):
    """Per-class F1 from the epoch's counts (Keras 3 ``F1Score``).

    ``average``: None (per-class array), "micro", "macro" or "weighted". ``threshold=None`` takes the
    arg-max class as the prediction; otherwise ``y_pred > threshold``.
    """

    _direction = "up"

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"F1Score: invalid average {average!r}; expected None, 'micro', 'macro' or 'weighted'")
        self.average, self.threshold = average, threshold
        self._argmax_only = threshold is None
        super().__init__(name, dtype)

    def reset_state(self):
        self._tp = self._fp = self._fn = self._support = 0.0

    def _update(self, y, p):
        y = np.asarray(y)
        if y.shape != p.shape:
            y = _one_hot(_labels(y, p).astype(np.intp), p.shape[-1]).reshape(p.shape)
        y = y.reshape(-1, p.shape[-1]).astype(np.float64)
        p = p.reshape(-1, p.shape[-1])
        if self.threshold is None:
            pred = np.zeros(p.shape)
            pred[np.arange(p.shape[0]), np.argmax(p, axis=-1)] = 1.0
        else:
            pred = (p > self.threshold).astype(np.float64)
        tp, fp, fn = (pred * y).sum(0), (pred * (1 - y)).sum(0), ((1 - pred) * y).sum(0)
        if self.average == "micro":
            tp, fp, fn = tp.sum(), fp.sum(), fn.sum()
        self._tp, self._fp, self._fn = self._tp + tp, self._fp + fp, self._fn + fn
        self._support = self._support + y.sum(0)

    def result(self):
        precision = self._tp / (self._tp + self._fp + EPSILON)
        recall = self._tp / (self._tp + self._fn + EPSILON)
        f1 = 2.0 * precision * recall / (precision + recall + EPSILON)
        if self.average == "weighted":
            w = self._support / (np.sum(self._support) + EPSILON)
            f1 = np.sum(f1 * w)
        elif self.average is not None:
            f1 = np.mean(f1)
        return np.asarray(f1, dtype=np.float32)

    def get_config(self):
        return {**super().get_config(), "average": self.average, "threshold": self.threshold}


class Mean(Metric):
    """Weighted running mean of the values given to ``update_state(values)``."""

    def reset_state(self):
        self._total, self._count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        v = np.asarray(values, dtype=np.float64)
        w = np.ones_like(v) if sample_weight is None else np.broadcast_to(np.asarray(sample_weight, np.float64),
                                                                          v.shape)
        self._total += float((v * w).sum())
        self._count += float(w.sum())

    def result(self):
        return np.float32(self._total / self._count) if self._count else np.float32(0.0)


class _LossMetric(Metric):
    """Mean of a per-sample loss function over every sample seen."""

    _direction = "down"

    _fn = None

    def reset_state(self):
        self._total, self._count = 0.0, 0

    def _update(self, y, p):
        from fastnn import losses
        per = getattr(losses, self._fn)(y, p)
        self._total += float(per.sum(dtype=np.float64))
        self._count += per.size

    def result(self):
        return np.float32(self._total / self._count) if self._count else np.float32(0.0)


class MeanSquaredError(_LossMetric):
    """Mean squared error over the epoch."""
    _fn = "mean_squared_error"

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(name, dtype)


class MeanAbsoluteError(_LossMetric):
    """Mean absolute error over the epoch."""
    _fn = "mean_absolute_error"

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(name, dtype)


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "precision": Precision, "recall": Recall,
    "f1_score": F1Score, "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}
_CLASSES = {cls.__name__: cls for cls in list(_BY_NAME.values()) + [Accuracy]}


def get(identifier, y_true_shape=None, y_pred_shape=None):
    """Resolve a metric identifier to a Metric. "accuracy"/"acc" needs the target and prediction shapes:
    binary when the predictions have one column, sparse categorical when the targets have fewer axes (or
    one column against several), categorical otherwise. The metric keeps the name it was given."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        if identifier in ("accuracy", "acc"):
            if y_pred_shape is None or y_true_shape is None:
                return Accuracy(name=identifier)
            if y_pred_shape[-1] == 1:
                return BinaryAccuracy(name=identifier)
            if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
                return SparseCategoricalAccuracy(name=identifier)
            return CategoricalAccuracy(name=identifier)
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown metric: {identifier!r}. Known: {sorted(_BY_NAME) + ['accuracy', 'acc']}")
        return cls(name=identifier) if identifier in _BY_NAME else cls()
    if callable(identifier):
        return _FunctionMetric(identifier)
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


class _FunctionMetric(_LossMetric):
    """Mean of a user function ``fn(y_true, y_pred) -> per-sample values`` (numpy in, array-like out)."""

    def __init__(self, fn):
        self.fn = fn
        super().__init__(getattr(fn, "__name__", "metric"))

    def _update(self, y, p):
        out = self.fn(y, p)
        per = np.asarray(out, np.float64)
        self._total += float(per.sum())
        self._count += max(per.size, 1)


binary_accuracy, categorical_accuracy = BinaryAccuracy, CategoricalAccuracy
sparse_categorical_accuracy = SparseCategoricalAccuracy
