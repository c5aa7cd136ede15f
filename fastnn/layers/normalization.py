"""BatchNormalization with Keras 3 semantics (momentum 0.99, epsilon 1e-3, biased batch variance)."""
import numpy as np

from fastnn import initializers, regularizers
from fastnn._naming import shape_str
from fastnn._ops.norm import BatchNorm
from fastnn.layers.base import Layer
from fastnn.tensor import recording


class BatchNormalization(Layer):
    """Normalizes the last axis by the batch statistics (training) or the moving ones (inference).

    ``moving = moving * momentum + batch * (1 - momentum)`` with the biased batch variance. Runs in
    inference mode when called with ``training=False`` or when the layer is frozen (``trainable=False``).
    Only ``axis=-1`` (channels_last) is supported.
    """
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, **kwargs):
        super().__init__(**kwargs)
        if axis != -1:
            raise ValueError(f"BatchNormalization '{self.name}': only axis=-1 (channels_last) is supported, "
                             f"got {axis!r}")
        if beta_constraint is not None or gamma_constraint is not None:
            raise ValueError(f"BatchNormalization '{self.name}': constraints are not supported yet")
        self.axis, self.momentum, self.epsilon = -1, float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.gamma = self.beta = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"BatchNormalization '{self.name}' needs inputs with a known last axis, got shape "
                             f"{shape_str(input_shape)}")
        return tuple(input_shape)

    def build(self, input_shape):
        c = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight(c, self.gamma_initializer, name="gamma", regularizer=self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight(c, self.beta_initializer, name="beta", regularizer=self.beta_regularizer)
        self.moving_mean = self.add_weight(c, self.moving_mean_initializer, name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(c, self.moving_variance_initializer, name="moving_variance", trainable=False)

    def _forward(self, x, training, need_dx=True):
        batch_stats = training and self._trainable
        t = self._trainable
        fn = BatchNorm(recording((need_dx, t and self.scale, t and self.center)))
        y = fn.forward(x, self.gamma.value if self.scale else None, self.beta.value if self.center else None,
                       mean=self.moving_mean.value, var=self.moving_variance.value, epsilon=self.epsilon,
                       batch_stats=batch_stats)
        if batch_stats:
            m = np.float32(self.momentum)
            for moving, batch in ((self.moving_mean, fn.mean), (self.moving_variance, fn.var)):
                moving.value *= m
                moving.value += batch * (1 - m)
        return y, fn

    def _backward(self, ctx, dy):
        return self._backward_into(ctx, dy, self.gamma, self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, epsilon=self.epsilon, center=self.center,
                      scale=self.scale, beta_initializer=initializers.serialize(self.beta_initializer),
                      gamma_initializer=initializers.serialize(self.gamma_initializer),
                      moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
                      moving_variance_initializer=initializers.serialize(self.moving_variance_initializer),
                      beta_regularizer=regularizers.serialize(self.beta_regularizer),
                      gamma_regularizer=regularizers.serialize(self.gamma_regularizer))
        return config
