"""Weight regularizers (Keras 3): the penalty is added to the training loss and its gradient to the
weight's gradient.

>>> import numpy as np, fastnn
>>> float(fastnn.regularizers.L2(0.01)(np.ones((2, 2), np.float32)))
0.04
"""
import numpy as np

from fastnn.tensor import Function


class Penalty(Function):
    """``regularizer(w)`` as a recorded op (GradientTape / compute_loss): backward ``g * regularizer.gradient(w)``."""

    def forward(self, w, regularizer=None):
        self.w, self.regularizer = w, regularizer
        return np.float32(regularizer(w))

    def backward(self, grad):
        return (self.regularizer.gradient(self.w) * np.float32(grad),)


class Regularizer:
    """Base class: ``reg(w) -> float`` penalty and ``reg.gradient(w) -> array``."""

    def __call__(self, w):
        return 0.0

    def gradient(self, w):
        return np.zeros_like(w)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check(name, value):
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name}: the regularization factor must be a finite number >= 0, got {value}")
    return value


class L1L2(Regularizer):
    """``l1 * sum(|w|) + l2 * sum(w**2)`` (Keras defaults 0.0 for both)."""

    def __init__(self, l1=0.0, l2=0.0):
        self.l1, self.l2 = _check("L1L2 l1", l1), _check("L1L2 l2", l2)

    def __call__(self, w):
        w = np.asarray(w, dtype=np.float32)
        out = 0.0
        if self.l1:
            out += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            out += self.l2 * float(np.square(w).sum(dtype=np.float64))
        return out

    def gradient(self, w):
        g = np.zeros_like(w)
        if self.l1:
            g += np.float32(self.l1) * np.sign(w)
        if self.l2:
            g += np.float32(2.0 * self.l2) * w
        return g

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``l1 * sum(|w|)`` (Keras default 0.01)."""

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``l2 * sum(w**2)`` (Keras default 0.01)."""

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


l1, l2, l1_l2 = L1, L2, L1L2
_ALIASES = {"l1": L1, "l2": L2, "l1_l2": L1L2, "L1": L1, "L2": L2, "L1L2": L1L2}


def get(identifier):
    """Resolve None, "l1"/"l2"/"l1_l2", a config dict or a Regularizer."""
    if identifier is None or isinstance(identifier, Regularizer):
        return identifier
    if isinstance(identifier, str) and identifier in _ALIASES:
        return _ALIASES[identifier]()
    if isinstance(identifier, dict) and identifier.get("class_name") in _ALIASES:
        return _ALIASES[identifier["class_name"]].from_config(identifier.get("config", {}))
    raise ValueError(f"Unknown regularizer: {identifier!r}. Known: ['l1', 'l2', 'l1_l2']")


def serialize(regularizer):
    if regularizer is None:
        return None
    return {"class_name": type(regularizer).__name__, "config": regularizer.get_config()}
