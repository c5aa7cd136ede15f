"""Random layers (Dropout) under data parallelism: each rank draws, for its rows, exactly the numbers one
process draws for those rows, so a model with Dropout trains as it does in one process.

A Dropout call draws from a counter-based stream keyed by (seed, offset) at element indices 0..size-1 of
its input (csrc/cpu/dropout.cpp), and moves ``_offset`` on by the input's size; saving.py keeps the same
(``_seed``, ``_offset``) pair as the layer's seed_generator state. One process calls it on the B rows of a
global batch; rank r holds rows [a, b) of them. The rank's call is therefore made on its rows placed after
``a`` rows of zeros (the same element indices as in one process), and only its rows are kept; backward
does the same with the gradient. After the step every rank moves ``_offset`` past the whole batch, as
one process does. Rank 0 (a = 0) needs no padding; the others draw at most one global batch of numbers.
"""
import numpy as np

from fastnn.distribution import passes

_MASK64 = (1 << 64) - 1


def random_layers(plan):
    """(layer, numbers drawn per sample) for the plan's layers with a (``_seed``, ``_offset``) stream that are
    called at one place (several calls of one layer interleave their draws: left as they are)."""
    calls = {}
    for layer in plan.layers:
        calls[id(layer)] = calls.get(id(layer), 0) + 1
    out = []
    for layer in dict.fromkeys(plan.layers):
        if hasattr(layer, "_seed") and hasattr(layer, "_offset") and calls[id(layer)] == 1:
            shape = layer._output_shape
            if isinstance(shape, tuple) and all(d is not None for d in shape[1:]):
                out.append((layer, int(np.prod(shape[1:], dtype=np.int64))))
    return out


class _Padded:
    __slots__ = ("ctx", "start")

    def __init__(self, ctx, start):
        self.ctx, self.start = ctx, start


def _pad(x, start):
    padded = np.zeros((start + len(x),) + x.shape[1:], x.dtype)
    padded[start:] = x
    return padded


def install(layers, loader):
    """Make each layer's calls draw this rank's part of the global batch's numbers (``loader.row_start``: the
    rank's first row in the current global batch); passes.restore gives them their own passes back."""
    for layer, _ in layers:
        forward, backward = passes.own(layer)

        def sharded_forward(x, training, need_dx=True, *rest, _forward=forward):
            start = loader.row_start
            if not training or start == 0 or isinstance(x, list):
                return _forward(x, training, need_dx, *rest)
            y, ctx = _forward(_pad(x, start), training, need_dx, *rest)
            return y[start:], _Padded(ctx, start)

        def sharded_backward(ctx, dy, _backward=backward):
            if not isinstance(ctx, _Padded):
                return _backward(ctx, dy)
            dx = _backward(ctx.ctx, _pad(dy, ctx.start))
            return None if dx is None else dx[ctx.start:]

        passes.replace(layer, sharded_forward, sharded_backward)


def past_batch(layers, starts, rows):
    """Move each layer's stream past a global batch of ``rows`` rows from where it stood before the step."""
    for (layer, per_row), start in zip(layers, starts):
        layer._offset = (start + rows * per_row) & _MASK64
