"""Resident memory stays flat over thousands of training steps and predict calls (C++ scratch reused, no
per-step growth in Python or in the kernels' allocations): RSS from /proc, which sees both."""
import gc
import os

import numpy as np
import pytest

import fastnn

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc")

# NOTE: a leak of one small array per step (e.g. 32x64 float32 = 8 KB) over 1,800 steps is 14 MB; the bound
# leaves room for allocator noise (glibc arenas, the interpreter) but not for that.
_BOUND = 6 * 2**20


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _model():
    fastnn.utils.set_random_seed(0)
    model = fastnn.Sequential([fastnn.Input((8, 8, 1)), fastnn.layers.Conv2D(4, 3, activation="relu"),
                               fastnn.layers.MaxPooling2D(), fastnn.layers.Flatten(),
                               fastnn.layers.Dense(32, activation="relu"), fastnn.layers.Dropout(0.2),
                               fastnn.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _growth(step, n=2000, warm=200):
    for _ in range(warm):
        step()
    gc.collect()
    before = _rss()
    for _ in range(n - warm):
        step()
    gc.collect()
    return _rss() - before


def test_rss_flat_over_2000_training_steps():
    model = _model()
    rng = np.random.default_rng(0)
    x, y = rng.random((32, 8, 8, 1), np.float32), rng.integers(0, 10, 32)
    grown = _growth(lambda: model.train_on_batch(x, y))
    assert grown < _BOUND, f"RSS grew by {grown / 2**20:.1f} MiB over 1,800 training steps"


def test_rss_flat_over_2000_predict_calls():
    model = _model()
    x = np.random.default_rng(1).random((16, 8, 8, 1), np.float32)
    grown = _growth(lambda: model.predict(x, verbose=0))
    assert grown < _BOUND, f"RSS grew by {grown / 2**20:.1f} MiB over 1,800 predict calls"


def test_rss_flat_over_repeated_fit():
    model = _model()
    rng = np.random.default_rng(2)
    x, y = rng.random((256, 8, 8, 1), np.float32), rng.integers(0, 10, 256)
    grown = _growth(lambda: model.fit(x, y, batch_size=32, epochs=1, verbose=0), n=60, warm=10)
    assert grown < _BOUND, f"RSS grew by {grown / 2**20:.1f} MiB over 50 fit calls"
