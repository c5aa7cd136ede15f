import random

import numpy as np
import pytest

import fastnn
from fastnn import random as frandom
from fastnn.utils import normalize, set_random_seed, to_categorical


def test_to_categorical_keras_examples():
    a = to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(a, np.eye(4))
    assert a.dtype == np.float32
    b = to_categorical(np.array([[1], [0], [2]], dtype=np.uint8))          # trailing 1 dropped, classes inferred
    assert b.shape == (3, 3)
    np.testing.assert_array_equal(b, np.eye(3)[[1, 0, 2]])
    c = to_categorical(np.array([[0, 1], [2, 1]]), num_classes=5)           # any shape: classes axis last
    assert c.shape == (2, 2, 5) and c[1, 0, 2] == 1 and c.sum() == 4
    d = to_categorical(np.array([1.0, 2.0]), 3)                             # integral floats are fine
    np.testing.assert_array_equal(d, [[0, 1, 0], [0, 0, 1]])
    assert to_categorical(np.array(2), 3).shape == (3,)
    assert to_categorical([], num_classes=3).shape == (0, 3)


@pytest.mark.parametrize("y, n, match", [
    ([0, -1], 3, ">= 0"),
    ([0, 3], 3, "out of range"),
    ([0.0, np.nan], 3, "NaN"),
    ([0.5], 3, "integers"),
    (["a"], 3, "numeric"),
    ([], None, "empty"),
    ([1], 0, "positive"),
])
def test_to_categorical_errors(y, n, match):
    with pytest.raises(ValueError, match=match):
        to_categorical(y, n)


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    y = normalize(x)
    np.testing.assert_allclose(y, [[0.6, 0.8], [0, 0], [1, 0]], rtol=1e-6)
    assert y.dtype == np.float32
    np.testing.assert_allclose(normalize(x, axis=0), x / np.linalg.norm(x, axis=0, keepdims=True), rtol=1e-6)
    np.testing.assert_allclose(normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0], [1, 0]], rtol=1e-6)
    np.testing.assert_allclose(normalize(np.array([[3, 4]])), [[0.6, 0.8]], rtol=1e-6)   # ints -> float32
    x3 = np.random.default_rng(0).normal(size=(2, 3, 4))
    np.testing.assert_allclose(np.linalg.norm(normalize(x3, axis=1), axis=1), 1.0)
    with pytest.raises(ValueError, match="axis"):
        normalize(x, axis=2)
    with pytest.raises(ValueError, match="order"):
        normalize(x, order=0)


def draw():
    return (random.random(), float(np.random.rand()), [frandom.next_seed() for _ in range(3)],
            frandom.rng().integers(0, 2**31, 4).tolist(), frandom.rng(5).random())


def test_set_random_seed_reproducible():
    assert fastnn.utils.set_random_seed is frandom.set_random_seed
    set_random_seed(1234)
    a = draw()
    set_random_seed(1234)
    b = draw()
    assert a == b
    set_random_seed(1235)
    c = draw()
    assert c[0] != a[0] and c[1] != a[1] and c[2] != a[2] and c[3] != a[3]
    assert c[4] == a[4]                              # an explicit seed does not depend on the global one
    seeds = a[2]
    assert len(set(seeds)) == 3 and all(0 <= s < 2**64 for s in seeds)


def test_next_seed_without_set_is_fresh(monkeypatch):
    monkeypatch.setattr(frandom, "_seed", None)
    assert frandom.next_seed() != frandom.next_seed()


@pytest.mark.parametrize("bad", [1.5, "1", None, True, -1, 2**32])
def test_set_random_seed_rejects(bad):
    with pytest.raises(ValueError, match="seed"):
        set_random_seed(bad)


def test_clear_session_resets_auto_names():
    from fastnn.layers import Dense
    fastnn.utils.clear_session()
    assert Dense(2).name == "dense"
    assert Dense(2).name == "dense_1"
    fastnn.utils.clear_session()
    assert Dense(2).name == "dense"
