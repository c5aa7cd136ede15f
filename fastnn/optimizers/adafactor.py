"""Adafactor (Shazeer & Stern 2018) as Keras 3 implements it (keras/src/optimizers/adafactor.py).

The update is numpy in float32, not a fused kernel: its second moments of a matrix are a row mean
``r`` (shape[:-1]) and a column mean ``c`` (shape[:-2] + shape[-1:]) -- reductions and a rank-1
product, memory-bound numpy calls -- and it is used for large transformer models, not this library's
hot path. Variables of rank < 2 keep a full second moment ``v`` (their r and c are unused 0-d arrays,
as in Keras)."""
import numpy as np

from fastnn.optimizers.base import Optimizer

_F = np.float32


def _rms(x):
    return np.sqrt(np.mean(np.square(x)))


class Adafactor(Optimizer):
    """Defaults: learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3,
    clip_threshold=1.0, relative_step=True (the rate is min(learning_rate, 1/sqrt(t)) unless it is a
    schedule)."""

    _slots = ("r", "c", "velocity")

    def __init__(self, learning_rate=0.001, beta_2_decay=-0.8, epsilon_1=1e-30, epsilon_2=1e-3, clip_threshold=1.0,
                 relative_step=True, weight_decay=None, name="adafactor", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_2_decay, self.epsilon_1, self.epsilon_2 = float(beta_2_decay), float(epsilon_1), float(epsilon_2)
        self.clip_threshold, self.relative_step = float(clip_threshold), bool(relative_step)

    def _initial_slot(self, name, var):
        shape = tuple(var.shape)
        if name == "velocity":
            return np.zeros(shape, _F)
        if len(shape) < 2:
            return np.zeros((), _F)
        return np.zeros(shape[:-1] if name == "r" else shape[:-2] + shape[-1:], _F)

    def _step(self, params, grads, slots, lr):
        lr = _F(lr)
        t = _F(self.iterations + 1)
        wd = _F(self._weight_decay())
        inv_sqrt_t = _F(1) / np.sqrt(t)
        if not callable(self._learning_rate) and self.relative_step:
            lr = min(lr, inv_sqrt_t)
        rho_t = min(lr, inv_sqrt_t)
        beta_2_t = _F(1) - np.power(t, _F(self.beta_2_decay))
        for p, g, r, c, v in zip(params, grads, *slots):
            if wd:
                p -= p * wd * _F(self.learning_rate)  # Keras's decoupled decay (before the step)
            g = np.asarray(g, _F)
            alpha_t = max(_F(self.epsilon_2), _rms(p)) * rho_t
            reg = np.square(g) + _F(self.epsilon_1)
            if p.ndim >= 2:
                r[...] = beta_2_t * r + (_F(1) - beta_2_t) * reg.mean(axis=-1)
                c[...] = beta_2_t * c + (_F(1) - beta_2_t) * reg.mean(axis=-2)
                v[...] = (r / r.mean(axis=-1, keepdims=True))[..., None] * c[..., None, :]
            else:
                v[...] = beta_2_t * v + (_F(1) - beta_2_t) * reg
            u = g / np.sqrt(v)
            u_hat = u / max(_F(1), _rms(u) / _F(self.clip_threshold))
            p -= alpha_t * u_hat

    def get_config(self):
        return {**super().get_config(), "beta_2_decay": self.beta_2_decay, "epsilon_1": self.epsilon_1,
                "epsilon_2": self.epsilon_2, "clip_threshold": self.clip_threshold,
                "relative_step": self.relative_step}
