"""The gradient reduction of a data-parallel training step: one flat float32 buffer, cut into buckets that
start travelling while backward is still running, reduced in a fixed order of our own.

Layout: the plan's trainable variables are laid out in the order backward finishes them (the last layer's
first), and the flat buffer is cut into buckets of about ``bucket_bytes``. A bucket is ready once backward
has passed the earliest step that uses any of its variables (the plan calls ``step(k)`` before running
step k's backward: every step after k is done); it is then copied into the flat buffer, scaled by this
rank's share of the global batch (``n_rank / n_global``, so the sum over ranks is the mean over the
global batch that one process would take), and sent.

Reduction of a bucket over P ranks (deterministic, bit-identical on every rank):
1. reduce-scatter: the bucket is cut into P chunks; rank c owns chunk c. Every rank sends chunk c to
   rank c and receives its own chunk from every peer; the owner adds the P contributions **in rank
   order** (0, 1, ..., P-1), whatever order they arrived in.
2. all-gather: each owner sends its summed chunk to every peer.
Each rank sends and receives 2 (P-1)/P of the bucket, the same volume as a ring all-reduce; the P-1
messages of a phase are in flight together (a ring sends them one after another). MPI's own
Allreduce(SUM) is not used: MPI does not fix its summation order, so replicas could drift apart.
Progress: MPICH moves data only inside MPI calls, so ``step(k)`` also polls the buckets in flight
(finishing phase 1 and starting phase 2 of any bucket whose chunks have all arrived).
"""
import numpy as np

from fastnn.distribution.comm import TAG_CONTROL

_F32 = np.float32


class _Bucket:
    """A range [lo, hi) of the flat buffer: its variables, the step that completes them, its chunk bounds
    (chunk c = [bounds[c], bounds[c+1])), receive space for its own chunk from each peer, its tag and the
    requests in flight."""

    def __init__(self, index, lo, hi, items, ready_at, size):
        self.lo, self.hi, self.items, self.ready_at = lo, hi, items, ready_at
        self.bounds = [lo + (hi - lo) * c // size for c in range(size + 1)]
        self.tag = 4 * index  # + 2 * phase + the exchange's parity (see comm.py)
        self.phase = 0   # 0 idle, 1 reduce-scatter in flight, 2 all-gather in flight, 3 done
        self.recvs, self.sends = [], []
        self.inbox = None


class GradSync:
    """The per-step gradient all-reduce of one plan (``plan.grad_sync``; the plan calls ``step(k)`` during
    backward and ``finish()`` after it). ``weight`` is this rank's share of the step's global batch."""

    def __init__(self, world, plan, bucket_bytes):
        self.world = world
        variables = plan.variables
        # the step whose backward completes each variable: the earliest step using it (backward runs in reverse)
        first = {}
        for k, layer in enumerate(plan.layers):
            for v in layer.trainable_weights:
                first.setdefault(id(v), k)
        order = sorted(variables, key=lambda v: -first.get(id(v), 0))
        self.total = sum(v.data.size for v in order)
        # floats per bucket; enough of them that the bucket tags stay below TAG_CONTROL
        limit = max(1, bucket_bytes // 4, self.total // (TAG_CONTROL // 4 - 2) + 1)
        self.flat = np.zeros(self.total, _F32)     # this rank's scaled gradients
        self.out = np.zeros(self.total, _F32)      # the reduced gradients (the variables' .grad are views)
        self.buckets = []
        lo = off = 0
        items, ready = [], None
        for v in order:
            items.append((v, off))
            off += v.data.size
            ready = first.get(id(v), 0) if ready is None else min(ready, first.get(id(v), 0))
            if off - lo >= limit or v is order[-1]:
                self.buckets.append(_Bucket(len(self.buckets), lo, off, items, ready, world.size))
                lo, items, ready = off, [], None
        self.views = [(v, self.out[off:off + v.data.size].reshape(v.shape)) for b in self.buckets for v, off in b.items]
        self.weight = 1.0
        self.empty = False  # this rank has no rows this step: it contributes zeros
        self._next = 0

    # ---- the plan's hooks ------------------------------------------------------------------------
    def step(self, k):
        """Backward is about to run step k: every step after k is done, so buckets completed by them go."""
        buckets = self.buckets
        while self._next < len(buckets) and buckets[self._next].ready_at > k:
            self._start(buckets[self._next])
            self._next += 1
        self._progress()

    def finish(self):
        """Send what is left, wait for every bucket, and point each variable's ``.grad`` at its reduced sum."""
        while self._next < len(self.buckets):
            self._start(self.buckets[self._next])
            self._next += 1
        world = self.world
        world._poll(self._progress, handshake=False)
        world.wait([r for b in self.buckets for r in b.sends])
        world.collectives += 1
        for b in self.buckets:
            b.phase, b.sends = 0, []
        self._next = 0
        for v, view in self.views:
            v.grad = view

    # ---- one bucket --------------------------------------------------------------------------------
    def _start(self, b):
        """Copy the bucket's gradients into the flat buffer (scaled) and post phase 1."""
        flat, w = self.flat, _F32(self.weight)
        if self.empty:
            flat[b.lo:b.hi] = 0
        else:
            for v, off in b.items:
                dst = flat[off:off + v.data.size]
                g = v.grad
                if g is None:
                    dst[:] = 0
                elif w == 1:
                    dst[:] = g.reshape(-1)
                else:
                    np.multiply(g.reshape(-1), w, out=dst)
        world = self.world
        comm, me, size, tag = world.comm, world.rank, world.size, b.tag + (world.collectives & 1)
        world.kind = 0
        mine = b.bounds[me + 1] - b.bounds[me]
        if b.inbox is None:
            b.inbox = np.empty((size, mine), _F32)
        b.recvs = []
        for q in range(size):
            if q == me:
                continue
            if mine:
                b.recvs.append(comm.Irecv(b.inbox[q], q, tag))
            lo, hi = b.bounds[q], b.bounds[q + 1]
            if hi > lo:
                b.sends.append(comm.Isend(flat[lo:hi], q, tag))
        b.phase = 1

    def _progress(self):
        """Advance the buckets in flight; True when all are done."""
        Testall = self.world.MPI.Request.Testall
        done = True
        for b in self.buckets[:self._next]:
            if b.phase == 1 and Testall(b.recvs):
                self._reduce_and_share(b)
            if b.phase == 2 and Testall(b.recvs):
                b.phase = 3
            done = done and b.phase == 3
        return done and self._next == len(self.buckets)

    def _reduce_and_share(self, b):
        """Phase 1 is in: sum this rank's chunk over the ranks in rank order, then post phase 2."""
        world = self.world
        comm, me, size, tag = world.comm, world.rank, world.size, b.tag + 2 + (world.collectives & 1)
        lo, hi = b.bounds[me], b.bounds[me + 1]
        acc = self.out[lo:hi]
        own = self.flat[lo:hi]
        first = own if me == 0 else b.inbox[0]
        acc[:] = first
        for q in range(1, size):
            acc += own if q == me else b.inbox[q]
        b.recvs = []
        for q in range(size):
            if q == me:
                continue
            qlo, qhi = b.bounds[q], b.bounds[q + 1]
            if qhi > qlo:
                b.recvs.append(comm.Irecv(self.out[qlo:qhi], q, tag))
            if hi > lo:
                b.sends.append(comm.Isend(acc, q, tag))
        b.phase = 2
