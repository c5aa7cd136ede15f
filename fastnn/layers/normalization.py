"""BatchNormalization with Keras 3 semantics (momentum 0.99, epsilon 1e-3, biased batch variance)."""
import numpy as np

from fastnn import initializers, regularizers
from fastnn.layers.base import Layer, shape_str


class BatchNormalization(Layer):
    """Normalizes the last axis by the batch statistics (training) or the moving ones (inference).

    ``moving = moving * momentum + batch * (1 - momentum)`` with the biased batch variance. Runs in
    inference mode when called with ``training=False`` or when the layer is frozen (``trainable=False``).
    Only ``axis=-1`` (channels_last) is supported.
    """

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
            self.gamma = self.add_weight(c, self.gamma_initializer, "gamma", regularizer=self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight(c, self.beta_initializer, "beta", regularizer=self.beta_regularizer)
        self.moving_mean = self.add_weight(c, self.moving_mean_initializer, "moving_mean", trainable=False)
        self.moving_variance = self.add_weight(c, self.moving_variance_initializer, "moving_variance", trainable=False)

    def _forward(self, x, training):
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        batch_stats = training and self._trainable
        if batch_stats:
            mean = x2.mean(axis=0)
            var = np.square(x2 - mean).mean(axis=0)  # biased, as Keras
            m = np.float32(self.momentum)
            self.moving_mean.value *= m
            self.moving_mean.value += mean * (1 - m)
            self.moving_variance.value *= m
            self.moving_variance.value += var * (1 - m)
        else:
            mean, var = self.moving_mean.value, self.moving_variance.value
        inv = (1.0 / np.sqrt(var + np.float32(self.epsilon))).astype(np.float32)
        xhat = (x2 - mean) * inv
        y = xhat * self.gamma.value if self.scale else xhat.copy()
        if self.center:
            y += self.beta.value
        return y.reshape(x.shape), (xhat, inv, batch_stats, x.shape)

    def _backward(self, ctx, dy, need_dx):
        xhat, inv, batch_stats, shape = ctx
        dy2 = dy.reshape(xhat.shape)
        if self._trainable:
            if self.scale:
                self.gamma.grad = (dy2 * xhat).sum(axis=0)
            if self.center:
                self.beta.grad = dy2.sum(axis=0)
        if not need_dx:
            return None
        dxhat = dy2 * self.gamma.value if self.scale else dy2
        if not batch_stats:
            return (dxhat * inv).reshape(shape)
        n = np.float32(xhat.shape[0])
        dx = (inv / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
        return dx.reshape(shape)

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
