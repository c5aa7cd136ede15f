"""Nadam, Adamax, Lion, Ftrl (fused kernels, every ISA + the reference) and Adafactor (numpy) against
float64 replays of Keras 3's update rules (tests/optim_replay_tail.py); gradient accumulation, EMA,
loss scaling, Keras's variable order and save/load of the state; the remaining LR schedules."""
import math

import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, optimizers
from fastnn.layers.base import Variable
from optim_replay_tail import replay_tail

TABLES = sorted(backend.tables().items()) + [("ref", _C.ref)]
STEPS = 6

KERNEL_CASES = [
    ("nadam", dict(learning_rate=0.01)),
    ("nadam", dict(learning_rate=0.01, beta_1=0.8, beta_2=0.99, epsilon=1e-4, weight_decay=0.05)),
    ("adamax", dict(learning_rate=0.01)),
    ("adamax", dict(learning_rate=0.02, beta_1=0.7, beta_2=0.9, weight_decay=0.1)),
    ("lion", dict(learning_rate=0.01)),
    ("lion", dict(learning_rate=0.01, beta_1=0.5, beta_2=0.9, weight_decay=0.1)),
    ("ftrl", dict(learning_rate=0.1)),
    ("ftrl", dict(learning_rate=0.1, learning_rate_power=-0.7, initial_accumulator_value=0.3, l1=0.05, l2=0.1,
                  l2_shrinkage=0.02, beta=0.5)),
]


def run_kernel(mod, name, hp, p0, grads):
    """The bare kernel over the steps, the caller's bookkeeping (step, u_product, initial accumulators)."""
    p = p0.copy()
    s1, s2 = np.zeros_like(p), np.zeros_like(p)
    kw = {k: v for k, v in hp.items() if k != "initial_accumulator_value"}
    if name == "ftrl":
        s1[:] = hp.get("initial_accumulator_value", 0.1)
    u_product = np.float32(1.0)
    traj = []
    for t, g in enumerate(grads, start=1):
        if name in ("nadam", "adamax"):
            kw["step"] = t
        if name == "nadam":
            u_product = u_product * np.float32(kw.get("beta_1", 0.9)) * (
                np.float32(1) - np.float32(0.5) * np.float32(0.96) ** np.float32(t))
            kw["u_product"] = float(u_product)
        if name == "lion":
            getattr(mod, "lion_update")(p, g, s1, **kw)
        else:
            getattr(mod, name + "_update")(p, g, s1, s2, **kw)
        traj.append(p.copy())
    return traj


@pytest.mark.parametrize("tname,mod", TABLES)
@pytest.mark.parametrize("name,hp", KERNEL_CASES)
def test_kernel_trajectory_matches_float64_keras_replay(tname, mod, name, hp):
    rng = np.random.default_rng(0)
    n = 1031  # prime: vector tails
    p0 = rng.standard_normal(n).astype(np.float32)
    grads = [rng.standard_normal(n).astype(np.float32) * 0.5 for _ in range(STEPS)]
    got = run_kernel(mod, name, hp, p0, grads)
    want = replay_tail(name, p0, grads, hp)
    for t in range(STEPS):
        np.testing.assert_allclose(got[t], want[t], rtol=1e-5, atol=3e-6 * (t + 1), err_msg=f"{tname} {name} {t}")


@pytest.mark.parametrize("name", ["nadam", "adamax", "lion", "ftrl"])
def test_kernels_thread_count_and_list_calls_bit_identical(name):
    rng = np.random.default_rng(1)
    shapes = [(300, 200), (7,), (1,), (70001,)]
    hp = dict(KERNEL_CASES[[c[0] for c in KERNEL_CASES].index(name) + 1][1])
    results = []
    old = fastnn.get_num_threads()
    try:
        for threads in (1, 2):
            fastnn.set_num_threads(threads)
            grads = [[rng.standard_normal(s).astype(np.float32) for s in shapes] for _ in range(3)]
            if threads == 2:
                grads = first_grads
            first_grads = grads
            results.append([np.concatenate([a.ravel() for a in traj]) for traj in zip(*[
                run_kernel(_C.cpu, name, hp, np.linspace(-1, 1, int(np.prod(s)), dtype=np.float32).reshape(s),
                           [g[k] for g in grads]) for k, s in enumerate(shapes)])])
    finally:
        fastnn.set_num_threads(old)
    for a, b in zip(*results):
        assert np.array_equal(a, b)
    p = [np.ones(s, np.float32) for s in shapes]
    q = [x.copy() for x in p]
    g = [np.full(s, 0.25, np.float32) for s in shapes]
    _C.cpu.lion_update(p, g, [np.zeros_like(x) for x in p], learning_rate=0.1)
    for x, gx in zip(q, g):
        _C.cpu.lion_update(x, gx, np.zeros_like(x), learning_rate=0.1)
    assert all(np.array_equal(a, b) for a, b in zip(p, q))


def test_kernel_argument_checks():
    p, g, z = np.zeros(4, np.float32), np.ones(4, np.float32), np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="nadam_update: step must be >= 1"):
        _C.cpu.nadam_update(p, g, z, z.copy(), step=0, u_product=1.0)
    with pytest.raises(ValueError, match=r"u has shape \(3,\)"):
        _C.cpu.adamax_update(p, g, z, np.zeros(3, np.float32), step=1)
    with pytest.raises(ValueError, match="ftrl_update: learning_rate must be > 0"):
        _C.cpu.ftrl_update(p, g, z, z.copy(), learning_rate=0.0)
    with pytest.raises(ValueError, match="momentums must be float32"):
        _C.cpu.lion_update(p, g, np.zeros(4))


CLASS_CASES = [
    ("nadam", optimizers.Nadam, dict(learning_rate=0.01, weight_decay=0.05)),
    ("adamax", optimizers.Adamax, dict(learning_rate=0.01)),
    ("lion", optimizers.Lion, dict(learning_rate=0.01, beta_1=0.5)),
    ("ftrl", optimizers.Ftrl, dict(learning_rate=0.1, l1_regularization_strength=0.05,
                                   l2_regularization_strength=0.1, l2_shrinkage_regularization_strength=0.02,
                                   beta=0.5, initial_accumulator_value=0.3, learning_rate_power=-0.7)),
    ("adafactor", optimizers.Adafactor, dict(learning_rate=0.01)),
    ("adafactor", optimizers.Adafactor, dict(learning_rate=0.5, relative_step=False, clip_threshold=0.5,
                                             beta_2_decay=-0.6, weight_decay=0.01)),
]
_REPLAY_NAMES = dict(l1_regularization_strength="l1", l2_regularization_strength="l2",
                     l2_shrinkage_regularization_strength="l2_shrinkage")


def _vars(rng):
    shapes = [(7, 5), (5,), (2, 3, 4)]
    return [Variable(rng.standard_normal(s).astype(np.float32), f"v{k}", f"d/v{k}") for k, s in enumerate(shapes)]


@pytest.mark.parametrize("name,cls,hyper", CLASS_CASES)
def test_optimizer_class_matches_keras_formula(name, cls, hyper):
    rng = np.random.default_rng(0)
    variables = _vars(rng)
    p0 = [v.value.copy() for v in variables]
    grads = [[rng.standard_normal(v.shape).astype(np.float32) for v in variables] for _ in range(STEPS)]
    opt = cls(**hyper)
    for gs in grads:
        opt.apply(gs, variables)
    assert opt.iterations == STEPS
    hp = {_REPLAY_NAMES.get(k, k): x for k, x in hyper.items()}
    for k, v in enumerate(variables):
        want = replay_tail(name, p0[k], [g[k] for g in grads], hp)[-1]
        np.testing.assert_allclose(v.value, want, rtol=2e-5, atol=2e-6)


def test_keras_defaults_and_variable_order():
    n = optimizers.Nadam()
    assert (n.learning_rate, n.beta_1, n.beta_2, n.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    a = optimizers.Adamax()
    assert (a.learning_rate, a.beta_1, a.beta_2, a.epsilon) == (0.001, 0.9, 0.999, 1e-7)
    lion = optimizers.Lion()
    assert (lion.learning_rate, lion.beta_1, lion.beta_2) == (0.001, 0.9, 0.99)
    f = optimizers.Ftrl()
    assert (f.learning_rate_power, f.initial_accumulator_value, f.beta) == (-0.5, 0.1, 0.0)
    af = optimizers.Adafactor()
    assert (af.beta_2_decay, af.epsilon_1, af.epsilon_2, af.clip_threshold, af.relative_step) == (
        -0.8, 1e-30, 1e-3, 1.0, True)
    with pytest.raises(ValueError, match="beta_1"):
        optimizers.Lion(beta_1=0.0)
    with pytest.raises(ValueError, match="learning_rate_power"):
        optimizers.Ftrl(learning_rate_power=0.5)
    for name in ("nadam", "adamax", "lion", "ftrl", "adafactor"):
        assert type(optimizers.get(name)).__name__.lower() == name
    # Keras's variable order (keras.optimizers.X().build([a(2,3), b(3,)]).variables):
    a_, b_ = Variable(np.zeros((2, 3), np.float32), "a", "a"), Variable(np.zeros(3, np.float32), "b", "b")
    shapes = {
        optimizers.Nadam(use_ema=True, gradient_accumulation_steps=2):
            [(), (), (2, 3), (3,), (2, 3), (3,), (2, 3), (2, 3), (3,), (3,), ()],
        optimizers.Adafactor(): [(), (), (2,), (3,), (2, 3), (), (), (3,)],
        optimizers.Ftrl(): [(), (), (2, 3), (2, 3), (3,), (3,)],
    }
    for opt, want in shapes.items():
        opt.build([a_, b_])
        assert [tuple(v.shape) for v in opt.variables] == want, type(opt).__name__
    sched = optimizers.Adam(learning_rate=optimizers.schedules.ExponentialDecay(0.1, 10, 0.5))
    sched.build([a_])
    assert len(sched.variables) == 3  # no learning_rate variable with a schedule (Keras)


@pytest.mark.parametrize("cls", [optimizers.Nadam, optimizers.Adamax, optimizers.Lion, optimizers.Ftrl,
                                 optimizers.Adafactor])
def test_save_and_load_own_variables_resume_exactly(cls):
    rng = np.random.default_rng(2)
    variables = _vars(rng)
    grads = [[rng.standard_normal(v.shape).astype(np.float32) for v in variables] for _ in range(6)]
    opt = cls(learning_rate=0.01)
    for gs in grads[:3]:
        opt.apply(gs, variables)
    store = {}
    opt.save_own_variables(store)
    saved_values = [v.value.copy() for v in variables]
    for gs in grads[3:]:
        opt.apply(gs, variables)
    final = [v.value.copy() for v in variables]
    again = [Variable(x.copy(), f"w{k}", f"d/w{k}") for k, x in enumerate(saved_values)]
    fresh = cls(learning_rate=0.5)  # the learning rate is state too
    fresh.build(again)
    fresh.load_own_variables(store)
    assert fresh.iterations == 3 and fresh.learning_rate == pytest.approx(0.01)
    for gs in grads[3:]:
        fresh.apply(gs, again)
    for a, b in zip(final, again):
        assert np.array_equal(a, b.value)
    with pytest.raises(ValueError, match="the store holds"):
        cls().load_own_variables({"0": np.array(0)})


def _sgd_steps(opt, grads, v):
    for g in grads:
        opt.apply([g], [v])
    return v.value


def test_gradient_accumulation_and_ema_follow_keras():
    g = [np.array([1.0, -2.0], np.float32), np.array([3.0, 0.5], np.float32), np.array([-1.0, 1.0], np.float32),
         np.array([2.0, 2.0], np.float32), np.array([0.5, -0.5], np.float32)]
    # accumulation: updates at calls 2 and 4 with the mean of the pairs; iterations counts updates
    v = Variable(np.zeros(2, np.float32), "w", "w")
    opt = optimizers.SGD(learning_rate=0.1, gradient_accumulation_steps=2)
    _sgd_steps(opt, g, v)
    np.testing.assert_allclose(v.value, -0.1 * ((g[0] + g[1]) / 2 + (g[2] + g[3]) / 2), rtol=1e-6)
    assert opt.iterations == 2 and opt._iterations == 5
    np.testing.assert_allclose(opt.variables[2], g[4])  # the pending accumulator
    # Adam's bias correction counts updates, not calls
    a1, a2 = Variable(np.zeros(2, np.float32), "a", "a"), Variable(np.zeros(2, np.float32), "b", "b")
    acc = optimizers.Adam(learning_rate=0.1, gradient_accumulation_steps=2)
    _sgd_steps(acc, g[:4], a1)
    _sgd_steps(optimizers.Adam(learning_rate=0.1), [(g[0] + g[1]) / 2, (g[2] + g[3]) / 2], a2)
    np.testing.assert_allclose(a1.value, a2.value, rtol=1e-6)
    # EMA: average = value at iteration 0, then 0.9 avg + 0.1 value; overwrite every 3 iterations
    w = Variable(np.zeros(2, np.float32), "w", "w")
    ema = optimizers.SGD(learning_rate=0.1, use_ema=True, ema_momentum=0.9, ema_overwrite_frequency=3)
    value, avg = np.zeros(2), None
    for k, gk in enumerate(g):
        value = value - 0.1 * gk
        avg = value.copy() if k == 0 else 0.9 * avg + 0.1 * value
        if (k + 1) % 3 == 0:
            value = avg.copy()
        ema.apply([gk], [w])
        np.testing.assert_allclose(w.value, value, rtol=1e-5, atol=1e-7)
    ema.finalize_variable_values([w])
    np.testing.assert_allclose(w.value, avg, rtol=1e-5)
    with pytest.raises(ValueError, match="gradient_accumulation_steps"):
        optimizers.SGD(gradient_accumulation_steps=1)
    with pytest.raises(ValueError, match="ema_momentum"):
        optimizers.SGD(use_ema=True, ema_momentum=1.5)


def test_loss_scale_factor_unscales_gradients_and_clipping_kinds():
    v = Variable(np.zeros(2, np.float32), "w", "w")
    opt = optimizers.SGD(learning_rate=1.0, loss_scale_factor=128.0)
    assert opt.scale_loss(2.0) == 256.0
    opt.apply([np.array([128.0, -256.0], np.float32)], [v])
    np.testing.assert_allclose(v.value, [-1.0, 2.0])
    for kw in (dict(clipnorm=1.0), dict(clipvalue=0.5), dict(global_clipnorm=1.0)):
        for cls in (optimizers.Nadam, optimizers.Lion, optimizers.Adafactor):
            w = Variable(np.ones(2, np.float32), "w", "w")
            cls(**kw).apply([np.array([300.0, -400.0], np.float32)], [w])
            assert np.all(np.isfinite(w.value))
    # clipping happens after accumulation (Keras): the mean of [6, 8] and [0, 0] has norm 5 -> clipped to 1
    w = Variable(np.zeros(2, np.float32), "w", "w")
    clip = optimizers.SGD(learning_rate=1.0, clipnorm=1.0, gradient_accumulation_steps=2)
    _sgd_steps(clip, [np.array([6.0, 8.0], np.float32), np.zeros(2, np.float32)], w)
    np.testing.assert_allclose(w.value, [-0.6, -0.8], rtol=1e-6)


def test_ema_in_fit_finalizes_to_the_average():
    model = fastnn.Sequential([fastnn.layers.Input((3,)), fastnn.layers.Dense(1)])
    opt = optimizers.SGD(learning_rate=0.05, use_ema=True, ema_momentum=0.5)
    model.compile(optimizer=opt, loss="mse")
    x = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float32)
    model.fit(x, x.sum(1, keepdims=True), epochs=2, batch_size=8, verbose=0)
    kernel = model.trainable_weights[0]
    np.testing.assert_array_equal(kernel.value, opt.variables[2])


def test_remaining_schedules_match_keras_formulas():
    s = optimizers.schedules
    poly = s.PolynomialDecay(0.1, 10, end_learning_rate=0.01, power=2.0)
    for step in (0, 3, 10, 15):
        p = min(step, 10) / 10
        assert poly(step) == pytest.approx(0.09 * (1 - p) ** 2 + 0.01)
    cyc = s.PolynomialDecay(0.1, 10, end_learning_rate=0.01, cycle=True)
    assert cyc(0) == pytest.approx(0.1) and cyc(15) == pytest.approx(0.09 * (1 - 15 / 20) + 0.01)
    warm = s.CosineDecay(0.0, 10, alpha=0.1, warmup_target=1.0, warmup_steps=5)
    assert warm(2) == pytest.approx(0.4) and warm(5) == pytest.approx(1.0)
    assert warm(10) == pytest.approx(1.0 * (0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)) + 0.1))
    assert warm(100) == pytest.approx(0.1)
    sgdr = s.CosineDecayRestarts(1.0, 10, t_mul=2.0, m_mul=0.5, alpha=0.0)
    # restart 0 over [0, 10), restart 1 over [10, 30) with peak 0.5, restart 2 from 30 with peak 0.25
    assert sgdr(0) == pytest.approx(1.0) and sgdr(5) == pytest.approx(0.5)
    assert sgdr(10) == pytest.approx(0.5) and sgdr(20) == pytest.approx(0.25) and sgdr(30) == pytest.approx(0.25)
    flat = s.CosineDecayRestarts(1.0, 4, t_mul=1.0)
    assert flat(2) == pytest.approx(0.5) and flat(6) == pytest.approx(0.5)
    cfg = sgdr.get_config()
    assert cfg["t_mul"] == 2.0 and s.CosineDecayRestarts.from_config(cfg)(20) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="first_decay_steps"):
        s.CosineDecayRestarts(1.0, 0)
    opt = optimizers.Nadam(learning_rate=poly)
    assert optimizers.Nadam.from_config(opt.get_config())._learning_rate(3) == pytest.approx(poly(3))


def test_nadam_resumes_from_iterations_and_slots_alone():
    """A loader that restores only the iteration count and the per-variable slots (no u_product) resumes
    Nadam exactly: u_product is a function of the iteration count."""
    rng = np.random.default_rng(4)
    variables = _vars(rng)
    grads = [[rng.standard_normal(v.shape).astype(np.float32) for v in variables] for _ in range(6)]
    opt = optimizers.Nadam(learning_rate=0.01)
    for gs in grads[:3]:
        opt.apply(gs, variables)
    again = [Variable(v.value.copy(), f"w{k}", f"d/w{k}") for k, v in enumerate(variables)]
    fresh = optimizers.Nadam(learning_rate=0.01)
    fresh.build(again)
    for v, w in zip(variables, again):
        for src, dst in zip(opt.variables_for(v), fresh.variables_for(w)):
            dst[...] = src
    fresh.iterations = opt.iterations
    for gs in grads[3:]:
        opt.apply(gs, variables)
        fresh.apply(gs, again)
    for a, b in zip(variables, again):
        assert np.array_equal(a.value, b.value)
    assert fresh.variables[-1] == opt.variables[-1]


class MomentumSGD(optimizers.Optimizer):
    """A custom optimizer written with Keras 3's API (build + update_step)."""

    def __init__(self, learning_rate=0.1, momentum=0.5, name="momentum_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = momentum

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.momentums = [self.add_variable_from_reference(v, "momentum") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        m = self.momentums[self._get_variable_index(variable)]
        self.assign(m, m * self.momentum - gradient * learning_rate)
        self.assign_add(variable, m)


def test_custom_optimizer_with_build_and_update_step():
    rng = np.random.default_rng(5)
    variables = _vars(rng)
    p0 = [v.value.astype(np.float64) for v in variables]
    grads = [[rng.standard_normal(v.shape).astype(np.float32) for v in variables] for _ in range(4)]
    opt = MomentumSGD(weight_decay=0.01)
    for gs in grads:
        opt.apply(gs, variables)
    for k, v in enumerate(variables):  # the same rule as SGD(momentum) with decoupled decay
        p, m = p0[k].copy(), np.zeros_like(p0[k])
        for gs in grads:
            p = p - p * 0.01 * 0.1
            m = 0.5 * m - 0.1 * gs[k]
            p = p + m
        np.testing.assert_allclose(v.value, p, rtol=1e-5, atol=1e-6)
    assert [tuple(a.shape) for a in opt.variables] == [(), ()] + [tuple(v.shape) for v in variables]
    assert opt.momentums[0].path == "momentum_sgd/v0_momentum" and opt.iterations == 4
    model = fastnn.Sequential([fastnn.layers.Input((3,)), fastnn.layers.Dense(1)])
    model.compile(optimizer=MomentumSGD(learning_rate=0.05), loss="mse")
    x = rng.standard_normal((32, 3)).astype(np.float32)
    hist = model.fit(x, x.sum(1, keepdims=True), epochs=4, verbose=0).history["loss"]
    assert hist[-1] < hist[0]

    class NoUpdate(optimizers.Optimizer):
        pass
    with pytest.raises(NotImplementedError, match=r"NoUpdate must define update_step\(gradient, variable"):
        NoUpdate().apply([np.ones(3, np.float32)], [Variable(np.zeros(3, np.float32), "w", "w")])


@pytest.mark.parametrize("tname,mod", TABLES)
def test_adam_amsgrad_kernel_and_class_match_keras_formula(tname, mod):
    from optim_replay_tail import replay_amsgrad
    rng = np.random.default_rng(6)
    n = 997
    p0 = rng.standard_normal(n).astype(np.float32)
    # a large gradient at step 2 makes v_hat differ from v afterwards
    grads = [rng.standard_normal(n).astype(np.float32) * (3.0 if k == 1 else 0.3) for k in range(STEPS)]
    p, m, v, vh = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), np.zeros_like(p0)
    want = replay_amsgrad(p0, grads, 0.01)
    for t, g in enumerate(grads, start=1):
        mod.adam_update(p, g, m, v, vh, learning_rate=0.01, step=t)
        np.testing.assert_allclose(p, want[t - 1], rtol=1e-5, atol=3e-6 * t, err_msg=f"{tname} step {t}")
    assert np.all(vh >= v) and np.any(vh > v)
    a, b = Variable(np.zeros((2, 3), np.float32), "a", "a"), Variable(p0[:3].copy(), "b", "b")
    opt = optimizers.Adam(learning_rate=0.01, amsgrad=True)
    for g in grads:
        opt.apply([np.zeros((2, 3), np.float32) + g[:6].reshape(2, 3), g[:3]], [a, b])
    np.testing.assert_allclose(b.value, replay_amsgrad(p0[:3], [g[:3] for g in grads], 0.01)[-1], rtol=2e-5, atol=2e-6)
    # Keras's order: a_momentum, a_velocity, b_momentum, b_velocity, a_velocity_hat, b_velocity_hat
    assert [tuple(x.shape) for x in opt.variables] == [(), (), (2, 3), (2, 3), (3,), (3,), (2, 3), (3,)]
    assert optimizers.Adam.from_config(opt.get_config()).amsgrad is True
