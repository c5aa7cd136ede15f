"""Public differentiable functions (Tensors or arrays in, Tensors out) over the op set in fastnn.ops.

matmul and linear live here; the activation, loss and convolution names of the public API are
re-exported from fastnn.ops.activation / loss / conv, each as soon as its module exists.
"""
from fastnn.ops import _optional
from fastnn.ops.linear import _FUSED, Linear, MatMul
from fastnn.tensor import Tensor, _activation

# module -> public names it provides (API.md "fastnn.functional")
_REEXPORTS = {
    "fastnn.ops.activation": ("relu", "sigmoid", "tanh", "softmax", "log_softmax", "gelu", "leaky_relu",
                              "elu", "selu", "silu", "softplus", "dropout"),
    "fastnn.ops.loss": ("cross_entropy",),
    "fastnn.ops.conv": ("conv2d", "max_pool2d", "avg_pool2d"),
}


def matmul(a, b):
    """Matrix product with numpy.matmul semantics (1-D promotion, broadcast batch axes) on the GEMM.

    >>> import fastnn.functional as F
    >>> F.matmul([[1.0, 2.0]], [[3.0], [4.0]]).numpy().tolist()
    [[11.0]]
    """
    return MatMul.apply(a, b)


def linear(x, kernel, bias=None, activation=None):
    """``activation(x @ kernel + bias)`` for x (..., in), kernel (in, out), bias (out,) or None.

    None/"linear"/"relu" run fused in the GEMM epilogue; any other activation name (a function of
    this module, e.g. "sigmoid") or callable is applied to the result.

    >>> import fastnn.functional as F
    >>> F.linear([[1.0, -2.0]], [[1.0], [1.0]], [0.5], activation="relu").numpy().tolist()
    [[0.0]]
    """
    if activation in _FUSED:
        return Linear.apply(x, kernel, bias, activation=activation)
    if isinstance(activation, str):
        fn = globals().get(activation)
        if fn is None or activation.startswith("_") or activation in ("matmul", "linear"):
            raise ValueError(f"linear: unknown activation {activation!r}")
    elif callable(activation):
        fn = activation
    else:
        raise TypeError(f"linear: activation must be None, a name or a callable, got {type(activation).__name__}")
    return fn(Linear.apply(x, kernel, bias))


def _tensor(x):
    return x if isinstance(x, Tensor) else Tensor(x)


# Used until fastnn.ops.activation provides them (Tensor methods pick the C++ kernels up then).
def relu(x):
    """max(x, 0) elementwise."""
    return _activation().Relu.apply(_tensor(x))


def sigmoid(x):
    """1 / (1 + exp(-x)) elementwise."""
    return _activation().Sigmoid.apply(_tensor(x))


def tanh(x):
    """Hyperbolic tangent elementwise."""
    return _activation().Tanh.apply(_tensor(x))


def _reexport():
    for modname, names in _REEXPORTS.items():
        mod = _optional(modname)
        if mod is None:
            continue
        for name in names:
            if hasattr(mod, name):
                globals()[name] = getattr(mod, name)


_reexport()
