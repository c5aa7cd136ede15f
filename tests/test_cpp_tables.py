"""The C++ op tables as Python sees them: _C.unary_ops (the X-macro list of csrc/ops/unary_ops.h) names
every activation each backend binds; the activations added to it (softsign, hard_sigmoid, relu6) match
the float64 reference and numpy on every ISA; saves_output says what backward really needs."""
import numpy as np
import pytest

from fastnn import _C, backend

BACKENDS = [("ref", _C.ref)] + sorted(backend.tables().items())
ISAS = sorted(backend.tables().items())
OPS = {name: (saves, alpha) for name, saves, alpha, _ in _C.unary_ops}
SIZES = [1, 7, 17, 1000003]

# float64 forward and derivative of the activations added with the table
NEW = {
    "softsign": (lambda x: x / (1 + np.abs(x)), lambda x: 1 / (1 + np.abs(x)) ** 2),
    "hard_sigmoid": (lambda x: np.clip(x / 6 + 0.5, 0, 1), lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0.0)),
    "relu6": (lambda x: np.clip(x, 0, 6), lambda x: np.where((x > 0) & (x < 6), 1.0, 0.0)),
}
KINKS = {"softsign": [0.0], "hard_sigmoid": [-3.0, 3.0], "relu6": [0.0, 6.0]}


def test_unary_ops_format():
    assert isinstance(_C.unary_ops, tuple) and len(_C.unary_ops) == len(OPS)
    for entry in _C.unary_ops:
        name, saves, alpha, doc = entry
        assert isinstance(entry, tuple) and isinstance(name, str) and isinstance(saves, bool)
        assert alpha is None or isinstance(alpha, float)
        assert isinstance(doc, str) and doc
    assert OPS["leaky_relu"] == (False, pytest.approx(0.2)) and OPS["elu"] == (False, 1.0)
    assert {n for n, (_, a) in OPS.items() if a is not None} == {"leaky_relu", "elu"}
    assert {n for n, (s, _) in OPS.items() if s} == {"relu", "sigmoid", "tanh", "exp"}
    assert set(NEW) <= set(OPS)


@pytest.mark.parametrize("name,mod", BACKENDS)
def test_every_backend_binds_every_op(name, mod):
    for op in OPS:
        assert callable(getattr(mod, op + "_forward")) and callable(getattr(mod, op + "_backward")), (name, op)


def awkward(op, n, seed):
    """n float32 values: random, and values a few ulp or 1e-4 off each kink (never on one)."""
    rng = np.random.default_rng(seed)
    near = []
    for k in KINKS[op]:
        near += [np.nextafter(np.float32(k), np.float32(-np.inf)), np.nextafter(np.float32(k), np.float32(np.inf)),
                 k - 1e-4, k + 1e-4, k - 3e-7, k + 3e-7]
    x = np.concatenate([np.asarray(near, np.float32), (rng.standard_normal(n) * 4).astype(np.float32)])
    x = rng.permutation(x)[:n]
    assert not np.isin(x, KINKS[op]).any()
    return x


def assert_close(y, r, rtol, what):
    y, r = np.asarray(y, np.float64), np.asarray(r, np.float64)
    err = np.abs(y - r)
    bad = err > rtol * np.abs(r) + 1e-41
    assert not bad.any(), f"{what}: {np.count_nonzero(bad)} bad, e.g. {y[bad][:3]} vs {r[bad][:3]}"


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", sorted(NEW))
def test_new_reference_matches_numpy(op, n):
    f, df = NEW[op]
    x = awkward(op, n, n)
    g = np.random.default_rng(n + 1).standard_normal(n).astype(np.float32)
    x64 = x.astype(np.float64)
    assert_close(getattr(_C.ref, op + "_forward")(x), f(x64), 1.2e-7, f"ref {op} forward")
    assert_close(getattr(_C.ref, op + "_backward")(g, x), g * df(x64), 1.2e-7, f"ref {op} backward")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("op", sorted(NEW))
@pytest.mark.parametrize("name,mod", ISAS)
def test_new_isa_matches_reference(name, mod, op, n):
    x = awkward(op, n, 7 * n)
    g = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    y, ry = getattr(mod, op + "_forward")(x), getattr(_C.ref, op + "_forward")(x)
    assert_close(y, ry, 3e-7, f"{name} {op} forward")
    saved = y if OPS[op][0] else x
    assert_close(getattr(mod, op + "_backward")(g, saved), getattr(_C.ref, op + "_backward")(g, saved), 6e-7,
                 f"{name} {op} backward")
    out = np.empty_like(x)
    assert getattr(mod, op + "_forward")(x, out=out) is out and np.array_equal(out, y)


def test_new_ops_keep_nan():
    x = np.array([np.nan, -np.inf, np.inf, -1e30, 1e30], np.float32)
    for name, mod in BACKENDS:
        for op in NEW:
            y = getattr(mod, op + "_forward")(x)
            assert np.isnan(y[0]), (name, op)
            np.testing.assert_allclose(y[3:], NEW[op][0](x[3:].astype(np.float64)), rtol=1e-6, err_msg=f"{name} {op}")


@pytest.mark.parametrize("op", sorted(OPS))
def test_saves_output_matches_backward(op):
    """backward(1, saved) with saved = y or x as the table says equals the finite-difference slope of
    the forward (away from kinks; the ops that save y would give a different slope from x)."""
    saves, alpha = OPS[op]
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 3.0, 200) if op == "log" else rng.uniform(-2.5, 2.5, 200)
    x = x[np.abs(x) > 0.05].astype(np.float32)
    kw = {} if alpha is None else {"alpha": alpha}
    fwd = getattr(_C.ref, op + "_forward")
    h = np.float32(1e-2)
    slope = (fwd(x + h, **kw).astype(np.float64) - fwd(x - h, **kw)) / (2 * np.float64(h))
    saved = fwd(x, **kw) if saves else x
    for name, mod in BACKENDS:
        dx = getattr(mod, op + "_backward")(np.ones_like(x), saved, **kw)
        np.testing.assert_allclose(dx, slope, rtol=2e-3, atol=2e-3, err_msg=f"{name} {op}")


CONV_CASES = [  # (x shape, kernel shape, geometry): pointwise, few taps, Winograd, im2col with gaps, dilated
    ((2, 5, 5, 8), (1, 1, 8, 16), {}),
    ((2, 6, 6, 2), (3, 3, 2, 16), {"padding": "same"}),
    ((1, 8, 8, 8), (3, 3, 8, 16), {"padding": "same"}),
    ((2, 7, 7, 5), (2, 2, 5, 3), {"strides": 3}),
    ((1, 9, 9, 4), (3, 3, 4, 5), {"dilation_rate": 2, "padding": "same"}),
]


@pytest.mark.parametrize("xs,ks,geo", CONV_CASES)
def test_conv2d_backward_writes_its_gradients(xs, ks, geo):
    """Backward kernels overwrite: the gradients come back right in memory that held NaNs before."""
    rng = np.random.default_rng(0)
    x, k = rng.standard_normal(xs).astype(np.float32), rng.standard_normal(ks).astype(np.float32)
    g = rng.standard_normal(_C.ref.conv2d_forward(x, k, **geo).shape).astype(np.float32)
    want = _C.ref.conv2d_backward(g, x, k, **geo)
    for name, mod in BACKENDS:
        for _ in range(3):
            junk = [np.full(a.shape, np.nan, np.float32) for a in want]  # freed: the next arrays may reuse it
            del junk
            for got, ref in zip(mod.conv2d_backward(g, x, k, **geo), want):
                np.testing.assert_allclose(got, ref, rtol=2e-4, atol=2e-4, err_msg=name)
