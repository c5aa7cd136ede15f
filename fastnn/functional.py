"""Public differentiable functions (Tensors or arrays in, Tensors out) over the op set in fastnn.ops.

matmul and linear live here; the activation, loss and convolution functions are those of their
op modules, re-exported.
"""
from fastnn.ops.activation import (dropout, elu, gelu, leaky_relu, log_softmax, relu, selu,  # noqa: F401
                                   sigmoid, silu, softmax, softplus, tanh)
from fastnn.ops.conv import avg_pool2d, conv2d, global_avg_pool2d, max_pool2d  # noqa: F401
from fastnn.ops.linear import _FUSED, Linear as _Linear, MatMul as _MatMul
from fastnn.ops.loss import cross_entropy  # noqa: F401

_ACTIVATIONS = {f.__name__: f for f in (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, silu,
                                        softmax, softplus, tanh)}


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
        fn = _ACTIVATIONS.get(activation)
        if fn is None:
            raise ValueError(f"linear: unknown activation {activation!r}; expected None, 'linear' or one "
                             f"of {sorted(_ACTIVATIONS)}")
    elif callable(activation):
        fn = activation
    else:
        raise TypeError(f"linear: activation must be None, a name or a callable, got {type(activation).__name__}")
    return fn(_Linear.apply(x, kernel, bias))
