"""SGEMM: every CPU table against the naive reference and a float64 numpy product."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

TABLES = sorted(backend.tables().items())
EPS = np.finfo(np.float32).eps


def rand(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def expected(a, b, c=None, alpha=1.0, beta=0.0, bias=None, relu=False):
    """float64 result and an error bound scaled by K: |err| <= 2*(K+2)*eps*(|alpha||a||b| + |beta c|)."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    r = alpha * (a64 @ b64)
    mag = abs(alpha) * (np.abs(a64) @ np.abs(b64))
    if beta != 0.0:
        r = r + beta * c.astype(np.float64)
        mag = mag + abs(beta) * np.abs(c.astype(np.float64))
    if bias is not None:
        r = r + bias
        mag = mag + np.abs(bias)
    if relu:
        r = np.maximum(r, 0.0)
    return r, 2 * (a.shape[1] + 2) * EPS * mag + 1e-30


def check(got, a, b, **kw):
    r, tol = expected(a, b, **kw)
    assert got.dtype == np.float32 and got.shape == r.shape
    err = np.abs(got - r)
    assert np.all(err <= tol), f"max err {err.max()} at {np.unravel_index(np.argmax(err - tol), err.shape)}"


def op(x, t):
    return x.T if t else x


# Edge sizes for every ISA's tiles: MR 6/8/12/16 (+-1), NR 4/8/16/32 (+-1), KC 512 (+1), primes.
SHAPES = [  # (M, K, N)
    (1, 1, 1), (1, 7, 1), (2, 3, 5), (5, 11, 7), (6, 16, 8), (7, 17, 9), (7, 5, 33), (8, 6, 32), (9, 7, 31),
    (17, 4, 40), (15, 3, 16), (16, 2, 15), (17, 5, 14), (11, 13, 31), (12, 32, 32),
    (13, 29, 33), (23, 5, 15), (24, 8, 16), (25, 9, 17), (3, 257, 47), (37, 256, 48), (41, 513, 49),
    (1000, 7, 3), (4, 9, 1000), (1, 300, 97), (97, 300, 1),
]


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_shapes_and_transposes(name, mod, ta, tb):
    rng = np.random.default_rng(1)
    for (m, k, n) in SHAPES:
        a, b = rand(rng, m, k), rand(rng, k, n)
        A, B = (np.ascontiguousarray(a.T) if ta else a), (np.ascontiguousarray(b.T) if tb else b)
        got = mod.gemm(A, B, trans_a=ta, trans_b=tb)
        check(got, a, b)
        ref = _C.ref.gemm(A, B, trans_a=ta, trans_b=tb)
        r, tol = expected(a, b)
        assert np.all(np.abs(got - ref) <= 2 * tol), (m, k, n)


@pytest.mark.parametrize("name,mod", TABLES)
def test_large(name, mod):
    rng = np.random.default_rng(2)
    a, b = rand(rng, 301, 600), rand(rng, 600, 530)
    check(mod.gemm(a, b), a, b)
    at, bt = np.ascontiguousarray(a.T), np.ascontiguousarray(b.T)
    check(mod.gemm(at, bt, trans_a=True, trans_b=True), a, b)


@pytest.mark.parametrize("name,mod", TABLES)
def test_alpha_beta(name, mod):
    rng = np.random.default_rng(3)
    for (m, k, n) in [(13, 29, 33), (50, 300, 70), (25, 9, 17)]:
        a, b, c = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n)
        c0 = c.copy()
        check(mod.gemm(a, b, c, alpha=0.5, beta=-2.0), a, b, c=c, alpha=0.5, beta=-2.0)
        assert np.array_equal(c, c0), "c must not be modified"
        out = np.empty((m, n), np.float32)
        r = mod.gemm(a, b, c, beta=1.0, out=out)
        assert r is out or np.shares_memory(r, out)
        check(out, a, b, c=c, beta=1.0)
        # beta == 0: c is write-only, its NaNs are not propagated.
        out[:] = np.nan
        mod.gemm(a, b, alpha=2.0, out=out)
        check(out, a, b, alpha=2.0)


@pytest.mark.parametrize("name,mod", TABLES)
def test_strided_views(name, mod):
    rng = np.random.default_rng(4)
    big_a, big_b = rand(rng, 80, 90), rand(rng, 100, 120)
    views = [
        (big_a[::2, ::3], big_b[:30, ::3]),            # (40, 30) @ (30, 40)
        (big_a[::-2, ::-3], big_b[-1:-61:-2, ::-3]),   # negative strides
        (big_a[3:70, 5:40], big_b[7:42, 1:111]),       # offset sub-blocks, row stride != width
    ]
    for a, b in views:
        check(mod.gemm(a, b), a, b)
        check(mod.gemm(a.T, b.T, trans_a=True, trans_b=True), a, b)
        c = rand(rng, 2 * a.shape[0], 2 * b.shape[1])[::-2, ::2]
        check(mod.gemm(a, b, c, beta=0.5), a, b, c=c, beta=0.5)


@pytest.mark.parametrize("name,mod", TABLES)
def test_bias_relu_epilogue(name, mod):
    rng = np.random.default_rng(5)
    # (40, 50, 7) and (100, 20, 12) with trans_a take the narrow-N path that computes C^T.
    for (m, k, n) in [(1, 1, 1), (13, 29, 33), (25, 9, 17), (20, 600, 40), (7, 3, 10), (40, 50, 7), (100, 20, 12)]:
        a, b, c, bias = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n), rand(rng, n)
        for ta in (False, True):
            A = np.ascontiguousarray(a.T) if ta else a
            check(mod.gemm(A, b, trans_a=ta, bias=bias), a, b, bias=bias)
            check(mod.gemm(A, b, trans_a=ta, bias=bias, activation="relu"), a, b, bias=bias, relu=True)
            check(mod.gemm(A, b, c, trans_a=ta, alpha=-1.5, beta=1.0, bias=bias, activation="relu"),
                  a, b, c=c, alpha=-1.5, beta=1.0, bias=bias, relu=True)
            got = mod.gemm(A, b, trans_a=ta, activation="relu")
            check(got, a, b, relu=True)
            assert got.min() >= 0.0


@pytest.mark.parametrize("name,mod", TABLES)
def test_k_zero(name, mod):
    rng = np.random.default_rng(6)
    a, b, c, bias = np.zeros((5, 0), np.float32), np.zeros((0, 40), np.float32), rand(rng, 5, 40), rand(rng, 40)
    np.testing.assert_array_equal(mod.gemm(a, b), np.zeros((5, 40), np.float32))
    np.testing.assert_allclose(mod.gemm(a, b, c, beta=2.0, bias=bias), 2 * c + bias, rtol=1e-6)
    assert mod.gemm(np.zeros((0, 3), np.float32), np.zeros((3, 4), np.float32)).shape == (0, 4)


def test_kernels_gemm_float64_and_lists():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((9, 14)), rng.standard_normal((14, 6))
    got = fastnn.kernels.gemm(a, b)
    assert got.dtype == np.float32
    check(got, a.astype(np.float32), b.astype(np.float32))
    assert fastnn.kernels.gemm(np.eye(2), [[1, 2], [3, 4]]).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    check(fastnn.kernels.gemm(a.T, b, trans_a=True), a.astype(np.float32), b.astype(np.float32))


@pytest.mark.parametrize("name,mod", TABLES)
def test_shape_errors(name, mod):
    a, b = np.ones((3, 4), np.float32), np.ones((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"inner dimensions differ.*\(3, 4\).*\(5, 6\)"):
        mod.gemm(a, b)
    with pytest.raises(ValueError, match="must be 2-D"):
        mod.gemm(np.ones(4, np.float32), b)
    with pytest.raises(ValueError, match="inner dimensions differ"):
        mod.gemm(a, b, trans_b=True)
    b = np.ones((4, 6), np.float32)
    with pytest.raises(ValueError, match=r"c has shape \(2, 6\), expected \(3, 6\)"):
        mod.gemm(a, b, np.ones((2, 6), np.float32), beta=1.0)
    with pytest.raises(ValueError, match="bias has shape"):
        mod.gemm(a, b, bias=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="activation"):
        mod.gemm(a, b, activation="tanh")
    with pytest.raises(ValueError):
        mod.gemm(a, b, out=np.empty((3, 5), np.float32))


@pytest.mark.parametrize("name,mod", TABLES)
def test_bit_identical_1_vs_2_threads(name, mod):
    rng = np.random.default_rng(8)
    old = fastnn.get_num_threads()
    # Large enough to run parallel: ic split (tall), jr split (short and wide), narrow N, K > KC.
    shapes = [(700, 600, 96), (40, 530, 900), (2000, 300, 10), (130, 1100, 260)]
    try:
        for (m, k, n) in shapes:
            a, b, c, bias = rand(rng, m, k), rand(rng, k, n), rand(rng, m, n), rand(rng, n)
            outs = []
            for t in (1, 2):
                fastnn.set_num_threads(t)
                outs.append(mod.gemm(a, b, c, alpha=0.7, beta=0.3, bias=bias, activation="relu"))
                outs.append(mod.gemm(a.T.copy(), b.T.copy(), trans_a=True, trans_b=True))
            assert np.array_equal(outs[0], outs[2]) and np.array_equal(outs[1], outs[3]), (m, k, n)
    finally:
        fastnn.set_num_threads(old)
