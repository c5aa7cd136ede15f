"""Weight initializers with Keras 3's names, defaults and fan rule.

Every random initializer draws from ``fastnn.random.rng(seed)``; with ``seed=None`` the seed is taken
from ``fastnn.random.next_seed()`` when the weights are created, so ``fastnn.utils.set_random_seed``
makes every model's initial weights bit-identical run after run.

>>> import fastnn
>>> init = fastnn.initializers.GlorotUniform(seed=1)
>>> init((784, 128)).shape
(784, 128)
"""
import math

import numpy as np


def _fans(shape):
    """Keras ``compute_fans``: Dense (in, out); conv (KH, KW, C_in, C_out) -> receptive field times channels."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _generator(seed):
    from fastnn import random as _random
    return _random.rng(_random.next_seed() if seed is None else seed)


class Initializer:
    """Base class: ``init(shape, dtype="float32") -> np.ndarray``; ``get_config``/``from_config`` round-trip."""

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Constant(Initializer):
    """Fills with ``value``."""

    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=np.float32)

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """Fills with 0."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Fills with 1."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class _Seeded(Initializer):
    def __init__(self, seed=None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise ValueError(f"{type(self).__name__}: seed must be an int or None, got {seed!r}")
        self.seed = seed

    def get_config(self):
        return {"seed": self.seed}


class RandomNormal(_Seeded):
    """Normal(mean, stddev) (Keras defaults mean 0, stddev 0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return _generator(self.seed).normal(self.mean, self.stddev, size=shape).astype(np.float32)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(_Seeded):
    """Uniform[minval, maxval) (Keras defaults -0.05, 0.05)."""

    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        super().__init__(seed)
        self.minval, self.maxval = minval, maxval

    def __call__(self, shape, dtype="float32"):
        return _generator(self.seed).uniform(self.minval, self.maxval, size=shape).astype(np.float32)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


def _truncated_normal(gen, stddev, shape, mean=0.0):
    """Normal samples redrawn until within two standard deviations (as Keras/TF do)."""
    out = gen.normal(0.0, 1.0, size=shape)
    bad = np.abs(out) > 2.0
    while bad.any():
        out[bad] = gen.normal(0.0, 1.0, size=int(bad.sum()))
        bad = np.abs(out) > 2.0
    return (out * stddev + mean).astype(np.float32)


class TruncatedNormal(_Seeded):
    """Normal(mean, stddev) truncated to two standard deviations (Keras defaults 0, 0.05)."""

    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        super().__init__(seed)
        self.mean, self.stddev = mean, stddev

    def __call__(self, shape, dtype="float32"):
        return _truncated_normal(_generator(self.seed), self.stddev, shape, self.mean)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class VarianceScaling(_Seeded):
    """Keras ``VarianceScaling``: scale / fan (fan_in, fan_out or their mean); normal (truncated) or uniform."""

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal", seed=None):
        super().__init__(seed)
        if scale <= 0.0:
            raise ValueError(f"VarianceScaling: scale must be positive, got {scale}")
        if mode not in self._MODES:
            raise ValueError(f"VarianceScaling: mode must be one of {self._MODES}, got {mode!r}")
        if distribution == "normal":
            distribution = "truncated_normal"
        if distribution not in self._DISTS:
            raise ValueError(f"VarianceScaling: distribution must be one of {self._DISTS}, got {distribution!r}")
        self.scale, self.mode, self.distribution = scale, mode, distribution

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = _fans(shape)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        gen = _generator(self.seed)
        if self.distribution == "truncated_normal":
            # 0.8796... = stddev of a unit normal truncated to (-2, 2)
            return _truncated_normal(gen, math.sqrt(variance) / 0.87962566103423978, shape)
        if self.distribution == "untruncated_normal":
            return gen.normal(0.0, math.sqrt(variance), size=shape).astype(np.float32)
        limit = math.sqrt(3.0 * variance)
        return gen.uniform(-limit, limit, size=shape).astype(np.float32)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution, "seed": self.seed}


def _variance_scaling(name, scale, mode, distribution, doc):
    def __init__(self, seed=None):
        VarianceScaling.__init__(self, scale, mode, distribution, seed)

    def get_config(self):
        return {"seed": self.seed}

    return type(name, (VarianceScaling,), {"__init__": __init__, "get_config": get_config, "__doc__": doc})


GlorotUniform = _variance_scaling("GlorotUniform", 1.0, "fan_avg", "uniform",
                                  "U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (Keras default kernel init).")
GlorotNormal = _variance_scaling("GlorotNormal", 1.0, "fan_avg", "truncated_normal",
                                 "Truncated normal with stddev sqrt(2 / (fan_in + fan_out)).")
HeUniform = _variance_scaling("HeUniform", 2.0, "fan_in", "uniform", "U(-l, l) with l = sqrt(6 / fan_in).")
HeNormal = _variance_scaling("HeNormal", 2.0, "fan_in", "truncated_normal",
                             "Truncated normal with stddev sqrt(2 / fan_in).")
LecunUniform = _variance_scaling("LecunUniform", 1.0, "fan_in", "uniform", "U(-l, l) with l = sqrt(3 / fan_in).")
LecunNormal = _variance_scaling("LecunNormal", 1.0, "fan_in", "truncated_normal",
                                "Truncated normal with stddev sqrt(1 / fan_in).")


class Orthogonal(_Seeded):
    """Orthogonal matrix (QR of a normal matrix, sign-corrected) times ``gain``; shape flattened to 2-D."""

    def __init__(self, gain=1.0, seed=None):
        super().__init__(seed)
        self.gain = gain

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(f"Orthogonal: the shape must have at least 2 dimensions, got {shape}")
        rows, cols = math.prod(shape[:-1]), shape[-1]
        a = _generator(self.seed).normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q).reshape(shape).astype(np.float32)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_ALIASES = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_normal": RandomNormal, "random_uniform": RandomUniform, "truncated_normal": TruncatedNormal,
    "variance_scaling": VarianceScaling, "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "lecun_uniform": LecunUniform,
    "lecun_normal": LecunNormal, "orthogonal": Orthogonal,
}
_CLASSES = {cls.__name__: cls for cls in set(_ALIASES.values())}


def get(identifier):
    """Resolve a name ("glorot_uniform", "GlorotUniform"), a config dict, an Initializer or a callable."""
    if identifier is None:
        return None
    if isinstance(identifier, Initializer) or (callable(identifier) and not isinstance(identifier, type)):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, dict):
        cls = _CLASSES.get(identifier.get("class_name"))
        if cls is None:
            raise ValueError(f"Unknown initializer config: {identifier!r}")
        return cls.from_config(identifier.get("config", {}))
    if isinstance(identifier, str):
        cls = _ALIASES.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown initializer: {identifier!r}. Known: {sorted(_ALIASES)}")
        return cls()
    raise ValueError(f"Could not interpret initializer identifier: {identifier!r}")


def serialize(initializer):
    """``{"class_name": ..., "config": ...}`` for an Initializer (what layers put in get_config)."""
    if initializer is None:
        return None
    if isinstance(initializer, Initializer):
        return {"class_name": type(initializer).__name__, "config": initializer.get_config()}
    return getattr(initializer, "__name__", repr(initializer))


# Keras also exposes the snake_case names as module-level aliases of the classes.
zeros, ones, constant = Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal = RandomNormal, RandomUniform, TruncatedNormal
glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal, orthogonal, variance_scaling = LecunUniform, LecunNormal, Orthogonal, VarianceScaling
