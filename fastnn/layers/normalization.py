"""BatchNormalization (C++ kernels, Keras 3 semantics: momentum 0.99, epsilon 1e-3, biased batch variance),
LayerNormalization and GroupNormalization."""
import numpy as np

from fastnn import initializers, regularizers
from fastnn._naming import shape_str
from fastnn._ops.norm import BatchNorm, LayerNorm
from fastnn.layers.base import Layer
from fastnn.tensor import recording


class _Normalization(Layer):
    """What the normalization layers share: epsilon, the optional scale gamma (C,) and offset beta (C,) on the
    last axis with their initializers and regularizers, and inputs with a known last axis."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                 gamma_regularizer, beta_constraint, gamma_constraint, **kwargs):
        super().__init__(**kwargs)
        if beta_constraint is not None or gamma_constraint is not None:
            raise ValueError(f"{type(self).__name__} '{self.name}': constraints are not supported yet")
        self.epsilon, self.center, self.scale = float(epsilon), bool(center), bool(scale)
        self.beta_initializer = initializers.get(beta_initializer)
        self.gamma_initializer = initializers.get(gamma_initializer)
        self.beta_regularizer = regularizers.get(beta_regularizer)
        self.gamma_regularizer = regularizers.get(gamma_regularizer)
        self.gamma = self.beta = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__} '{self.name}' needs inputs with a known last axis, got shape "
                             f"{shape_str(input_shape)}")
        return tuple(input_shape)

    def build(self, input_shape):
        c = (input_shape[-1],)
        if self.scale:
            self.gamma = self.add_weight(c, self.gamma_initializer, name="gamma", regularizer=self.gamma_regularizer)
        if self.center:
            self.beta = self.add_weight(c, self.beta_initializer, name="beta", regularizer=self.beta_regularizer)

    def get_config(self):
        config = super().get_config()
        config.update(epsilon=self.epsilon, center=self.center, scale=self.scale,
                      beta_initializer=initializers.serialize(self.beta_initializer),
                      gamma_initializer=initializers.serialize(self.gamma_initializer),
                      beta_regularizer=regularizers.serialize(self.beta_regularizer),
                      gamma_regularizer=regularizers.serialize(self.gamma_regularizer), beta_constraint=None,
                      gamma_constraint=None)
        return config


class BatchNormalization(_Normalization):
    """Normalizes the last axis by the batch statistics (training) or the moving ones (inference).

    ``moving = moving * momentum + batch * (1 - momentum)`` with the biased batch variance. Runs in
    inference mode when called with ``training=False`` or when the layer is frozen (``trainable=False``).
    Only ``axis=-1`` (channels_last) is supported. C++ kernels (batchnorm_forward/backward).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", moving_mean_initializer="zeros", moving_variance_initializer="ones",
                 beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None,
                 synchronized=False, renorm=False, renorm_clipping=None, renorm_momentum=0.99, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if renorm:
            raise ValueError(f"BatchNormalization '{self.name}': renorm=True is not supported yet")
        self.synchronized, self.renorm_momentum = bool(synchronized), float(renorm_momentum)  # (1 process: no-op)
        if axis != -1:
            raise ValueError(f"BatchNormalization '{self.name}': only axis=-1 (channels_last) is supported, "
                             f"got {axis!r}")
        self.axis, self.momentum = -1, float(momentum)
        self.moving_mean_initializer = initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = initializers.get(moving_variance_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        c = (input_shape[-1],)
        self.moving_mean = self.add_weight(c, self.moving_mean_initializer, name="moving_mean", trainable=False)
        self.moving_variance = self.add_weight(c, self.moving_variance_initializer, name="moving_variance", trainable=False)

    def _forward(self, x, training, need_dx=True, activation=None):
        """``activation`` None, "relu" or "relu6" applies it in the kernel's store (a plan may fuse a following
        ReLU layer whose ``_bn_fusable`` names it, when nothing else reads this layer's output)."""
        batch_stats = bool(training) and self._trainable
        t = self._trainable
        fn = BatchNorm(recording((need_dx, t and self.scale, t and self.center)))
        y = fn.forward(x, self.gamma.value if self.scale else None, self.beta.value if self.center else None,
                       moving_mean=self.moving_mean.value, moving_var=self.moving_variance.value,
                       epsilon=self.epsilon, momentum=self.momentum, training=batch_stats, activation=activation)
        return y, fn

    def _backward(self, ctx, dy):
        return self._backward_into(ctx, dy, self.gamma, self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, momentum=self.momentum, synchronized=self.synchronized, renorm=False,
                      renorm_clipping=None, renorm_momentum=self.renorm_momentum,
                      moving_mean_initializer=initializers.serialize(self.moving_mean_initializer),
                      moving_variance_initializer=initializers.serialize(self.moving_variance_initializer))
        return config


class _MomentNormalization(_Normalization):
    """GroupNormalization's math (numpy): y = (x - mean) / sqrt(var + epsilon) * gamma + beta,
    mean and biased var over the axes ``_stat_axes`` of the view ``_view(x)``; gamma, beta (C,) on the last
    axis. numpy, in float32 (these layers are rare next to BatchNormalization)."""

    def _forward(self, x, training, need_dx=True):
        v = self._view(x)
        axes = self._stat_axes
        mean = v.mean(axis=axes, keepdims=True)
        inv = (1.0 / np.sqrt(np.square(v - mean).mean(axis=axes, keepdims=True) + np.float32(self.epsilon)))
        xhat = ((v - mean) * inv.astype(np.float32)).reshape(x.shape)
        y = xhat * self.gamma.data if self.scale else xhat.copy()
        if self.center:
            y += self.beta.data
        return y.astype(np.float32, copy=False), (xhat, inv.astype(np.float32))

    def _backward(self, ctx, dy):
        xhat, inv = ctx
        if self._trainable:
            lead = tuple(range(dy.ndim - 1))
            if self.scale:
                self.gamma.grad = (dy * xhat).sum(axis=lead).astype(np.float32)
            if self.center:
                self.beta.grad = dy.sum(axis=lead).astype(np.float32)
        g = self._view(dy * self.gamma.data if self.scale else dy)
        h = self._view(xhat)
        axes = self._stat_axes
        dx = inv * (g - g.mean(axis=axes, keepdims=True) - h * (g * h).mean(axis=axes, keepdims=True))
        return dx.reshape(dy.shape).astype(np.float32, copy=False)

class LayerNormalization(_Normalization):
    """Normalizes each sample over its last axis (Keras default axis=-1, epsilon=1e-3), then gamma/beta (C,);
    C++ kernels (layernorm_forward/backward)."""

    def __init__(self, axis=-1, epsilon=1e-3, center=True, scale=True, rms_scaling=False, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if axis not in (-1, [-1], (-1,)) or rms_scaling:
            raise ValueError(f"LayerNormalization '{self.name}': only axis=-1 without rms_scaling is supported, "
                             f"got axis={axis!r}, rms_scaling={rms_scaling!r}")
        self.axis = -1

    def _forward(self, x, training, need_dx=True):  # the layernorm kernels
        t = self._trainable
        fn = LayerNorm(recording((need_dx, t and self.scale, t and self.center)))
        return fn.forward(x, self.gamma.data if self.scale else None, self.beta.data if self.center else None,
                          epsilon=self.epsilon), fn

    def _backward(self, ctx, dy):
        return self._backward_into(ctx, dy, self.gamma, self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(axis=[-1], rms_scaling=False)  # (Keras keeps the axis as a list)
        return config


class GroupNormalization(_MomentNormalization):
    """Splits the last axis (C) into ``groups`` groups and normalizes each sample's group over it and the
    spatial axes (Keras defaults groups=32, axis=-1, epsilon=1e-3); then gamma/beta (C,)."""
    _stat_axes = (1, 3)

    def __init__(self, groups=32, axis=-1, epsilon=1e-3, center=True, scale=True, beta_initializer="zeros",
                 gamma_initializer="ones", beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                 gamma_constraint=None, **kwargs):
        super().__init__(epsilon, center, scale, beta_initializer, gamma_initializer, beta_regularizer,
                         gamma_regularizer, beta_constraint, gamma_constraint, **kwargs)
        if axis != -1:
            raise ValueError(f"GroupNormalization '{self.name}': only axis=-1 is supported, got {axis!r}")
        self.groups, self.axis = int(groups), -1

    def build(self, input_shape):
        c = input_shape[-1]
        if c is not None and (self.groups < 1 or c % self.groups):
            raise ValueError(f"Number of groups ({self.groups}) must be a multiple of the number of channels ({c}).")
        super().build(input_shape)

    def _view(self, a):
        """(B, S, groups, C/groups): S every axis between batch and channels."""
        return a.reshape(a.shape[0], -1, self.groups, a.shape[-1] // self.groups)

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups, axis=-1)
        return config
