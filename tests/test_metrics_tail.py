"""The long tail of Keras 3 metrics: Sum, Mean with one argument, MeanMetricWrapper, top-k accuracies,
confusion counts, regression and probabilistic metrics. Values against numpy transcriptions of Keras 3
(checked against Keras 3.15 when written), sample_weight, reset_state, and use in compile/fit/evaluate."""
import numpy as np
import pytest

from fastnn import layers, losses, metrics
from fastnn.models import Sequential

RNG = np.random.default_rng(0)
YR = RNG.normal(0.0, 2.0, (4, 3)).astype(np.float32)
PR = RNG.normal(0.0, 2.0, (4, 3)).astype(np.float32)
Y01 = RNG.uniform(0.0, 1.0, (4, 3)).astype(np.float32)
P01 = RNG.uniform(0.0, 1.0, (4, 3)).astype(np.float32)
YB = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 1], [1, 1, 0]], np.float32)
W = np.array([1.0, 2.0, 0.0, 1.0], np.float32)


def _weighted_mean(per, w=None):
    return per.mean() if w is None else (per * w).sum() / w.sum()


def test_mean_and_sum_take_one_argument():
    m = metrics.Mean()
    assert float(m(3.0)) == 3.0
    m.update_state([[1, 2], [3, 5]], sample_weight=[1, 3])  # per-sample means 1.5, 4 (Keras: 3.3)
    np.testing.assert_allclose(m.result(), (3.0 + 1.5 + 12.0) / 5.0, rtol=1e-6)
    s = metrics.Sum()
    s.update_state([1, 2, 3])
    assert float(s(4.0, sample_weight=2.0)) == 14.0 and s.name == "sum"
    s.reset_state()
    assert float(s.result()) == 0.0


def test_mean_metric_wrapper():
    m = metrics.MeanMetricWrapper(losses.huber, delta=2.0)
    assert m.name == "mean_metric_wrapper"
    np.testing.assert_allclose(m(YR, PR), losses.huber(YR, PR, delta=2.0).mean(), rtol=1e-6)
    m.reset_state()
    m.update_state(YR, PR, sample_weight=W)
    np.testing.assert_allclose(m.result(), _weighted_mean(losses.huber(YR, PR, delta=2.0), W), rtol=1e-6)


def _cos(y, p):
    u = y / np.sqrt(np.maximum((y * y).sum(-1, keepdims=True), 1e-12))
    v = p / np.sqrt(np.maximum((p * p).sum(-1, keepdims=True), 1e-12))
    return (u * v).sum(-1)


MEANS = [  # class, Keras default name, targets, predictions, per-sample numpy formula
    (metrics.MeanSquaredError, "mean_squared_error", YR, PR, lambda y, p: ((y - p) ** 2).mean(-1)),
    (metrics.MeanAbsoluteError, "mean_absolute_error", YR, PR, lambda y, p: np.abs(y - p).mean(-1)),
    (metrics.MeanAbsolutePercentageError, "mean_absolute_percentage_error", YR, PR,
     lambda y, p: (100 * np.abs(y - p) / np.maximum(np.abs(y), 1e-7)).mean(-1)),
    (metrics.CosineSimilarity, "cosine_similarity", YR, PR, _cos),
    (metrics.KLDivergence, "kl_divergence", Y01, P01,
     lambda y, p: (np.clip(y, 1e-7, 1) * np.log(np.clip(y, 1e-7, 1) / np.clip(p, 1e-7, 1))).sum(-1)),
    (metrics.LogCoshError, "logcosh", YR, PR, lambda y, p: np.log(np.cosh(p - y)).mean(-1)),
]


@pytest.mark.parametrize("cls,name,y,p,ref", MEANS, ids=[m[1] for m in MEANS])
def test_mean_metrics(cls, name, y, p, ref):
    per = ref(y.astype(np.float64), p.astype(np.float64))
    m = cls()
    assert m.name == name
    np.testing.assert_allclose(m(y, p), per.mean(), rtol=1e-5)
    m.reset_state()
    m.update_state(y[:2], p[:2], sample_weight=W[:2])
    m.update_state(y[2:], p[2:], sample_weight=W[2:])
    np.testing.assert_allclose(m.result(), _weighted_mean(per, W), rtol=1e-5)


def test_root_mean_squared_error():
    m = metrics.RootMeanSquaredError()
    np.testing.assert_allclose(m(YR, PR), np.sqrt(((YR - PR) ** 2).mean()), rtol=1e-5)
    m.reset_state()
    m.update_state(YR, PR, sample_weight=W)
    np.testing.assert_allclose(m.result(), np.sqrt(_weighted_mean(((YR - PR) ** 2).mean(-1), W)), rtol=1e-5)


def test_top_k_accuracies():
    labels = np.array([0, 2, 1, 1])
    ranks = (PR > PR[np.arange(4), labels][:, None]).sum(-1)  # classes scoring above the label
    for k in (1, 2, 3):
        want = (ranks < k).mean()
        np.testing.assert_allclose(metrics.SparseTopKCategoricalAccuracy(k=k)(labels, PR), want)
        np.testing.assert_allclose(metrics.TopKCategoricalAccuracy(k=k)(np.eye(3)[labels], PR), want)
        np.testing.assert_allclose(metrics.SparseTopKCategoricalAccuracy(k=k)(labels, PR, sample_weight=W),
                                   _weighted_mean((ranks < k).astype(float), W))
    assert metrics.TopKCategoricalAccuracy().get_config()["k"] == 5
    assert metrics.get("top_k_categorical_accuracy").name == "top_k_categorical_accuracy"
    # a tie at the k-th place counts as in the top k (TF's in_top_k)
    assert float(metrics.SparseTopKCategoricalAccuracy(k=1)([1], [[0.5, 0.5, 0.0]])) == 1.0


def test_confusion_counts():
    pos, true = P01 > 0.5, YB > 0.5
    counts = {metrics.TruePositives: pos & true, metrics.FalsePositives: pos & ~true,
              metrics.TrueNegatives: ~pos & ~true, metrics.FalseNegatives: ~pos & true}
    for cls, hit in counts.items():
        m = cls()
        assert float(m(YB, P01)) == hit.sum()
        m.reset_state()
        m.update_state(YB, P01, sample_weight=W)
        assert float(m.result()) == (hit * W[:, None]).sum()
    m = metrics.TruePositives(thresholds=[0.3, 0.6])
    np.testing.assert_array_equal(m(YB, P01), [((P01 > t) & true).sum() for t in (0.3, 0.6)])
    assert metrics.TruePositives.from_config(m.get_config()).thresholds == [0.3, 0.6]


def test_compile_fit_evaluate_history_names():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)
    model = Sequential([layers.Dense(8, activation="relu", input_shape=(4,)), layers.Dense(3, activation="softmax")])
    model.compile("adam", "categorical_crossentropy",
                  metrics=["top_k_categorical_accuracy", metrics.TopKCategoricalAccuracy(k=1, name="top1"),
                           metrics.TruePositives(), "mse", metrics.RootMeanSquaredError(), metrics.KLDivergence(),
                           metrics.CosineSimilarity(), "mape", metrics.LogCoshError()])
    y = np.eye(3, dtype=np.float32)[labels]
    hist = model.fit(x, y, epochs=2, batch_size=16, verbose=0).history
    for key in ("top_k_categorical_accuracy", "top1", "true_positives", "mse", "root_mean_squared_error",
                "kl_divergence", "cosine_similarity", "mape", "logcosh"):
        assert len(hist[key]) == 2 and np.isfinite(hist[key]).all(), key
    assert hist["top_k_categorical_accuracy"] == [1.0, 1.0]  # k=5 > 3 classes
    res = model.evaluate(x, y, verbose=0, return_dict=True)
    p = model.predict(x, verbose=0)
    np.testing.assert_allclose(res["top1"], (p.argmax(-1) == labels).mean(), rtol=1e-6)
    np.testing.assert_allclose(res["root_mean_squared_error"], np.sqrt(((p - y) ** 2).mean()), rtol=1e-5)
    np.testing.assert_allclose(res["true_positives"], ((p > 0.5) & (y > 0.5)).sum())
