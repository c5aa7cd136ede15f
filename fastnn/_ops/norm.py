"""Batch normalization as a Function. CPU-only: it computes in numpy (a C++ kernel pair, and with it
other devices, comes with the vision issue's normalization kernels)."""
import numpy as np

from fastnn.tensor import Function

_F32 = np.float32


class BatchNorm(Function):
    """y = (x - mean) * inv * gamma + beta over the last axis of x (..., C), inv = 1 / sqrt(var + epsilon).

    Positional: x, gamma (C,) or None (no scale), beta (C,) or None (no center). Keywords: ``batch_stats``
    True uses the batch's mean and biased variance (Keras) and leaves them in ``self.mean``/``self.var``
    for the moving averages; False uses ``mean``/``var`` (the moving statistics, constants).
    """

    def forward(self, x, gamma, beta, mean=None, var=None, epsilon=1e-3, batch_stats=False):
        c = x.shape[-1]
        x2 = x.reshape(-1, c)
        if batch_stats:
            mean = x2.mean(axis=0)
            var = np.square(x2 - mean).mean(axis=0)  # biased, as Keras
            self.mean, self.var = mean, var
        inv = (1.0 / np.sqrt(var + _F32(epsilon))).astype(_F32)
        xhat = (x2 - mean) * inv
        y = xhat * gamma if gamma is not None else xhat.copy()
        if beta is not None:
            y += beta
        if any(self.needs_input_grad):
            self.xhat, self.inv, self.gamma, self.batch_stats, self.shape = xhat, inv, gamma, batch_stats, x.shape
        return y.reshape(x.shape)

    def backward(self, dy):
        nx, ng, nb = self.needs_input_grad
        xhat, inv = self.xhat, self.inv
        dy2 = dy.reshape(xhat.shape)
        dgamma = (dy2 * xhat).sum(axis=0) if ng else None
        dbeta = dy2.sum(axis=0) if nb else None
        if not nx:
            return None, dgamma, dbeta
        dxhat = dy2 * self.gamma if self.gamma is not None else dy2
        if not self.batch_stats:
            return (dxhat * inv).reshape(self.shape), dgamma, dbeta
        n = _F32(xhat.shape[0])
        dx = (inv / n) * (n * dxhat - dxhat.sum(axis=0) - xhat * (dxhat * xhat).sum(axis=0))
        return dx.reshape(self.shape), dgamma, dbeta
