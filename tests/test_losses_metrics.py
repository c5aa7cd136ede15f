"""Losses (values, gradients, Keras clipping, fused softmax) and stateful metrics."""
import numpy as np
import pytest

from fastnn import losses, metrics

RNG = np.random.default_rng(0)


def _probs(n, c):
    z = RNG.standard_normal((n, c)).astype(np.float32)
    e = np.exp(z - z.max(1, keepdims=True))
    return z, (e / e.sum(1, keepdims=True)).astype(np.float32)


def _num_grad(f, p, eps=1e-3):
    p = p.astype(np.float64)
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]
        p[i] = old + eps
        fp = f(p.astype(np.float32))
        p[i] = old - eps
        fm = f(p.astype(np.float32))
        p[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def test_crossentropy_values_match_formulas():
    z, p = _probs(6, 4)
    y = RNG.integers(0, 4, 6)
    onehot = np.eye(4, dtype=np.float32)[y]
    expected = -np.log(p[np.arange(6), y])
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y, p), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, p), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy(y, z, from_logits=True), expected, rtol=1e-5)
    np.testing.assert_allclose(losses.categorical_crossentropy(onehot, z, from_logits=True), expected, rtol=1e-5)
    assert float(losses.SparseCategoricalCrossentropy()(y, p)) == pytest.approx(expected.mean(), rel=1e-5)
    assert float(losses.SparseCategoricalCrossentropy()(y.reshape(6, 1), p)) == pytest.approx(expected.mean(), rel=1e-5)
    assert float(losses.CategoricalCrossentropy(reduction="sum")(onehot, p)) == pytest.approx(expected.sum(), rel=1e-5)
    np.testing.assert_allclose(losses.CategoricalCrossentropy(reduction=None)(onehot, p).numpy(), expected, rtol=1e-5)


def test_probability_inputs_are_renormalised_and_clipped_like_keras():
    p = np.array([[0.0, 2.0], [1.0, 1.0]], np.float32)  # rows renormalised: [0, 1], [0.5, 0.5]
    per = losses.categorical_crossentropy([[1.0, 0.0], [0.0, 1.0]], p)
    np.testing.assert_allclose(per, [-np.log(1e-7), np.log(2)], rtol=1e-5)
    bce = losses.binary_crossentropy([[1.0], [0.0]], [[0.0], [0.0]])
    np.testing.assert_allclose(bce, [-np.log(1e-7), -np.log(1 - 1e-7)], rtol=1e-4, atol=1e-6)


def test_binary_mse_mae_values():
    y = RNG.integers(0, 2, (5, 3)).astype(np.float32)
    p = RNG.uniform(0.05, 0.95, (5, 3)).astype(np.float32)
    np.testing.assert_allclose(losses.binary_crossentropy(y, p), -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(1),
                               rtol=1e-5)
    logits = np.log(p / (1 - p))
    np.testing.assert_allclose(losses.binary_crossentropy(y, logits, from_logits=True),
                               losses.binary_crossentropy(y, p), rtol=1e-4)
    np.testing.assert_allclose(losses.mean_squared_error(y, p), ((y - p) ** 2).mean(1), rtol=1e-6)
    np.testing.assert_allclose(losses.mean_absolute_error(y, p), np.abs(y - p).mean(1), rtol=1e-6)
    assert float(losses.MeanSquaredError()(y, p)) == pytest.approx(((y - p) ** 2).mean(), rel=1e-6)
    assert float(losses.BinaryCrossentropy(label_smoothing=0.2)(y, p)) > 0


@pytest.mark.parametrize("loss,kind", [
    (losses.CategoricalCrossentropy(), "onehot"), (losses.CategoricalCrossentropy(from_logits=True), "onehot"),
    (losses.SparseCategoricalCrossentropy(), "sparse"),
    (losses.SparseCategoricalCrossentropy(from_logits=True), "sparse"),
    (losses.BinaryCrossentropy(), "binary"), (losses.BinaryCrossentropy(from_logits=True), "binary"),
    (losses.MeanSquaredError(), "dense"), (losses.MeanAbsoluteError(), "dense"),
    (losses.CategoricalCrossentropy(label_smoothing=0.1), "onehot")])
def test_gradients_match_finite_differences(loss, kind):
    z, p = _probs(4, 3)
    labels = RNG.integers(0, 3, 4)
    y = {"onehot": np.eye(3, dtype=np.float32)[labels], "sparse": labels,
         "binary": RNG.integers(0, 2, (4, 3)).astype(np.float32), "dense": RNG.standard_normal((4, 3))}[kind]
    pred = z if getattr(loss, "from_logits", False) else (p * 0.8 + 0.05 if kind == "binary" else p)
    if kind == "dense":
        pred = z
    raw, y = y, loss._prepare_targets(y, pred)
    value, grad = loss._value_and_grad(pred, y)
    assert value == pytest.approx(float(loss(raw, pred)), rel=1e-5)
    np.testing.assert_allclose(grad, _num_grad(lambda q: loss._value_and_grad(q, y)[0], pred), atol=2e-3, rtol=2e-2)


def test_fused_logits_path_equals_softmax_then_loss():
    z, p = _probs(8, 5)
    labels = RNG.integers(0, 5, 8)
    sparse = losses.SparseCategoricalCrossentropy()
    v, g = sparse._value_and_grad(z, labels, logits=True)
    assert v == pytest.approx(float(sparse(labels, p)), rel=1e-5)
    np.testing.assert_allclose(g, (p - np.eye(5)[labels]) / 8, atol=1e-6)
    cce = losses.CategoricalCrossentropy()
    v2, g2 = cce._value_and_grad(z, np.eye(5, dtype=np.float32)[labels], logits=True)
    assert v2 == pytest.approx(v, rel=1e-6)
    np.testing.assert_allclose(g2, g, atol=1e-7)
    big = np.array([[1000.0, 0.0, -1000.0]], np.float32)  # stable: no inf/nan from large logits
    v3, g3 = sparse._value_and_grad(big, np.array([2]), logits=True)
    assert v3 == pytest.approx(2000.0) and np.isfinite(g3).all()


def test_loss_against_torch():
    torch = pytest.importorskip("torch")
    z, _ = _probs(16, 10)
    labels = RNG.integers(0, 10, 16)
    expected = torch.nn.functional.cross_entropy(torch.tensor(z, dtype=torch.float64), torch.tensor(labels)).item()
    assert float(losses.SparseCategoricalCrossentropy(from_logits=True)(labels, z)) == pytest.approx(expected, rel=1e-5)


def test_label_validation_and_lookup():
    _, p = _probs(3, 4)
    with pytest.raises(ValueError, match=r"label 4 is out of range for 4 classes"):
        losses.sparse_categorical_crossentropy([0, 4, 1], p)
    with pytest.raises(ValueError, match=r"labels of shape \(2,\) do not match predictions of shape \(3, 4\)"):
        losses.sparse_categorical_crossentropy([0, 1], p)
    with pytest.raises(ValueError, match="integer class ids"):
        losses.sparse_categorical_crossentropy([0.5, 1, 2], p)
    with pytest.raises(ValueError, match="NaN"):
        losses.mean_squared_error([[np.nan] * 4] * 3, p)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    assert isinstance(losses.get(losses.categorical_crossentropy), losses.CategoricalCrossentropy)
    assert isinstance(losses.get("SparseCategoricalCrossentropy"), losses.SparseCategoricalCrossentropy)
    with pytest.raises(ValueError, match="Unknown loss"):
        losses.get("nope")


# ---- metrics -------------------------------------------------------------------------------------

def test_accuracy_resolution_by_shapes():
    assert type(metrics.get("accuracy", (10,), (None, 5))) is metrics.SparseCategoricalAccuracy
    assert type(metrics.get("accuracy", (10, 1), (None, 5))) is metrics.SparseCategoricalAccuracy
    assert type(metrics.get("acc", (10, 5), (None, 5))) is metrics.CategoricalAccuracy
    assert type(metrics.get("accuracy", (10,), (None, 1))) is metrics.BinaryAccuracy
    assert metrics.get("acc", (10, 5), (None, 5)).name == "acc"
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get("accurasy")


def test_accuracy_metrics_accumulate():
    m = metrics.SparseCategoricalAccuracy()
    m.update_state([0, 1], [[0.9, 0.1], [0.8, 0.2]])
    m.update_state([1, 1, 1], [[0.1, 0.9], [0.2, 0.8], [0.3, 0.7]])
    assert m.result() == pytest.approx(4 / 5)
    m.reset_state()
    assert m.result() == 0.0
    c = metrics.CategoricalAccuracy()
    assert c([[0, 1], [1, 0]], [[0.3, 0.7], [0.4, 0.6]]) == pytest.approx(0.5)
    b = metrics.BinaryAccuracy(threshold=0.5)
    assert b([[1], [0], [1]], [[0.7], [0.2], [0.4]]) == pytest.approx(2 / 3)
    assert metrics.Accuracy()([1, 2, 3], [1, 2, 4]) == pytest.approx(2 / 3)


def test_precision_recall_are_stateful_not_batch_averaged():
    p, r = metrics.Precision(), metrics.Recall()
    batches = [([1, 0, 0, 0], [0.9, 0.1, 0.1, 0.1]),   # tp 1
               ([0, 0, 1, 1], [0.9, 0.9, 0.9, 0.2])]   # tp 1, fp 2, fn 1
    for y, q in batches:
        p.update_state(y, q)
        r.update_state(y, q)
    assert p.result() == pytest.approx(2 / 4) and r.result() == pytest.approx(2 / 3)
    # batch-averaging would give (1 + 1/3) / 2 and (1 + 1/2) / 2: different
    assert metrics.Precision(class_id=1)([[0, 1], [1, 0]], [[0.2, 0.8], [0.1, 0.6]]) == pytest.approx(0.5)


def test_f1_score_per_class_and_averages():
    y = np.eye(3, dtype=np.float32)[[0, 1, 2, 2, 1, 0]]
    pred = np.eye(3, dtype=np.float32)[[0, 2, 2, 2, 1, 1]]

    def f1s(tp, fp, fn):
        prec, rec = tp / (tp + fp), tp / (tp + fn)
        return 2 * prec * rec / (prec + rec)
    per_class = [f1s(1, 0, 1), f1s(1, 1, 1), f1s(2, 1, 0)]
    f1 = metrics.F1Score()
    f1.update_state(y[:3], pred[:3])
    f1.update_state(y[3:], pred[3:])
    np.testing.assert_allclose(f1.result(), per_class, rtol=1e-5)
    assert metrics.F1Score(average="macro")(y, pred) == pytest.approx(np.mean(per_class), rel=1e-5)
    assert metrics.F1Score(average="micro")(y, pred) == pytest.approx(4 / 6, rel=1e-5)
    assert metrics.F1Score(average="weighted")(y, pred) == pytest.approx(np.mean(per_class), rel=1e-5)
    sparse = metrics.F1Score(average="macro")
    assert sparse([0, 1, 2, 2, 1, 0], pred) == pytest.approx(np.mean(per_class), rel=1e-5)
    with pytest.raises(ValueError, match="average"):
        metrics.F1Score(average="mean")


def test_error_metrics_and_custom_function():
    y, p = np.array([[1.0, 2.0]]), np.array([[2.0, 4.0]])
    assert metrics.MeanSquaredError()(y, p) == pytest.approx(2.5)
    assert metrics.get("mae")(y, p) == pytest.approx(1.5)
    custom = metrics.get(lambda yt, yp: np.abs(yt - yp).max(axis=-1))
    assert custom(y, p) == pytest.approx(2.0)
    mean = metrics.Mean()
    mean.update_state([1.0, 3.0])
    mean.update_state(5.0, sample_weight=2.0)
    assert mean.result() == pytest.approx((1 + 3 + 10) / 4)


def test_label_format_mismatch_hints():
    _, p = _probs(4, 3)
    with pytest.raises(ValueError, match="need sparse_categorical_crossentropy"):
        losses.CategoricalCrossentropy()(np.array([0, 1, 2, 0]), p)
    with pytest.raises(ValueError, match="need categorical_crossentropy"):
        losses.SparseCategoricalCrossentropy()(np.eye(3)[[0, 1, 2, 0]], p)


@pytest.mark.parametrize("loss", [losses.MeanSquaredError(), losses.SparseCategoricalCrossentropy(),
                                  losses.BinaryCrossentropy(from_logits=True),
                                  losses.CategoricalCrossentropy(reduction="sum")])
def test_weighted_loss_value_and_gradient(loss):
    z, p = _probs(5, 3)
    labels = RNG.integers(0, 3, 5)
    w = RNG.uniform(0.1, 2.0, 5).astype(np.float32)
    raw = {"MeanSquaredError": RNG.standard_normal((5, 3)), "SparseCategoricalCrossentropy": labels,
           "BinaryCrossentropy": RNG.integers(0, 2, (5, 3)).astype(np.float32),
           "CategoricalCrossentropy": np.eye(3, dtype=np.float32)[labels]}[type(loss).__name__]
    pred = z if isinstance(loss, (losses.MeanSquaredError, losses.BinaryCrossentropy)) else p
    y = loss._prepare_targets(raw, pred)
    value, grad = loss._weighted_value_and_grad(pred, y, w)
    assert value == pytest.approx(float(loss(raw, pred, sample_weight=w)), rel=1e-5)
    np.testing.assert_allclose(grad, _num_grad(lambda q: loss._weighted_value_and_grad(q, y, w)[0], pred),
                               atol=2e-3, rtol=2e-2)
    if isinstance(loss, losses.SparseCategoricalCrossentropy):  # the fused softmax path agrees
        fused = loss._weighted_value_and_grad(z, y, w, logits=True)[0]
        assert fused == pytest.approx(float(loss(raw, p, sample_weight=w)), rel=1e-5)
