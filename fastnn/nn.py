"""``tf.nn``'s activation names for programs written ``import fastnn as tf`` (the TensorFlow tutorials):
the same differentiable functions as ``fastnn.functional``."""
from fastnn.functional import (elu, gelu, leaky_relu, log_softmax, relu, selu, sigmoid, silu,  # noqa: F401
                               softmax, softplus, tanh)

swish = silu
