"""Which rows each rank works on.

fit (``auto_shard_dataset=True``: every rank is given the whole arrays): the global batches are those one
process would take (the same permutation: every rank uses rank 0's shuffling seed), and rank r of P takes
rows ``[B*r//P, B*(r+1)//P)`` of each global batch of B rows, so the shares differ by at most one row (a
last batch of fewer than P rows leaves some ranks without rows for that step; they still join the
gradient exchange, contributing zeros). evaluate/predict: rank r takes
rows ``[N*r//P, N*(r+1)//P)`` of the N samples.

Pre-sharded data (``auto_shard_dataset=False``: each rank is given only its own rows): rank r takes its
share ``B*(r+1)//P - B*r//P`` of each global batch of ``batch_size`` B from its own rows (shuffled with its
own seed); an epoch has as many steps as the rank with the most batches needs, and a rank whose rows are
used up contributes nothing to the remaining steps. evaluate sums every rank's results on its own rows;
predict returns each rank's predictions of its own rows.
"""
import zlib

import numpy as np

from fastnn.models import data as D


def bounds(n, size):
    """The P+1 boundaries of n rows cut into P contiguous shares."""
    return [n * r // size for r in range(size + 1)]


def share(n, rank, size):
    return n * rank // size, n * (rank + 1) // size


def per_sample(arrays):
    """(per-sample shape, dtype) of each array: what the ranks must agree on when each has its own rows."""
    return [None if a is None else (tuple(a.shape[1:]), str(a.dtype)) for a in arrays]


def fingerprint(arrays):
    """(shape, dtype, CRC32 of up to 64 evenly spaced rows) per array: a cheap check that the ranks were
    given the same data (e.g. not unseeded random arrays, which differ on every rank)."""
    out = []
    for a in arrays:
        if a is None:
            out.append(None)
            continue
        rows = np.ascontiguousarray(a[np.linspace(0, len(a) - 1, min(len(a), 64)).astype(np.int64)])
        out.append((tuple(a.shape), str(a.dtype), zlib.crc32(rows.view(np.uint8).reshape(-1))))
    return out


class ShardLoader:
    """fit's batches for this rank: ``epoch(e)`` yields (input batches, target batches) of this rank's share
    of each global batch; ``global_rows`` is the size of the current global batch; ``epoch_indices(e)`` are
    this rank's rows in the order it visits them (fit indexes the sample weights with it). ``shard=False``
    (an overridden train_step): every rank takes the whole global batch."""

    def __init__(self, xs, ys, batch_size, shuffle, seed, rank, size, shard=True, counts=None, x_dtypes=None):
        from fastnn._pipeline import BatchLoader
        self.order = BatchLoader(xs[0], None, batch_size=batch_size, shuffle=bool(shuffle), seed=seed, prefetch=False)
        self.xs, self.ys, self.batch_size = xs, ys, batch_size
        self.x_dtypes = x_dtypes or [np.float32] * len(xs)  # what each input is fed as (int32 for integer inputs)
        self.rank, self.size = (rank, size) if shard else (0, 1)
        self.counts = counts  # pre-sharded: every rank's number of rows (None: every rank has all of them)
        if counts is not None:
            b = bounds(batch_size, size)
            self.shares = [hi - lo for lo, hi in zip(b[:-1], b[1:])]
            self.steps = max(-(-n // s) if s else 0 for n, s in zip(counts, self.shares))
        self.global_rows, self.row_start = batch_size, 0  # the current global batch: its rows, this rank's first

    def __len__(self):
        return len(self.order) if self.counts is None else self.steps

    def _batches(self, epoch):
        perm, bs = self.order.epoch_indices(epoch), self.batch_size
        if self.counts is not None:  # step k: rows [k*s, (k+1)*s) of each rank's own rows (s: its share)
            for k in range(self.steps):
                taken = [max(0, min(s, n - k * s)) for n, s in zip(self.counts, self.shares)]
                lo = k * self.shares[self.rank]
                yield sum(taken), sum(taken[:self.rank]), perm[lo:lo + taken[self.rank]]
            return
        for lo in range(0, len(perm), bs):
            rows = perm[lo:lo + bs]
            a, b = share(len(rows), self.rank, self.size)
            yield len(rows), a, rows[a:b]

    def epoch_indices(self, epoch):
        return np.concatenate([idx for _, _, idx in self._batches(epoch)])

    def epoch(self, epoch):
        for total, start, idx in self._batches(epoch):
            self.global_rows, self.row_start = total, start
            yield [D.rows(x, idx, dt) for x, dt in zip(self.xs, self.x_dtypes)], [y[idx] for y in self.ys]
