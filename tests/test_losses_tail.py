"""The long tail of Keras 3 losses (Huber, KLDivergence, hinges, LogCosh, Poisson, CosineSimilarity, MSLE,
MAPE): values against numpy transcriptions of Keras 3's formulas (checked against Keras 3.15 when written),
gradients of the training path against finite differences, and training through compile(loss=<name>)."""
import numpy as np
import pytest

from fastnn import layers, losses
from fastnn.models import Sequential

EPS = 1e-7
RNG = np.random.default_rng(0)
Y01 = RNG.uniform(0.0, 1.0, (5, 3)).astype(np.float32)
P01 = RNG.uniform(0.05, 1.0, (5, 3)).astype(np.float32)
YB = (RNG.uniform(0.0, 1.0, (5, 3)) > 0.5).astype(np.float32)
YR = RNG.normal(0.0, 2.0, (5, 3)).astype(np.float32)
PR = RNG.normal(0.0, 2.0, (5, 3)).astype(np.float32)


def _unit(x):
    return x / np.sqrt(np.maximum((x * x).sum(-1, keepdims=True), 1e-12))


def _pm(y):
    return 2 * y - 1 if np.all((y == 0) | (y == 1)) else y


# name, function, class, targets, predictions, numpy formula of Keras 3 (per sample)
CASES = [
    ("huber", losses.huber, losses.Huber, YR, PR,
     lambda y, p: np.where(np.abs(p - y) <= 1.0, 0.5 * (p - y) ** 2, np.abs(p - y) - 0.5).mean(-1)),
    ("kl_divergence", losses.kl_divergence, losses.KLDivergence, Y01, P01,
     lambda y, p: (np.clip(y, EPS, 1) * np.log(np.clip(y, EPS, 1) / np.clip(p, EPS, 1))).sum(-1)),
    ("hinge", losses.hinge, losses.Hinge, YB, PR, lambda y, p: np.maximum(1 - _pm(y) * p, 0).mean(-1)),
    ("squared_hinge", losses.squared_hinge, losses.SquaredHinge, YB, PR,
     lambda y, p: np.square(np.maximum(1 - _pm(y) * p, 0)).mean(-1)),
    ("categorical_hinge", losses.categorical_hinge, losses.CategoricalHinge, YB, PR,
     lambda y, p: np.maximum(((1 - y) * p).max(-1) - (y * p).sum(-1) + 1, 0)),
    ("log_cosh", losses.log_cosh, losses.LogCosh, YR, PR, lambda y, p: np.log(np.cosh(p - y)).mean(-1)),
    ("poisson", losses.poisson, losses.Poisson, Y01, P01, lambda y, p: (p - y * np.log(p + EPS)).mean(-1)),
    ("cosine_similarity", losses.cosine_similarity, losses.CosineSimilarity, YR, PR,
     lambda y, p: -(_unit(y) * _unit(p)).sum(-1)),
    ("mean_squared_logarithmic_error", losses.mean_squared_logarithmic_error, losses.MeanSquaredLogarithmicError,
     YR, PR, lambda y, p: np.square(np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(y, EPS) + 1)).mean(-1)),
    ("mean_absolute_percentage_error", losses.mean_absolute_percentage_error, losses.MeanAbsolutePercentageError,
     YR, PR, lambda y, p: (100 * np.abs(y - p) / np.maximum(np.abs(y), EPS)).mean(-1)),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name,fn,cls,y,p,ref", CASES, ids=IDS)
def test_function_and_class_values(name, fn, cls, y, p, ref):
    want = ref(y.astype(np.float64), p.astype(np.float64))
    np.testing.assert_allclose(fn(y, p), want, rtol=1e-5, atol=1e-5)
    w = np.array([1.0, 2.0, 0.0, 0.5, 1.0], np.float32)
    np.testing.assert_allclose(float(cls()(y, p)), want.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(cls()(y, p, sample_weight=w)), (want * w).mean(), rtol=1e-5)
    np.testing.assert_allclose(float(cls(reduction="sum")(y, p)), want.sum(), rtol=1e-5)
    np.testing.assert_allclose(cls(reduction="none")(y, p).numpy(), want, rtol=1e-5, atol=1e-5)
    assert losses.get(name).name == cls().name and type(losses.get(fn)) is cls


def test_keras_names_defaults_and_config():
    assert losses.Huber().name == "huber_loss" and losses.LogCosh().name == "log_cosh"
    assert losses.Huber(delta=2.0, name="h").get_config() == {"name": "h", "reduction": "sum_over_batch_size",
                                                                "delta": 2.0}
    assert losses.Huber.from_config(losses.Huber(delta=2.0).get_config()).get_config()["delta"] == 2.0
    assert losses.CosineSimilarity().get_config()["axis"] == -1
    for alias, cls in [("kld", losses.KLDivergence), ("msle", losses.MeanSquaredLogarithmicError),
                       ("mape", losses.MeanAbsolutePercentageError)]:
        assert type(losses.get(alias)) is cls
    with pytest.raises(TypeError):
        losses.Hinge(delta=1.0)


def test_huber_delta_and_hinge_keeps_signed_labels():
    e = PR - YR
    want = np.where(np.abs(e) <= 2.0, 0.5 * e ** 2, 2.0 * np.abs(e) - 2.0).mean(-1)
    np.testing.assert_allclose(losses.huber(YR, PR, delta=2.0), want, rtol=1e-5)
    np.testing.assert_allclose(losses.hinge(2 * YB - 1, PR), losses.hinge(YB, PR), rtol=1e-6)


@pytest.mark.parametrize("name,fn,cls,y,p,ref", CASES, ids=IDS)
def test_training_gradient_matches_finite_differences(name, fn, cls, y, p, ref):
    loss = cls()
    value, grad = loss._value_and_grad(p.copy(), loss._prepare_targets(y, p))
    np.testing.assert_allclose(value, ref(y.astype(np.float64), p.astype(np.float64)).mean(), rtol=1e-5)
    p64, h = p.astype(np.float64), 1e-4
    num = np.zeros_like(p64)
    for i in np.ndindex(p.shape):
        up, down = p64.copy(), p64.copy()
        up[i] += h
        down[i] -= h
        num[i] = (ref(y, up).mean() - ref(y, down).mean()) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", ["huber", "log_cosh", "kld", "poisson", "hinge", "squared_hinge",
                                  "categorical_hinge", "cosine_similarity", "msle", "mape"])
def test_compile_by_name_trains(name):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 4)).astype(np.float32)
    if name in ("kld", "poisson", "categorical_hinge"):
        y = np.eye(3, dtype=np.float32)[(x[:, 0] > 0).astype(int) + (x[:, 1] > 0)]
        out = layers.Dense(3, activation="softmax" if name != "categorical_hinge" else None)
    else:
        y = (x[:, :3] > 0).astype(np.float32) if "hinge" in name else (x[:, :3] * 0.5 + 2.0)
        out = layers.Dense(3)
    model = Sequential([layers.Dense(8, activation="tanh", input_shape=(4,)), out])
    model.compile("adam", loss=name)
    hist = model.fit(x, y, epochs=15, batch_size=16, verbose=0).history["loss"]
    assert np.isfinite(hist).all() and hist[-1] < hist[0]
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0),
                               float(losses.get(name)(y, model.predict(x, verbose=0))), rtol=1e-4)
