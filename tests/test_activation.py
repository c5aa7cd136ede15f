"""Activation and softmax kernels (every ISA table vs the float64 reference and numpy), their
saturation behaviour, thread determinism, the kernels API, and the autograd Functions."""
import functools
import math

import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, kernels

TABLES = sorted(backend.tables().items())
UNARY = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus", "sigmoid", "tanh", "exp", "log"]
SAVES_OUTPUT = {"relu", "sigmoid", "tanh", "exp"}
FLT_MIN, FLT_MAX, DENORM = 1.1754944e-38, 3.4028235e38, 1.4e-45
SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
_erfc = np.vectorize(math.erfc)


def np_forward(op, x, alpha):
    """Independent float64 formulas (the ref kernels are checked against these)."""
    x = x.astype(np.float64)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return {
            "relu": lambda: np.maximum(x, 0),
            "leaky_relu": lambda: np.where(x < 0, alpha * x, x),
            "elu": lambda: np.where(x > 0, x, alpha * np.expm1(x)),
            "selu": lambda: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)),
            "gelu": lambda: x * 0.5 * _erfc(-x / math.sqrt(2)),
            "silu": lambda: x / (1 + np.exp(-x)),
            "softplus": lambda: np.logaddexp(x, 0),
            "sigmoid": lambda: 1 / (1 + np.exp(-x)),
            "tanh": lambda: np.tanh(x),
            "exp": lambda: np.exp(x),
            "log": lambda: np.log(x),
        }[op]()


def inputs(op, n=20000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(n) * 10, rng.standard_normal(n), rng.uniform(-100, 100, n),
                        [0, 1e-40, -1e-40, 1e-45, 88.8, -88.8, 1e4, -1e4, 89, -89, 104, -104, 3e38, -3e38]])
    x = x.astype(np.float32)
    return np.abs(x) if op == "log" else x


def assert_close(y, r, rtol, what):
    """|y - r| <= rtol*|r| (normal results) or a few subnormal ulp; inf/NaN must match exactly."""
    y, r = y.astype(np.float64), r.astype(np.float64)
    fin = np.isfinite(r)
    assert np.array_equal(np.isfinite(y), fin), f"{what}: finiteness differs at {np.flatnonzero(np.isfinite(y) != fin)[:5]}"
    assert np.array_equal(y[~fin], r[~fin], equal_nan=True), what
    err = np.abs(y[fin] - r[fin])
    # NOTE: results near or below FLT_MIN carry subnormal intermediates (e.g. sigmoid(-90) in silu):
    # their relative accuracy is bounded by the subnormal spacing, hence the absolute floor.
    tol = rtol * np.abs(r[fin]) + 1e-41
    bad = err > tol
    assert not bad.any(), f"{what}: max rel err {np.max(err / np.maximum(np.abs(r[fin]), FLT_MIN)):.3g}"


@pytest.mark.parametrize("op", UNARY)
def test_reference_matches_numpy(op):
    x = inputs(op, 2000)
    alpha = {"leaky_relu": 0.2, "elu": 1.0}.get(op, 0.0)
    with np.errstate(over="ignore"):  # exp of large x: inf in float32, as the kernel gives
        r = np_forward(op, x, alpha).astype(np.float32)
    assert_close(getattr(_C.ref, op + "_forward")(x), r, 3e-7, f"ref {op}")


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("op", UNARY)
def test_unary_forward_matches_reference(name, mod, op):
    x = inputs(op)
    # gelu: 0.5 + 0.5*erf(z) near z = -1 loses a few bits (still ~1e-6)
    rtol = {"gelu": 2e-6, "elu": 4e-7, "selu": 4e-7}.get(op, 3e-7)
    for alpha in ((0.2, 1.7) if op in ("leaky_relu", "elu") else (None,)):
        kw = {} if alpha is None else {"alpha": alpha}
        assert_close(getattr(mod, op + "_forward")(x, **kw), getattr(_C.ref, op + "_forward")(x, **kw), rtol,
                     f"{name} {op}")


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("op", UNARY)
def test_unary_backward_matches_reference(name, mod, op):
    x = inputs(op, 5000)
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    s = getattr(_C.ref, op + "_forward")(x) if op in SAVES_OUTPUT else x
    got = getattr(mod, op + "_backward")(dy, s).astype(np.float64)
    ref = getattr(_C.ref, op + "_backward")(dy, s).astype(np.float64)
    assert np.array_equal(np.isfinite(got), np.isfinite(ref))
    fin = np.isfinite(ref)
    # derivatives with a root (gelu, silu) cancel there: compare against the gradient's own scale
    scale = np.abs(dy[fin]) * (np.abs(s[fin]) + 1) if op not in ("exp", "log") else np.abs(ref[fin])
    assert np.all(np.abs(got[fin] - ref[fin]) <= 2e-6 * scale + 4 * DENORM), f"{name} {op} backward"


@pytest.mark.parametrize("name,mod", TABLES)
def test_sigmoid_tanh_exp_within_2e6_of_float64(name, mod):
    x = np.linspace(-100, 100, 400001, dtype=np.float32)
    x64 = x.astype(np.float64)
    for op, f in (("sigmoid", lambda v: 1 / (1 + np.exp(-v))), ("tanh", np.tanh), ("exp", np.exp)):
        with np.errstate(over="ignore"):
            r = f(x64)
        y = getattr(mod, op + "_forward")(x).astype(np.float64)
        normal = (np.abs(r) >= FLT_MIN) & (np.abs(r) <= FLT_MAX)
        rel = np.abs(y[normal] - r[normal]) / np.abs(r[normal])
        assert rel.max() <= 2e-6, f"{name} {op}: max rel err {rel.max():.3g}"
        sub = np.abs(r) < FLT_MIN   # subnormal results: within one subnormal step
        assert np.all(np.abs(y[sub] - r[sub]) <= DENORM), f"{name} {op} subnormal range"
        assert np.all(np.isinf(y[r > FLT_MAX]))


@pytest.mark.parametrize("name,mod", TABLES)
def test_saturation_and_extremes_stay_finite(name, mod):
    ext = np.array([1e4, -1e4, 88.8, -88.8, 89.0, -89.0, 104.0, -104.0, 3e38, -3e38, 1e-40, -1e-40, 1e-45, 0.0,
                    -0.0, 1e-30, -1e-30], dtype=np.float32)
    for op in UNARY:
        x = np.abs(ext) if op == "log" else ext
        y = getattr(mod, op + "_forward")(x)
        if op == "exp":
            assert np.all(np.isfinite(y[x < 88.7])) and np.all(np.isinf(y[x > 88.8]))
        elif op == "log":
            assert np.all(np.isfinite(y[x > 0])) and np.all(y[x == 0] == -np.inf)
        else:
            assert np.all(np.isfinite(y)), f"{name} {op}: {y}"
        dy = np.ones_like(x)
        g = getattr(mod, op + "_backward")(dy, y if op in SAVES_OUTPUT else x)
        if op not in ("exp", "log"):
            assert np.all(np.isfinite(g)), f"{name} {op} backward: {g}"
    assert mod.sigmoid_forward(np.float32([-1e4, 1e4])).tolist() == [0.0, 1.0]
    assert mod.tanh_forward(np.float32([-1e4, 1e4])).tolist() == [-1.0, 1.0]
    assert np.isnan(mod.tanh_forward(np.float32([np.nan]))[0]) and np.isnan(mod.relu_forward(np.float32([np.nan]))[0])


SOFTMAX_CASES = [((7,), -1), ((5, 3), -1), ((4, 130), 1), ((3, 17, 5), 1), ((3, 17, 5), 0), ((2, 3, 37), -1),
                 ((2, 9, 20), 1), ((1, 1), 0)]


def np_softmax(x, axis, log):
    x = x.astype(np.float64)
    z = x - x.max(axis=axis, keepdims=True)
    ls = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - ls if log else np.exp(z - ls)


@pytest.mark.parametrize("name,mod", TABLES + [("ref", _C.ref)])
@pytest.mark.parametrize("shape,axis", SOFTMAX_CASES)
def test_softmax_forward_backward(name, mod, shape, axis):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 8).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    for log in (False, True):
        base = "log_softmax" if log else "softmax"
        y = getattr(mod, base + "_forward")(x, axis)
        r = np_softmax(x, axis, log)
        np.testing.assert_allclose(y, r, rtol=2e-6, atol=1e-6 if log else 1e-7)
        if not log:
            np.testing.assert_allclose(y.sum(axis=axis, dtype=np.float64), 1.0, rtol=0, atol=2e-6)
        dx = getattr(mod, base + "_backward")(dy, y, axis)
        ref = getattr(_C.ref, base + "_backward")(dy, y, axis)
        np.testing.assert_allclose(dx, ref, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("name,mod", TABLES)
def test_softmax_every_row_length(name, mod):
    """Last-axis rows of 1..300 floats: each register-resident width (1..16 vectors, ragged ends) and
    the longer-row loop; NaN in one row stays in that row."""
    rng = np.random.default_rng(3)
    for K in range(1, 301):
        x = (rng.standard_normal((3, K)) * 6).astype(np.float32)
        for log in (False, True):
            y = getattr(mod, ("log_softmax" if log else "softmax") + "_forward")(x, -1)
            np.testing.assert_allclose(y, np_softmax(x, -1, log), rtol=2e-6, atol=1e-6 if log else 1e-7,
                                       err_msg=f"K={K} log={log}")
    x = rng.standard_normal((3, 40)).astype(np.float32)
    x[1, 7] = np.nan
    y = mod.softmax_forward(x, -1)
    assert np.isnan(y[1]).all() and np.isfinite(y[[0, 2]]).all()


@functools.lru_cache(maxsize=1)
def _gelu_grid():
    """A 2e-5 grid over [-12, 12] (every piece of the AVX-512 table, both signs, its boundaries to
    within 1e-5, the table's ends at |x| = 8.99 and the erfc path beyond) and its float64 gelu."""
    ends = np.float32([8.99, 9.0])
    x = np.concatenate([np.linspace(-12, 12, 1200001, dtype=np.float32), ends, -ends,
                        np.nextafter(ends, np.float32(0)), -np.nextafter(ends, np.float32(0)),
                        np.nextafter(ends, np.float32(np.inf)), -np.nextafter(ends, np.float32(np.inf))])
    return x, np_forward("gelu", x, 0.0)


@pytest.mark.parametrize("name,mod", TABLES)
def test_gelu_dense_grid_within_2e6(name, mod):
    x, r = _gelu_grid()
    y = mod.gelu_forward(x).astype(np.float64)
    normal = np.abs(r) >= FLT_MIN
    rel = np.abs(y[normal] - r[normal]) / np.abs(r[normal])
    assert rel.max() <= 2e-6, f"{name}: max rel err {rel.max():.3g} at x={x[normal][rel.argmax()]}"
    assert np.all(np.abs(y[~normal] - r[~normal]) <= 1e-41)


@pytest.mark.parametrize("name,mod", TABLES)
def test_gelu_backward_dense_grid(name, mod):
    """gelu'(x) = Phi(x) + x phi(x) on the same grid (the table's Phi, an exact-form phi)."""
    x, _ = _gelu_grid()
    x64 = x.astype(np.float64)
    phi = 0.5 * _erfc(-x64 / math.sqrt(2))
    xpdf = x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    got = mod.gelu_backward(np.ones_like(x), x).astype(np.float64)
    err = np.abs(got - (phi + xpdf))
    assert np.all(err <= 2e-6 * (np.abs(phi) + np.abs(xpdf)) + 1e-41), f"{name}: worst at x={x[err.argmax()]}"


@pytest.mark.parametrize("name,mod", TABLES)
def test_softmax_extreme_logits(name, mod):
    x = np.array([[1e4, -1e4, 0, 3e38], [-3e38, -3e38, -1e30, -1e30], [88.8, -88.8, 104, -104],
                  [1e-40, 0, -1e-40, 1e-45]], dtype=np.float32)
    for axis in (0, 1):
        y = mod.softmax_forward(x, axis)
        ly = mod.log_softmax_forward(x, axis)
        assert np.all(np.isfinite(y)) and np.all(np.isfinite(ly))
        np.testing.assert_allclose(y.sum(axis=axis), 1.0, atol=1e-6)
        assert np.all(y >= 0) and np.all(ly <= 0)


@pytest.mark.parametrize("op", ["gelu", "sigmoid", "softmax", "relu"])
def test_threads_bit_identical(op):
    x = (np.random.default_rng(3).standard_normal((1111, 403)) * 5).astype(np.float32)
    f = (lambda: kernels.softmax(x, axis=0)) if op == "softmax" else (lambda: getattr(kernels, op)(x))
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        a = f()
        fastnn.set_num_threads(2)
        b = f()
    finally:
        fastnn.set_num_threads(old)
    assert np.array_equal(a, b)


def test_kernels_api_out_and_errors():
    x = np.array([[-1.0, 0.0, 2.0]], dtype=np.float32)
    assert kernels.relu(x).tolist() == [[0.0, 0.0, 2.0]]
    assert kernels.relu([-1, 3]).dtype == np.float32
    np.testing.assert_allclose(kernels.sigmoid(x), 1 / (1 + np.exp(-x.astype(np.float64))), rtol=1e-6)
    np.testing.assert_allclose(kernels.tanh(x), np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(kernels.leaky_relu(x), [[-0.2, 0.0, 2.0]], rtol=1e-6)
    out = np.empty_like(x)
    assert kernels.softmax(x, out=out) is out
    np.testing.assert_allclose(out, np_softmax(x, -1, False), rtol=1e-6)
    y = x.copy()
    kernels.relu(y, out=y)                     # in place
    assert y.tolist() == [[0.0, 0.0, 2.0]]
    with pytest.raises(ValueError, match=r"out has shape \(3,\), expected \(1, 3\)"):
        kernels.relu(x, out=np.empty(3, np.float32))
    with pytest.raises(ValueError, match="float32"):
        kernels.tanh(x, out=np.empty((1, 3)))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        kernels.softmax(x, axis=2)
    with pytest.raises(ValueError, match="different shapes"):
        _C.cpu.sigmoid_backward(np.ones(3, np.float32), np.ones(4, np.float32))
    assert kernels.softmax(np.zeros((0, 4), np.float32)).shape == (0, 4)


# ---- autograd Functions -----------------------------------------------------------------------------
def _gradcheck(fn, x):
    """fastnn.autograd.gradcheck when present, else central differences in float64 on float32 evals."""
    try:
        from fastnn.autograd import gradcheck
    except ImportError:
        gradcheck = None
    from fastnn.tensor import Tensor
    t = Tensor(x.copy(), requires_grad=True)
    if gradcheck is not None:
        assert gradcheck(fn, [t])
        return
    v = np.random.default_rng(0).standard_normal(fn(t).shape)
    fn(t).backward(v.astype(np.float32))
    num = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += 1e-3
        xm[i] -= 1e-3
        num[i] = ((fn(xp).data * v).sum() - (fn(xm).data * v).sum()) / (float(xp[i]) - float(xm[i]))
    np.testing.assert_allclose(t.grad.data, num, rtol=1e-2, atol=1e-3)


FUNCS = ["relu", "leaky_relu", "elu", "selu", "gelu", "silu", "softplus", "sigmoid", "tanh", "softmax", "log_softmax"]


@pytest.mark.parametrize("fname", FUNCS)
def test_function_gradients(fname):
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops import activation as A
    x = np.random.default_rng(4).uniform(-3, 3, (3, 5)).astype(np.float32)
    x[np.abs(x) < 0.05] = 0.3  # keep away from kinks
    f = getattr(A, fname)
    _gradcheck((lambda t: f(t, axis=0)) if "softmax" in fname else f, x)


@pytest.mark.parametrize("fname", FUNCS)
def test_functions_match_torch_float64(fname):
    torch = pytest.importorskip("torch")
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops import activation as A
    x = (np.random.default_rng(5).standard_normal((6, 7)) * 4).astype(np.float32)
    tf = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.2),
          "elu": torch.nn.functional.elu, "selu": torch.selu, "gelu": torch.nn.functional.gelu,
          "silu": torch.nn.functional.silu, "softplus": lambda t: torch.nn.functional.softplus(t, threshold=1e9),
          "sigmoid": torch.sigmoid, "tanh": torch.tanh, "softmax": lambda t: torch.softmax(t, 1),
          "log_softmax": lambda t: torch.log_softmax(t, 1)}[fname]
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = tf(xt)
    g = np.random.default_rng(6).standard_normal(x.shape)
    yt.backward(torch.tensor(g))
    from fastnn.tensor import Tensor
    t = Tensor(x, requires_grad=True)
    y = getattr(A, fname)(t)
    y.backward(g.astype(np.float32))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(t.grad.data, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_public_wrappers():
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops import activation as A
    from fastnn.tensor import Tensor
    t = A.relu(np.float32([-1, 2]))
    assert isinstance(t, Tensor) and t.data.tolist() == [0.0, 2.0]
    np.testing.assert_allclose(A.leaky_relu([-1.0], negative_slope=0.3).data, [-0.3], rtol=1e-6)
    np.testing.assert_allclose(A.elu([-1.0], alpha=2.0).data, [2 * math.expm1(-1)], rtol=1e-6)
    with pytest.raises(NotImplementedError):
        A.gelu([1.0], approximate=True)
