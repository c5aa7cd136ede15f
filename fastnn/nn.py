"""``tf.nn``'s activation names for programs written ``import fastnn as tf`` (the TensorFlow tutorials):
the same differentiable functions as ``fastnn.functional``."""
from fastnn.functional import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, silu,  # noqa: F401
                               softmax, softplus, tanh)

swish = silu


def sparse_softmax_cross_entropy_with_logits(labels, logits):
    """Per-sample ``-log_softmax(logits)[label]`` (TF's keyword-only arguments taken by name or position),
    composed from ``fastnn.ops`` so gradients flow to ``logits`` (labels are class ids, constants)."""
    from fastnn import ops  # fastnn.ops loads the op set; tf.nn's activations above need only functional
    return ops.negative(ops.sum(ops.multiply(ops.one_hot(labels, ops.shape(logits)[-1]), ops.log_softmax(logits)),
                                axis=-1))
