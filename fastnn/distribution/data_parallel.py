"""DataParallel: what fit/evaluate/predict do differently when several ranks train one model.

fastnn/models/training.py calls in here through a few hooks, each a no-op (``None``) for one process:
``fit_begin`` (a ``FitRun``: sharded loader, rank-0-only writer callbacks, global logs, the gradient
reducer attached to the plan), ``shard_eval``/``sum_eval`` (evaluate on this rank's rows, then the sums
of every rank), ``predict_chunks``/``gather`` (predict this rank's rows, then everyone's), ``verbose``
and ``writes`` (only rank 0 prints and writes files).
"""
import os

import numpy as np

from fastnn import callbacks as callbacks_module
from fastnn.distribution import comm, passes, sharding, states
from fastnn.distribution import random_layers as streams
from fastnn.distribution import sync_bn
from fastnn.distribution.reducer import GradSync

# callbacks that write files or print progress: rank 0 runs them, the other ranks leave them out (the ones
# that decide, EarlyStopping, ReduceLROnPlateau, TerminateOnNaN..., run everywhere on the same global logs)
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15  # spreads the ranks' shuffling seeds (pre-sharded data)
_WRITERS = ("ProgbarLogger", "ModelCheckpoint", "CSVLogger", "TensorBoard", "BackupAndRestore", "RemoteMonitor")


def _is_writer(cb):
    return any(isinstance(cb, cls) for cls in (getattr(callbacks_module, n, None) for n in _WRITERS) if cls)


class DataParallel:
    """Data parallelism over the ranks of an MPI job (Keras 3's ``keras.distribution.DataParallel``).

    Every rank runs the same script on the same arrays; ``fit`` splits each global batch of ``batch_size``
    rows across the ranks and averages the gradients (reduced in a fixed order, so the replicas stay
    bit-identical); evaluate/predict split the samples. ``devices``: ignored beyond a count check (one
    device per rank). ``auto_shard_dataset=False``: the data is already sharded, each rank is given only its
    own rows (see fastnn/distribution/sharding.py for what fit, evaluate and predict then do).
    fastnn extras: ``bucket_bytes`` (gradient bucket size; smaller buckets start sooner, larger ones cost
    fewer messages), ``timeout`` (seconds without progress before the job is aborted; None: no limit).
    """

    def __init__(self, device_mesh=None, devices=None, auto_shard_dataset=True, bucket_bytes=1 << 20, timeout=None):
        if device_mesh is not None and devices is not None:
            raise ValueError("DataParallel: pass device_mesh or devices, not both")
        if isinstance(bucket_bytes, bool) or not isinstance(bucket_bytes, int) or bucket_bytes < 4:
            raise ValueError(f"DataParallel: bucket_bytes must be an int >= 4, got {bucket_bytes!r}")
        self.device_mesh, self.devices = device_mesh, devices
        self.auto_shard_dataset = bool(auto_shard_dataset)
        self.bucket_bytes, self.timeout = bucket_bytes, timeout
        self._syncs = {}  # plan -> its GradSync

    def __repr__(self):
        w = comm.world()
        return f"DataParallel(ranks={w.size}, rank={w.rank})"

    @property
    def batch_dim_name(self):
        return "batch"

    def _sync_of(self, plan):
        sync = self._syncs.get(id(plan))
        if sync is None or sync[0] is not plan:
            self._syncs = {id(plan): (plan, GradSync(comm.world(), plan, self.bucket_bytes))}
            sync = self._syncs[id(plan)]
        return sync[1]


_distribution = None
_active = None  # the distribution when it spans several ranks (the hooks' fast None check)


def set_distribution(value):
    """Make ``value`` (a DataParallel, or None for one process) the distribution fit/evaluate/predict use."""
    global _distribution, _active
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"set_distribution: expected a fastnn.distribution.DataParallel or None, got "
                        f"{type(value).__name__}")
    _distribution, _active = value, None
    if value is None:
        return
    w = comm.world()
    if value.devices is not None and len(value.devices) not in (1, w.size):
        raise ValueError(f"DataParallel: {len(value.devices)} devices given but the job has {w.size} ranks "
                         f"(one device per rank)")
    if w.size > 1:
        w.timeout = value.timeout
        _share_cores(w)
        _active = value


def distribution():
    """The distribution set by ``set_distribution`` (None: one process)."""
    return _distribution


def active():
    return _active


def _share_cores(w):
    """Give each rank at most its share of this host's cores (unless OMP_NUM_THREADS says otherwise): ranks x
    threads beyond the cores make every rank wait for the slowest. A lower count set by the script stays."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    from fastnn import backend
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    share = max(1, cores // max(1, w.local_size))
    if backend.get_num_threads() > share:
        backend.set_num_threads(share)


def _check_same(what, signatures, world):
    """Raise a ValueError naming what differs between the ranks' ``signatures`` (dicts)."""
    first = signatures[0]
    for q, sig in enumerate(signatures[1:], 1):
        diff = [k for k in first if first[k] != sig.get(k)]
        if diff:
            lines = "; ".join(f"{k}: rank 0 has {first[k]}, rank {q} has {sig.get(k)}" for k in diff)
            raise ValueError(f"fastnn.distribution: {what} differs between ranks ({lines}). Every rank must run "
                             f"the same model on the same arrays (seed them the same way: "
                             f"fastnn.utils.set_random_seed)")


def _weight_signature(model):
    return [(v.path, tuple(v.shape)) for v in model.weights]


# ---- fit ------------------------------------------------------------------------------------------------
def fit_begin(model, plan, xs, ys, batch_size, shuffle, epochs, initial_epoch):
    """The FitRun of this fit when several ranks train, else None."""
    return None if _active is None else FitRun(_active, model, plan, xs, ys, batch_size, shuffle, epochs,
                                               initial_epoch)


class FitRun:
    """One distributed fit: checks that the ranks agree, gives them rank 0's weights and shuffling seed, and
    provides fit's loader, callback list and step/log functions (see the module docstring)."""

    def __init__(self, dist, model, plan, xs, ys, batch_size, shuffle, epochs, initial_epoch):
        from fastnn.models.training import Trainer
        from fastnn.random import next_seed
        self.world = w = comm.world()
        self.model, self.plan = model, plan
        self.custom = type(model).train_step is not Trainer.train_step
        self.own = not dist.auto_shard_dataset  # pre-sharded: each rank has only its own rows
        if self.own and self.custom:
            raise ValueError("fit: an overridden train_step runs the whole batch on every rank (its gradients are "
                             "not averaged), so it needs every rank to have the same data: "
                             "DataParallel(auto_shard_dataset=True)")
        data = sharding.per_sample if self.own else sharding.fingerprint
        signature = {"model weights": _weight_signature(model), "x": data(xs), "y": data(ys), "batch_size": batch_size,
                     "shuffle": bool(shuffle), "epochs": (initial_epoch, epochs),
                     "optimizer": type(model.optimizer).__name__}
        signatures = w.handshake("fit", (signature, len(xs[0])))
        _check_same("fit", [sig for sig, _ in signatures], w)
        self.counts = [n for _, n in signatures] if self.own else None
        # rank 0's seeds for the shuffling and the random layers (drawn in the order one process draws them:
        # the loader's, then each Dropout's at its first call), so the ranks agree even when not seeded
        self.random_layers = streams.random_layers(plan) if not self.custom else []
        seeds = [next_seed()] + [(layer.seed if layer.seed is not None else next_seed()) if layer._seed is None
                                 else layer._seed for layer, _ in self.random_layers]
        seeds = np.array([s & _MASK64 for s in seeds] + [layer._offset for layer, _ in self.random_layers], np.uint64)
        w.bcast([seeds])
        self.seed = int(seeds[0])
        for k, (layer, _) in enumerate(self.random_layers):
            layer._seed, layer._offset = int(seeds[1 + k]), int(seeds[1 + len(self.random_layers) + k])
        # rank 0's weights and optimizer state: replicas start identical even when the ranks were not seeded
        opt = model.optimizer
        arrays = [v.value for v in model.weights]
        if opt.built:
            arrays += [s for v in plan.variables for s in opt._state.get(id(v), ()) if s is not None]
        iterations = np.array([opt.iterations], np.int64)
        w.bcast(arrays + [iterations])
        opt.iterations = int(iterations[0])
        self.sync = None if self.custom else dist._sync_of(plan)
        plan.grad_sync = self.sync
        self.bn_steps = [] if self.custom else sync_bn.synced_layers(plan)
        synced = {id(v) for _, layer in self.bn_steps for v in layer.weights}
        # other layers' batch statistics (not synchronized): averaged over the ranks after each step
        self.moving = [v for v in model.non_trainable_weights if v.name.startswith("moving_") and id(v) not in synced]
        if self.bn_steps:
            sync_bn.install(w, self.sync, self.bn_steps)
        self.loader = None
        self._muted = []

    # ---- what fit uses instead of its one-process pieces ------------------------------------------
    def Loader(self, xs, ys, batch_size, shuffle, x_dtypes=None):  # noqa: N802 - stands in for models.data.Loader
        w = self.world
        seed = (self.seed + _GOLDEN * w.rank) & _MASK64 if self.own else self.seed  # own rows: own order
        self.loader = sharding.ShardLoader(xs, ys, batch_size, shuffle, seed, w.rank, w.size, shard=not self.custom,
                                           counts=self.counts, x_dtypes=x_dtypes)
        streams.install(self.random_layers, self.loader)
        return self.loader

    def CallbackList(self, callbacks, model, params, add_history=True, add_progbar=False):  # noqa: N802
        return _Callbacks(self, callbacks, model, params, add_history, add_progbar)

    def step_fns(self, train_step, logs_now, totals, metrics):
        """fit's (train_step, logs_now) for this rank: the step knows its share of the global batch; the logs
        are the global ones (every rank's sums added up)."""
        if self.custom:
            return train_step, logs_now
        sync, plan, loader, world = self.sync, self.plan, self.loader, self.world

        random_layers = self.random_layers

        def step(xb, yb, wb=None):
            rows, total = len(xb[0]), loader.global_rows
            share = rows / total
            sync.weight = share
            starts = [layer._offset for layer, _ in random_layers]
            if rows == 0:
                out = _empty_step(plan, sync, lambda: sync_bn.empty_step(world, plan, self.bn_steps))
            else:
                out = train_step(xb, yb) if wb is None else train_step(xb, yb, wb)
            streams.past_batch(random_layers, starts, total)
            if self.moving:  # batch statistics: each rank saw its own rows; keep the replicas identical
                _average_moving(world, self.moving, share)
            return out

        def logs():
            local, saved = states.pack(metrics)
            head = [totals[0], totals[1]] + list(totals[2])
            total = world.all_sum(np.concatenate([np.array(head, np.float64), local]))
            keep = (totals[0], totals[1], list(totals[2]))
            totals[0], totals[1], totals[2] = float(total[0]), float(total[1]), [float(t) for t in total[2:len(head)]]
            states.unpack(total[len(head):], saved)
            try:
                return logs_now()
            finally:
                totals[0], totals[1], totals[2] = keep
                states.restore(saved)
        return step, logs

    def end(self):
        """fit is over (normally): detach the reducer, give the muted callbacks their verbosity back."""
        self.plan.grad_sync = None
        passes.restore([layer for layer, _ in self.random_layers] + [layer for _, layer in self.bn_steps])
        for cb, verbose in self._muted:
            cb.verbose = verbose


def _empty_step(plan, sync, statistics):
    """A step for a rank without rows (a last batch of fewer rows than ranks): the batch statistics'
    exchanges (``statistics()``), zeros into the gradient exchange, then the same update as every rank.
    NOTE: mirrors the end of Plan.train_step (regularizers, optimizer)."""
    statistics()
    sync.empty = True
    try:
        sync.finish()
    finally:
        sync.empty = False
    for v in plan.regularized:
        v.grad = v.grad + v.regularizer.gradient(v.value)
    if plan.variables:
        plan.model.optimizer._apply_vars(plan.variables)
    return 0.0, []


def _average_moving(world, variables, share):
    """Replace each moving statistic by its average over the ranks weighted by their rows (float64, so values
    that are already identical stay bit-identical)."""
    local = np.concatenate([v.value.reshape(-1).astype(np.float64) * share for v in variables])
    total = world.all_sum(local)
    pos = 0
    for v in variables:
        n = v.value.size
        v.value[...] = total[pos:pos + n].reshape(v.value.shape)
        pos += n


class _Callbacks:
    """fit's CallbackList on one rank: rank 0 runs every callback; the other ranks leave out the writers and
    printers and run the rest silently. Batch hooks run on every rank when any rank has one (the global logs
    they get are an exchange every rank must join)."""

    def __init__(self, run, callbacks, model, params, add_history, add_progbar):
        chief = run.world.rank == 0
        callbacks = list(callbacks or [])
        if not chief:
            callbacks = [cb for cb in callbacks if not _is_writer(cb)]
            for cb in callbacks:
                if getattr(cb, "verbose", 0):
                    run._muted.append((cb, cb.verbose))
                    cb.verbose = 0
            params = dict(params, verbose=0)
        self.inner = callbacks_module.CallbackList(callbacks, model, params, add_history, add_progbar and chief)
        need = run.world.all_sum(np.array([self.inner.needs_batch_begin, self.inner.needs_batch_end], np.float64))
        self.needs_batch_begin, self.needs_batch_end = bool(need[0]), bool(need[1])
        self.history = self.inner.history

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def train_batch_end(self, batch, logs_fn):
        logs = logs_fn()  # the exchange, on every rank
        self.inner.train_batch_end(batch, lambda: logs)


# ---- evaluate / predict ---------------------------------------------------------------------------------
def _own_rows():
    return not _active.auto_shard_dataset


def shard_eval(xs, ys, weights):
    """This rank's rows of evaluate's inputs, targets (None entries stay) and sample weights (pre-sharded
    data: all of them)."""
    w = comm.world()
    data = sharding.per_sample if _own_rows() else sharding.fingerprint
    _check_same("evaluate", w.handshake("evaluate", {"x": data(xs), "y": data(ys)}), w)
    if _own_rows():
        return xs, ys, weights
    a, b = sharding.share(len(xs[0]), w.rank, w.size)
    return ([x[a:b] for x in xs], [None if y is None else y[a:b] for y in ys],
            None if weights is None else weights[a:b])


def sum_eval(total, seen, per_total, metrics):
    """evaluate's sums over every rank (the metrics' states are set to the global ones)."""
    local, saved = states.pack(metrics)
    head = [total, seen] + list(per_total)
    out = comm.world().all_sum(np.concatenate([np.array(head, np.float64), local]))
    states.unpack(out[len(head):], saved)
    return float(out[0]), float(out[1]), [float(t) for t in out[2:len(head)]]


def predict_chunks(model, xs):
    """predict's (start, stop, outputs) chunks over this rank's rows, in global row numbers (pre-sharded
    data: over all of its own rows, which are all it returns)."""
    w = comm.world()
    _check_same("predict", w.handshake("predict", {"x": (sharding.per_sample if _own_rows() else
                                                         sharding.fingerprint)(xs)}), w)
    a, b = (0, len(xs[0])) if _own_rows() else sharding.share(len(xs[0]), w.rank, w.size)
    if b > a:
        for lo, hi, outs in model._inference_chunks([x[a:b] for x in xs]):
            yield a + lo, a + hi, outs


def gather(outs):
    """Fill every rank's rows of predict's output arrays (pre-sharded data: nothing to gather)."""
    if _own_rows():
        return
    w = comm.world()
    w.gather_blocks(outs, sharding.bounds(len(outs[0]), w.size))


def verbose(level):
    """The verbosity this rank uses: only rank 0 prints progress."""
    return level if _active is None or comm.world().rank == 0 else 0


def writes():
    """Whether this rank writes files (model.save, save_weights) and prints (summary): rank 0, or every
    process when alone."""
    return _active is None or comm.world().rank == 0
