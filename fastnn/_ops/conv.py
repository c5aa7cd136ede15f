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


class DepthwiseConv2D(Function):
    """y = depthwise_conv2d(x, kernel) + bias; x (B,H,W,C), kernel (KH,KW,C,DM), bias (C*DM,) or None;
    strides and dilation_rate are (height, width) pairs; padding "valid"/"same" (Keras)."""

    def forward(self, x, kernel, bias=None, activation=None, strides=(1, 1), padding="valid",
                dilation_rate=(1, 1)):
        assert activation is None  # the layer applies its activation after this op
        self.x, self.kernel = x, kernel
        self.geometry = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
        return of(x).depthwise_conv2d_forward(x, kernel, bias, **self.geometry)

    def backward(self, grad):
        n = len(self.needs_input_grad)
        need = tuple(self.needs_input_grad[:3]) + (False,) * 3
        dx, dk, db = of(grad).depthwise_conv2d_backward(grad, self.x, self.kernel, dx=need[0], dkernel=need[1],
                                                        dbias=need[2], **self.geometry)
        return ((dx, dk, db) + (None,) * n)[:n]


class Conv2DTranspose(Function):
    """The transpose (adjoint) of conv2d: x (B,H,W,C), kernel (KH,KW,OC,C) (Keras's layout), bias (OC,) or
    None -> (B,OH,OW,OC) with OH = transpose_length(H, ...) (Keras's rule, output_padding included). Forward is
    conv2d_backward's dx of a conv2d from (B,OH,OW,OC) to x; backward is a conv2d (dx) and conv2d_backward's
    dkernel, so every ISA's conv kernels serve it."""

    def forward(self, x, kernel, bias=None, activation=None, strides=(1, 1), padding="valid",
                dilation_rate=(1, 1), output_padding=None):
        assert activation is None  # the layer applies its activation after this op
        self.x, self.kernel = x, kernel
        self.geometry = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
        table = of(x)
        out_hw = [transpose_length(x.shape[1 + i], kernel.shape[i], strides[i], dilation_rate[i], padding,
                                   None if output_padding is None else output_padding[i]) for i in range(2)]
        # only the shape of the conv's input is read when just dx is asked for
        self.shape = (x.shape[0],) + tuple(out_hw) + (kernel.shape[2],)
        y = table.conv2d_backward(x, table.empty(self.shape), kernel, dx=True, dkernel=False, dbias=False,
                                  **self.geometry)[0]
        if bias is not None:
            y += bias
        return y

    def backward(self, grad):
        n = len(self.needs_input_grad)
        nx, nk, nb = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        table = of(grad)
        dx = table.conv2d_forward(grad, self.kernel, **self.geometry) if nx else None
        dk = table.conv2d_backward(self.x, grad, self.kernel, dx=False, dkernel=True, dbias=False,
                                   **self.geometry)[1] if nk else None
        db = grad.reshape(-1, grad.shape[-1]).sum(axis=0) if nb else None
        return ((dx, dk, db) + (None,) * n)[:n]


class GroupedConv2D(Function):
    """conv2d with ``groups`` channel groups: x (B,H,W,C), kernel (KH,KW,C/groups,OC), bias (OC,) or None;
    group g maps input channels [g*C/groups, ...) to output channels [g*OC/groups, ...) (Keras)."""

    def forward(self, x, kernel, bias=None, activation=None, groups=1, strides=1, padding="valid",
                dilation_rate=1):
        assert activation is None  # the layer applies its activation after this op
        self.x, self.kernel, self.groups = x, kernel, groups
        self.geometry = dict(strides=strides, padding=padding, dilation_rate=dilation_rate)
        table = of(x)
        outs = [table.conv2d_forward(np.ascontiguousarray(xg), np.ascontiguousarray(kg), **self.geometry)
                for xg, kg in zip(self._split(x), self._split(kernel))]
        y = np.concatenate(outs, axis=-1)
        if bias is not None:
            y += bias
        return y

    def _split(self, a):
        return np.split(a, self.groups, axis=-1)

    def backward(self, grad):
        n = len(self.needs_input_grad)
        nx, nk, nb = (tuple(self.needs_input_grad) + (False,) * 3)[:3]
        table = of(grad)
        parts = [table.conv2d_backward(np.ascontiguousarray(gg), np.ascontiguousarray(xg), np.ascontiguousarray(kg),
                                       dx=nx, dkernel=nk, dbias=False, **self.geometry)
                 for gg, xg, kg in zip(self._split(grad), self._split(self.x), self._split(self.kernel))]
        dx = np.concatenate([p[0] for p in parts], axis=-1) if nx else None
        dk = np.concatenate([p[1] for p in parts], axis=-1) if nk else None
        db = grad.reshape(-1, grad.shape[-1]).sum(axis=0) if nb else None
        return ((dx, dk, db) + (None,) * n)[:n]


def transpose_length(size, k, s, d, padding, output_padding=None):
    """Keras's Conv2DTranspose output length, span = (k-1)*d + 1 the dilated window: without output_padding,
    same in*s and valid (in-1)*s + max(span, s) (cells past the last window get only the bias); with it,
    same (in-1)*s + span%2 + output_padding and valid (in-1)*s + span + output_padding."""
    if size is None:
        return None
    span = (k - 1) * d + 1
    if output_padding is None:
        return size * s if padding == "same" else (size - 1) * s + max(span, s)
    return (size - 1) * s + (span % 2 if padding == "same" else span) + output_padding


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
