"""Optimizers: Keras 3 defaults, update rules against a float64 replay of Keras's formulas, API."""
import numpy as np
import pytest

from fastnn import optimizers
from fastnn.layers.base import Variable
from test_optimizer_kernels import replay  # the float64 replay of Keras 3's rules the kernel tests use

DEFAULTS = {"sgd": {}, "adam": {"beta_1": 0.9, "beta_2": 0.999}, "rmsprop": {"rho": 0.9}, "adagrad": {},
            "adadelta": {"rho": 0.95}}


CASES = [
    ("sgd", optimizers.SGD, dict(learning_rate=0.1)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.05, momentum=0.9)),
    ("sgd", optimizers.SGD, dict(learning_rate=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("adam", optimizers.Adam, dict(learning_rate=0.01)),
    ("adam", optimizers.Adam, dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4)),
    ("adamw", optimizers.AdamW, dict(learning_rate=0.01, weight_decay=0.1)),
    ("rmsprop", optimizers.RMSprop, dict(learning_rate=0.01)),
    ("rmsprop", optimizers.RMSprop, dict(learning_rate=0.01, momentum=0.5, centered=True)),
    ("adagrad", optimizers.Adagrad, dict(learning_rate=0.1)),
    ("adadelta", optimizers.Adadelta, dict(learning_rate=1.0)),
]


@pytest.mark.parametrize("name,cls,hyper", CASES)
def test_update_rule_matches_keras_formula(name, cls, hyper):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 5)).astype(np.float32)
    b0 = rng.standard_normal(5).astype(np.float32)
    grads = [rng.standard_normal((7, 5)).astype(np.float32) for _ in range(6)]
    bgrads = [rng.standard_normal(5).astype(np.float32) for _ in range(6)]
    opt = cls(**hyper)
    w, b = Variable(p0, "kernel", "d/kernel"), Variable(b0, "bias", "d/bias")
    for g, gb in zip(grads, bgrads):
        w.grad, b.grad = g, gb
        opt._apply_vars([w, b])
    rule = "adam" if name == "adamw" else name
    full = {**DEFAULTS[rule], **({"weight_decay": 0.004} if name == "adamw" else {}), **hyper}
    np.testing.assert_allclose(w.value, replay(rule, p0, grads, full)[-1], rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(b.value, replay(rule, b0, bgrads, full)[-1], rtol=2e-5, atol=2e-6)
    assert opt.iterations == 6


def test_keras3_defaults():
    assert optimizers.SGD().learning_rate == 0.01 and optimizers.SGD().momentum == 0.0
    adam = optimizers.Adam()
    assert (adam.learning_rate, adam.beta_1, adam.beta_2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    assert optimizers.AdamW().weight_decay == 0.004
    rms = optimizers.RMSprop()
    assert (rms.learning_rate, rms.rho, rms.momentum, rms.epsilon, rms.centered) == (0.001, 0.9, 0.0, 1e-7, False)
    ada = optimizers.Adagrad()
    assert (ada.learning_rate, ada.initial_accumulator_value, ada.epsilon) == (0.001, 0.1, 1e-7)
    delta = optimizers.Adadelta()
    assert (delta.learning_rate, delta.rho, delta.epsilon) == (0.001, 0.95, 1e-7)


def test_unknown_kwargs_rejected_like_keras3():
    with pytest.raises(ValueError, match=r"Argument\(s\) not recognized: \{'lr': 0.1\}"):
        optimizers.Adam(lr=0.1)
    with pytest.raises(ValueError, match="not recognized"):
        optimizers.SGD(decay=1e-6)
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1.0)


def test_get_by_name():
    for name, cls in [("adam", optimizers.Adam), ("SGD", optimizers.SGD), ("rmsprop", optimizers.RMSprop),
                      ("adagrad", optimizers.Adagrad), ("adadelta", optimizers.Adadelta), ("adamw", optimizers.AdamW)]:
        assert type(optimizers.get(name)) is cls
    opt = optimizers.Adam()
    assert optimizers.get(opt) is opt
    with pytest.raises(ValueError, match="Could not interpret optimizer"):
        optimizers.get("nadamx")


def test_learning_rate_settable_and_schedule():
    opt = optimizers.SGD(learning_rate=1.0)
    v = Variable(np.ones(3, np.float32), "w", "w")
    v.grad = np.ones(3, np.float32)
    opt._apply_vars([v])
    opt.learning_rate = 0.5
    opt._apply_vars([v])
    np.testing.assert_allclose(v.value, [-0.5] * 3)
    sched = optimizers.SGD(learning_rate=lambda step: 1.0 / (step + 1))
    w = Variable(np.zeros(1, np.float32), "w", "w")
    for _ in range(3):
        w.grad = np.ones(1, np.float32)
        sched._apply_vars([w])
    np.testing.assert_allclose(w.value, [-(1 + 1 / 2 + 1 / 3)], rtol=1e-6)
    assert sched.learning_rate == pytest.approx(0.25)


def test_apply_gradients_and_clipping():
    v = Variable(np.zeros(2, np.float32), "w", "w")
    opt = optimizers.SGD(learning_rate=1.0, clipnorm=1.0)
    opt.apply_gradients([(np.array([3.0, 4.0]), v)])
    np.testing.assert_allclose(v.value, [-0.6, -0.8], rtol=1e-6)
    clipped = optimizers.SGD(learning_rate=1.0, clipvalue=0.5)
    clipped.apply([np.array([3.0, -0.1])], [v])
    np.testing.assert_allclose(v.value, [-1.1, -0.7], rtol=1e-6)
    glob = optimizers.SGD(learning_rate=1.0, global_clipnorm=5.0)
    a, b = Variable(np.zeros(1, np.float32), "a", "a"), Variable(np.zeros(1, np.float32), "b", "b")
    glob.apply([np.array([6.0]), np.array([8.0])], [a, b])
    np.testing.assert_allclose([a.value[0], b.value[0]], [-3.0, -4.0], rtol=1e-6)
    with pytest.raises(ValueError, match="gradient of shape"):
        opt.apply([np.zeros(3)], [v])
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.SGD(clipnorm=1.0, clipvalue=1.0)


def test_state_is_per_variable_and_counted():
    opt = optimizers.Adam()
    a = Variable(np.zeros((3, 4), np.float32), "a", "a")
    a.grad = np.ones((3, 4), np.float32)
    opt._apply_vars([a])
    assert opt.count_params() == 2 * 12 + 2
    m, v = opt.variables_for(a)  # Adam without amsgrad: no velocity_hat
    np.testing.assert_allclose(m, 0.1) and np.testing.assert_allclose(v, 0.001, rtol=1e-6)
    assert optimizers.SGD().count_params() == 0


def test_learning_rate_schedules():
    sched = optimizers.schedules
    exp = sched.ExponentialDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert exp(0) == pytest.approx(0.1) and exp(10) == pytest.approx(0.05) and exp(5) == pytest.approx(0.1 * 0.5 ** 0.5)
    assert sched.ExponentialDecay(0.1, 10, 0.5, staircase=True)(15) == pytest.approx(0.05)
    assert sched.InverseTimeDecay(1.0, 1, 0.5)(2) == pytest.approx(0.5)
    piece = sched.PiecewiseConstantDecay([10, 20], [1.0, 0.5, 0.1])
    assert [piece(s) for s in (0, 10, 11, 20, 21)] == [1.0, 1.0, 0.5, 0.5, 0.1]
    cos = sched.CosineDecay(1.0, 100, alpha=0.1)
    assert cos(0) == pytest.approx(1.0) and cos(100) == pytest.approx(0.1) and cos(500) == pytest.approx(0.1)
    opt = optimizers.SGD(learning_rate=exp)
    v = Variable(np.zeros(1, np.float32), "w", "w")
    for _ in range(3):
        v.grad = np.ones(1, np.float32)
        opt._apply_vars([v])
    expected = -sum(0.1 * 0.5 ** (k / 10) for k in range(3))
    np.testing.assert_allclose(v.value, [expected], rtol=1e-6)
    with pytest.raises(ValueError, match="len\\(values\\)"):
        sched.PiecewiseConstantDecay([1], [1.0])


def test_optimizer_config_round_trip_with_schedule():
    opt = optimizers.Adam(learning_rate=optimizers.schedules.ExponentialDecay(0.01, 100, 0.9), beta_1=0.8)
    again = optimizers.Adam.from_config(opt.get_config())
    assert again.beta_1 == 0.8 and again.learning_rate == pytest.approx(0.01)
    assert isinstance(again._learning_rate, optimizers.schedules.ExponentialDecay)
    plain = optimizers.RMSprop(learning_rate=0.02, momentum=0.5)
    assert optimizers.RMSprop.from_config(plain.get_config()).get_config() == plain.get_config()
