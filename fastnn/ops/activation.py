"""Activations, softmax and dropout as autograd Functions over the elementwise kernels, and the
public differentiable functions that ``fastnn.functional`` re-exports.

Each Function makes one kernel call in forward and one in backward. Activations whose derivative
is a function of their output (relu, sigmoid, tanh, softmax, log_softmax) save the output, the
others save the input. Constants (slopes, axes, seeds) are keyword arguments, so ``backward``
returns a single gradient.
"""
import numpy as np

from fastnn import backend as _backend
from fastnn.tensor import Function, Tensor

_K = _backend.cpu


class _Unary(Function):
    """y = f(x) through the kernel pair ``fwd`` / ``bwd`` (``<name>_forward`` / ``<name>_backward``)."""
    fwd = bwd = None       # the bound kernels (builtins: no method binding through self)
    saves_output = False   # backward needs y (True) or x (False)

    def forward(self, x, **alpha):
        y = self.fwd(x, **alpha)
        if self.needs_input_grad[0]:
            self.saved = y if self.saves_output else x
            self.alpha = alpha
        return y

    def backward(self, grad):
        return (self.bwd(grad, self.saved, **self.alpha),)


def _unary_class(name, kernel, saves_output, doc):
    return type(name, (_Unary,), {"fwd": getattr(_K, kernel + "_forward"), "bwd": getattr(_K, kernel + "_backward"),
                                  "saves_output": saves_output, "__doc__": doc, "__module__": __name__})


Relu = _unary_class("Relu", "relu", True, "max(x, 0).")
LeakyRelu = _unary_class("LeakyRelu", "leaky_relu", False, "x if x >= 0 else alpha * x (keyword alpha).")
Elu = _unary_class("Elu", "elu", False, "x if x > 0 else alpha * (exp(x) - 1) (keyword alpha).")
Selu = _unary_class("Selu", "selu", False, "scale * elu(x, alpha) with the SELU constants.")
Gelu = _unary_class("Gelu", "gelu", False, "Exact GELU x * Phi(x) (erf form).")
Silu = _unary_class("Silu", "silu", False, "x * sigmoid(x).")
Softplus = _unary_class("Softplus", "softplus", False, "log(1 + exp(x)).")
Sigmoid = _unary_class("Sigmoid", "sigmoid", True, "1 / (1 + exp(-x)).")
Tanh = _unary_class("Tanh", "tanh", True, "tanh(x).")


class Softmax(Function):
    """softmax along ``axis`` (keyword); saves its output."""
    log = False

    def forward(self, x, axis=-1):
        y = (_K.log_softmax_forward if self.log else _K.softmax_forward)(x, axis)
        if self.needs_input_grad[0]:
            self.y, self.axis = y, axis
        return y

    def backward(self, grad):
        return ((_K.log_softmax_backward if self.log else _K.softmax_backward)(grad, self.y, self.axis),)


class LogSoftmax(Softmax):
    """log_softmax along ``axis`` (keyword); saves its output."""
    log = True


class Dropout(Function):
    """Inverted dropout with the Philox mask of (seed, offset) (keywords): backward applies the
    same mask to the gradient."""

    def forward(self, x, rate, seed, offset=0):
        self.rate, self.seed, self.offset = rate, seed, offset
        return _K.dropout(x, rate, seed, offset)

    def backward(self, grad):
        return (_K.dropout(grad, self.rate, self.seed, self.offset),)


# ---- public differentiable functions (re-exported by fastnn.functional) ---------------------------
def relu(x):
    """``max(x, 0)``. Accepts a Tensor or array-like, returns a Tensor."""
    return Relu.apply(x)


def sigmoid(x):
    """``1 / (1 + exp(-x))``, exactly 0 / 1 in saturation, never NaN for finite x."""
    return Sigmoid.apply(x)


def tanh(x):
    """Hyperbolic tangent."""
    return Tanh.apply(x)


def softmax(x, axis=-1):
    """Softmax along ``axis`` (max-subtracted: finite for any finite logits).

    >>> import fastnn.ops.activation as A
    >>> A.softmax([[0.0, 0.0]]).numpy().tolist()
    [[0.5, 0.5]]
    """
    return Softmax.apply(x, axis=axis)


def log_softmax(x, axis=-1):
    """``log(softmax(x))`` along ``axis``, computed as ``x - max - log(sum(exp(x - max)))``."""
    return LogSoftmax.apply(x, axis=axis)


def gelu(x, approximate=False):
    """Gaussian error linear unit, exact erf form (Keras's default ``approximate=False``)."""
    if approximate:
        raise NotImplementedError("gelu: only the exact form (approximate=False) is implemented")
    return Gelu.apply(x)


def leaky_relu(x, negative_slope=0.2):
    """``x if x >= 0 else negative_slope * x`` (Keras ``activations.leaky_relu`` default 0.2)."""
    return LeakyRelu.apply(x, alpha=float(negative_slope))


def elu(x, alpha=1.0):
    """``x if x > 0 else alpha * (exp(x) - 1)``."""
    return Elu.apply(x, alpha=float(alpha))


def selu(x):
    """Scaled ELU with the self-normalising constants (alpha 1.67326, scale 1.05070)."""
    return Selu.apply(x)


def silu(x):
    """``x * sigmoid(x)`` (swish)."""
    return Silu.apply(x)


def softplus(x):
    """``log(1 + exp(x))`` without overflow."""
    return Softplus.apply(x)


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
