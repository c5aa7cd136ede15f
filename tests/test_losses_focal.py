"""CategoricalFocalCrossentropy and BinaryFocalCrossentropy (functions and classes, label_smoothing,
from_logits, class balancing) against numpy transcriptions of Keras 3's formulas (checked against Keras
3.15 when written); the training gradient against finite differences; a loss object returns a Tensor."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, losses

EPS = 1e-7
RNG = np.random.default_rng(0)
YC = np.eye(4, dtype=np.float32)[RNG.integers(0, 4, 6)]
YB = (RNG.random((6, 4)) > 0.5).astype(np.float32)
P = RNG.uniform(0.02, 0.98, (6, 4)).astype(np.float32)
LOGITS = RNG.normal(0, 2, (6, 4)).astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def cfce_ref(y, p, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    if label_smoothing:
        y = y * (1 - label_smoothing) + label_smoothing / y.shape[-1]
    if from_logits:
        p = softmax(p)
    q = np.clip(p / p.sum(-1, keepdims=True), EPS, 1 - EPS)
    return (alpha * (1 - q) ** gamma * -y * np.log(q)).sum(-1)


def bfce_ref(y, p, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0):
    if label_smoothing:
        y = y * (1 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = 1 / (1 + np.exp(-p))
    pc = np.clip(p, EPS, 1 - EPS)
    bce = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    focal = (1 - (y * p + (1 - y) * (1 - p))) ** gamma * bce
    if apply_class_balancing:
        focal = (y * alpha + (1 - y) * (1 - alpha)) * focal
    return focal.mean(-1)


CASES = [
    (losses.categorical_focal_crossentropy, losses.CategoricalFocalCrossentropy, cfce_ref, YC, P, {}),
    (losses.categorical_focal_crossentropy, losses.CategoricalFocalCrossentropy, cfce_ref, YC, P,
     dict(alpha=0.5, gamma=1.5, label_smoothing=0.1)),
    (losses.categorical_focal_crossentropy, losses.CategoricalFocalCrossentropy, cfce_ref, YC, LOGITS,
     dict(from_logits=True)),
    (losses.binary_focal_crossentropy, losses.BinaryFocalCrossentropy, bfce_ref, YB, P, {}),
    (losses.binary_focal_crossentropy, losses.BinaryFocalCrossentropy, bfce_ref, YB, P,
     dict(apply_class_balancing=True, alpha=0.4, gamma=3.0, label_smoothing=0.2)),
    (losses.binary_focal_crossentropy, losses.BinaryFocalCrossentropy, bfce_ref, YB, LOGITS, dict(from_logits=True)),
]


@pytest.mark.parametrize("fn,cls,ref,y,p,kw", CASES)
def test_focal_values_match_keras_formula(fn, cls, ref, y, p, kw):
    want = ref(y.astype(np.float64), p.astype(np.float64), **kw)
    np.testing.assert_allclose(fn(y, p, **kw), want, rtol=2e-5, atol=1e-7)
    loss = cls(**kw)
    out = loss(y, p)
    assert isinstance(out, fastnn.Tensor) and out.numpy().shape == ()
    assert float(out.numpy()) == pytest.approx(want.mean(), rel=2e-5)
    w = np.linspace(0.1, 1.0, len(y)).astype(np.float32)
    assert float(loss(y, p, sample_weight=w)) == pytest.approx((want * w).mean(), rel=2e-5)
    assert float(cls(reduction="sum", **kw)(y, p)) == pytest.approx(want.sum(), rel=2e-5)


@pytest.mark.parametrize("fn,cls,ref,y,p,kw", CASES)
def test_focal_training_gradient_matches_finite_differences(fn, cls, ref, y, p, kw):
    loss = cls(**kw)
    value, grad = loss._value_and_grad(p.copy(), loss._prepare_targets(y, p))
    p64, h = p.astype(np.float64), 1e-5
    assert value == pytest.approx(ref(y, p64, **kw).mean(), rel=1e-5)
    num = np.zeros_like(p64)
    for i in np.ndindex(p.shape):
        up, down = p64.copy(), p64.copy()
        up[i] += h
        down[i] -= h
        num[i] = (ref(y, up, **kw).mean() - ref(y, down, **kw).mean()) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=2e-3, atol=1e-5)


def test_focal_names_defaults_config_and_training():
    c = losses.CategoricalFocalCrossentropy()
    assert c.name == "categorical_focal_crossentropy" and c.get_config()["alpha"] == 0.25
    assert c.get_config()["gamma"] == 2.0 and c.get_config()["label_smoothing"] == 0.0
    b = losses.BinaryFocalCrossentropy(apply_class_balancing=True)
    assert b.name == "binary_focal_crossentropy" and b.get_config()["apply_class_balancing"] is True
    assert type(losses.get("binary_focal_crossentropy")) is losses.BinaryFocalCrossentropy
    assert type(losses.get(losses.categorical_focal_crossentropy)) is losses.CategoricalFocalCrossentropy
    with pytest.raises(TypeError, match="unexpected"):
        losses.BinaryFocalCrossentropy(delta=1.0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    y = (x[:, :1] > 0).astype(np.float32)
    model = fastnn.Sequential([layers.Input((4,)), layers.Dense(1, activation="sigmoid")])
    model.compile("adam", loss=losses.BinaryFocalCrossentropy(gamma=2.0))
    hist = model.fit(x, y, epochs=10, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(hist).all() and hist[-1] < hist[0]
