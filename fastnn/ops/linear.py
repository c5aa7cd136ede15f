"""MatMul and Linear (x @ kernel + bias, optional fused relu) on the C++ GEMM.

Backward never transposes in memory: dX = dY @ W^T and dW = X^T @ dY are GEMM calls with the
trans flags (packing absorbs the strides).
"""
import math

import numpy as np

from fastnn import backend
from fastnn.ops.basic import _unbroadcast
from fastnn.tensor import Function

_gemm = backend.cpu.gemm
_F32 = np.float32


class MatMul(Function):
    """numpy.matmul semantics: 1-D operands are promoted (and the added axis removed), leading
    (batch) axes broadcast. a (..., M, K) @ b (K, N) runs as one (prod(...)*M, K) x (K, N) GEMM."""

    def forward(self, a, b):
        a, b = np.asarray(a, _F32), np.asarray(b, _F32)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least 1 dimension, got shapes {a.shape} and {b.shape}")
        self.shapes = (a.shape, b.shape)
        if a.ndim == 1:
            a = a[None, :]
        if b.ndim == 1:
            b = b[:, None]
        if a.shape[-1] != b.shape[-2]:
            raise ValueError(f"matmul: shapes {self.shapes[0]} and {self.shapes[1]} are not aligned: "
                             f"{a.shape[-1]} (last axis of a) != {b.shape[-2]} "
                             f"({'axis 0' if b.ndim < 3 else 'second to last axis'} of b)")
        na, nb = self.needs_input_grad
        self.a = a if nb else None
        self.b = b if na else None
        self.promoted = (a.shape, b.shape)
        if b.ndim == 2:  # one GEMM over all rows of a
            K = a.shape[-1]
            out = _gemm(a.reshape(math.prod(a.shape[:-1]), K), b).reshape(a.shape[:-1] + b.shape[-1:])
        else:
            batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            ab = np.broadcast_to(a, batch + a.shape[-2:])
            bb = np.broadcast_to(b, batch + b.shape[-2:])
            out = np.empty(batch + (a.shape[-2], b.shape[-1]), _F32)
            for i in np.ndindex(*batch):
                _gemm(ab[i], bb[i], out=out[i])
        sa, sb = self.shapes
        if len(sb) == 1:
            out = out[..., 0]
        if len(sa) == 1:
            out = out[..., 0, :] if len(sb) > 1 else out[..., 0]
        return out

    def backward(self, g):
        na, nb = self.needs_input_grad
        a, b = self.a, self.b
        (sa, sb), (pa, pb) = self.shapes, self.promoted
        if len(sb) == 1:
            g = g[..., None]
        if len(sa) == 1:
            g = g[..., None, :]
        da = db = None
        if len(pb) == 2:
            g2 = g.reshape(-1, g.shape[-1])
            if na:
                da = _gemm(g2, b, trans_b=True).reshape(sa)
            if nb:
                db = _gemm(a.reshape(-1, pa[-1]), g2, trans_a=True).reshape(sb)
            return da, db
        batch = g.shape[:-2]
        if na:
            bb = np.broadcast_to(b, batch + pb[-2:])
            da = np.empty(batch + pa[-2:], _F32)
            for i in np.ndindex(*batch):
                _gemm(g[i], bb[i], trans_b=True, out=da[i])
            da = _unbroadcast(da, pa).reshape(sa)
        if nb:
            ab = np.broadcast_to(a, batch + pa[-2:])
            db = np.empty(batch + pb[-2:], _F32)
            for i in np.ndindex(*batch):
                _gemm(ab[i], g[i], trans_a=True, out=db[i])
            db = _unbroadcast(db, pb).reshape(sb)
        return da, db


_FUSED = {None: "none", "linear": "none", "none": "none", "relu": "relu"}


class Linear(Function):
    """x (..., K) @ kernel (K, N) + bias (N,), then the fused activation (None/"linear" or "relu").

    One GEMM with the bias+relu epilogue forward; backward masks dY by the relu output, then
    dX = dY @ kernel^T, dkernel = X^T @ dY, dbias = dY summed over rows.
    """

    def forward(self, x, kernel, bias=None, activation=None):
        x, kernel = np.asarray(x, _F32), np.asarray(kernel, _F32)
        if bias is not None:
            bias = np.asarray(bias, _F32)
        act = _FUSED.get(activation)
        if act is None:
            raise ValueError(f"linear: fused activation must be None, 'linear' or 'relu', got {activation!r}")
        if kernel.ndim != 2 or x.ndim == 0 or x.shape[-1] != kernel.shape[0]:
            raise ValueError(f"linear: x has shape {x.shape} and kernel has shape {kernel.shape}: expected "
                             f"a 2-D kernel (in, out) and x (..., in) with in = kernel.shape[0]")
        K, N = kernel.shape
        if bias is not None and np.shape(bias) != (N,):
            raise ValueError(f"linear: bias has shape {np.shape(bias)}, expected ({N},) for kernel of shape {kernel.shape}")
        self.x_shape = x.shape
        x2 = x.reshape(math.prod(x.shape[:-1]), K)
        out = _gemm(x2, kernel, bias=bias, activation=act)
        nx, nk = self.needs_input_grad[:2]
        self.x2 = x2 if nk else None
        self.kernel = kernel if nx else None
        self.out = out if act == "relu" else None
        return out.reshape(x.shape[:-1] + (N,))

    def backward(self, g):
        nx, nk = self.needs_input_grad[:2]
        nbias = len(self.needs_input_grad) > 2 and self.needs_input_grad[2]
        g2 = g.reshape(-1, g.shape[-1])
        if self.out is not None:
            g2 = g2 * (self.out > 0)
        dx = _gemm(g2, self.kernel, trans_b=True).reshape(self.x_shape) if nx else None
        dk = _gemm(self.x2, g2, trans_a=True) if nk else None
        db = g2.sum(axis=0) if nbias else None
        return dx, dk, db
