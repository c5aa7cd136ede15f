"""Keras 3's ``keras.ops`` for fastnn: numpy-like ops, differentiable on ``fastnn.Tensor``.

Every op accepts Tensors, numpy arrays, Python numbers and lists. Gradients flow through Tensor
arguments; anything else is a constant. Results are ``fastnn.Tensor`` as Keras returns backend tensors;
``convert_to_numpy`` gives numpy.

Dtypes: float32 is the only float dtype fastnn computes in. Float results are float32 Tensors whatever
the input dtype (integer inputs to arithmetic included, where Keras would keep an integer dtype).
Integer- and bool-valued results are numpy arrays of that dtype, which carry no gradient: ``argmax``,
``argmin`` and ``top_k``'s indices (int32), ``where(condition)`` (int32 index arrays), ``shape`` (a
tuple of ints), and ``cast``, ``convert_to_tensor``, ``zeros``/``ones``(_like), ``one_hot`` and
``cumsum`` when ``dtype`` names an integer or bool dtype (``convert_to_tensor`` and ``*_like`` also when
dtype is None and the input is an integer/bool array, as Keras keeps its dtype). Any other float
dtype (float16, bfloat16, float64) raises NotImplementedError.

The convolution and pooling ops are 2-D, channels_last; the module layout follows Keras's
(``core``, ``numpy``, ``math``, ``nn``).

>>> import fastnn
>>> from fastnn import ops
>>> x = fastnn.tensor([[1.0, -2.0], [3.0, 0.5]], requires_grad=True)
>>> y = ops.sum(ops.square(ops.maximum(x, 0.0)), axis=1)
>>> y.numpy().tolist()
[1.0, 9.25]
>>> y.sum().backward()
>>> x.grad.numpy().tolist()
[[2.0, 0.0], [6.0, 1.0]]
"""
from fastnn.ops.core import cast, convert_to_numpy, convert_to_tensor, shape, stop_gradient
from fastnn.ops.math import erf, logsumexp, top_k
from fastnn.ops.nn import average_pool, conv, gelu, log_softmax, max_pool, one_hot, relu, sigmoid, softmax
from fastnn.ops.numpy import (abs, add, argmax, argmin, clip, concatenate, cumsum, divide, dot, exp,  # noqa: A004
                              expand_dims, log, matmul, max, maximum, mean, min, minimum, multiply,
                              negative, ones, ones_like, reshape, sign, split, sqrt, square, squeeze, stack,
                              subtract, sum, take, tanh, transpose, where, zeros, zeros_like)

__all__ = ["abs", "add", "argmax", "argmin", "average_pool", "cast", "clip", "concatenate", "conv",
           "convert_to_numpy", "convert_to_tensor", "cumsum", "divide", "dot", "erf", "exp", "expand_dims",
           "gelu", "log", "log_softmax", "logsumexp", "matmul", "max", "max_pool", "maximum", "mean", "min",
           "minimum", "multiply", "negative", "one_hot", "ones", "ones_like", "relu", "reshape", "shape",
           "sigmoid", "sign", "softmax", "split", "sqrt", "square", "squeeze", "stack", "stop_gradient",
           "subtract", "sum", "take", "tanh", "top_k", "transpose", "where", "zeros", "zeros_like"]


def _record_symbolic_calls():
    """Every op but those that only describe a tensor records itself on KerasTensors (fastnn.ops.symbolic)."""
    from fastnn.ops.symbolic import recorded
    names = globals()
    for name in __all__:
        if name not in ("shape", "convert_to_numpy", "zeros", "ones"):
            names[name] = recorded(names[name])


_record_symbolic_calls()
