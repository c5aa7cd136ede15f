"""Optimizer update kernels: trajectories against a float64 numpy replay of Keras 3's update rules
(keras/src/optimizers/*.py), list-of-tensors calls, thread determinism, argument checks."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

TABLES = sorted(backend.tables().items()) + [("ref", _C.ref)]
STEPS = 6


def replay(name, p, grads, hp):
    """float64 Keras rules; returns the parameter after each step."""
    p = p.astype(np.float64).copy()
    s = [np.zeros_like(p) for _ in range(3)]
    if name == "adagrad":
        s[0][:] = 0.1
    lr, wd, eps = hp["learning_rate"], hp.get("weight_decay", 0.0), hp.get("epsilon", 1e-7)
    out = []
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        p = p - p * wd * lr
        if name == "sgd":
            mu = hp.get("momentum", 0.0)
            if mu == 0:
                p = p - lr * g
            else:
                s[0] = mu * s[0] - lr * g
                p = p + (mu * s[0] - lr * g if hp.get("nesterov") else s[0])
        elif name == "adam":
            b1, b2 = hp["beta_1"], hp["beta_2"]
            s[0] += (g - s[0]) * (1 - b1)
            s[1] += (g * g - s[1]) * (1 - b2)
            alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            p = p - s[0] * alpha / (np.sqrt(s[1]) + eps)
        elif name == "rmsprop":
            rho, mu = hp["rho"], hp.get("momentum", 0.0)
            s[0] = rho * s[0] + (1 - rho) * g * g
            denom = s[0] + eps
            if hp.get("centered"):
                s[2] = rho * s[2] + (1 - rho) * g
                denom = s[0] - s[2] ** 2 + eps
            inc = lr * g / np.sqrt(denom)
            if mu > 0:
                s[1] = mu * s[1] + inc
                p = p - s[1]
            else:
                p = p - inc
        elif name == "adagrad":
            s[0] += g * g
            p = p - lr * g / np.sqrt(s[0] + eps)
        elif name == "adadelta":
            rho = hp["rho"]
            s[0] = rho * s[0] + (1 - rho) * g * g
            d = -np.sqrt(s[1] + eps) * g / np.sqrt(s[0] + eps)
            s[1] = rho * s[1] + (1 - rho) * d * d
            p = p + lr * d
        out.append(p.copy())
    return out


CASES = [
    ("sgd", {"learning_rate": 0.1}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9}),
    ("sgd", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("adam", {"learning_rate": 0.01, "beta_1": 0.9, "beta_2": 0.999}),
    ("adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-3, "weight_decay": 0.004}),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.9}),
    ("rmsprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5, "centered": True}),
    ("adagrad", {"learning_rate": 0.1}),
    ("adadelta", {"learning_rate": 1.0, "rho": 0.95}),
]
SLOTS = {"sgd": ["momentums"], "adam": ["m", "v"], "rmsprop": ["velocities", "momentums", "average_grads"],
         "adagrad": ["accumulators"], "adadelta": ["accumulated_grads", "accumulated_deltas"]}


def run_kernel(mod, name, hp, p0, grads):
    p = p0.copy()
    slots = {k: np.zeros_like(p) for k in SLOTS[name]}
    if name == "adagrad":
        slots["accumulators"][:] = 0.1
    kw = {k: v for k, v in hp.items()}
    traj = []
    for t, g in enumerate(grads, start=1):
        if name == "adam":
            kw["step"] = t
        getattr(mod, name + "_update")(p, g, **slots, **kw)
        traj.append(p.copy())
    return traj, slots


@pytest.mark.parametrize("tname,mod", TABLES)
@pytest.mark.parametrize("name,hp", CASES)
def test_trajectory_matches_float64_keras_replay(tname, mod, name, hp):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(1000).astype(np.float32)
    grads = [rng.standard_normal(1000).astype(np.float32) * 0.5 for _ in range(STEPS)]
    got, _ = run_kernel(mod, name, hp, p0, grads)
    want = replay(name, p0, grads, hp)
    for t in range(STEPS):
        # float32 state vs float64 replay: a few ulp per step on the parameter and on its change
        np.testing.assert_allclose(got[t], want[t], rtol=2e-6, atol=2e-6 * (t + 1),
                                   err_msg=f"{tname} {name} step {t + 1}")
        step_got, step_want = got[t] - (got[t - 1] if t else p0), want[t] - (want[t - 1] if t else p0)
        np.testing.assert_allclose(step_got, step_want, rtol=1e-3, atol=2e-6)


def test_list_call_equals_per_tensor_calls_and_threads_bit_identical():
    rng = np.random.default_rng(1)
    shapes = [(300, 200), (200,), (1,), (70000,)]
    ps = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    gs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    results = []
    old = fastnn.get_num_threads()
    try:
        for threads, as_list in ((1, False), (2, True), (2, False)):
            fastnn.set_num_threads(threads)
            p = [x.copy() for x in ps]
            m = [np.zeros_like(x) for x in ps]
            v = [np.zeros_like(x) for x in ps]
            for step in (1, 2, 3):
                if as_list:
                    _C.cpu.adam_update(p, gs, m, v, learning_rate=0.01, step=step, weight_decay=0.01)
                else:
                    for i in range(len(p)):
                        _C.cpu.adam_update(p[i], gs[i], m[i], v[i], learning_rate=0.01, step=step, weight_decay=0.01)
            results.append(p)
    finally:
        fastnn.set_num_threads(old)
    for r in results[1:]:
        for a, b in zip(results[0], r):
            assert np.array_equal(a, b)


def test_argument_checks():
    p = np.zeros(4, np.float32)
    g = np.ones(4, np.float32)
    z = np.zeros(4, np.float32)
    cpu = _C.cpu
    with pytest.raises(ValueError, match="param must be float32"):
        cpu.sgd_update(np.zeros(4), g)
    with pytest.raises(ValueError, match="C-contiguous"):
        cpu.sgd_update(np.zeros(8, np.float32)[::2], g)
    with pytest.raises(ValueError, match="read-only"):
        ro = np.zeros(4, np.float32)
        ro.flags.writeable = False
        cpu.sgd_update(ro, g)
    with pytest.raises(ValueError, match=r"grad has shape \(5,\), param \(4,\)"):
        cpu.sgd_update(p, np.ones(5, np.float32))
    with pytest.raises(ValueError, match="step must be >= 1"):
        cpu.adam_update(p, g, z, z.copy(), step=0)
    with pytest.raises(ValueError, match="momentum > 0 needs the momentums slot"):
        cpu.sgd_update(p, g, momentum=0.9)
    with pytest.raises(ValueError, match=r"v has shape \(3,\)"):
        cpu.adam_update(p, g, z, np.zeros(3, np.float32), step=1)
    with pytest.raises(ValueError, match="2 params but 1 grads"):
        cpu.adagrad_update([p, p.copy()], [g], [z, z.copy()])
    with pytest.raises(ValueError, match="must be a list too"):
        cpu.adagrad_update([p], [g], z)
    with pytest.raises(TypeError):
        cpu.adam_update(p, g, z, z.copy())   # step is required
    cpu.sgd_update(p, [1, 1, 1, 1], learning_rate=0.5)  # grads may be any array-like
    assert p.tolist() == [-0.5] * 4
