"""Public differentiable functions (Tensors or arrays in, Tensors out) over the op set in fastnn._ops.

matmul and linear live here; the activation (every entry of the kernel table ``_C.unary_ops``, plus
softmax, log_softmax and dropout), loss and convolution functions are those of their op modules,
re-exported.
"""
from fastnn import activations as _activations
from fastnn._ops import activation as _activation_ops
from fastnn._ops.activation import dropout, log_softmax, softmax  # noqa: F401
from fastnn._ops.conv import avg_pool2d, conv2d, global_avg_pool2d, max_pool2d  # noqa: F401
from fastnn._ops.linear import _FUSED, Linear as _Linear, MatMul as _MatMul
from fastnn._ops.loss import cross_entropy  # noqa: F401

for _name in _activation_ops.UNARY:
    globals()[_name] = getattr(_activation_ops, _name)  # relu, sigmoid, gelu(x, approximate), ...


def matmul(a, b):
    """Matrix product with numpy.matmul semantics (1-D promotion, broadcast batch axes) on the GEMM.

    >>> import fastnn.functional as F
    >>> F.matmul([[1.0, 2.0]], [[3.0], [4.0]]).numpy().tolist()
    [[11.0]]
    """
    return _MatMul.apply(a, b)


def linear(x, kernel, bias=None, activation=None):
    """``activation(x @ kernel + bias)`` for x (..., in), kernel (in, out), bias (out,) or None.

    None/"linear"/"relu" run fused in the GEMM epilogue; any other activation name of this module
    ("sigmoid", "tanh", "softmax", "gelu", ...) or a callable is applied to the result.

    >>> import fastnn.functional as F
    >>> F.linear([[1.0, -2.0]], [[1.0], [1.0]], [0.5], activation="relu").numpy().tolist()
    [[0.0]]
    """
    if activation in _FUSED:
        return _Linear.apply(x, kernel, bias, activation=activation)
    if isinstance(activation, str):
        try:
            fn = _activations.get(activation)
        except ValueError:
            raise ValueError(f"linear: unknown activation {activation!r}; expected None or one of "
                             f"{_activations._NAMES}") from None
    elif callable(activation):
        fn = activation
    else:
        raise TypeError(f"linear: activation must be None, a name or a callable, got {type(activation).__name__}")
    return fn(_Linear.apply(x, kernel, bias))
