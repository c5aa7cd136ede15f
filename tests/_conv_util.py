"""Shared helpers of the convolution/pooling tests: TF 'same' padding, tolerance, thread control."""
import contextlib

import numpy as np

import fastnn


def tf_pads(n, k, s, d, padding):
    """(out, pad_before, pad_after) of one axis by the TF rule (independent of the C++ code)."""
    span = (k - 1) * d + 1
    if padding == "valid":
        return (n - span) // s + 1, 0, 0
    out = -(-n // s)
    total = max((out - 1) * s + span - n, 0)
    return out, total // 2, total - total // 2


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def assert_close(got, want, n, what=""):
    """float32 results of sums of n products: error grows like sqrt(n) times the magnitude."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    tol = 2e-6 * np.sqrt(max(n, 1)) * (1.0 + np.abs(want).max(initial=0.0))
    err = np.abs(got - want).max(initial=0.0)
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:.3g}"


@contextlib.contextmanager
def threads(n):
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(n)
    try:
        yield
    finally:
        fastnn.set_num_threads(old)
