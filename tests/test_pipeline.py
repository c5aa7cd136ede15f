"""fastnn._pipeline.BatchLoader: gather/cast correctness vs numpy, deterministic shuffling, epochs
covering every sample once, the last partial batch, errors, and no growth over many epochs."""
import gc
import os
import tracemalloc

import numpy as np
import pytest

from fastnn import random as frandom
from fastnn._pipeline import BatchLoader

RNG = np.random.default_rng(0)
N = 37


def make_x(dtype, shape=(N, 3, 4)):
    if np.dtype(dtype).kind in "iu":
        return RNG.integers(0, 100, shape).astype(dtype)
    if np.dtype(dtype).kind == "b":
        return RNG.integers(0, 2, shape).astype(bool)
    return RNG.normal(size=shape).astype(dtype)


def run_epoch(loader, epoch=None):
    """All batches of an epoch, copied (the loader reuses its buffers)."""
    return [(xb.copy(), None if yb is None else yb.copy()) for xb, yb in loader.epoch(epoch)]


@pytest.mark.parametrize("prefetch", [True, False])
@pytest.mark.parametrize("xdtype", [np.uint8, np.float32, np.float64, np.int16, np.float16, ">f4"])
@pytest.mark.parametrize("ydtype, yshape", [(np.uint8, (N,)), (np.int32, (N,)), (np.int64, (N, 1)),
                                            (np.int16, (N,)), (np.float32, (N, 5)), (np.float64, (N, 2, 2)),
                                            (bool, (N,)), (None, None)])
def test_gather_matches_numpy(prefetch, xdtype, ydtype, yshape):
    x = make_x(xdtype)
    y = None if ydtype is None else make_x(ydtype, yshape)
    loader = BatchLoader(x, y, batch_size=8, shuffle=True, seed=3, prefetch=prefetch)
    order = loader.epoch_indices(0)
    batches = run_epoch(loader, 0)
    assert len(batches) == len(loader) == 5
    for k, (xb, yb) in enumerate(batches):
        idx = order[k * 8:(k + 1) * 8]
        assert xb.dtype == np.float32 and xb.shape == (len(idx), 3, 4)
        np.testing.assert_array_equal(xb, x[idx].astype(np.float32))
        if y is None:
            assert yb is None
        else:
            want = np.int64 if np.dtype(ydtype).kind in "iu" else np.float32
            assert yb.dtype == want and yb.shape == (len(idx),) + y.shape[1:]
            np.testing.assert_array_equal(yb, y[idx].astype(want))


def test_non_contiguous_and_list_inputs():
    base = make_x(np.float64, (N, 6))
    x = base[:, ::2]                              # strided view
    y = list(range(N))
    loader = BatchLoader(x, y, batch_size=10, shuffle=False, prefetch=False)
    xb, yb = next(iter(loader))
    np.testing.assert_array_equal(xb, x[:10].astype(np.float32))
    np.testing.assert_array_equal(yb, np.arange(10))


def test_epochs_cover_every_sample_once_and_last_batch():
    x = np.arange(N, dtype=np.float32).reshape(N, 1)
    y = np.arange(N, dtype=np.int64)
    loader = BatchLoader(x, y, batch_size=10, shuffle=True, seed=11)
    orders = []
    for epoch in range(4):
        batches = run_epoch(loader)
        assert [len(yb) for _, yb in batches] == [10, 10, 10, 7]
        seen = np.concatenate([yb for _, yb in batches])
        np.testing.assert_array_equal(np.sort(seen), np.arange(N))
        np.testing.assert_array_equal(seen, loader.epoch_indices(epoch))
        np.testing.assert_array_equal(np.concatenate([xb[:, 0] for xb, _ in batches]), seen)
        orders.append(seen)
    assert len({o.tobytes() for o in orders}) == 4                  # a new order each epoch
    one = BatchLoader(x, y, batch_size=100)                         # batch larger than the data
    batches = run_epoch(one)
    assert len(batches) == 1 and batches[0][0].shape == (N, 1)


def test_shuffling_deterministic_per_seed():
    x = make_x(np.uint8, (50, 2))
    a = BatchLoader(x, batch_size=7, seed=5)
    b = BatchLoader(x, batch_size=7, seed=5, prefetch=False)
    c = BatchLoader(x, batch_size=7, seed=6)
    for epoch in (2, 0, 1):                                         # any order of epochs
        ea, eb, ec = run_epoch(a, epoch), run_epoch(b, epoch), run_epoch(c, epoch)
        assert all(np.array_equal(p[0], q[0]) for p, q in zip(ea, eb))
        assert not all(np.array_equal(p[0], q[0]) for p, q in zip(ea, ec))
    np.testing.assert_array_equal(a.epoch_indices(3), BatchLoader(x, seed=5).epoch_indices(3))
    # seed=None draws from fastnn.random: reproducible after set_random_seed
    frandom.set_random_seed(42)
    s1 = BatchLoader(x).seed
    frandom.set_random_seed(42)
    assert BatchLoader(x).seed == s1
    np.testing.assert_array_equal(BatchLoader(x, shuffle=False).epoch_indices(7), np.arange(50))


def test_permutation_is_uniform():
    x = np.zeros((3, 1), np.float32)
    loader = BatchLoader(x, seed=1)
    counts = {}
    for e in range(3000):
        key = tuple(loader.epoch_indices(e))
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 6 and all(400 < c < 600 for c in counts.values())


def test_buffers_are_reused_and_iterators_invalidated():
    x = make_x(np.float32, (20, 3))
    loader = BatchLoader(x, batch_size=5, seed=0)
    it = loader.epoch(0)
    first = next(it)[0]
    next(it)
    third = next(it)[0]
    assert third is first                       # double buffering: two buffers, alternating
    loader.epoch(1)
    with pytest.raises(RuntimeError, match="another epoch"):
        next(it)
    assert len(list(iter(loader))) == 4         # __iter__ starts the next epoch


@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(x=np.zeros((4, 2)), batch_size=0), ValueError, "batch_size"),
    (dict(x=np.zeros((4, 2)), batch_size=2.0), ValueError, "batch_size"),
    (dict(x=np.zeros((4, 2)), y=np.zeros(3)), ValueError, r"same number of samples.*\(4, 2\).*\(3,\)"),
    (dict(x=np.zeros((0, 2))), ValueError, "at least one sample"),
    (dict(x=np.array(["a", "b"])), TypeError, "numeric"),
    (dict(x=np.zeros((4, 2)), y=np.array(["a"] * 4)), TypeError, "numeric"),
    (dict(x=np.zeros((4, 2)), seed=-1), ValueError, "seed"),
])
def test_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        BatchLoader(**kwargs)


def test_prefetch_env_switch(monkeypatch):
    x = make_x(np.float32, (20, 3))
    assert BatchLoader(x, batch_size=5).prefetch
    assert not BatchLoader(x, batch_size=20).prefetch          # one batch: nothing to prefetch
    monkeypatch.setenv("FASTNN_PREFETCH", "0")
    assert not BatchLoader(x, batch_size=5).prefetch


def _threads():
    return len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else 0


def test_no_growth_over_many_epochs():
    x = make_x(np.uint8, (300, 28, 28))
    y = make_x(np.uint8, (300,))
    loader = BatchLoader(x, y, batch_size=32, seed=0)
    for _ in range(3):
        for _ in loader:
            pass
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(200):
            for xb, yb in loader:
                pass
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"memory grew by {grown} bytes over 200 epochs"
    threads = _threads()
    for _ in range(50):                         # prefetch threads are joined when a loader goes away
        it = iter(BatchLoader(x, y, batch_size=16))
        next(it)
        del it
    gc.collect()
    assert _threads() <= threads
