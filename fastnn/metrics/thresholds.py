"""Metrics over confusion counts at many thresholds (Keras 3's confusion_metrics.py): AUC (ROC, PR,
interpolation / minoring / majoring, multi-label), PrecisionAtRecall, RecallAtPrecision,
SensitivityAtSpecificity, SpecificityAtSensitivity.

A prediction is positive at threshold t when ``y_pred > t``; a target is positive when non-zero.
With evenly spaced thresholds Keras counts by bucket (``ceil(y_pred * (T - 1)) - 1``, y_pred clipped to
[0, 1], in float32) instead of comparing; the counts below do the same so that predictions lying exactly
on a threshold fall on Keras's side of it."""
import numpy as np

from fastnn.metrics.base import Metric

_EPS = 1e-7  # keras.backend.epsilon()


def _divide_no_nan(a, b):
    return np.divide(a, b, out=np.zeros(np.broadcast(a, b).shape), where=b != 0)


def _weights(sample_weight, shape):
    """Per-element weights: sample_weight of rank <= the predictions' rank, broadcast from the left
    (one weight per sample spreads over its labels)."""
    if sample_weight is None:
        return np.ones(shape)
    w = np.asarray(sample_weight, np.float64)
    w = w.reshape(w.shape + (1,) * (len(shape) - w.ndim)) if w.ndim < len(shape) else w.reshape(shape)
    return np.broadcast_to(w, shape)


class _ThresholdCounts(Metric):
    """tp, fp, tn, fn (float64) per threshold (T,), or per threshold and label (T, L) when ``_per_label``."""

    _direction = "up"
    _weighted = True
    _per_label = False

    def _set_thresholds(self, thresholds, evenly, with_epsilon):
        self._thresholds = np.asarray(thresholds, np.float64)
        self._evenly, self._with_epsilon = evenly, with_epsilon

    def reset_state(self):
        self._counts = None  # (4, T) or (4, T, L): tp, fp, tn, fn; created at the first update

    def _zero_counts(self, n_labels=None):
        return np.zeros((4, len(self._thresholds)) + ((n_labels,) if n_labels is not None else ()))

    def _count(self, y, p, w):
        """Counts of one batch: y, p, w (N,) or (N, L) arrays."""
        T = len(self._thresholds)
        label = (y != 0).astype(np.float64)
        pos_w, neg_w = label * w, (1.0 - label) * w
        if self._evenly:
            pc = np.clip(p.astype(np.float32), np.float32(0), np.float32(1))
            bucket = (np.ceil(pc * np.float32(T - 1)) - 1).astype(np.int64)
            if self._with_epsilon:
                bucket = np.maximum(bucket, 0)
            def above(weight):  # weight with bucket >= i, per threshold i (and label)
                if weight.ndim == 1:
                    return _above(bucket, weight, T)
                return np.stack([_above(bucket[:, j], weight[:, j], T) for j in range(weight.shape[1])], axis=1)
            tp, fp = above(pos_w), above(neg_w)
        else:
            shape = (T,) + (1,) * p.ndim
            pred = p[None] > self._thresholds.reshape(shape)
            tp, fp = (pred * pos_w).sum(axis=1), (pred * neg_w).sum(axis=1)
        fn, tn = pos_w.sum(axis=0) - tp, neg_w.sum(axis=0) - fp
        return np.stack([tp, fp, tn, fn])

    def _update(self, y, p, sample_weight=None):
        y = np.asarray(y, np.float64)
        if y.shape != p.shape:
            y = y.reshape(p.shape)
        w = _weights(sample_weight, p.shape)
        if self._from_logits:
            p = 1.0 / (1.0 + np.exp(-p.astype(np.float64)))
        if getattr(self, "class_id", None) is not None:
            y, p, w = y[..., self.class_id], p[..., self.class_id], w[..., self.class_id]
        if self._per_label:
            y, p, w = (a.reshape(-1, a.shape[-1]) for a in (y, p, w))
        else:
            y, p, w = y.ravel(), p.ravel(), w.ravel() * self._label_weights_flat(p.shape)
        counts = self._count(y, p, w)
        self._counts = counts if self._counts is None else self._counts + counts

    def _label_weights_flat(self, shape):
        return 1.0

    _from_logits = False

    def _tp_fp_tn_fn(self):
        return self._counts if self._counts is not None else self._zero_counts()


def _above(bucket, weight, T):
    """Suffix sums of the weights per bucket: out[i] = weight with bucket >= i (bucket -1 counts nowhere)."""
    keep = bucket >= 0
    hist = np.bincount(bucket[keep], weight[keep], minlength=T)[:T]
    return np.cumsum(hist[::-1])[::-1]


class AUC(_ThresholdCounts):
    """Area under the ROC or PR curve from counts at ``num_thresholds`` thresholds (Keras 3 ``AUC``):
    ``curve`` "ROC" or "PR"; ``summation_method`` "interpolation" (trapezoids for ROC; for PR the
    interpolation of Davis & Goadrich, precision varying along the counts), "minoring" or "majoring";
    ``multi_label`` averages per-label AUCs (``label_weights`` weight them); ``from_logits`` applies a
    sigmoid first."""

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        curve = str(curve).upper()
        summation_method = str(summation_method).lower()
        if curve not in ("ROC", "PR"):
            raise ValueError(f'AUC: invalid curve "{curve}"; expected "ROC" or "PR"')
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f'AUC: invalid summation_method "{summation_method}"; expected "interpolation", '
                             f'"minoring" or "majoring"')
        if thresholds is not None:
            inner = sorted(float(t) for t in thresholds)
            self.num_thresholds = len(inner) + 2
            grid = np.array([0.0] + inner + [1.0])
            evenly = bool(np.allclose(np.diff(grid), 1.0 / (len(grid) - 1), atol=_EPS))
        else:
            if num_thresholds <= 1:
                raise ValueError(f"AUC: argument `num_thresholds` must be an integer > 1. Received: "
                                 f"num_thresholds={num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            evenly = True
        if not multi_label and num_labels:
            raise ValueError("AUC: `num_labels` is needed only when `multi_label` is True.")
        self._init_from_thresholds = thresholds is not None
        self._set_thresholds([0.0 - _EPS] + inner + [1.0 + _EPS], evenly, True)
        self.curve, self.summation_method = curve, summation_method
        self.multi_label, self.num_labels = bool(multi_label), num_labels
        self._per_label = self.multi_label
        self.label_weights = None if label_weights is None else np.asarray(label_weights, np.float64)
        self._from_logits = bool(from_logits)
        super().__init__(name, dtype)

    @property
    def thresholds(self):
        return list(self._thresholds)

    def _label_weights_flat(self, shape):
        if self.label_weights is None:
            return 1.0
        return np.broadcast_to(self.label_weights, shape).ravel()

    def _interpolate_pr_auc(self, tp, fp, fn):
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        return _divide_no_nan(slope * (dtp + intercept * np.log(np.where(both, ratio, 1.0))),
                              np.maximum(tp[1:] + fn[1:], 0))

    def result(self):
        tp, fp, tn, fn = self._tp_fp_tn_fn()
        if self.curve == "PR" and self.summation_method == "interpolation":
            terms = self._interpolate_pr_auc(tp, fp, fn)
        else:
            recall = _divide_no_nan(tp, tp + fn)
            if self.curve == "ROC":
                x, y = _divide_no_nan(fp, fp + tn), recall
            else:
                x, y = recall, _divide_no_nan(tp, tp + fp)
            heights = {"interpolation": lambda: (y[:-1] + y[1:]) / 2.0,
                       "minoring": lambda: np.minimum(y[:-1], y[1:]),
                       "majoring": lambda: np.maximum(y[:-1], y[1:])}[self.summation_method]()
            terms = (x[:-1] - x[1:]) * heights
        if not self.multi_label:
            return np.float32(terms.sum())
        by_label = terms.sum(axis=0)
        if self.label_weights is None:
            return np.float32(by_label.mean())
        return np.float32(_divide_no_nan((by_label * self.label_weights).sum(), self.label_weights.sum()))

    def get_config(self):
        cfg = {**super().get_config(), "num_thresholds": self.num_thresholds, "curve": self.curve,
               "summation_method": self.summation_method, "multi_label": self.multi_label,
               "num_labels": self.num_labels,
               "label_weights": None if self.label_weights is None else self.label_weights.tolist(),
               "from_logits": self._from_logits}
        if self._init_from_thresholds:
            cfg["thresholds"] = self.thresholds[1:-1]
        return cfg


class _AtConstraint(_ThresholdCounts):
    """Keras's SensitivitySpecificityBase: counts at ``num_thresholds`` thresholds 0, 1/(T-1), ..., 1
    (one threshold, 0.5, when num_thresholds == 1); the result is the best value of one rate among the
    thresholds where another rate satisfies ``>= value`` (0 when none does)."""

    _value_arg = None  # the constructor's argument name ("recall", "precision", ...)

    def __init__(self, value, num_thresholds=200, class_id=None, name=None, dtype=None):
        if not 0 <= value <= 1:
            raise ValueError(f"{type(self).__name__}: argument `{self._value_arg}` must be in the range [0, 1]. "
                             f"Received: {self._value_arg}={value}")
        if num_thresholds <= 0:
            raise ValueError(f"{type(self).__name__}: argument `num_thresholds` must be an integer > 0. "
                             f"Received: num_thresholds={num_thresholds}")
        self.value, self.num_thresholds, self.class_id = float(value), int(num_thresholds), class_id
        if num_thresholds == 1:
            self._set_thresholds([0.5], False, False)
        else:
            inner = [(i + 1) * 1.0 / (num_thresholds - 1) for i in range(num_thresholds - 2)]
            self._set_thresholds([0.0] + inner + [1.0], True, False)
        super().__init__(name, dtype)

    def _rates(self):
        """(constrained, dependent) per threshold."""
        raise NotImplementedError

    def result(self):
        constrained, dependent = self._rates()
        return np.float32(np.max(np.where(constrained >= self.value, dependent, 0.0), initial=0.0))

    def get_config(self):
        return {**super().get_config(), self._value_arg: self.value, "num_thresholds": self.num_thresholds,
                "class_id": self.class_id}


def _recall_precision(tp, fp, tn, fn):
    return _divide_no_nan(tp, tp + fn), _divide_no_nan(tp, tp + fp)


class PrecisionAtRecall(_AtConstraint):
    """Best precision among the thresholds whose recall is >= ``recall``."""
    _value_arg = "recall"

    def __init__(self, recall, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(recall, num_thresholds, class_id, name, dtype)

    def _rates(self):
        return _recall_precision(*self._tp_fp_tn_fn())


class RecallAtPrecision(_AtConstraint):
    """Best recall among the thresholds whose precision is >= ``precision``."""
    _value_arg = "precision"

    def __init__(self, precision, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(precision, num_thresholds, class_id, name, dtype)

    def _rates(self):
        return _recall_precision(*self._tp_fp_tn_fn())[::-1]


def _specificity_sensitivity(tp, fp, tn, fn):
    return _divide_no_nan(tn, tn + fp), _divide_no_nan(tp, tp + fn)


class SensitivityAtSpecificity(_AtConstraint):
    """Best sensitivity (recall) among the thresholds whose specificity is >= ``specificity``."""
    _value_arg = "specificity"

    def __init__(self, specificity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(specificity, num_thresholds, class_id, name, dtype)

    def _rates(self):
        return _specificity_sensitivity(*self._tp_fp_tn_fn())


class SpecificityAtSensitivity(_AtConstraint):
    """Best specificity among the thresholds whose sensitivity (recall) is >= ``sensitivity``."""
    _value_arg = "sensitivity"

    def __init__(self, sensitivity, num_thresholds=200, class_id=None, name=None, dtype=None):
        super().__init__(sensitivity, num_thresholds, class_id, name, dtype)

    def _rates(self):
        return _specificity_sensitivity(*self._tp_fp_tn_fn())[::-1]
