"""Activation and softmax kernels (every ISA table vs the float64 reference and numpy), their
saturation behaviour, thread determinism, the kernels API, and the autograd Functions. The per-op
formulas, twins, domains and tolerances are the rows of op_table."""
import functools
import math

import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, kernels
from op_table import BY_NAME, ROWS, UNARY, derivative, erfc, forward, near_kinks, sample, softmax as np_softmax

TABLES = sorted(backend.tables().items())
UNARY_OPS = [r.name for r in UNARY]
KINKED = [r.name for r in UNARY if r.kinks]
FLT_MIN, FLT_MAX, DENORM = 1.1754944e-38, 3.4028235e38, 1.4e-45
SIZES = [1, 7, 17, 1000003]  # one element, ragged vector tails, and every thread's share of a long array


def inputs(row, n=20000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.standard_normal(n) * 10, rng.standard_normal(n), rng.uniform(-100, 100, n),
                        [0, 1e-40, -1e-40, 1e-45, 88.8, -88.8, 1e4, -1e4, 89, -89, 104, -104, 3e38, -3e38]])
    x = x.astype(np.float32)
    return np.abs(x) if row.positive else x


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


def assert_grad_close(row, got, ref, dy, saved, what):
    """An ISA gradient against the reference's at the row's bwd_rtol (relative, or to the gradient's
    scale |dy| * (|saved| + 1)); inf/NaN positions must match."""
    got, ref = got.astype(np.float64), ref.astype(np.float64)
    assert np.array_equal(np.isfinite(got), np.isfinite(ref)), what
    fin = np.isfinite(ref)
    scale = np.abs(ref[fin]) if row.bwd_rel else np.abs(dy[fin]) * (np.abs(saved[fin]) + 1)
    bad = np.abs(got[fin] - ref[fin]) > row.bwd_rtol * scale + 4 * DENORM
    assert not bad.any(), f"{what} backward: {np.count_nonzero(bad)} bad, e.g. {got[fin][bad][:3]} vs {ref[fin][bad][:3]}"


def alphas(row):
    """Keyword sets to run a kernel with: the default, and a second alpha where the op has one."""
    return [{}] if row.alpha is None else [{"alpha": 0.2}, {"alpha": 1.7}]


def saved_for(row, mod, x, **kw):
    return getattr(mod, row.name + "_forward")(x, **kw) if row.saves else x


@pytest.mark.parametrize("op", UNARY_OPS)
def test_reference_matches_numpy(op):
    """Forward, and backward against the closed-form derivative, extremes included."""
    row = BY_NAME[op]
    x = inputs(row, 2000)
    g = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    for kw in alphas(row):
        saved = saved_for(row, _C.ref, x, **kw)
        with np.errstate(over="ignore"):  # float32 rounding of the formulas: exp of large x is inf, as the kernel gives
            r = forward(row, x, **kw).astype(np.float32)
            dr = (g * derivative(row, saved, **kw)).astype(np.float32)
        assert_close(getattr(_C.ref, op + "_forward")(x, **kw), r, row.ref_rtol, f"ref {op} {kw}")
        assert_close(getattr(_C.ref, op + "_backward")(g, saved, **kw), dr, row.ref_rtol, f"ref {op} backward {kw}")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", KINKED)
def test_reference_near_kinks_matches_numpy(op, n):
    """Forward and backward a few ulp off each kink, at every length."""
    row = BY_NAME[op]
    x = near_kinks(row, n, n)
    g = np.random.default_rng(n + 1).standard_normal(n).astype(np.float32)
    for kw in alphas(row):
        assert_close(getattr(_C.ref, op + "_forward")(x, **kw), forward(row, x, **kw), row.ref_rtol,
                     f"ref {op} forward {kw}")
        saved = saved_for(row, _C.ref, x, **kw)
        assert_close(getattr(_C.ref, op + "_backward")(g, saved, **kw), g * derivative(row, saved, **kw),
                     row.ref_rtol, f"ref {op} backward {kw}")


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary_forward_matches_reference(name, mod, op):
    row = BY_NAME[op]
    x = inputs(row)
    for kw in alphas(row):
        assert_close(getattr(mod, op + "_forward")(x, **kw), getattr(_C.ref, op + "_forward")(x, **kw), row.isa_rtol,
                     f"{name} {op} {kw}")


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("op", UNARY_OPS)
def test_unary_backward_matches_reference(name, mod, op):
    row = BY_NAME[op]
    x = inputs(row, 5000)
    dy = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    s = saved_for(row, _C.ref, x)
    assert_grad_close(row, getattr(mod, op + "_backward")(dy, s), getattr(_C.ref, op + "_backward")(dy, s), dy, s,
                      f"{name} {op}")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", KINKED)
@pytest.mark.parametrize("name,mod", TABLES)
def test_isa_near_kinks_matches_reference(name, mod, op, n):
    """Every length (vector tails, threads' shares) a few ulp off the kinks; out= writes in place."""
    row = BY_NAME[op]
    x = near_kinks(row, n, 7 * n)
    g = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    y, ry = getattr(mod, op + "_forward")(x), getattr(_C.ref, op + "_forward")(x)
    assert_close(y, ry, row.isa_rtol, f"{name} {op} forward")
    saved = y if row.saves else x
    assert_grad_close(row, getattr(mod, op + "_backward")(g, saved), getattr(_C.ref, op + "_backward")(g, saved), g,
                      saved, f"{name} {op}")
    out = np.empty_like(x)
    assert getattr(mod, op + "_forward")(x, out=out) is out and np.array_equal(out, y)


@pytest.mark.parametrize("op", UNARY_OPS)
def test_nan_and_infinities(op):
    """NaN stays NaN; +-inf and +-1e30 give the formula's limits, on every backend."""
    row = BY_NAME[op]
    x = np.array([np.nan, -np.inf, np.inf, -1e30, 1e30], np.float32)
    x = np.abs(x) if row.positive else x
    for name, mod in [("ref", _C.ref)] + TABLES:
        y = getattr(mod, op + "_forward")(x)
        assert np.isnan(y[0]), name
        np.testing.assert_allclose(y[1:], forward(row, x[1:]), rtol=1e-6, err_msg=f"{name} {op}")


@pytest.mark.parametrize("name,mod", TABLES)
def test_sigmoid_tanh_exp_within_2e6_of_float64(name, mod):
    x = np.linspace(-100, 100, 400001, dtype=np.float32)
    for op in ("sigmoid", "tanh", "exp"):
        r = forward(BY_NAME[op], x)
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
    for row in UNARY:
        op = row.name
        x = np.abs(ext) if row.positive else ext
        y = getattr(mod, op + "_forward")(x)
        if op == "exp":
            assert np.all(np.isfinite(y[x < 88.7])) and np.all(np.isinf(y[x > 88.8]))
        elif op == "log":
            assert np.all(np.isfinite(y[x > 0])) and np.all(y[x == 0] == -np.inf)
        else:
            assert np.all(np.isfinite(y)), f"{name} {op}: {y}"
        g = getattr(mod, op + "_backward")(np.ones_like(x), y if row.saves else x)
        if op not in ("exp", "log"):
            assert np.all(np.isfinite(g)), f"{name} {op} backward: {g}"
    assert mod.sigmoid_forward(np.float32([-1e4, 1e4])).tolist() == [0.0, 1.0]
    assert mod.tanh_forward(np.float32([-1e4, 1e4])).tolist() == [-1.0, 1.0]
    assert np.isnan(mod.tanh_forward(np.float32([np.nan]))[0]) and np.isnan(mod.relu_forward(np.float32([np.nan]))[0])


SOFTMAX_CASES = [((7,), -1), ((5, 3), -1), ((4, 130), 1), ((3, 17, 5), 1), ((3, 17, 5), 0), ((2, 3, 37), -1),
                 ((2, 9, 20), 1), ((1, 1), 0)]


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
    return x, forward(BY_NAME["gelu"], x)


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
    phi = 0.5 * erfc(-x64 / math.sqrt(2))
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
def _function(row):
    """The op-set Function of a row, applied with its default keywords."""
    from fastnn._ops import activation as A
    if row.name in A.UNARY:
        cls, alpha = A.UNARY[row.name]
        return lambda t: cls.apply(t, **({} if alpha is None else {"alpha": alpha}))
    return {"softmax": A.Softmax, "log_softmax": A.LogSoftmax}[row.name].apply


@pytest.mark.parametrize("op", [r.name for r in ROWS])
def test_function_gradients(op):
    from fastnn.autograd import gradcheck
    from fastnn.tensor import Tensor
    row = BY_NAME[op]
    x = sample(row, (3, 5), 4)
    np.testing.assert_allclose(_function(row)(x).data, forward(row, x), rtol=2e-6, atol=1e-6)
    assert gradcheck(_function(row), [Tensor(x, requires_grad=True)])


@pytest.mark.parametrize("op", [r.name for r in ROWS if r.twin])
def test_functions_match_torch_float64(op):
    """Value and gradient of the public function (default arguments) against torch's twin."""
    torch = pytest.importorskip("torch")
    from fastnn._ops import activation as A
    from fastnn.tensor import Tensor
    row = BY_NAME[op]
    x = sample(row, (6, 7), 5, spread=8.0)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    yt = row.twin(xt) if row.alpha is None else row.twin(xt, row.alpha)
    g = np.random.default_rng(6).standard_normal(x.shape)
    yt.backward(torch.tensor(g))
    t = Tensor(x, requires_grad=True)
    y = getattr(A, op)(t)
    y.backward(g.astype(np.float32))
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(t.grad.data, xt.grad.numpy(), rtol=1e-5, atol=1e-5)


def test_public_wrappers():
    from fastnn._ops import activation as A
    from fastnn.tensor import Tensor
    t = A.relu(np.float32([-1, 2]))
    assert isinstance(t, Tensor) and t.data.tolist() == [0.0, 2.0]
    np.testing.assert_allclose(A.leaky_relu([-1.0], negative_slope=0.3).data, [-0.3], rtol=1e-6)
    np.testing.assert_allclose(A.elu([-1.0], alpha=2.0).data, [2 * math.expm1(-1)], rtol=1e-6)
    with pytest.raises(NotImplementedError):
        A.gelu([1.0], approximate=True)
