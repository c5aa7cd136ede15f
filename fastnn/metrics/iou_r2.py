"""R2Score (keras/src/metrics/regression_metrics.py) and the IoU family (iou_metrics.py): IoU, MeanIoU,
BinaryIoU, OneHotIoU, OneHotMeanIoU, accumulated over the epoch in float64 and returned as float32."""
import warnings

import numpy as np

from fastnn.metrics.base import Metric


class R2Score(Metric):
    """Coefficient of determination per output column, ``1 - SS_res / SS_tot`` from running sums;
    ``class_aggregation``: "uniform_average" (mean), "variance_weighted_average" or None (per column);
    ``num_regressors`` > 0 gives the adjusted R2."""

    _direction = "up"
    _weighted = True

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError("R2Score: invalid value for argument `class_aggregation`. Expected one of "
                             "{None, 'uniform_average', 'variance_weighted_average'}. Received: "
                             f"class_aggregation={class_aggregation}")
        if num_regressors < 0:
            raise ValueError(f"R2Score: invalid value for argument `num_regressors`. Expected a value >= 0. "
                             f"Received: num_regressors={num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, int(num_regressors)
        super().__init__(name, dtype)

    def reset_state(self):
        self._sums = None  # sum, squared_sum, total_mse, count: (4, D)
        self._num_samples = 0

    def _update(self, y, p, sample_weight=None):
        y = np.asarray(y, np.float64)
        p = np.asarray(p, np.float64)
        if y.ndim == p.ndim - 1 and p.shape[-1] == 1:  # squeeze_or_expand_to_same_rank
            y = y[..., None]
        elif p.ndim == y.ndim - 1 and y.shape[-1] == 1:
            p = p[..., None]
        if y.ndim == 1:
            y, p = y[:, None], p[:, None]
        if y.ndim != 2:
            raise ValueError(f"R2Score: expects 2D targets and predictions (samples, outputs), got y_true of shape "
                             f"{y.shape} and y_pred of shape {p.shape}")
        w = np.ones(()) if sample_weight is None else np.asarray(sample_weight, np.float64)
        if w.ndim == 1:
            w = w[:, None]
        w = np.broadcast_to(w, y.shape)
        wy = y * w
        sums = np.stack([wy.sum(0), (y * wy).sum(0), ((y - p) ** 2 * w).sum(0), w.sum(0)])
        if self._sums is not None and self._sums.shape != sums.shape:
            raise ValueError(f"R2Score: y_pred has {sums.shape[1]} columns, earlier batches had {self._sums.shape[1]}")
        self._sums = sums if self._sums is None else self._sums + sums
        self._num_samples += y.size

    def result(self):
        if self._sums is None:
            return np.float32(0.0)
        total_sum, squared_sum, total_mse, count = self._sums
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = total_sum / count
            total = squared_sum - total_sum * mean
            raw = 1 - total_mse / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            r2 = raw.mean()
        elif self.class_aggregation == "variance_weighted_average":
            r2 = (total * raw).sum() / total.sum()
        else:
            r2 = raw
        n, k = self._num_samples, self.num_regressors
        if k:
            if k >= n - 1:
                warnings.warn("More independent predictors than datapoints in adjusted R2 score. Falling back to "
                              "standard R2 score." if k > n - 1 else
                              "Division by zero in Adjusted R2 score. Falling back to standard R2 score.", stacklevel=2)
            else:
                r2 = 1.0 - (1.0 - r2) * (n - 1.0) / (n - k - 1.0)
        return np.asarray(r2, np.float32)

    def get_config(self):
        return {**super().get_config(), "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


class IoU(Metric):
    """Intersection over union ``tp / (tp + fp + fn)`` of the classes ``target_class_ids``, averaged over
    those present, from the epoch's confusion matrix of integer labels (``sparse_y_true`` /
    ``sparse_y_pred`` False: one-hot / probabilities, arg-max along ``axis``). Labels outside
    [0, num_classes) and ``ignore_class`` are skipped."""

    _direction = "up"
    _weighted = True

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_true=True,
                 sparse_y_pred=True, axis=-1):
        if max(target_class_ids) >= num_classes:
            raise ValueError(f"Target class id {max(target_class_ids)} is out of range, which is [0, {num_classes}).")
        self.num_classes, self.target_class_ids = int(num_classes), [int(c) for c in target_class_ids]
        self.ignore_class, self.sparse_y_true, self.sparse_y_pred, self.axis = (ignore_class, bool(sparse_y_true),
                                                                                bool(sparse_y_pred), axis)
        # Keras keeps the confusion matrix in dtype, "int" by default: sample weights are truncated to integers
        # then (a weight of 0.7 counts 0); dtype="float32" keeps them
        self._integer_counts = dtype is None or "int" in str(dtype)
        super().__init__(name, dtype)

    def reset_state(self):
        self.total_cm = np.zeros((self.num_classes, self.num_classes))  # rows: true class, columns: predicted

    def _labels(self, y, p):
        return y, p

    def _update(self, y, p, sample_weight=None):
        y, p = self._labels(np.asarray(y), np.asarray(p))
        if not self.sparse_y_true:
            y = np.argmax(y, axis=self.axis)
        if not self.sparse_y_pred:
            p = np.argmax(p, axis=self.axis)
        y = np.asarray(y, np.float32).astype(np.int64).ravel()
        p = np.asarray(p, np.float32).astype(np.int64).ravel()
        w = np.ones(y.shape) if sample_weight is None else np.broadcast_to(
            np.asarray(sample_weight, np.float64).ravel(), y.shape)
        if self._integer_counts:
            w = np.trunc(w)
        keep = (y >= 0) & (y < self.num_classes) & (p >= 0) & (p < self.num_classes)
        if self.ignore_class is not None:
            keep &= y != self.ignore_class
        np.add.at(self.total_cm, (y[keep], p[keep]), w[keep])

    def result(self):
        cm = self.total_cm
        tp = np.diag(cm)
        denominator = cm.sum(axis=0) + cm.sum(axis=1) - tp
        ids = self.target_class_ids
        tp, denominator = tp[ids], denominator[ids]
        valid = np.count_nonzero(denominator > 1e-9)
        iou = np.divide(tp, denominator, out=np.zeros_like(tp), where=denominator != 0)
        return np.float32(iou.sum() / valid if valid else 0.0)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "target_class_ids": self.target_class_ids,
                "ignore_class": self.ignore_class, "sparse_y_true": self.sparse_y_true,
                "sparse_y_pred": self.sparse_y_pred, "axis": self.axis}


class BinaryIoU(IoU):
    """IoU of binary targets and ``y_pred >= threshold``, over ``target_class_ids`` among (0, 1)."""

    def __init__(self, target_class_ids=(0, 1), threshold=0.5, name=None, dtype=None):
        self.threshold = float(threshold)
        super().__init__(2, target_class_ids, name=name, dtype=dtype)

    def _labels(self, y, p):
        return y, (np.asarray(p, np.float32) >= np.float32(self.threshold)).astype(np.float32)

    def get_config(self):
        return {"name": self.name, "dtype": "float32", "target_class_ids": self.target_class_ids,
                "threshold": self.threshold}


class MeanIoU(IoU):
    """IoU averaged over all ``num_classes`` classes (those present)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_true=True, sparse_y_pred=True,
                 axis=-1):
        super().__init__(num_classes, list(range(num_classes)), name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=sparse_y_true, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        cfg = super().get_config()
        del cfg["target_class_ids"]
        return cfg


class OneHotIoU(IoU):
    """IoU with one-hot targets (and, unless ``sparse_y_pred``, probability predictions)."""

    def __init__(self, num_classes, target_class_ids, name=None, dtype=None, ignore_class=None, sparse_y_pred=False,
                 axis=-1):
        super().__init__(num_classes, target_class_ids, name=name, dtype=dtype, ignore_class=ignore_class,
                         sparse_y_true=False, sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        cfg = super().get_config()
        del cfg["sparse_y_true"]
        return cfg


class OneHotMeanIoU(MeanIoU):
    """MeanIoU with one-hot targets (and, unless ``sparse_y_pred``, probability predictions)."""

    def __init__(self, num_classes, name=None, dtype=None, ignore_class=None, sparse_y_pred=False, axis=-1):
        super().__init__(num_classes, name=name, dtype=dtype, ignore_class=ignore_class, sparse_y_true=False,
                         sparse_y_pred=sparse_y_pred, axis=axis)

    def get_config(self):
        cfg = super().get_config()
        del cfg["sparse_y_true"]
        return cfg
