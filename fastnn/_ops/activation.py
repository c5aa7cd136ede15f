"""Activations, softmax and dropout as Functions over the elementwise kernels, and the public
differentiable functions that ``fastnn.functional`` re-exports.

The unary activations come from the C++ table ``_C.unary_ops`` (name, saves_output, alpha default,
doc): one Function class per entry (``relu`` -> ``Relu``, ``leaky_relu`` -> ``LeakyRelu``), so a new
kernel appears here without a Python edit. Each Function makes one kernel call in forward and one in
backward; those whose derivative is a function of their output save the output, the others the input.
Constants (slopes, axes, seeds) are keyword arguments, so ``backward`` returns a single gradient.
"""
import numpy as np

from fastnn import _C
from fastnn.backend import of
from fastnn.tensor import Function, Tensor


class _Unary(Function):
    """y = f(x) through the kernel pair ``<name>_forward`` / ``<name>_backward`` of x's device."""
    fwd = bwd = None       # kernel names
    saves_output = False   # backward needs y (True) or x (False)

    def forward(self, x, **alpha):
        y = getattr(of(x), self.fwd)(x, **alpha)
        if self.needs_input_grad[0]:
            self.saved = y if self.saves_output else x
            self.alpha = alpha
        return y

    def backward(self, grad):
        return (getattr(of(grad), self.bwd)(grad, self.saved, **self.alpha),)


def _class_name(name):
    return "".join(part.capitalize() for part in name.split("_"))


UNARY = {}  # kernel name -> (Function class, alpha default or None)
for _name, _saves_output, _alpha, _doc in _C.unary_ops:
    UNARY[_name] = (type(_class_name(_name), (_Unary,), {
        "fwd": _name + "_forward", "bwd": _name + "_backward", "saves_output": bool(_saves_output),
        "__doc__": _doc, "__module__": __name__}), _alpha)
    globals()[_class_name(_name)] = UNARY[_name][0]


class Softmax(Function):
    """softmax along ``axis`` (keyword); saves its output."""
    fwd, bwd = "softmax_forward", "softmax_backward"

    def forward(self, x, axis=-1):
        y = getattr(of(x), self.fwd)(x, axis)
        if self.needs_input_grad[0]:
            self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        return (getattr(of(grad), self.bwd)(grad, self.y, self.axis),)


class LogSoftmax(Softmax):
    """log_softmax along ``axis`` (keyword); saves its output."""
    fwd, bwd = "log_softmax_forward", "log_softmax_backward"


class Dropout(Function):
    """Inverted dropout with the Philox mask of (seed, offset) (keywords): backward applies the
    same mask to the gradient."""

    def forward(self, x, rate, seed, offset=0):
        self.rate, self.seed, self.offset = rate, seed, offset
        return of(x).dropout(x, rate, seed, offset)

    def backward(self, grad):
        return (of(grad).dropout(grad, self.rate, self.seed, self.offset),)


# ---- public differentiable functions (re-exported by fastnn.functional) ---------------------------
def _public(name):
    cls, alpha = UNARY[name]
    if alpha is None:
        def fn(x):
            return cls.apply(x)
    else:
        def fn(x, alpha=alpha):
            return cls.apply(x, alpha=float(alpha))
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"{cls.__doc__} Accepts a Tensor or array-like, returns a Tensor."
    return fn


for _name in UNARY:
    globals()[_name] = _public(_name)


def leaky_relu(x, negative_slope=0.2):
    """``x if x >= 0 else negative_slope * x`` (Keras ``activations.leaky_relu`` default 0.2)."""
    return UNARY["leaky_relu"][0].apply(x, alpha=float(negative_slope))


def gelu(x, approximate=False):
    """Gaussian error linear unit, exact erf form (Keras's default ``approximate=False``)."""
    if approximate:
        raise NotImplementedError("gelu: only the exact form (approximate=False) is implemented")
    return UNARY["gelu"][0].apply(x)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (max-subtracted: finite for any finite logits).

    >>> import fastnn.functional as F
    >>> F.softmax([[0.0, 0.0]]).numpy().tolist()
    [[0.5, 0.5]]
    """
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """``log(softmax(x))`` along ``axis``, computed as ``x - max - log(sum(exp(x - max)))``."""
    return LogSoftmax.apply(x, axis=axis)


def dropout(x, rate, training=True, seed=None, offset=0):
    """Inverted dropout (Keras semantics): zero each element with probability ``rate`` and scale
    the kept ones by ``1 / (1 - rate)``; the identity when ``training`` is False or ``rate`` is 0.

    The mask is a pure function of ``(seed, offset, element index)``, the same for any thread count.
    ``seed=None`` draws a seed from numpy's global generator (so ``fastnn.utils.set_random_seed``
    makes it reproducible); a layer passes its own seed and a per-call ``offset``.
    """
    rate = float(rate)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    if not training or rate == 0.0:
        return x if isinstance(x, Tensor) else Tensor(x)
    if seed is None:
        seed = int(np.random.randint(0, 2**63 - 1, dtype=np.int64))
    return Dropout.apply(x, rate=rate, seed=int(seed), offset=int(offset))
