"""Regularization layers that act only in training: SpatialDropout1D/2D (whole feature maps dropped),
GaussianNoise (additive) and GaussianDropout (multiplicative), Keras 3 arguments. Identity at inference.
Randomness is a pure function of (seed, per-call offset): the Philox dropout kernel for the spatial masks,
numpy's Philox generator for the Gaussian draws."""
import numpy as np

from fastnn import random as _random
from fastnn.backend import of
from fastnn.layers.base import Layer

_MASK64 = (1 << 64) - 1


class _Noise(Layer):
    """Seed handling: drawn on first use unless given; each training call advances the offset."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed, self._seed, self._offset = seed, None, 0

    def _next(self, n):
        """(seed, offset) for a call drawing n numbers."""
        if self._seed is None:
            self._seed = (self.seed if self.seed is not None else _random.next_seed()) & _MASK64
        offset = self._offset
        self._offset = (offset + n) & _MASK64
        return self._seed, offset

    def _generator(self, n):
        seed, offset = self._next(n)
        return np.random.Generator(np.random.Philox(key=seed, counter=offset))

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


class _MultiplicativeNoise(_Noise):
    """y = x * noise at training time, ``rate`` in [0, 1); forward keeps the noise for backward."""

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"{type(self).__name__} '{self.name}': invalid value received for argument `rate`. "
                             f"Expected a float value between 0 and 1 (1 excluded). Received: rate={rate!r}")
        self.rate = float(rate)

    def _backward(self, ctx, dy):
        return dy if ctx is None else dy * ctx

    def get_config(self):
        config = super().get_config()
        config["rate"] = self.rate
        return config


class _SpatialDropout(_MultiplicativeNoise):
    """Drops whole channels: one Bernoulli draw per (sample, channel), kept ones scaled by 1/(1 - rate)."""
    _rank = None  # input rank (3: (B, T, C), 4: (B, H, W, C))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != self._rank:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {self._rank}-D inputs, got shape "
                             f"{tuple(input_shape)}")
        return tuple(input_shape)

    def _forward(self, x, training, need_dx=True):
        if not training or self.rate == 0.0:
            return x, None
        b, c = x.shape[0], x.shape[-1]
        seed, offset = self._next(b * c)
        table = of(x)
        ones = np.ones((b, c), np.float32)
        mask = table.dropout(ones, self.rate, seed, offset).reshape((b,) + (1,) * (x.ndim - 2) + (c,))
        return x * mask, mask


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of (batch, steps, channels) inputs."""
    _rank = 3


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of (batch, height, width, channels) inputs."""
    _rank = 4

    def __init__(self, rate, data_format=None, seed=None, **kwargs):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"SpatialDropout2D: only data_format='channels_last' is supported, got {data_format!r}")
        super().__init__(rate, seed=seed, **kwargs)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = "channels_last"
        return config


class GaussianNoise(_Noise):
    """Adds N(0, stddev^2) noise at training time."""

    def __init__(self, stddev, seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        if not stddev >= 0:
            raise ValueError(f"GaussianNoise '{self.name}': stddev must be >= 0, got {stddev!r}")
        self.stddev = float(stddev)

    def _forward(self, x, training, need_dx=True):
        if not training or self.stddev == 0.0:
            return x, None
        noise = self._generator(x.size).standard_normal(x.shape, dtype=np.float32)
        return x + np.float32(self.stddev) * noise, None

    def _backward(self, ctx, dy):
        return dy

    def get_config(self):
        config = super().get_config()
        config["stddev"] = self.stddev
        return config


class GaussianDropout(_MultiplicativeNoise):
    """Multiplies by N(1, rate / (1 - rate)) noise at training time."""

    def _forward(self, x, training, need_dx=True):
        if not training or self.rate == 0.0:
            return x, None
        std = np.float32(np.sqrt(self.rate / (1.0 - self.rate)))
        noise = 1 + std * self._generator(x.size).standard_normal(x.shape, dtype=np.float32)
        return x * noise, noise
