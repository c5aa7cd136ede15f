"""MatMul and Linear (x @ kernel + bias, optional fused relu) on the C++ GEMM.

Backward never transposes in memory: dX = dY @ W^T and dW = X^T @ dY are GEMM calls on
transposed views, which the packing reads through their strides (see the NOTE in MatMul).
NOTE: forward keeps its inputs unconditionally: they are alive anyway as the parent Tensors'
data while a graph exists, and without a graph the Function is dropped right after forward.
"""
import math

import numpy as np

from fastnn._ops.basic import _unbroadcast
from fastnn.backend import of
from fastnn.tensor import Function

_F32 = np.float32
_F32_DTYPE = np.dtype(np.float32)


class MatMul(Function):
    """numpy.matmul semantics: 1-D operands are promoted (and the added axis removed), leading
    (batch) axes broadcast. a (..., M, K) @ b (K, N) runs as one (prod(...)*M, K) x (K, N) GEMM."""

    shapes = None  # the original shapes, set when forward leaves the 2-D fast path

    def forward(self, a, b):
        if type(a) is not np.ndarray or a.dtype is not _F32_DTYPE:
            a = np.asarray(a, _F32)
        if type(b) is not np.ndarray or b.dtype is not _F32_DTYPE:
            b = np.asarray(b, _F32)
        self.a, self.b = a, b
        if a.ndim == 2 and b.ndim == 2 and a.shape[1] == b.shape[0]:  # fast path
            return of(a).gemm(a, b)
        return self._forward_general(a, b)

    def _forward_general(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
        sa, sb = self.shapes = (a.shape, b.shape)
        if a.ndim == 1:
            a = a[None, :]
        if b.ndim == 1:
            b = b[:, None]
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {sa} and {sb} are not aligned: {a.shape[-1]} (last axis of a) "
                             f"!= {b.shape[-2]} ({'axis 0' if b.ndim < 3 else 'second to last axis'} of b)")
        self.promoted = (a.shape, b.shape)
        self.a, self.b = a, b
        _gemm = of(a).gemm
        if b.ndim == 2:  # one GEMM over all rows of a
            out = _gemm(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
        else:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            ab = np.broadcast_to(a, batch + a.shape[-2:])
            bb = np.broadcast_to(b, batch + b.shape[-2:])
            out = np.empty(batch + (a.shape[-2], b.shape[-1]), _F32)
            for i in np.ndindex(*batch):
                _gemm(ab[i], bb[i], out=out[i])
        if len(sb) == 1:
            out = out[..., 0]
        if len(sa) == 1:
            out = out[..., 0, :] if len(sb) > 1 else out[..., 0]
        return out

    # NOTE: x.T passed positionally is a strided view that GEMM packing reads in place, exactly
    # like trans_a/trans_b=True, and it skips pybind11's keyword parsing (~0.5 us per call).
    def backward(self, g):
        if self.shapes is not None:
            return self._backward_general(g)
        na, nb = self.needs_input_grad
        gemm = of(g).gemm
        return (gemm(g, self.b.T) if na else None,   # dA = dY @ B^T
                gemm(self.a.T, g) if nb else None)   # dB = A^T @ dY

    def _backward_general(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        (sa, sb), (pa, pb) = self.shapes, self.promoted
        _gemm = of(g).gemm
        if len(sb) == 1:
            g = g[..., None]
        if len(sa) == 1:
            g = g[..., None, :]
        da = db = None
        if len(pb) == 2:
            g2 = g.reshape(-1, g.shape[-1])
            if na:
                da = _gemm(g2, b.T).reshape(sa)
            if nb:
                db = _gemm(a.reshape(-1, pa[-1]).T, g2).reshape(sb)
            return da, db
        batch = g.shape[:-2]
        if na:
            bb = np.broadcast_to(b, batch + pb[-2:])
            da = np.empty(batch + pa[-2:], _F32)
            for i in np.ndindex(*batch):
                _gemm(g[i], bb[i].T, out=da[i])
            da = _unbroadcast(da, pa).reshape(sa)
        if nb:
            ab = np.broadcast_to(a, batch + pa[-2:])
            db = np.empty(batch + pb[-2:], _F32)
            for i in np.ndindex(*batch):
                _gemm(ab[i].T, g[i], out=db[i])
            db = _unbroadcast(db, pb).reshape(sb)
        return da, db


_FUSED = {None: "none", "linear": "none", "none": "none", "relu": "relu"}


def _check_shapes(x, kernel, bias):
    if kernel.ndim != 2 or x.ndim == 0 or x.shape[-1] != kernel.shape[0]:
        raise ValueError(f"linear: x has shape {x.shape} and kernel has shape {kernel.shape}: expected "
                         f"a 2-D kernel (in, out) and x (..., in) with in = kernel.shape[0]")
    if bias is not None and bias.shape != kernel.shape[1:]:
        raise ValueError(f"linear: bias has shape {bias.shape}, expected ({kernel.shape[1]},) for kernel of "
                         f"shape {kernel.shape}")


class Linear(Function):
    """x (..., K) @ kernel (K, N) + bias (N,), then the fused activation (None/"linear" or "relu").

    One GEMM with the bias+relu epilogue forward; backward masks dY by the relu output, then
    dX = dY @ kernel^T, dkernel = X^T @ dY, dbias = dY summed over rows.
    """

    def forward(self, x, kernel, bias=None, activation=None):
        act = _FUSED.get(activation)
        if act is None:
            raise ValueError(f"linear: fused activation must be None, 'linear' or 'relu', got {activation!r}")
        if type(x) is not np.ndarray or x.dtype is not _F32_DTYPE:
            x = np.asarray(x, _F32)
        if type(kernel) is not np.ndarray:  # backward reads kernel.T
            kernel = np.asarray(kernel, _F32)
        self.x_shape = shape = x.shape
        if len(shape) != 2:  # rows of the last axis
            _check_shapes(x, kernel, bias)
            x = x.reshape(math.prod(shape[:-1]), shape[-1])
        try:
            # NOTE: positional on purpose (pybind11 parses keywords ~0.5 us slower): a, b, c, trans_a, trans_b,
            # alpha, beta, bias, activation, out. The binding converts kernel and bias to float32 and checks
            # every shape (for 2-D x, the only check: predict's latency is mostly this call).
            out = of(x).gemm(x, kernel, None, False, False, 1.0, 0.0, bias, act, None)
        except ValueError:
            _check_shapes(x, kernel, None if bias is None else np.asarray(bias))  # in linear's words
            raise
        self.x2, self.kernel = x, kernel
        self.out = out if act == "relu" else None
        return out if len(shape) == 2 else out.reshape(shape[:-1] + out.shape[1:])

    def backward(self, g):
        nx, nk = self.needs_input_grad[:2]
        nbias = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        g2 = g if g.ndim == 2 else g.reshape(-1, g.shape[-1])
        table = of(g2)
        if self.out is not None:
            g2 = table.relu_backward(g2, self.out)  # dY * (y > 0)
        # transposed views instead of trans flags: see the NOTE in MatMul
        dx = table.gemm(g2, self.kernel.T) if nx else None
        if dx is not None and len(self.x_shape) != 2:
            dx = dx.reshape(self.x_shape)
        dk = table.gemm(self.x2.T, g2) if nk else None
        db = np.add.reduce(g2, axis=0) if nbias else None  # (ndarray.sum is a Python wrapper around this)
        return dx, dk, db
