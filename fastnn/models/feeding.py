"""Feeding fit/evaluate/predict the Keras way: Python generators (any iterator) and ``fastnn.utils.PyDataset``
(Keras 3 semantics), besides arrays.

- A stream yields batches ``x``, ``(x, y)`` or ``(x, y, sample_weight)`` (x / y: one array, a list or a dict by
  name, as for arrays).
- ``steps_per_epoch`` / ``validation_steps`` / ``steps``: batches per epoch (per run). None: a PyDataset's
  ``len()``; a generator runs until it is exhausted. A generator keeps its position across epochs (epoch 2
  continues where epoch 1 stopped); when it runs out fit warns "Your input ran out of data; interrupting
  training" and stops after that epoch, as Keras does. A PyDataset is read in passes over its indices (a new
  shuffled order per pass when ``fit(shuffle=True)``): without steps one pass per epoch; with fewer steps than
  batches the pass continues across epochs (Keras's EpochIterator; an epoch cut short by the end of a pass
  warns, training goes on). It gets ``on_epoch_begin``/``on_epoch_end`` around each epoch and is read by
  ``workers`` threads.
- Loading overlaps the step: batches are fetched (and cast/checked) on background threads, ``max_queue_size``
  ahead for a PyDataset and two ahead for a generator (one thread: a generator is advanced by one thread at a
  time, and never further than the batches the run will use when the number of steps is known).

``fastnn.models.training`` calls ``is_stream`` and the three entry points; arrays keep their own loader
(``ArrayBatches`` gives both the same (xs, ys, sample weights) per step shape).
"""
import collections
import itertools
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from fastnn import random as _random
from fastnn._pydataset import PyDataset
from fastnn.models import data as D
from fastnn.tensor import no_grad

_F32 = np.float32
_END = object()  # a generator's StopIteration, carried through a future
_GENERATOR_AHEAD = 2


def is_stream(x):
    """Whether ``x`` is fed batch by batch (a PyDataset or an iterator/generator), not as whole arrays."""
    return isinstance(x, PyDataset) or (hasattr(x, "__next__") and hasattr(x, "__iter__"))


def check_steps(steps, what):
    """``steps`` (steps_per_epoch, validation_steps, steps) as given: None or a positive int."""
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1):
        raise ValueError(f"{what}: the number of steps must be a positive integer or None, got {steps!r}")
    return steps


def first_batches(groups, steps, batch_size, what):
    """The first ``steps`` batches' rows of each list of arrays in ``groups`` (None entries and None groups stay
    None); warns, as Keras, when the arrays hold fewer batches."""
    rows = check_steps(steps, what) * batch_size
    n = next(len(a) for g in groups if g is not None for a in (g if isinstance(g, list) else [g]) if a is not None)
    if rows > n:
        warn_ran_out(stop=False)

    def cut(a):
        return None if a is None else a[:rows]
    return [None if g is None else [cut(a) for a in g] if isinstance(g, list) else cut(g) for g in groups]


def _standardize(batch, what):
    """A stream's batch as (x, y, sample_weight) (y, sample_weight None when absent)."""
    if isinstance(batch, list):
        batch = tuple(batch)
    if not isinstance(batch, tuple):
        return batch, None, None
    if len(batch) not in (1, 2, 3):
        raise ValueError(f"{what}: a batch must be x, (x,), (x, y) or (x, y, sample_weight), got a tuple of "
                         f"{len(batch)}")
    return tuple(batch) + (None,) * (3 - len(batch))


class _Ahead:
    """``fetch(key)`` for each key in order on ``workers`` threads, at most ``depth`` calls in flight;
    ``next()`` returns the results in key order (``_END`` once the keys or the generator are exhausted)."""

    def __init__(self, fetch, keys, workers, depth):
        self._fetch, self._keys, self._depth = fetch, iter(keys), max(1, depth)
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fastnn-feed")
        self._pending = collections.deque()
        self._done = False
        self._fill()

    def _fill(self):
        while not self._done and len(self._pending) < self._depth:
            key = next(self._keys, _END)
            if key is _END:
                self._done = True
                break
            self._pending.append(self._pool.submit(self._fetch, key))

    def next(self):
        if not self._pending:
            return _END
        item = self._pending.popleft().result()
        if item is _END:
            self._done = True
            self.close()
            return _END
        self._fill()
        return item

    def close(self):
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


class StreamBatches:
    """One stream's batches, prepared for ``model`` by ``prepare(x, y, sample_weight)``: ``steps`` per epoch
    (None: unknown), ``epoch(epoch)`` yields prepared batches, ``ran_out`` says a generator ended early."""

    def __init__(self, data, steps, prepare, what, shuffle=False, total=None):
        self.what, self.prepare, self.ran_out = what, prepare, False
        check_steps(steps, what)
        self.dataset = data if isinstance(data, PyDataset) else None
        if self.dataset is not None:
            n = self.dataset.num_batches
            self.steps = steps if steps is not None else n
            self.shuffle = shuffle and n is not None
            self._ahead = None
        else:
            self.steps = steps
            iterator = iter(data)
            # never pull more batches from the user's generator than the run will use
            keys = itertools.count() if steps is None or total is None else range(int(steps) * int(total))

            def fetch(_):
                try:
                    batch = next(iterator)
                except StopIteration:
                    return _END
                return self.prepare(*_standardize(batch, what))
            self._ahead = _Ahead(fetch, keys, 1, _GENERATOR_AHEAD)
        self._rng = _random.rng() if self.dataset is not None and self.shuffle else None

    def _pass(self):
        """One pass over the dataset (in a new shuffled order when shuffling), loaded ahead by its workers."""
        ds = self.dataset
        n = ds.num_batches
        order = itertools.count() if n is None else self._rng.permutation(n) if self._rng is not None else range(n)
        self._seen = 0

        def fetch(i):
            return self.prepare(*_standardize(ds[int(i)], self.what))
        workers = max(1, int(ds.workers or 1))
        return _Ahead(fetch, order, workers, max(1, int(ds.max_queue_size or 1)) if workers > 1 else 2)

    def epoch(self, epoch=0):
        """Yield the prepared batches of one epoch. A PyDataset with steps (Keras's EpochIterator) continues its
        pass across epochs and starts a new pass once every batch was seen; an epoch cut short by the end of a
        pass warns. A generator keeps its position; ``ran_out`` tells that it ended before the steps."""
        ds = self.dataset
        if ds is not None:
            ds.on_epoch_begin()
            if self._ahead is None or self.steps is None or self.steps == ds.num_batches:
                if self._ahead is not None:
                    self._ahead.close()
                self._ahead = self._pass()
        taken = 0
        try:
            while self.steps is None or taken < self.steps:
                item = self._ahead.next()
                if item is _END:
                    if ds is not None:
                        if self.steps is not None:
                            warn_ran_out(stop=False)
                        self._ahead = None
                    elif self.steps is not None or taken == 0:
                        self.ran_out = True
                    break
                taken += 1
                if ds is not None:
                    self._seen += 1
                yield item
        finally:
            if ds is not None:
                if self._ahead is not None and ds.num_batches is not None and self._seen >= ds.num_batches:
                    self._ahead.close()
                    self._ahead = None
                ds.on_epoch_end()

    def close(self):
        if self._ahead is not None:
            self._ahead.close()


class ArrayBatches:
    """fit's array loader (``models.data.Loader``) with each batch's sample weights: (xs, ys, wb or None).
    With ``steps`` (steps_per_epoch) the passes over the data continue across epochs as Keras's EpochIterator
    does (an epoch cut short by the end of a pass warns; the next epoch starts a new, reshuffled pass)."""

    def __init__(self, loader, weights, steps=None):
        self.loader, self.weights, self.ran_out = loader, weights, False
        self.steps = len(loader) if steps is None else int(steps)
        self._given = steps is not None
        self._pass, self._passes, self._seen = None, 0, 0

    def _one_pass(self, k):
        if self.weights is None:
            for xb, yb in self.loader.epoch(k):
                yield xb, yb, None
            return
        order, seen = self.loader.epoch_indices(k), 0
        for xb, yb in self.loader.epoch(k):
            rows = len(xb[0])
            yield xb, yb, self.weights[order[seen:seen + rows]]
            seen += rows

    def epoch(self, epoch):
        if not self._given:
            yield from self._one_pass(epoch)
            return
        n = len(self.loader)
        for _ in range(self.steps):
            if self._pass is None:
                self._pass, self._seen = self._one_pass(self._passes), 0
                self._passes += 1
            if self._seen >= n:
                warn_ran_out(stop=False)
                break
            self._seen += 1
            yield next(self._pass)
        if self._seen >= n:
            self._pass = None

    def close(self):
        self._pass = None


# ---- what training.py calls --------------------------------------------------------------------------------
def _preparer(model, what, class_weight=None, need_y=True):
    """prepare(x, y, sample_weight) -> (input arrays (float32, int32 for integer inputs), targets, sample weights or None, y shapes)."""

    lock = threading.Lock()  # PyDataset workers prepare in parallel; the first batch may build the model

    def prepare(x, y, sw):
        with lock:
            return _prepare(x, y, sw)

    def _prepare(x, y, sw):
        if y is None or not need_y:  # (predict ignores the targets of (x, y) batches)
            if need_y:
                raise ValueError(f"{what}: the batches must be (x, y) or (x, y, sample_weight) tuples; got a batch "
                                 f"without targets")
            return _rows(model._prepare_x(x, what)), None, None, None
        xs, targets, y_shapes = model._prepare_xy(x, y, what)
        n = len(xs[0])
        weights = D.sample_weights(n, next((t for t in targets if t is not None), None), class_weight, sw, what)
        targets = [t if t is not None else np.zeros(n, _F32) for t in targets]
        return _rows(xs), targets, weights, y_shapes

    def _rows(xs):  # each input as the model takes it: int32 for integer inputs, else float32
        return [D.rows(a, slice(None), dt) for a, dt in zip(xs, model._plan().input_dtypes)]
    return prepare


def fit_batches(model, x, y, sample_weight, class_weight, steps_per_epoch, shuffle, epochs):
    """The training batches of a stream, and the target shapes of its first batch (to resolve the metrics)."""
    if y is not None or sample_weight is not None:
        raise ValueError("fit: when x is a generator or a PyDataset, the targets and sample weights come from its "
                         "batches: y and sample_weight must be None")
    stream = StreamBatches(x, steps_per_epoch, _preparer(model, "fit", class_weight), "fit", shuffle, epochs)
    return _Peeked(stream)


class _Peeked:
    """A stream whose first batch is read before training (to build the model and resolve the metrics)."""

    def __init__(self, stream):
        self.stream, self._first = stream, None
        self.steps = stream.steps
        gen = stream.epoch(0)
        self._gen = gen
        self._first = next(gen, None)
        if self._first is None:
            raise ValueError(f"{stream.what}: the generator / PyDataset yielded no batches")
        self.y_shapes = self._first[3]

    @property
    def ran_out(self):
        return self.stream.ran_out

    def epoch(self, epoch):
        gen, self._gen = self._gen, None
        if gen is not None:  # the first epoch continues the peeked generator
            first, self._first = self._first, None
            yield first[:3]
            for item in gen:
                yield item[:3]
            return
        for item in self.stream.epoch(epoch):
            yield item[:3]

    def close(self):
        if self._gen is not None:
            self._gen.close()
        self.stream.close()


def warn_ran_out(stop=True):
    """Keras's warning when the data ends before the steps asked for (``stop``: fit stops training)."""
    warnings.warn(("Your input ran out of data; interrupting training. " if stop else "Your input ran out of data. ")
                  + "Make sure that your dataset or generator can generate at least `steps_per_epoch * epochs` "
                  "batches.", UserWarning, stacklevel=3)


def validation_runner(model, data, steps):
    """A callable giving the validation logs of ``data`` (a stream), for fit's epochs."""
    stream = StreamBatches(data, steps, _preparer(model, "fit: validation_data"), "fit: validation_data")
    return lambda: evaluate_logs(model, stream)


def evaluate_logs(model, stream, progbar=None):
    """Loss and metric logs of a stream (``StreamBatches`` or raw data) in inference mode."""
    batches = stream.epoch(0)
    first = next(batches, None)
    if first is None:
        raise ValueError(f"{stream.what}: the generator / PyDataset yielded no batches")
    model._resolve_metrics(first[3])
    items = itertools.chain([first], batches)
    from fastnn.models.training import Trainer  # (training imports this module)
    if type(model).test_step is not Trainer.test_step:
        return model._custom_test_step_batches(((xs, ys, k + 1) for k, (xs, ys, _, _) in enumerate(items)), progbar)
    plan = model._plan()

    def chunks():
        with no_grad():
            for k, (xs, ys, wb, _) in enumerate(items):
                outs = plan.forward(xs, False, False, plan.fused_steps)[0]
                yield len(xs[0]), outs, ys, wb, k + 1
    return model._evaluate_chunks(chunks(), progbar)


def evaluate_stream(model, data, steps, progbar):
    """evaluate's logs over a stream; ``progbar`` (or None) gets the step count once known."""
    stream = StreamBatches(data, steps, _preparer(model, "evaluate"), "evaluate")
    counted = _Counted(stream)
    if progbar is not None:
        progbar.target = stream.steps
    logs = evaluate_logs(model, counted, progbar)
    if progbar is not None and progbar.target is None:
        progbar.target = counted.count
    return logs


class _Counted:
    """A StreamBatches that counts the batches it gave."""

    def __init__(self, stream):
        self.stream, self.count, self.what = stream, 0, stream.what

    def epoch(self, epoch=0):
        for item in self.stream.epoch(epoch):
            self.count += 1
            yield item


def predict_stream(model, data, steps, progbar_for):  # noqa: D401
    """Model outputs over a stream's batches (their y, if any, ignored), concatenated."""
    stream = StreamBatches(data, steps, _preparer(model, "predict", need_y=False), "predict")
    progbar = progbar_for(stream.steps)
    plan, folded, outs, k = None, None, [], 0
    with no_grad():
        for k, (xs, _, _, _) in enumerate(stream.epoch(0), 1):
            if plan is None:
                plan = model._plan()
                folded = plan._folded() if plan.folds else None  # (once for every batch)
            outs.append(plan.infer(xs, folded))
            if progbar is not None:
                progbar.update(k)
    if not outs:
        raise ValueError("predict: the generator / PyDataset yielded no batches")
    if progbar is not None:
        progbar.update(k, finalize=True)
    return model._structure_outputs([np.concatenate([o[j] for o in outs]) for j in range(len(outs[0]))])
