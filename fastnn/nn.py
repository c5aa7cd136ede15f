"""``tf.nn``'s activation names for programs written ``import fastnn as tf`` (the TensorFlow tutorials):
the same differentiable functions as ``fastnn.functional`` on Tensors; on host values (numpy arrays, lists)
the result is a host array too (a ``fastnn.data.Array``, with ``.numpy()``), so that numpy functions work on
it as they do on TF's eager tensors (``np.max(tf.nn.softmax(predictions[0]))``)."""
import functools

import numpy as np

from fastnn import functional as _F
from fastnn.tensor import Tensor


def _host_for_host(fn):
    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        out = fn(x, *args, **kwargs)
        if isinstance(x, Tensor):
            return out
        from fastnn.data import Array
        return np.asarray(out.numpy()).view(Array)
    return wrapper


elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, silu, softmax, softplus, tanh = (
    _host_for_host(f) for f in (_F.elu, _F.gelu, _F.leaky_relu, _F.log_softmax, _F.relu, _F.selu, _F.sigmoid,
                                _F.silu, _F.softmax, _F.softplus, _F.tanh))
swish = silu


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """Per-sample ``-log_softmax(logits)[label]`` (TF's keyword-only arguments taken by name or position),
    composed from ``fastnn.ops`` so gradients flow to ``logits`` (labels are class ids, constants)."""
    from fastnn import ops  # fastnn.ops loads the op set; tf.nn's activations above need only functional
    return ops.negative(ops.sum(ops.multiply(ops.one_hot(labels, ops.shape(logits)[-1]), ops.log_softmax(logits)),
                                axis=-1))
