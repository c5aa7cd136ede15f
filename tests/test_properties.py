"""Property-based tests (hypothesis): kernels on random shapes, strides and transposes against the naive
reference (every CPU table), and the public API's bad-input space: each call either works (and is right) or
raises ValueError/TypeError naming the argument; never a crash, a hang or a silent wrong answer.

CI runs a fixed, derandomized budget (seconds). A longer local run draws fresh examples:
    FASTNN_HYPOTHESIS=long python -m pytest -q tests/test_properties.py
"""
import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import fastnn  # noqa: E402
from fastnn import _C, backend, kernels  # noqa: E402

from _conv_util import assert_close  # noqa: E402
from op_table import BY_NAME  # noqa: E402
from test_activation import assert_close as act_close, assert_grad_close, saved_for  # noqa: E402

settings.register_profile("fastnn-ci", max_examples=25, derandomize=True, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
settings.register_profile("fastnn-long", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile("fastnn-long" if os.environ.get("FASTNN_HYPOTHESIS") == "long" else "fastnn-ci")
TABLES = sorted(backend.tables().items())
EPS = np.finfo(np.float32).eps

# sizes that hit register-tile edges (MR 6/8/12/16, NR 8/16/32, +-1), primes and 1
EDGE = st.sampled_from([1, 2, 3, 5, 6, 7, 8, 9, 11, 12, 13, 15, 16, 17, 23, 31, 32, 33, 47, 49, 64, 97])


def _rand(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# ---- kernels against their references ------------------------------------------------------------

@settings(PROFILE)
@given(m=EDGE, k=EDGE, n=EDGE, ta=st.booleans(), tb=st.booleans(), step=st.sampled_from([1, 2]),
       alpha=st.sampled_from([1.0, -0.5, 2.0]), beta=st.sampled_from([0.0, 1.0, 0.25]), seed=st.integers(0, 2**16))
def test_gemm_random_shapes_transposes_and_strides(m, k, n, ta, tb, step, alpha, beta, seed):
    rng = np.random.default_rng(seed)
    # a strided view (every step-th column) exercises leading dimensions larger than the row length
    a = _rand(rng, (k, m * step) if ta else (m, k * step))[:, ::step]
    b = _rand(rng, (n, k * step) if tb else (k, n * step))[:, ::step]
    c = _rand(rng, (m, n))
    A, Bm = (a.T if ta else a), (b.T if tb else b)
    want = alpha * (A.astype(np.float64) @ Bm.astype(np.float64)) + beta * c
    tol = 2 * (k + 2) * EPS * (abs(alpha) * (np.abs(A).astype(np.float64) @ np.abs(Bm)) + abs(beta) * np.abs(c)) + 1e-30
    for name, t in TABLES:
        try:
            got = t.gemm(A, Bm, c, alpha=alpha, beta=beta)
        except ValueError as e:  # a layout the binding does not take must be refused by name, never misread
            assert step > 1 and "contiguous" in str(e) or "stride" in str(e), (name, str(e))
            continue
        assert got.shape == (m, n)
        assert np.all(np.abs(got - want) <= tol), f"{name}: max err {np.abs(got - want).max()}"


@st.composite
def conv_cases(draw):
    B, C, OC = draw(st.sampled_from([1, 2, 3])), draw(EDGE.filter(lambda v: v <= 33)), draw(EDGE.filter(lambda v: v <= 33))
    KH, KW = draw(st.sampled_from([1, 2, 3, 5])), draw(st.sampled_from([1, 2, 3, 5]))
    s = (draw(st.sampled_from([1, 2, 3])), draw(st.sampled_from([1, 2])))
    d = (draw(st.sampled_from([1, 2])), draw(st.sampled_from([1, 2])))
    pad = draw(st.sampled_from(["valid", "same"]))
    H = draw(st.integers((KH - 1) * d[0] + 1 if pad == "valid" else 1, 12))
    W = draw(st.integers((KW - 1) * d[1] + 1 if pad == "valid" else 1, 12))
    return B, H, W, C, OC, KH, KW, s, d, pad


@settings(PROFILE)
@given(case=conv_cases(), seed=st.integers(0, 2**16))
def test_conv2d_random_geometry_every_table(case, seed):
    B, H, W, C, OC, KH, KW, s, d, pad = case
    rng = np.random.default_rng(seed)
    x, k, b = _rand(rng, (B, H, W, C)), _rand(rng, (KH, KW, C, OC)), _rand(rng, (OC,))
    geo = dict(strides=s, padding=pad, dilation_rate=d)
    want = _C.ref.conv2d_forward(x, k, b, **geo)
    g = _rand(rng, want.shape)
    rdx, rdk, rdb = _C.ref.conv2d_backward(g, x, k, **geo)
    for name, t in TABLES:
        assert_close(t.conv2d_forward(x, k, b, **geo), want, KH * KW * C, f"{name} forward {case}")
        dx, dk, db = t.conv2d_backward(g, x, k, **geo)
        assert_close(dx, rdx, KH * KW * OC, f"{name} dx {case}")
        assert_close(dk, rdk, max(g.size // OC, 1), f"{name} dkernel {case}")
        assert_close(db, rdb, max(g.size // OC, 1), f"{name} dbias {case}")


@settings(PROFILE)
@given(B=st.sampled_from([1, 2]), H=st.integers(1, 11), W=st.integers(1, 11), C=EDGE.filter(lambda v: v <= 33),
       p=st.sampled_from([1, 2, 3]), s=st.sampled_from([1, 2, 3]), pad=st.sampled_from(["valid", "same"]),
       kind=st.sampled_from(["max", "avg"]), seed=st.integers(0, 2**16))
def test_pool2d_random_geometry_every_table(B, H, W, C, p, s, pad, kind, seed):
    if pad == "valid" and p > min(H, W):
        return
    rng = np.random.default_rng(seed)
    x = _rand(rng, (B, H, W, C))
    fwd = f"{kind}pool2d_forward"
    geo = dict(pool_size=(p, p), strides=(s, s), padding=pad)
    want = getattr(_C.ref, fwd)(x, **geo)
    for name, t in TABLES:
        assert_close(getattr(t, fwd)(x, **geo), want, p * p, f"{name} {kind} pool")


@settings(PROFILE)
@given(op=st.sampled_from(sorted(BY_NAME)), n=st.integers(1, 300), scale=st.sampled_from([0.1, 1.0, 10.0, 80.0]),
       seed=st.integers(0, 2**16))
def test_unary_random_lengths_and_ranges_every_table(op, n, scale, seed):
    row = BY_NAME[op]
    if op in ("softmax", "log_softmax"):
        return
    x = _rand(np.random.default_rng(seed), (n,)) * np.float32(scale)
    x = np.abs(x) if row.positive else x
    dy = _rand(np.random.default_rng(seed + 1), (n,))
    s = saved_for(row, _C.ref, x)
    for name, t in TABLES:
        act_close(getattr(t, op + "_forward")(x), getattr(_C.ref, op + "_forward")(x), row.isa_rtol, f"{name} {op}")
        assert_grad_close(row, getattr(t, op + "_backward")(dy, s), getattr(_C.ref, op + "_backward")(dy, s), dy, s,
                          f"{name} {op}")


@settings(PROFILE)
@given(rows=EDGE, cols=EDGE, seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 30.0]))
def test_softmax_random_shapes_every_table(rows, cols, seed, scale):
    x = _rand(np.random.default_rng(seed), (rows, cols)) * np.float32(scale)
    want = _C.ref.softmax_forward(x)
    for name, t in TABLES:
        np.testing.assert_allclose(t.softmax_forward(x), want, rtol=1e-5, atol=1e-7, err_msg=name)


# ---- the public API's bad-input space ------------------------------------------------------------

DTYPES = [np.float32, np.float64, np.int32, np.uint8, np.bool_, np.complex64, object]


@st.composite
def arrays(draw, max_rank=3):
    rank = draw(st.integers(0, max_rank))
    shape = tuple(draw(st.sampled_from([0, 1, 2, 3, 5])) for _ in range(rank))
    dtype = draw(st.sampled_from(DTYPES))
    a = np.ones(shape, dtype=dtype) if dtype is not object else np.empty(shape, dtype=object)
    if draw(st.booleans()) and a.ndim >= 1 and a.shape[-1] > 1:
        a = a[..., ::2]  # non-contiguous
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


def _works_or_names(call, *names):
    """Run ``call``: success, or a ValueError/TypeError whose message names one of ``names``."""
    try:
        return call()
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert any(n in msg for n in names), f"error does not name {names}: {type(e).__name__}: {msg}"
        return e


@settings(PROFILE)
@given(a=arrays(), b=arrays(), out=st.one_of(st.none(), arrays()))
def test_gemm_bad_inputs(a, b, out):
    r = _works_or_names(lambda: kernels.gemm(a, b, out=out), "gemm", "a", "b", "out")
    if isinstance(r, np.ndarray):
        np.testing.assert_allclose(r, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-5)


@settings(PROFILE)
@given(x=arrays(max_rank=2), op=st.sampled_from(["relu", "exp", "tanh", "sigmoid"]),
       out=st.one_of(st.none(), arrays(max_rank=2)))
def test_unary_bad_inputs(x, op, out):
    r = _works_or_names(lambda: getattr(kernels, op)(x, out=out), op, "x", "out")
    if isinstance(r, np.ndarray):
        ref = {"relu": lambda v: np.maximum(v, 0), "exp": np.exp, "tanh": np.tanh,
               "sigmoid": lambda v: 1 / (1 + np.exp(-v))}[op](x.astype(np.float64))
        np.testing.assert_allclose(r, ref, rtol=1e-5, atol=1e-6)


BAD_NUMBERS = st.sampled_from([0, -1, -3, 1.5, 2.0, "3", None, 2**70, float("nan"), float("inf"), True, (2, 2)])


@settings(PROFILE)
@given(units=BAD_NUMBERS)
def test_dense_units(units):
    def build():
        layer = fastnn.layers.Dense(units)
        return layer(np.ones((2, 3), np.float32))
    r = _works_or_names(build, "units", "dense")
    if not isinstance(r, Exception):
        assert isinstance(units, int) and not isinstance(units, bool) and units > 0 and r.shape == (2, units)


@settings(PROFILE)
@given(filters=st.sampled_from([1, 4, 0, -2, 2.5]), kernel_size=BAD_NUMBERS, strides=BAD_NUMBERS,
       padding=st.sampled_from(["valid", "same", "causal", "VALID", "full", 3]),
       dilation_rate=st.sampled_from([1, 2, 0, -1, 1.5, (1, 2), 2**64]))
def test_conv2d_arguments(filters, kernel_size, strides, padding, dilation_rate):
    def build():
        layer = fastnn.layers.Conv2D(filters, kernel_size, strides=strides, padding=padding,
                                     dilation_rate=dilation_rate)
        return layer(np.ones((1, 6, 6, 2), np.float32))
    r = _works_or_names(build, "filters", "kernel_size", "strides", "padding", "dilation_rate", "Conv2D", "conv2d")
    if not isinstance(r, Exception):
        assert r.shape[0] == 1 and r.shape[-1] == filters and min(r.shape) >= 0


@pytest.fixture(scope="module")
def tiny_model():
    fastnn.utils.set_random_seed(0)
    model = fastnn.Sequential([fastnn.Input((4,)), fastnn.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


@settings(PROFILE)
@given(n=st.sampled_from([1, 3, 7]), ny=st.sampled_from([1, 3, 7]), batch_size=BAD_NUMBERS,
       epochs=st.sampled_from([0, 1, 2, -1, 1.5, None, "2"]),
       labels=st.sampled_from(["ok", "negative", "too_big", "nan", "inf", "float"]))
def test_fit_bad_arguments(tiny_model, n, ny, batch_size, epochs, labels):
    x = np.ones((n, 4), np.float32)
    y = {"ok": np.zeros(ny, np.int64), "negative": -np.ones(ny, np.int64), "too_big": np.full(ny, 3),
         "nan": np.full(ny, np.nan), "inf": np.full(ny, np.inf), "float": np.full(ny, 0.5)}[labels]
    r = _works_or_names(lambda: tiny_model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0),
                        "batch_size", "epochs", "label", "y", "x", "samples", "target")
    if not isinstance(r, Exception):
        assert n == ny and labels == "ok"
        assert all(np.isfinite(v) for v in r.history.get("loss", []))
