"""Convolution and pooling as autograd Functions (NHWC activations, HWIO kernels), plus the public
differentiable functions that fastnn.functional re-exports. Each Function makes one kernel call in
forward and the paired ``*_backward`` call in backward; shapes are validated by the kernels."""
import numpy as np

from fastnn.backend import of
from fastnn.tensor import Function


class Conv2D(Function):
    """y = act(conv2d(x, kernel) + bias) with Keras padding; x (B,H,W,C), kernel (KH,KW,C,OC), bias (OC,)
    or None; activation None/"linear" or "relu" (fused into the kernel's store; backward masks dY by y > 0)."""

    def forward(self, x, kernel, bias=None, activation=None, strides=1, padding="valid", dilation_rate=1):
        self.x, self.kernel = x, kernel
        self.geometry = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
        out = of(x).conv2d_forward(x, kernel, bias, activation=activation, **self.geometry)
        self.out = out if activation == "relu" else None
        return out

    def backward(self, grad):
        n = len(self.needs_input_grad)  # positional args: x, kernel[, bias[, constants]]
        need = tuple(self.needs_input_grad[:3]) + (False,) * 3
        table = of(grad)
        if self.out is not None:
            grad = table.relu_backward(grad, self.out)  # dY * (y > 0), threaded kernel
        dx, dk, db = table.conv2d_backward(grad, self.x, self.kernel, dx=need[0], dkernel=need[1],
                                                  dbias=need[2], **self.geometry)
        return ((dx, dk, db) + (None,) * n)[:n]


class _Pool2D(Function):
    """Shared forward/backward of the pooling Functions: subclasses name their kernel pair."""
    fwd = bwd = None  # "maxpool2d_forward" ...
    saved = {}        # keyword arguments of the backward kernel that forward saved

    def forward(self, x, pool_size=2, strides=None, padding="valid"):
        self.x = x
        self.geometry = dict(pool_size=pool_size, strides=strides, padding=padding)
        return getattr(of(x), self.fwd)(x, **self.geometry)

    def backward(self, grad):
        if not self.needs_input_grad[0]:
            return (None,) * len(self.needs_input_grad)
        dx = getattr(of(grad), self.bwd)(grad, self.x, **self.geometry, **self.saved)
        return (dx,) + (None,) * (len(self.needs_input_grad) - 1)


class MaxPool2D(_Pool2D):
    """Max over each window (gradient to the window's first maximal cell); strides default to pool_size.
    Forward keeps each output's window cell number (1 byte) so backward does not re-read x; without a
    gradient to compute (no_grad, predict) it skips that bookkeeping (2x faster)."""
    fwd, bwd = "maxpool2d_forward", "maxpool2d_backward"

    def forward(self, x, pool_size=2, strides=None, padding="valid"):
        if not self.needs_input_grad[0]:  # nothing to save
            return of(x).maxpool2d_forward(x, pool_size=pool_size, strides=strides, padding=padding)
        self.x = x
        self.geometry = dict(pool_size=pool_size, strides=strides, padding=padding)
        out, argmax = of(x).maxpool2d_forward(x, return_argmax=True, **self.geometry)
        self.saved = {"argmax": argmax}
        return out


class AvgPool2D(_Pool2D):
    """Mean over each window's cells inside the image (padding cells are not counted, as in Keras)."""
    fwd, bwd = "avgpool2d_forward", "avgpool2d_backward"


class GlobalAvgPool2D(Function):
    """Mean over height and width: x (B,H,W,C) -> (B,C)."""

    def forward(self, x):
        if np.ndim(x) != 4:
            raise ValueError(f"global_avg_pool2d: x must be 4-D (batch, height, width, channels), got shape {np.shape(x)}")
        self.x = x
        self.pool = (x.shape[1], x.shape[2])
        return of(x).avgpool2d_forward(x, pool_size=self.pool).reshape(x.shape[0], x.shape[3])

    def backward(self, grad):
        if not self.needs_input_grad[0]:
            return (None,)
        g = np.asarray(grad, dtype=np.float32).reshape(self.x.shape[0], 1, 1, self.x.shape[3])
        return (of(g).avgpool2d_backward(g, self.x, pool_size=self.pool),)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation=None):
    """2-D convolution, NHWC x HWIO (+ bias), Keras "valid"/"same" padding, then the optional fused
    activation (None/"linear" or "relu"); returns a Tensor.

    >>> import numpy as np
    >>> conv2d(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1))).shape
    (1, 2, 2, 1)
    """
    return Conv2D.apply(x, kernel, bias, strides=strides, padding=padding, dilation_rate=dilation_rate,
                        activation=activation)


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling of x (B,H,W,C); strides default to pool_size; returns a Tensor."""
    return MaxPool2D.apply(x, pool_size=pool_size, strides=strides, padding=padding)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling of x (B,H,W,C) over the window's cells inside the image; returns a Tensor."""
    return AvgPool2D.apply(x, pool_size=pool_size, strides=strides, padding=padding)


def global_avg_pool2d(x):
    """Mean of x (B,H,W,C) over height and width -> (B,C); returns a Tensor."""
    return GlobalAvgPool2D.apply(x)
