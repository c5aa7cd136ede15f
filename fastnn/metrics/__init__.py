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

from fastnn import losses
from fastnn.losses import _f32, _one_hot
from fastnn.metrics.base import Metric
from fastnn.metrics.iou_r2 import IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU, R2Score  # noqa: F401
from fastnn.metrics.thresholds import (AUC, PrecisionAtRecall, RecallAtPrecision,  # noqa: F401
                                       SensitivityAtSpecificity, SpecificityAtSensitivity)

EPSILON = 1e-7


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
    """Counts over all elements of binarised predictions (``y_pred > threshold``), as Keras's
    Precision/Recall do for one-hot or binary targets; one count per threshold (``thresholds``: a float or
    a list of floats, default 0.5), weighted by ``sample_weight``."""

    _direction = "up"
    _weighted = True

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if top_k is not None:
            raise ValueError(f"{type(self).__name__}: top_k is not supported yet")
        self.thresholds = (0.5 if thresholds is None else
                           float(thresholds) if np.ndim(thresholds) == 0 else [float(t) for t in thresholds])
        self.class_id = class_id
        super().__init__(name, dtype)

    def reset_state(self):
        n = np.size(self.thresholds)
        self.true_positives, self.false_positives, self.true_negatives, self.false_negatives = (
            np.zeros(n) for _ in range(4))

    def _update(self, y, p, sample_weight=None):
        y = np.asarray(y)
        if y.shape != p.shape:
            sparse = p.shape[-1] > 1 and y.size * p.shape[-1] == p.size
            y = _one_hot(_labels(y, p).astype(np.intp), p.shape[-1]) if sparse else y.reshape(p.shape)
        if self.class_id is not None:
            y, p = y[..., self.class_id], p[..., self.class_id]
        w = 1.0
        if sample_weight is not None:  # one weight per sample (or per element), spread over its elements
            w = np.asarray(sample_weight, np.float64)
            w = np.broadcast_to(w.reshape(w.shape + (1,) * (p.ndim - w.ndim)), p.shape)
        # thresholds on a leading axis: one count per threshold
        pos = p[None] > np.reshape(self.thresholds, (-1,) + (1,) * p.ndim)
        true = (y > 0.5)[None]
        axes = tuple(range(1, pos.ndim))
        self.true_positives += ((pos & true) * w).sum(axis=axes)
        self.false_positives += ((pos & ~true) * w).sum(axis=axes)
        self.true_negatives += ((~pos & ~true) * w).sum(axis=axes)
        self.false_negatives += ((~pos & true) * w).sum(axis=axes)

    def _per_threshold(self, counts):
        """A scalar for one threshold, an array for a list (Keras)."""
        counts = np.asarray(counts, dtype=np.float32)
        return counts[0] if np.ndim(self.thresholds) == 0 else counts

    def _ratio(self, num, other):
        d = num + other
        return self._per_threshold(np.divide(num, d, out=np.zeros_like(d), where=d > 0))

    def get_config(self):
        return {**super().get_config(), "thresholds": self.thresholds, "top_k": None, "class_id": self.class_id}


class Precision(_Confusion):
    """``tp / (tp + fp)`` over the epoch (threshold 0.5)."""

    def result(self):
        return self._ratio(self.true_positives, self.false_positives)


class Recall(_Confusion):
    """``tp / (tp + fn)`` over the epoch (threshold 0.5)."""

    def result(self):
        return self._ratio(self.true_positives, self.false_negatives)


class _Count(_Confusion):
    """One confusion count (the attribute ``_count_of``) over the epoch, per threshold."""

    _count_of = None

    def __init__(self, thresholds=None, name=None, dtype=None):
        super().__init__(thresholds, name=name, dtype=dtype)

    def result(self):
        return self._per_threshold(getattr(self, self._count_of))

    def get_config(self):
        return {"name": self.name, "dtype": "float32", "thresholds": self.thresholds}


class TruePositives(_Count):
    """Weighted count of positive predictions (``y_pred > threshold``) with positive targets."""
    _count_of = "true_positives"


class FalsePositives(_Count):
    """Weighted count of positive predictions (``y_pred > threshold``) with negative targets."""
    _count_of, _direction = "false_positives", "down"


class TrueNegatives(_Count):
    """Weighted count of negative predictions (``y_pred <= threshold``) with negative targets."""
    _count_of = "true_negatives"


class FalseNegatives(_Count):
    """Weighted count of negative predictions (``y_pred <= threshold``) with positive targets."""
    _count_of, _direction = "false_negatives", "down"


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


def _samplewise(values, sample_weight, reduce):
    """Keras 3's ``reduce_to_samplewise_values``: one value per sample (``reduce`` over the axes beyond the
    first, after those beyond the weights' rank), weighted; returns them and the samples' total weight."""
    v = np.asarray(values, dtype=np.float64)
    if sample_weight is None:
        if v.ndim > 1:
            v = reduce(v.reshape(len(v), -1), axis=1)
        return v, (v.shape[0] if v.ndim else 1)
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim == v.ndim + 1 and w.shape[-1] == 1:  # Keras's squeeze_or_expand_to_same_rank
        w = w[..., 0]
    elif v.ndim == w.ndim + 1 and v.shape[-1] == 1:
        v = v[..., 0]
    if v.ndim > w.ndim:
        v = reduce(v, axis=tuple(range(w.ndim, v.ndim)))
    w = np.broadcast_to(w, v.shape)
    v = v * w
    if w.ndim > 1:
        w = reduce(w, axis=tuple(range(1, w.ndim)))
    if v.ndim > 1:
        v = reduce(v, axis=tuple(range(1, v.ndim)))
    return v, float(w.sum())


class _Reduce(Metric):
    """Running total (and total weight) of the per-sample values given to ``update_state(values)``."""

    _reduce = staticmethod(np.mean)  # how a sample's values become one value

    def reset_state(self):
        self._total, self._count = 0.0, 0.0

    def update_state(self, values, sample_weight=None):
        v, n = _samplewise(values, sample_weight, self._reduce)
        self._total += float(v.sum())
        self._count += n


class Sum(_Reduce):
    """Weighted sum of the values given to ``update_state(values)``."""

    _reduce = staticmethod(np.sum)

    def result(self):
        return np.float32(self._total)


class Mean(_Reduce):
    """Weighted running mean of the values given to ``update_state(values)`` (per sample, as Keras)."""

    def result(self):
        return np.float32(self._total / self._count) if self._count else np.float32(0.0)


class MeanMetricWrapper(Mean):
    """Weighted mean of ``fn(y_true, y_pred, **kwargs)``: per-sample values, numpy in, array-like out."""

    _direction = "down"  # the per-sample values are errors unless a subclass says otherwise
    _weighted = True
    update_state = Metric.update_state

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self._fn, self._fn_kwargs = fn, kwargs
        super().__init__(name, dtype)

    def _update(self, y, p, sample_weight=None):
        Mean.update_state(self, self._fn(y, p, **self._fn_kwargs), sample_weight)

    def get_config(self):
        return {**super().get_config(), **self._fn_kwargs}


def _loss_metric(class_name, fn, default_name, direction="down", **defaults):
    """A Keras metric class ``(<defaults>, name=default_name, dtype=None)``: the weighted mean of the
    per-sample values of ``fn`` (a function of fastnn.losses or of this module)."""
    def __init__(self, name=default_name, dtype=None, **kwargs):
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{class_name}: unexpected arguments {sorted(unknown)}")
        MeanMetricWrapper.__init__(self, fn, name, dtype, **{**defaults, **kwargs})
    doc = f"Weighted mean over the samples seen of ``{fn.__name__}``."
    return type(class_name, (MeanMetricWrapper,), {"__init__": __init__, "__doc__": doc, "__module__": __name__,
                                                   "_direction": direction})


def _cosine_similarity(y_true, y_pred, axis=-1):
    # the metric is the cosine similarity itself; the loss is its negative
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)


def _squared_error(y_true, y_pred):
    p = _f32(y_pred)
    return np.square(p - losses._dense_targets(y_true, p, "root_mean_squared_error"))


def _top_k_match(y_true, y_pred, k=5):
    """1 where the integer label is among the k largest predictions (TF's in_top_k: a tie at the k-th
    largest counts as in), else 0."""
    p = _f32(y_pred)
    y = _labels(np.asarray(y_true), p).astype(np.intp).reshape(p.shape[:-1])
    target = np.take_along_axis(p, y[..., None], axis=-1)
    return ((p > target).sum(axis=-1) < k).astype(np.float32)


def _top_k_categorical(y_true, y_pred, k=5):
    return _top_k_match(np.asarray(y_true).argmax(axis=-1), y_pred, k)


MeanSquaredError = _loss_metric("MeanSquaredError", losses.mean_squared_error, "mean_squared_error")
MeanAbsoluteError = _loss_metric("MeanAbsoluteError", losses.mean_absolute_error, "mean_absolute_error")
MeanAbsolutePercentageError = _loss_metric("MeanAbsolutePercentageError", losses.mean_absolute_percentage_error,
                                           "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _loss_metric("MeanSquaredLogarithmicError", losses.mean_squared_logarithmic_error,
                                           "mean_squared_logarithmic_error")
KLDivergence = _loss_metric("KLDivergence", losses.kl_divergence, "kl_divergence")
LogCoshError = _loss_metric("LogCoshError", losses.log_cosh, "logcosh")
Poisson = _loss_metric("Poisson", losses.poisson, "poisson")
Hinge = _loss_metric("Hinge", losses.hinge, "hinge")
SquaredHinge = _loss_metric("SquaredHinge", losses.squared_hinge, "squared_hinge")
CategoricalHinge = _loss_metric("CategoricalHinge", losses.categorical_hinge, "categorical_hinge")
CosineSimilarity = _loss_metric("CosineSimilarity", _cosine_similarity, "cosine_similarity", "up", axis=-1)
TopKCategoricalAccuracy = _loss_metric("TopKCategoricalAccuracy", _top_k_categorical, "top_k_categorical_accuracy",
                                       "up", k=5)
SparseTopKCategoricalAccuracy = _loss_metric("SparseTopKCategoricalAccuracy", _top_k_match,
                                             "sparse_top_k_categorical_accuracy", "up", k=5)
# the crossentropies as metrics (the TF tutorials compile `metrics=[BinaryCrossentropy(from_logits=True)]`)
BinaryCrossentropy = _loss_metric("BinaryCrossentropy", losses.binary_crossentropy, "binary_crossentropy",
                                  from_logits=False, label_smoothing=0.0)
CategoricalCrossentropy = _loss_metric("CategoricalCrossentropy", losses.categorical_crossentropy,
                                       "categorical_crossentropy", from_logits=False, label_smoothing=0.0, axis=-1)
SparseCategoricalCrossentropy = _loss_metric("SparseCategoricalCrossentropy", losses.sparse_categorical_crossentropy,
                                             "sparse_categorical_crossentropy", from_logits=False, axis=-1)


class RootMeanSquaredError(_loss_metric("RootMeanSquaredError", _squared_error, "root_mean_squared_error")):
    """Square root of the weighted mean squared error over the samples seen."""

    def result(self):
        return np.sqrt(super().result())


_BY_NAME = {
    "binary_accuracy": BinaryAccuracy, "categorical_accuracy": CategoricalAccuracy,
    "sparse_categorical_accuracy": SparseCategoricalAccuracy, "precision": Precision, "recall": Recall,
    "f1_score": F1Score, "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    # the long tail: names Keras 3's metrics.get accepts
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mape": MeanAbsolutePercentageError, "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "msle": MeanSquaredLogarithmicError, "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "root_mean_squared_error": RootMeanSquaredError, "cosine_similarity": CosineSimilarity,
    "kl_divergence": KLDivergence, "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge, "auc": AUC, "r2_score": R2Score,
    "binary_crossentropy": BinaryCrossentropy, "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_CLASSES = {cls.__name__: cls for cls in list(_BY_NAME.values()) + [
    Accuracy, Sum, Mean, LogCoshError, TruePositives, FalsePositives, TrueNegatives, FalseNegatives,
    AUC, PrecisionAtRecall, RecallAtPrecision, SensitivityAtSpecificity, SpecificityAtSensitivity, R2Score, IoU,
    MeanIoU, BinaryIoU, OneHotIoU, OneHotMeanIoU]}


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
        return MeanMetricWrapper(identifier, name=getattr(identifier, "__name__", "metric"))
    raise ValueError(f"Could not interpret metric identifier: {identifier!r}")


binary_accuracy, categorical_accuracy = BinaryAccuracy, CategoricalAccuracy
sparse_categorical_accuracy = SparseCategoricalAccuracy
