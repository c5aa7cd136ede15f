"""``fastnn.utils.PyDataset``: Keras 3's base class for datasets written in Python (batches by index)."""
import itertools


class PyDataset:
    """Base class for a dataset of batches computed by Python code: implement ``__len__`` (the number of
    batches; or a ``num_batches`` property returning None for an endless dataset) and ``__getitem__(index)``
    returning one batch ``x``, ``(x, y)`` or ``(x, y, sample_weight)``; optionally ``on_epoch_begin`` /
    ``on_epoch_end`` (e.g. to reshuffle). ``fit``, ``evaluate`` and ``predict`` take it as ``x``.

    Args (pass them on with ``super().__init__(**kwargs)``):
        workers: threads computing batches ahead of the training step (1: one background thread; the next
            batch is always loaded while the step computes).
        use_multiprocessing: accepted for Keras compatibility; fastnn uses threads either way (NOTE: a forked
            worker process would run fastnn's kernels on one OpenMP thread and cannot share the parent's
            arrays without copies; batch code that holds the GIL gains nothing from more workers).
        max_queue_size: batches computed ahead at most.

    >>> import numpy as np, fastnn
    >>> class Squares(fastnn.utils.PyDataset):
    ...     def __len__(self):
    ...         return 2
    ...     def __getitem__(self, i):
    ...         x = np.full((4, 1), i, np.float32)
    ...         return x, x ** 2
    >>> len(Squares())
    2
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers, self._use_multiprocessing, self._max_queue_size = workers, use_multiprocessing, max_queue_size

    # NOTE: getattr defaults: a subclass that forgot super().__init__() still works (Keras warns)
    @property
    def workers(self):
        return getattr(self, "_workers", 1)

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        return getattr(self, "_use_multiprocessing", False)

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        return getattr(self, "_max_queue_size", 10)

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__(index)")

    @property
    def num_batches(self):
        """Number of batches, or None for an endless dataset (default: ``len(self)``)."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(f"{type(self).__name__} must implement __len__ or the num_batches property")

    def __iter__(self):
        n = self.num_batches
        for index in (range(n) if n is not None else itertools.count()):
            yield self[index]

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""
