"""Direct numpy-in / numpy-out access to the C++ kernels (no autograd). What benchmarks time."""
from fastnn import backend as _backend


def gemm(a, b, c=None, *, trans_a=False, trans_b=False, alpha=1.0, beta=0.0, out=None):
    """Return ``alpha * op(a) @ op(b) + beta * c`` as a new float32 array (``c`` is not modified).

    ``op(x)`` is ``x.T`` when the matching ``trans_*`` flag is set. Inputs may be any array-like;
    float64/int inputs are converted to float32 and strided views are read in place.
    ``out``: optional C-contiguous float32 array of shape (M, N) to write the result into.

    >>> import numpy as np, fastnn
    >>> fastnn.kernels.gemm(np.eye(2), [[1, 2], [3, 4]]).tolist()
    [[1.0, 2.0], [3.0, 4.0]]
    """
    # NOTE: positional on purpose: pybind11 parses keyword arguments ~1 us slower (as long as a 64^3 GEMM).
    return _backend.cpu.gemm(a, b, c, trans_a, trans_b, alpha, beta, None, "none", out)
