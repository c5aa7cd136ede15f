"""fastnn's seeding: one global seed state that initializers, Dropout and the batch pipeline draw from.

    fastnn.utils.set_random_seed(seed)   # == fastnn.random.set_random_seed
        seeds Python's `random`, numpy's global `np.random` and fastnn's own state (below).

fastnn's own state is a seed plus a counter. `next_seed()` returns the 64-bit integer
`splitmix64(seed, counter)` and advances the counter, so after `set_random_seed(s)` the n-th
random-consuming object created (a layer's initializer, a Dropout layer, fit's shuffling) always
receives the same seed, whatever the thread count and whatever numpy version is installed.
Without `set_random_seed`, `next_seed()` returns fresh OS entropy (runs differ, as in Keras).

Consumers turn a seed into random numbers with counter-based generators: `rng(seed)` is a
numpy `Generator(Philox(seed))` (Philox's stream is part of numpy's stability promise for bit
generators); C++ kernels key their own Philox by (seed, element index), so the values do not
depend on the thread count.
"""
import os
import random as _py_random
import threading

import numpy as np

__all__ = ["set_random_seed", "next_seed", "rng"]

_MASK64 = (1 << 64) - 1
_lock = threading.Lock()
_seed = None      # None: not seeded -> next_seed() draws OS entropy
_counter = 0


def _splitmix64(x):
    """One SplitMix64 output for the 64-bit state x (Steele, Lea, Flood 2014): a bijective mixer,
    so distinct (seed, counter) pairs give well-spread, distinct-looking 64-bit values."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def set_random_seed(seed):
    """Seed every random number generator fastnn uses: Python's `random`, `np.random` (the legacy
    global state, as Keras does) and fastnn's own seed state (restarting its sequence).

    `seed` must be an int in [0, 2**32) (numpy's legacy seeding accepts no more). The same seed
    gives the same weights, dropout masks, shuffling, losses and predictions, for any thread count.
    """
    global _seed, _counter
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"set_random_seed: seed must be an int, got {type(seed).__name__} {seed!r}")
    seed = int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"set_random_seed: seed must be in [0, 2**32), got {seed}")
    _py_random.seed(seed)
    np.random.seed(seed)
    with _lock:
        _seed = seed
        _counter = 0


def next_seed():
    """The next 64-bit seed (an int in [0, 2**64)) for a random-consuming object.

    Deterministic sequence after `set_random_seed`; fresh OS entropy when no seed was set."""
    global _counter
    with _lock:
        if _seed is None:
            return int.from_bytes(os.urandom(8), "little")
        value = _splitmix64(((_seed << 32) ^ _counter) & _MASK64)
        _counter += 1
        return value


class SeedGenerator:
    """``keras.random.SeedGenerator(seed)``: a seed state for the random functions' ``seed=``; each draw made
    with it advances it, so successive draws differ and the sequence is the same run after run."""

    def __init__(self, seed=None, name=None, **kwargs):
        self._base, self._count = (next_seed() if seed is None else int(seed)) & _MASK64, 0

    def next(self, ordered=True):
        """The next 64-bit seed of this generator's sequence."""
        with _lock:
            value = _splitmix64(((self._base << 32) ^ self._count) & _MASK64)
            self._count += 1
        return value


def rng(seed=None):
    """A numpy Generator on the counter-based Philox bit generator, seeded with `seed`
    (an int >= 0, or a SeedGenerator, which advances), or with `next_seed()` when `seed` is None."""
    if seed is None:
        seed = next_seed()
    elif isinstance(seed, SeedGenerator):
        seed = seed.next()
    return np.random.Generator(np.random.Philox(seed))


# tf.random's names (``import fastnn as tf``): the functions live in fastnn.tf_names, imported on first use
# (it imports fastnn.ops, which this module must not load at `import fastnn` time).
set_seed = set_random_seed


def normal(shape, mean=0.0, stddev=1.0, dtype=np.float32, seed=None):
    """``tf.random.normal`` (see fastnn.tf_names)."""
    from fastnn.tf_names import _random_normal
    return _random_normal(shape, mean, stddev, dtype, seed)


def uniform(shape, minval=0, maxval=None, dtype=np.float32, seed=None):
    """``tf.random.uniform`` (see fastnn.tf_names)."""
    from fastnn.tf_names import _random_uniform
    return _random_uniform(shape, minval, maxval, dtype, seed)
