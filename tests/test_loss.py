"""Loss kernels: fused softmax cross-entropy, Keras probability cross-entropy, binary CE, MSE, MAE
against numpy float64 formulas and the reference; label checks; the autograd loss Functions."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

TABLES = sorted(backend.tables().items()) + [("ref", _C.ref)]
EPS = 1e-7


def np_lse(x):
    x = x.astype(np.float64)
    m = x.max(axis=1, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=1, keepdims=True)))[:, 0]


def onehot(labels, K):
    return np.eye(K)[labels]


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("B,K", [(1, 1), (5, 10), (33, 17), (4, 1000)])
def test_softmax_xent_labels_and_distribution(name, mod, B, K):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((B, K)) * 5).astype(np.float32)
    labels = rng.integers(0, K, B)
    dist = rng.random((B, K)).astype(np.float32)
    dist /= dist.sum(axis=1, keepdims=True)
    g = rng.random(B).astype(np.float32)
    p = np.exp(x - np_lse(x)[:, None])
    for t, t64 in ((labels, onehot(labels, K)), (labels.reshape(-1, 1), onehot(labels, K)),
                   (labels.astype(np.float32), onehot(labels, K)), (dist, dist.astype(np.float64))):
        if K == 1 and t is dist:
            continue
        loss, lse = mod.softmax_xent_forward(x, t)
        np.testing.assert_allclose(lse, np_lse(x), rtol=1e-6)
        np.testing.assert_allclose(loss, -(t64 * np.log(p)).sum(axis=1), rtol=1e-5, atol=1e-5)
        dx = mod.softmax_xent_backward(g, x, lse, t)
        np.testing.assert_allclose(dx, g[:, None] * (p * t64.sum(axis=1, keepdims=True) - t64), rtol=1e-5,
                                   atol=1e-6)
        dx1 = mod.softmax_xent_backward(np.float32(0.5), x, lse, t)     # scalar dloss broadcasts
        np.testing.assert_allclose(dx1, 0.5 * (p * t64.sum(axis=1, keepdims=True) - t64), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name,mod", TABLES)
def test_softmax_xent_extreme_logits_finite(name, mod):
    x = np.array([[1e4, -1e4, 0], [-1e30, 1e30, 0], [88.8, -88.8, 104]], dtype=np.float32)
    loss, lse = mod.softmax_xent_forward(x, np.array([1, 0, 1]))
    dx = mod.softmax_xent_backward(np.ones(3, np.float32), x, lse, np.array([1, 0, 1]))
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(dx))
    assert loss[0] == pytest.approx(2e4, rel=1e-6)


@pytest.mark.parametrize("bad,match", [
    (np.array([0, 10, 1]), r"label 10 at index 1 is out of range \[0, 10\)"),
    (np.array([0, 1, -1]), r"label -1 at index 2 is out of range"),
    (np.array([0, np.nan, 1]), r"label at index 1 is not an integer"),
    (np.array([0, 1.5, 1]), r"label at index 1 is not an integer"),
    (np.array([0, 1]), r"labels have shape \(2,\), expected \(3,\)"),
    (np.array(["a", "b", "c"]), r"labels must be integers"),
])
def test_labels_are_checked(bad, match):
    x = np.zeros((3, 10), np.float32)
    for mod in (_C.cpu, _C.ref):
        with pytest.raises(ValueError, match=match):
            mod.softmax_xent_forward(x, bad)
        with pytest.raises(ValueError, match=match):
            mod.prob_xent_forward(np.full((3, 10), 0.1, np.float32), bad)


def keras_prob_ce(p, t64, eps=EPS):
    q = p / p.sum(axis=1, keepdims=True)                       # float32, as Keras
    c = np.clip(q, np.float32(eps), np.float32(1) - np.float32(eps)).astype(np.float64)
    return -(t64 * np.log(c)).sum(axis=1)


@pytest.mark.parametrize("name,mod", TABLES)
def test_prob_xent_matches_keras_formula_and_finite_differences(name, mod):
    rng = np.random.default_rng(1)
    B, K = 6, 5
    p = rng.random((B, K)).astype(np.float32) + 0.05
    p[0] = [1, 0, 0, 0, 0]         # clipped entries: Keras's clip, zero gradient there
    labels = rng.integers(0, K, B)
    dist = rng.random((B, K)).astype(np.float32)
    for t, t64 in ((labels, onehot(labels, K)), (dist, dist.astype(np.float64))):
        loss = mod.prob_xent_forward(p, t)
        np.testing.assert_allclose(loss, keras_prob_ce(p, t64), rtol=1e-5)
        g = rng.random(B).astype(np.float32)
        dp = mod.prob_xent_backward(g, p, t)
        num = np.zeros((B, K))
        p64 = p.astype(np.float64)
        for i in range(1, B):
            for k in range(K):
                h = 1e-6
                pp, pm = p64.copy(), p64.copy()
                pp[i, k] += h
                pm[i, k] -= h
                f = lambda a: -(t64[i] * np.log(np.clip(a[i] / a[i].sum(), EPS, 1 - EPS))).sum()  # noqa: E731
                num[i, k] = g[i] * (f(pp) - f(pm)) / (2 * h)
        np.testing.assert_allclose(dp[1:], num[1:], rtol=1e-3, atol=1e-4)


def np_point(kind, p, y):
    p, y = p.astype(np.float64), y.astype(np.float64)
    c = np.clip(p, np.float32(EPS), np.float32(1) - np.float32(EPS))
    return {"mean_squared_error": (p - y) ** 2, "mean_absolute_error": np.abs(p - y),
            "binary_crossentropy": -(y * np.log(c) + (1 - y) * np.log(1 - c)),
            "binary_crossentropy_logits": np.maximum(p, 0) - p * y + np.log1p(np.exp(-np.abs(p)))}[kind]


POINT = ["mean_squared_error", "mean_absolute_error", "binary_crossentropy", "binary_crossentropy_logits"]


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("kind", POINT)
def test_point_losses(name, mod, kind):
    rng = np.random.default_rng(2)
    shape = (7, 3)
    p = rng.random(shape).astype(np.float32) if kind == "binary_crossentropy" else \
        rng.standard_normal(shape).astype(np.float32) * 3
    if kind == "binary_crossentropy":
        p[0, 0], p[0, 1] = 0.0, 1.0  # clipped
    y = (rng.random(shape) > 0.5).astype(np.float32)
    assert getattr(mod, kind + "_forward")(p, y) == pytest.approx(np_point(kind, p, y).mean(), rel=1e-6)
    dp = getattr(mod, kind + "_backward")(p, y, grad=2.0)
    p64 = p.astype(np.float64)
    h = 1e-6
    num = np.zeros(shape)
    for i in np.ndindex(shape):
        pp, pm = p64.copy(), p64.copy()
        pp[i] += h
        pm[i] -= h
        num[i] = 2.0 * (np_point(kind, pp, y).mean() - np_point(kind, pm, y).mean()) / (2 * h)
    if kind == "binary_crossentropy":
        num[0, 0] = num[0, 1] = 0.0  # the clip's gradient
    np.testing.assert_allclose(dp, num, rtol=1e-4, atol=1e-5)


def test_point_loss_shape_errors():
    with pytest.raises(ValueError, match="different shapes"):
        _C.cpu.mean_squared_error_forward(np.zeros(3, np.float32), np.zeros(4, np.float32))


# ---- autograd Functions -----------------------------------------------------------------------------
def test_loss_functions_gradients():
    pytest.importorskip("fastnn.tensor")
    from fastnn.autograd import gradcheck
    from fastnn._ops import loss as L
    from fastnn.tensor import Tensor
    rng = np.random.default_rng(3)
    x = Tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    labels = np.array([0, 4, 2, 2])
    assert gradcheck(lambda t: L.cross_entropy(t, labels), [x])
    assert gradcheck(lambda t: L.SoftmaxCrossEntropy.apply(t, np.eye(5, dtype=np.float32)[labels]), [x])
    p = Tensor(rng.random((4, 5)).astype(np.float32) + 0.1, requires_grad=True)
    assert gradcheck(lambda t: L.CategoricalCrossentropy.apply(t, labels), [p])
    q = Tensor(rng.uniform(0.1, 0.9, (4, 1)).astype(np.float32), requires_grad=True)
    y = np.array([1, 0, 1, 1], np.float32)  # (4,) against (4, 1): reshaped like Keras
    assert gradcheck(lambda t: L.BinaryCrossentropy.apply(t, y), [q])
    assert gradcheck(lambda t: L.BinaryCrossentropy.apply(t, y, from_logits=True), [q])
    assert gradcheck(lambda t: L.MeanSquaredError.apply(t, y), [q])
    assert gradcheck(lambda t: L.MeanAbsoluteError.apply(t, y + 0.05), [q])


def test_cross_entropy_matches_torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops import loss as L
    from fastnn.tensor import Tensor
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((16, 10)) * 4).astype(np.float32)
    labels = rng.integers(0, 10, 16)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    lt = torch.nn.functional.cross_entropy(xt, torch.tensor(labels))
    lt.backward()
    t = Tensor(x, requires_grad=True)
    loss = L.cross_entropy(t, labels)
    loss.backward()
    assert loss.item() == pytest.approx(lt.item(), rel=1e-6)
    np.testing.assert_allclose(t.grad.data, xt.grad.numpy(), rtol=1e-5, atol=1e-7)


def test_cross_entropy_shape_errors():
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops import loss as L
    with pytest.raises(ValueError, match=r"target shape \(3,\) matches neither"):
        L.cross_entropy(np.zeros((2, 4)), [0, 1, 2])
    with pytest.raises(ValueError, match="label 7 at index 0 is out of range"):
        L.cross_entropy(np.zeros((2, 4)), [7, 1])
