"""Dropout: the Philox-4x32-10 mask (known-answer vectors, counter layout), the same mask on every
ISA and thread count, keep statistics, inverted scaling, and the autograd Function."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

TABLES = sorted(backend.tables().items())
M = 0xFFFFFFFF


def philox4x32_10(ctr, key):
    """Pure-Python Philox-4x32-10 (Salmon et al. 2011)."""
    c0, c1, c2, c3 = ctr
    k0, k1 = key
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0) & M, p1 & M, ((p0 >> 32) ^ c3 ^ k1) & M, p0 & M
        k0, k1 = (k0 + 0x9E3779B9) & M, (k1 + 0xBB67AE85) & M
    return c0, c1, c2, c3


def test_philox_known_answers():
    # Random123's kat_vectors for philox4x32_10
    assert philox4x32_10((0, 0, 0, 0), (0, 0)) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)
    assert philox4x32_10((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0)) == (
        0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)


def test_mask_follows_the_documented_counter_layout():
    n, rate, seed, offset = 200, 0.5, (7 << 32) | 123, (3 << 32) | 9
    y = _C.ref.dropout(np.ones(n, np.float32), rate, seed, offset)
    thr = int(rate * 2**32)
    for i in range(n):
        c = (i // 64) * 16 + i % 16
        w = philox4x32_10((c & M, c >> 32, offset & M, offset >> 32), (seed & M, seed >> 32))[(i % 64) // 16]
        assert (y[i] != 0) == (w >= thr), i


@pytest.mark.parametrize("name,mod", TABLES)
@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, 100003])
def test_same_mask_as_reference(name, mod, n):
    x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    for rate, seed, offset in ((0.5, 1, 0), (0.1, 2**40 + 5, 17), (0.9, 0, 2**33)):
        assert np.array_equal(mod.dropout(x, rate, seed, offset), _C.ref.dropout(x, rate, seed, offset))


def test_statistics_scaling_and_reproducibility():
    n = 1 << 20
    x = np.ones(n, np.float32)
    old = fastnn.get_num_threads()
    try:
        for rate in (0.1, 0.25, 0.5, 0.8):
            fastnn.set_num_threads(2)
            y = _C.cpu.dropout(x, rate, 42, 0)
            fastnn.set_num_threads(1)
            assert np.array_equal(y, _C.cpu.dropout(x, rate, 42, 0))
            kept = y != 0
            sigma = np.sqrt(rate * (1 - rate) / n)
            assert abs(kept.mean() - (1 - rate)) < 5 * sigma
            assert np.all(y[kept] == np.float32(1) / np.float32(1 - rate))  # Keras: x / (1 - rate)
            # neighbouring elements are independent: P(both kept) = keep^2
            both = (kept[:-1] & kept[1:]).mean()
            assert abs(both - (1 - rate) ** 2) < 6 * np.sqrt((1 - rate) ** 2 / n)
    finally:
        fastnn.set_num_threads(old)
    a, b, c = (_C.cpu.dropout(x[:4096], 0.5, s, o) for s, o in ((1, 0), (2, 0), (1, 1)))
    assert not np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(_C.cpu.dropout(x[:77], 0.0, 1, 0), x[:77])


def test_rate_is_checked():
    for rate in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            _C.cpu.dropout(np.ones(4, np.float32), rate, 0)


def test_dropout_function():
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops.activation import dropout
    from fastnn.tensor import Tensor
    x = Tensor(np.random.default_rng(1).standard_normal((8, 16)).astype(np.float32), requires_grad=True)
    y = dropout(x, 0.25, seed=5)
    y.backward(np.ones((8, 16), np.float32))
    mask = y.data != 0
    np.testing.assert_array_equal(x.grad.data, np.where(mask, np.float32(1) / np.float32(0.75), 0))
    np.testing.assert_array_equal(dropout(x, 0.25, seed=5).data, y.data)
    assert dropout(x, 0.5, training=False) is x
    np.testing.assert_array_equal(dropout(x.data, 0.0).data, x.data)
    with pytest.raises(ValueError, match="rate"):
        dropout(x, 1.0)
    np.random.seed(3)
    a = dropout(x, 0.5).data
    np.random.seed(3)
    assert np.array_equal(a, dropout(x, 0.5).data)
