"""AUC, the at-constraint metrics, R2Score, the IoU family and user-written Metric subclasses against
numpy references written from Keras 3's formulas (keras/src/metrics/*.py; the values were also checked
against Keras 3.15 itself when these tests were written)."""
import numpy as np
import pytest

import fastnn
from fastnn import metrics

EPS = 1e-7


def counts_ref(y, p, thresholds, w=None, even=None):
    """tp, fp, tn, fn per threshold: a prediction is positive when p > threshold, a label when y != 0.
    ``even`` ("eps": -eps, 1/(T-1), ..., 1+eps as AUC's; "plain": 0, 1/(T-1), ..., 1): Keras decides
    ``p > i / (T - 1)`` as ``ceil(p * (T - 1)) > i`` in float32, so that a prediction on a threshold
    (up to float32 rounding) may fall on either side; AUC's first threshold, -eps, has every p above it."""
    w = np.ones_like(p, dtype=np.float64) if w is None else w
    T = len(thresholds)
    scaled = np.ceil(np.clip(p.astype(np.float32), 0, 1) * np.float32(T - 1))
    out = []
    for i, t in enumerate(thresholds):
        pos, lab = p > t, y != 0
        if even is not None:
            pos = (scaled > i) | (even == "eps" and i == 0)
        out.append([(w * (pos & lab)).sum(), (w * (pos & ~lab)).sum(), (w * (~pos & ~lab)).sum(),
                    (w * (~pos & lab)).sum()])
    return np.array(out).T  # (4, T)


def auc_thresholds(n):
    return np.array([-EPS] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1 + EPS])


def div(a, b):
    return np.where(b > 0, a / np.where(b > 0, b, 1), 0.0)


def auc_ref(tp, fp, tn, fn, curve="ROC", summation="interpolation"):
    """Keras's AUC.result: Riemann sums over the threshold points, or for PR with interpolation the
    Davis & Goadrich interpolation (precision linear in the counts between thresholds)."""
    if curve == "PR" and summation == "interpolation":
        total = 0.0
        for i in range(len(tp) - 1):
            dtp, dp = tp[i] - tp[i + 1], (tp[i] + fp[i]) - (tp[i + 1] + fp[i + 1])
            slope = dtp / dp if dp > 0 else 0.0
            p_a, p_b = tp[i] + fp[i], tp[i + 1] + fp[i + 1]
            intercept = tp[i + 1] - slope * p_b
            log_ratio = np.log(p_a / p_b) if p_a > 0 and p_b > 0 else 0.0
            positives = tp[i + 1] + fn[i + 1]
            total += slope * (dtp + intercept * log_ratio) / positives if positives > 0 else 0.0
        return total
    recall = div(tp, tp + fn)
    x, y = (div(fp, fp + tn), recall) if curve == "ROC" else (recall, div(tp, tp + fp))
    h = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
         "majoring": np.maximum(y[:-1], y[1:])}[summation]
    return float(((x[:-1] - x[1:]) * h).sum())


@pytest.fixture
def binary():
    rng = np.random.default_rng(0)
    y = (rng.random(64) > 0.5).astype(np.float32)
    p = np.round(rng.random(64), 2).astype(np.float32)  # ties, and values lying on thresholds
    p[:4] = [0.0, 1.0, 0.5, 0.25]
    return y, p, rng.random(64).astype(np.float32)


@pytest.mark.parametrize("kw", [dict(), dict(curve="PR"), dict(curve="PR", summation_method="minoring"),
                                dict(num_thresholds=7, summation_method="majoring"), dict(num_thresholds=2),
                                dict(curve="ROC", summation_method="minoring", num_thresholds=31)])
@pytest.mark.parametrize("weighted", [False, True])
def test_auc_matches_keras_formula(binary, kw, weighted):
    y, p, w = binary
    m = metrics.AUC(**kw)
    half = len(y) // 2  # two batches: the counts accumulate
    for sl in (slice(None, half), slice(half, None)):
        m.update_state(y[sl], p[sl], sample_weight=w[sl] if weighted else None)
    ref = auc_ref(*counts_ref(y, p, auc_thresholds(kw.get("num_thresholds", 200)), w if weighted else None, "eps"),
                  kw.get("curve", "ROC"), kw.get("summation_method", "interpolation"))
    assert float(m.result()) == pytest.approx(ref, rel=1e-5, abs=1e-7)
    m.reset_state()
    assert float(m.result()) == 0.0


def test_auc_perfect_random_custom_thresholds_logits_and_multi_label(binary):
    y, p, _ = binary
    assert float(metrics.AUC()(y, y * 0.8 + 0.1)) == pytest.approx(1.0)
    assert float(metrics.AUC()(y, 0.9 - y * 0.8)) == pytest.approx(0.0)
    custom = metrics.AUC(thresholds=[0.77, 0.1, 0.3])
    ref = auc_ref(*counts_ref(y, p, [-EPS, 0.1, 0.3, 0.77, 1 + EPS]))
    assert float(custom(y, p)) == pytest.approx(ref, rel=1e-6)
    assert custom.num_thresholds == 5
    logits = (p - 0.5) * 8
    assert float(metrics.AUC(from_logits=True)(y, logits)) == pytest.approx(
        auc_ref(*counts_ref(y, 1 / (1 + np.exp(-logits.astype(np.float64))), auc_thresholds(200), None, "eps")),
        rel=1e-6)
    rng = np.random.default_rng(1)
    Y, P = (rng.random((20, 3)) > 0.6).astype(np.float32), rng.random((20, 3)).astype(np.float32)
    per = [auc_ref(*counts_ref(Y[:, j], P[:, j], auc_thresholds(200), None, "eps"), "PR") for j in range(3)]
    lw = np.array([1.0, 2.0, 0.5])
    assert float(metrics.AUC(multi_label=True, curve="PR")(Y, P)) == pytest.approx(np.mean(per), rel=1e-6)
    assert float(metrics.AUC(multi_label=True, curve="PR", label_weights=lw)(Y, P)) == pytest.approx(
        (np.array(per) * lw).sum() / lw.sum(), rel=1e-6)
    # not multi-label: one curve over every element, label_weights weighting the columns' elements
    flat_w = np.broadcast_to(lw, Y.shape).ravel()
    assert float(metrics.AUC(label_weights=lw)(Y, P)) == pytest.approx(
        auc_ref(*counts_ref(Y.ravel(), P.ravel(), auc_thresholds(200), flat_w, "eps")), rel=1e-6)
    with pytest.raises(ValueError, match="num_thresholds"):
        metrics.AUC(num_thresholds=1)
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    assert type(metrics.get("auc")) is metrics.AUC and metrics.AUC().get_config()["curve"] == "ROC"


@pytest.mark.parametrize("cls,value,n,weighted", [
    (metrics.PrecisionAtRecall, 0.5, 200, False), (metrics.RecallAtPrecision, 0.6, 50, True),
    (metrics.SensitivityAtSpecificity, 0.5, 200, False), (metrics.SpecificityAtSensitivity, 0.7, 200, True),
    (metrics.PrecisionAtRecall, 0.8, 1, False)])
def test_at_constraint_metrics_match_keras_formula(binary, cls, value, n, weighted):
    y, p, w = binary
    m = cls(value, num_thresholds=n)
    m.update_state(y, p, sample_weight=w if weighted else None)
    thresholds = [0.5] if n == 1 else [0.0] + [(i + 1) / (n - 1) for i in range(n - 2)] + [1.0]
    tp, fp, tn, fn = counts_ref(y, p, thresholds, w if weighted else None, None if n == 1 else "plain")
    recall, precision = div(tp, tp + fn), div(tp, tp + fp)
    specificity = div(tn, tn + fp)
    constrained, dependent = {metrics.PrecisionAtRecall: (recall, precision),
                              metrics.RecallAtPrecision: (precision, recall),
                              metrics.SensitivityAtSpecificity: (specificity, recall),
                              metrics.SpecificityAtSensitivity: (recall, specificity)}[cls]
    ref = max([d for c, d in zip(constrained, dependent) if c >= value], default=0.0)
    assert float(m.result()) == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match="range"):
        cls(1.5)


def test_r2_score_matches_keras_formula():
    rng = np.random.default_rng(2)
    y = rng.standard_normal((30, 2)).astype(np.float32)
    p = (y + rng.standard_normal((30, 2)) * 0.5).astype(np.float32)
    w = rng.random(30)
    ss_res = ((y - p) ** 2).sum(0)
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    raw = 1 - ss_res / ss_tot
    assert float(metrics.R2Score()(y, p)) == pytest.approx(raw.mean(), rel=1e-5)
    wm = (w[:, None] * y).sum(0) / w.sum()
    wraw = 1 - (w[:, None] * (y - p) ** 2).sum(0) / (w[:, None] * (y - wm) ** 2).sum(0)
    wtot = (w[:, None] * (y - wm) ** 2).sum(0)
    vw = metrics.R2Score(class_aggregation="variance_weighted_average")
    vw.update_state(y[:10], p[:10], sample_weight=w[:10])
    vw.update_state(y[10:], p[10:], sample_weight=w[10:])
    assert float(vw.result()) == pytest.approx((wtot * wraw).sum() / wtot.sum(), rel=1e-5)
    n, k = y.size, 3  # Keras counts every element as a sample for the adjustment
    adj = metrics.R2Score(class_aggregation=None, num_regressors=k)(y, p)
    np.testing.assert_allclose(adj, 1 - (1 - raw) * (n - 1) / (n - k - 1), rtol=1e-5)
    assert float(metrics.R2Score()(y[:, 0], p[:, 0])) == pytest.approx(raw[0], rel=1e-5)
    with pytest.raises(ValueError, match="class_aggregation"):
        metrics.R2Score(class_aggregation="max")


def iou_ref(cm, ids):
    tp = np.diag(cm)
    denom = cm.sum(0) + cm.sum(1) - tp
    tp, denom = tp[ids], denom[ids]
    valid = (denom > 1e-9).sum()
    return div(tp, denom).sum() / valid if valid else 0.0


def test_iou_family_matches_keras_formula(binary):
    rng = np.random.default_rng(3)
    yl, pl = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    w = rng.random(50) * 3
    cm = np.zeros((4, 4))
    np.add.at(cm, (yl, pl), 1.0)
    assert float(metrics.IoU(4, [0, 2])(yl, pl)) == pytest.approx(iou_ref(cm, [0, 2]), rel=1e-6)
    # ignore_class drops rows; Keras's default integer dtype truncates float sample weights
    keep = yl != 1
    for dtype, weights in ((None, np.trunc(w)), ("float32", w)):
        cmw = np.zeros((4, 4))
        np.add.at(cmw, (yl[keep], pl[keep]), weights[keep])
        m = metrics.MeanIoU(4, ignore_class=1, dtype=dtype)
        m.update_state(yl, pl, sample_weight=w)
        assert float(m.result()) == pytest.approx(iou_ref(cmw, [0, 1, 2, 3]), rel=1e-6)
    y, p, _ = binary
    cmb = np.zeros((2, 2))
    np.add.at(cmb, (y.astype(int), (p >= 0.3).astype(int)), 1.0)
    assert float(metrics.BinaryIoU(threshold=0.3)(y, p)) == pytest.approx(iou_ref(cmb, [0, 1]), rel=1e-6)
    assert float(metrics.BinaryIoU(target_class_ids=[1])(y, p)) == pytest.approx(
        iou_ref(np.histogram2d(y, (p >= 0.5).astype(int), bins=2)[0], [1]), rel=1e-6)
    onehot = metrics.OneHotMeanIoU(4)
    onehot.update_state(np.eye(4)[yl], np.eye(4)[pl] * 0.7 + 0.1)
    assert float(onehot.result()) == pytest.approx(iou_ref(cm, [0, 1, 2, 3]), rel=1e-6)
    assert float(metrics.OneHotIoU(4, [3])(np.eye(4)[yl], np.eye(4)[pl])) == pytest.approx(iou_ref(cm, [3]))
    out_of_range = metrics.MeanIoU(2)
    out_of_range.update_state([0, 1, 5], [0, 1, 1])  # label 5 is skipped
    assert float(out_of_range.result()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="out of range"):
        metrics.IoU(3, [3])


class BinaryTruePositives(metrics.Metric):
    """The tf.keras guide's custom metric."""

    def __init__(self, name="binary_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_weight(name="tp", initializer="zeros")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true, bool).reshape(-1)
        y_pred = np.asarray(y_pred).reshape(-1) > 0.5
        values = (y_true & y_pred).astype(np.float32)
        if sample_weight is not None:
            values = values * np.asarray(sample_weight, np.float32).reshape(-1)
        self.true_positives.assign_add(values.sum())

    def result(self):
        return self.true_positives


def test_user_metric_with_add_weight_updates_resets_and_runs_in_fit():
    m = BinaryTruePositives()
    m.update_state([1, 1, 0], [0.9, 0.2, 0.8])
    m.update_state([1], [0.7], sample_weight=[2.0])
    assert float(np.asarray(m.result())) == 3.0 and [v.path for v in m.variables] == ["binary_true_positives/tp"]
    m.reset_state()
    assert float(np.asarray(m.result())) == 0.0
    counter = metrics.Metric.__new__(metrics.Metric)
    with pytest.raises(NotImplementedError, match="update_state"):
        metrics.Metric.__init__(counter)
        counter.update_state([1], [1])
    x = np.random.default_rng(0).standard_normal((32, 3)).astype(np.float32)
    y = (x.sum(1, keepdims=True) > 0).astype(np.float32)
    model = fastnn.Sequential([fastnn.layers.Input((3,)), fastnn.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy",
                  metrics=[BinaryTruePositives(), metrics.AUC(), metrics.R2Score()])
    hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    expected = float(((model.predict(x, verbose=0) > 0.5) & (y > 0.5)).sum())
    assert hist.history["binary_true_positives"][-1] > 0 and expected >= 0
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert logs["binary_true_positives"] == expected
    assert 0.0 <= logs["auc"] <= 1.0


def test_results_have_numpy_like_keras_tensors():
    m = metrics.Mean()
    assert m(3.0).numpy() == 3.0 and m(5.0).numpy() == 4.0
    assert f"{m.result():.2f}" == "4.00" and float(m.result()) == 4.0
    per_class = metrics.F1Score()([[0, 1], [1, 0]], [[0.2, 0.8], [0.6, 0.4]]).numpy()
    assert per_class.shape == (2,) and per_class.dtype == np.float32
    assert metrics.AUC()([0, 1], [0.2, 0.7]).numpy() == pytest.approx(1.0)
