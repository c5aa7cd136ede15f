"""Direct numpy-in / numpy-out access to the C++ kernels (no autograd). What benchmarks time.

Each function calls the kernel table of its input's device (``backend.of``); the elementwise
functions are made from the C++ table ``_C.unary_ops``, one per entry.
"""
from fastnn import _C
from fastnn.backend import of as _of


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
    return _of(a).gemm(a, b, c, trans_a, trans_b, alpha, beta, None, "none", out)


def _unary(name, alpha, doc):
    kernel = name + "_forward"
    if alpha is None:
        def f(x, *, out=None):
            return getattr(_of(x), kernel)(x, out=out)
    else:
        def f(x, alpha=alpha, *, out=None):
            return getattr(_of(x), kernel)(x, alpha=alpha, out=out)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{doc} Elementwise, as float32.\n\n``out``: optional C-contiguous float32 array of x's shape (may be x itself)."
    return f


for _name, _saves_output, _alpha, _doc in _C.unary_ops:
    globals()[_name] = _unary(_name, _alpha, _doc)


def leaky_relu(x, negative_slope=0.2, *, out=None):
    """Return ``x if x >= 0 else negative_slope * x`` elementwise as float32 (Keras default slope 0.2)."""
    return _of(x).leaky_relu_forward(x, alpha=negative_slope, out=out)


def softmax(x, axis=-1, *, out=None):
    """Return the softmax of ``x`` along ``axis`` as float32 (max-subtracted, rows sum to 1).

    >>> import numpy as np, fastnn
    >>> fastnn.kernels.softmax(np.zeros((1, 4))).tolist()
    [[0.25, 0.25, 0.25, 0.25]]
    """
    return _of(x).softmax_forward(x, axis, out=out)


def log_softmax(x, axis=-1, *, out=None):
    """Return ``log(softmax(x))`` along ``axis`` as float32, computed as ``x - max - log(sum(exp))``."""
    return _of(x).log_softmax_forward(x, axis, out=out)


def dropout(x, rate, seed, offset=0, *, out=None):
    """Return inverted dropout of ``x``: ``x / (1 - rate)`` where kept, 0 where dropped.

    The mask is a pure function of ``(seed, offset, element index)`` (Philox-4x32-10), identical for
    any thread count and CPU; call again with the same arguments on the gradient for the backward pass.
    """
    return _of(x).dropout(x, rate, seed, offset, out=out)


def conv2d(x, kernel, bias=None, *, strides=1, padding="valid", dilation_rate=1, activation=None, out=None):
    """Return the 2-D convolution of ``x`` (B, H, W, C) with ``kernel`` (KH, KW, C, OC) (+ ``bias`` (OC,)).

    Keras layout and semantics: NHWC input, HWIO kernel, output (B, OH, OW, OC); ``strides`` and
    ``dilation_rate`` are an int or a pair; ``padding`` is "valid" or "same" (TF rule: the odd padding
    cell goes to the bottom/right). ``activation``: None/"linear" or "relu" (fused into the store).
    ``out``: optional C-contiguous float32 array of the output shape.

    >>> import numpy as np, fastnn
    >>> fastnn.kernels.conv2d(np.ones((1, 3, 3, 1)), np.ones((2, 2, 1, 1))).ravel().tolist()
    [4.0, 4.0, 4.0, 4.0]
    """
    return _of(x).conv2d_forward(x, kernel, bias, strides=strides, padding=padding,
                                       dilation_rate=dilation_rate, activation=activation, out=out)


def max_pool2d(x, pool_size=2, strides=None, padding="valid", *, out=None):
    """Return the max pooling of ``x`` (B, H, W, C); ``strides`` default to ``pool_size`` (Keras).

    >>> import numpy as np, fastnn
    >>> fastnn.kernels.max_pool2d(np.arange(16.0).reshape(1, 4, 4, 1)).ravel().tolist()
    [5.0, 7.0, 13.0, 15.0]
    """
    return _of(x).maxpool2d_forward(x, pool_size=pool_size, strides=strides, padding=padding, out=out)


def avg_pool2d(x, pool_size=2, strides=None, padding="valid", *, out=None):
    """Return the average pooling of ``x`` (B, H, W, C) over each window's cells inside the image.

    >>> import numpy as np, fastnn
    >>> fastnn.kernels.avg_pool2d(np.arange(16.0).reshape(1, 4, 4, 1)).ravel().tolist()
    [2.5, 4.5, 10.5, 12.5]
    """
    return _of(x).avgpool2d_forward(x, pool_size=pool_size, strides=strides, padding=padding, out=out)
