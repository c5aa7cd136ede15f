"""Batch normalization as a Function over the kernel pair ``batchnorm_forward`` / ``batchnorm_backward``
of x's device (Keras semantics: biased batch variance, moving = moving * momentum + batch * (1 - momentum))."""
from fastnn.backend import of
from fastnn.tensor import Function


class BatchNorm(Function):
    """y = act((x - mean) * inv * gamma + beta) over the last axis of x (..., C), inv = 1/sqrt(var + epsilon).

    Positional: x, gamma (C,) or None (no scale), beta (C,) or None (no center). Keywords:
    ``moving_mean``/``moving_var`` (C,) float32 arrays; ``training`` True uses the batch's mean and
    biased variance and updates the moving arrays IN PLACE; False uses the moving statistics (constants).
    ``activation`` None, "relu" or "relu6" is fused into the kernel's store (and its mask into backward).
    """

    def forward(self, x, gamma, beta, moving_mean=None, moving_var=None, epsilon=1e-3, momentum=0.99,
                training=False, activation=None):
        y, mean, inv = of(x).batchnorm_forward(x, gamma, beta, moving_mean, moving_var, epsilon=epsilon,
                                               momentum=momentum, training=training, activation=activation)
        if any(self.needs_input_grad):
            # (a fused activation's mask is recomputed from x and beta in backward: y need not be read again)
            self.x, self.gamma, self.beta, self.mean, self.inv = x, gamma, beta, mean, inv
            self.training, self.activation = training, activation
        return y

    def backward(self, dy):
        nx, ng, nb = (tuple(self.needs_input_grad) + (False, False))[:3]
        dx, dgamma, dbeta = of(dy).batchnorm_backward(dy, self.x, None, self.gamma, self.mean, self.inv,
                                                      beta=self.beta, training=self.training,
                                                      activation=self.activation, dx=nx, dgamma=ng, dbeta=nb)
        return (dx, dgamma, dbeta) + (None,) * (len(self.needs_input_grad) - 3)


class LayerNorm(Function):
    """y = (x - mean) * inv * gamma + beta over the last axis of each row of x (..., C) (biased variance,
    inv = 1/sqrt(var + epsilon)); positional x, gamma (C,) or None, beta (C,) or None; keyword ``epsilon``."""

    def forward(self, x, gamma, beta, epsilon=1e-3):
        y, mean, inv = of(x).layernorm_forward(x, gamma, beta, epsilon=epsilon)
        if any(self.needs_input_grad):
            self.x, self.gamma, self.mean, self.inv = x, gamma, mean, inv
        return y

    def backward(self, dy):
        nx, ng, nb = (tuple(self.needs_input_grad) + (False, False))[:3]
        dx, dgamma, dbeta = of(dy).layernorm_backward(dy, self.x, self.gamma, self.mean, self.inv, dx=nx, dgamma=ng,
                                                      dbeta=nb)
        return (dx, dgamma, dbeta) + (None,) * (len(self.needs_input_grad) - 3)
