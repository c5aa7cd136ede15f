"""``tf.data`` for programs written ``import fastnn as tf``: a ``Dataset`` of host (numpy) elements with the
transformations the TensorFlow tutorials chain (``from_tensor_slices``, ``batch``, ``shuffle``, ``map``, ``cache``,
``prefetch``, ``repeat``, ``take``, ``skip``, ...), which ``fit``/``evaluate``/``predict`` take as ``x`` and
``validation_data`` (one element = one batch, re-iterated each epoch, as Keras does with a tf.data dataset).

An element is a structure (tuple / dict / list) of leaves; a leaf is an ``Array`` (a numpy array with TF's
``.numpy()`` and ``set_shape``; the Tensors a ``map`` function returns are copied into one).
The pipeline is lazy and runs on the calling thread: ``prefetch`` and ``num_parallel_calls`` are accepted and do
nothing (fit already loads the next batch on a background thread). NOTE: strings stay Python ``str`` (TF gives
``bytes``), so ``text_batch.numpy()[0]`` prints without the ``b''``.
"""
import itertools
import math
import types

import numpy as np

from fastnn import random as _random
from fastnn._pydataset import PyDataset

AUTOTUNE = -1
INFINITE_CARDINALITY = -1
UNKNOWN_CARDINALITY = -2
__all__ = ["Dataset", "AUTOTUNE", "INFINITE_CARDINALITY", "UNKNOWN_CARDINALITY", "experimental"]


class Array(np.ndarray):
    """A numpy array as a tf.data element leaf: ``.numpy()`` (a plain ndarray) and ``set_shape`` (a check)."""

    def numpy(self):
        return np.asarray(self)

    def set_shape(self, shape):
        """TF's static-shape hint: checks that the known dimensions (not None) match."""
        shape = tuple(shape)
        if len(shape) != self.ndim or any(s is not None and s != d for s, d in zip(shape, self.shape)):
            raise ValueError(f"set_shape: shape {shape} is not compatible with the element's shape {self.shape}")


def _leaf(value):
    """A leaf as an ``Array``: a Tensor a ``map`` function returned is copied to the host, as a tf.data
    pipeline's values are constants (numpy functions such as ``np.min`` then work on them, as in TF)."""
    if isinstance(value, Array):
        return value
    arr = np.asarray(value.numpy() if hasattr(value, "numpy") and not isinstance(value, np.ndarray) else value)
    if arr.dtype == np.float64:  # TF's from_tensor_slices keeps float64; fastnn computes in float32 anyway
        arr = arr.astype(np.float32)
    return arr.view(Array)


def _map_structure(fn, *elements):
    """``fn`` applied to the leaves of equally structured elements (tuples, lists, dicts)."""
    first = elements[0]
    if isinstance(first, dict):
        return {k: _map_structure(fn, *(e[k] for e in elements)) for k in first}
    if isinstance(first, (tuple, list)):
        return type(first)(_map_structure(fn, *parts) for parts in zip(*elements))
    return fn(*elements)


def _leaves(element):
    if isinstance(element, dict):
        return [leaf for v in element.values() for leaf in _leaves(v)]
    if isinstance(element, (tuple, list)):
        return [leaf for v in element for leaf in _leaves(v)]
    return [element]


def _host(value):
    """A leaf as a numpy array (Tensors copied to the host)."""
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _count(n):
    """A cardinality argument (int, numpy scalar or 0-d array) as an int."""
    return int(np.asarray(n))


class _NumpyIterator:
    """``as_numpy_iterator()``'s result: a Python iterator with TF's ``.next()`` spelling."""

    def __init__(self, gen):
        self._gen = gen

    def __iter__(self):
        return self

    def __next__(self):
        return next(self._gen)

    next = __next__


class Dataset:
    """A lazy sequence of elements (see the module docstring). Build one with ``Dataset.from_tensor_slices``,
    ``from_tensors``, ``range``, ``zip`` or ``fastnn.utils.*_dataset_from_*``; transformations return new
    datasets; ``for element in dataset`` iterates (afresh each time)."""

    def __init__(self, make_iterator, cardinality):
        # make_iterator: () -> iterator of elements; cardinality: an int >= 0, INFINITE_ or UNKNOWN_CARDINALITY
        self._make_iterator, self._cardinality = make_iterator, int(cardinality)

    # ---- sources -------------------------------------------------------------------------------------------
    @staticmethod
    def from_tensor_slices(tensors, name=None):
        """One element per row of the leaves of ``tensors`` (all leaves must have the same first dimension)."""
        tensors = _map_structure(lambda t: t if isinstance(t, np.ndarray) else _host(t), tensors)
        sizes = {len(t) if np.ndim(t) else -1 for t in _leaves(tensors)}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(f"from_tensor_slices: every component must have the same (non-scalar) first "
                             f"dimension, got first dimensions {sorted(sizes)}")
        n = sizes.pop()

        def rows():
            for i in range(n):
                yield _map_structure(lambda t: _leaf(t[i]), tensors)
        return Dataset(rows, n)

    @staticmethod
    def from_tensors(tensors, name=None):
        """A dataset of one element: ``tensors`` itself."""
        element = _map_structure(_leaf, tensors)
        return Dataset(lambda: iter([element]), 1)

    @staticmethod
    def range(*args, **kwargs):
        """The integers of ``range(*args)`` as int64 scalars."""
        r = range(*args)
        return Dataset(lambda: (_leaf(np.int64(i)) for i in r), len(r))

    @staticmethod
    def zip(*datasets, name=None):
        """Elements that are tuples (or the given structure) of the datasets' elements, until the shortest ends."""
        structure = datasets[0] if len(datasets) == 1 and isinstance(datasets[0], (tuple, dict)) else datasets
        parts = list(structure.values()) if isinstance(structure, dict) else list(structure)
        known = [d._cardinality for d in parts if d._cardinality >= 0]
        card = min(known) if known else (UNKNOWN_CARDINALITY if any(d._cardinality == UNKNOWN_CARDINALITY
                                                                    for d in parts) else INFINITE_CARDINALITY)

        def items():
            for values in zip(*parts):
                yield dict(zip(structure, values)) if isinstance(structure, dict) else tuple(values)
        return Dataset(items, card)

    # ---- iteration -----------------------------------------------------------------------------------------
    def __iter__(self):
        return iter(self._make_iterator())

    def as_numpy_iterator(self):
        """An iterator over the elements with every leaf a plain numpy array (TF's has ``.next()`` too)."""
        return _NumpyIterator(_map_structure(_host, e) for e in self)

    def cardinality(self):
        """The number of elements, ``INFINITE_CARDINALITY`` (-1) or ``UNKNOWN_CARDINALITY`` (-2), as a 0-d
        int64 array (``int()``, ``//`` and ``.numpy()`` work)."""
        return _leaf(np.int64(self._cardinality))

    def __len__(self):
        if self._cardinality == INFINITE_CARDINALITY:
            raise TypeError("The dataset is infinite.")
        if self._cardinality == UNKNOWN_CARDINALITY:
            raise TypeError("The dataset length is unknown.")
        return self._cardinality

    def __bool__(self):
        return True

    # ---- transformations -----------------------------------------------------------------------------------
    def _then(self, make_iterator, cardinality=None):
        return Dataset(make_iterator, self._cardinality if cardinality is None else cardinality)

    def map(self, map_func, num_parallel_calls=None, deterministic=None, name=None):
        """``map_func(*element)`` for tuple elements (as TF unpacks them), else ``map_func(element)``."""
        def items():
            for e in self:
                out = map_func(*e) if isinstance(e, tuple) else map_func(e)
                yield _map_structure(_leaf, out)
        return self._then(items)

    def filter(self, predicate, name=None):
        """The elements for which ``predicate`` is true."""
        def items():
            for e in self:
                if bool(np.asarray(_host(predicate(*e) if isinstance(e, tuple) else predicate(e)))):
                    yield e
        return self._then(items, UNKNOWN_CARDINALITY)

    def batch(self, batch_size, drop_remainder=False, num_parallel_calls=None, deterministic=None, name=None):
        """Consecutive elements stacked leaf by leaf (the last batch shorter unless ``drop_remainder``)."""
        batch_size = _count(batch_size)
        if batch_size < 1:
            raise ValueError(f"batch: batch_size must be a positive integer, got {batch_size}")
        card = self._cardinality
        if card >= 0:
            card = card // batch_size if drop_remainder else math.ceil(card / batch_size)

        def items():
            it = iter(self)
            while True:
                chunk = list(itertools.islice(it, batch_size))
                if not chunk or (drop_remainder and len(chunk) < batch_size):
                    return
                yield _map_structure(lambda *leaves: _leaf(np.stack([_host(v) for v in leaves])), *chunk)
        return self._then(items, card)

    def unbatch(self, name=None):
        """The rows of each element's leaves as separate elements."""
        def items():
            for e in self:
                e = _map_structure(_host, e)
                for i in range(len(_leaves(e)[0])):
                    yield _map_structure(lambda t: _leaf(t[i]), e)
        return self._then(items, UNKNOWN_CARDINALITY)

    def shuffle(self, buffer_size, seed=None, reshuffle_each_iteration=True, name=None):
        """TF's buffered shuffle: fill a buffer of ``buffer_size`` elements, emit a random one, refill. The
        draws come from ``fastnn.random`` (``seed`` / the global seed make them reproducible)."""
        buffer_size = _count(buffer_size)
        if buffer_size < 1:
            raise ValueError(f"shuffle: buffer_size must be a positive integer, got {buffer_size}")
        base = _random.rng(seed)
        fixed = None if reshuffle_each_iteration else int(base.integers(2 ** 31))

        def items():
            gen = np.random.default_rng(fixed if fixed is not None else int(base.integers(2 ** 31)))
            buf = []
            for e in self:
                buf.append(e)
                if len(buf) >= buffer_size:
                    j = int(gen.integers(len(buf)))
                    buf[j], buf[-1] = buf[-1], buf[j]
                    yield buf.pop()
            while buf:
                j = int(gen.integers(len(buf)))
                buf[j], buf[-1] = buf[-1], buf[j]
                yield buf.pop()
        return self._then(items)

    def repeat(self, count=None, name=None):
        """The elements ``count`` times over (None or -1: forever)."""
        count = None if count is None or _count(count) < 0 else _count(count)
        card = self._cardinality
        if count is None:
            card = INFINITE_CARDINALITY if card != 0 else 0
        elif card >= 0:
            card *= count

        def items():
            for _ in (itertools.count() if count is None else range(count)):
                yield from self
        return self._then(items, card)

    def take(self, count, name=None):
        """The first ``count`` elements (-1: all)."""
        count = _count(count)
        if count < 0:
            return self
        card = count if self._cardinality == INFINITE_CARDINALITY else \
            min(count, self._cardinality) if self._cardinality >= 0 else UNKNOWN_CARDINALITY
        return self._then(lambda: itertools.islice(self, count), card)

    def skip(self, count, name=None):
        """All but the first ``count`` elements."""
        count = _count(count)
        card = max(self._cardinality - count, 0) if self._cardinality >= 0 else self._cardinality
        return self._then(lambda: itertools.islice(self, count, None), card)

    def concatenate(self, dataset, name=None):
        a, b = self._cardinality, dataset._cardinality
        card = a + b if a >= 0 and b >= 0 else min(a, b)
        return self._then(lambda: itertools.chain(self, dataset), card)

    def enumerate(self, start=0, name=None):
        return self._then(lambda: ((_leaf(np.int64(i)), e) for i, e in enumerate(self, start)))

    def cache(self, filename="", name=None):
        """Keep the elements of the first complete iteration in memory and replay them afterwards
        (``filename`` is accepted; the cache is always in memory)."""
        store = {}

        def items():
            if "elements" in store:
                yield from store["elements"]
                return
            seen = []
            for e in self:
                seen.append(e)
                yield e
            store["elements"] = seen
        return self._then(items)

    def prefetch(self, buffer_size=AUTOTUNE, name=None):
        """Accepted for TF compatibility; fit already loads the next batch on a background thread."""
        return self

    def with_options(self, options, name=None):
        return self

    def apply(self, transformation_func):
        return transformation_func(self)

    def __repr__(self):
        return f"<fastnn.data.Dataset cardinality={self._cardinality}>"


class _Feed(PyDataset):
    """A Dataset seen by fit/evaluate/predict as a PyDataset whose batches are the elements, read in order:
    ``__getitem__`` ignores the index and returns the next element, starting a new iteration after
    ``num_batches`` elements (fit's loader asks for them in order on one thread, see ``as_feed``)."""

    def __init__(self, dataset):
        super().__init__(workers=1)
        self._dataset, self._it, self._served = dataset, None, 0
        card = dataset._cardinality
        if card == UNKNOWN_CARDINALITY:  # count once (a finite pipeline; an endless one must say repeat())
            card = sum(1 for _ in dataset)
        self._n = None if card == INFINITE_CARDINALITY else card

    @property
    def num_batches(self):
        return self._n

    def __len__(self):
        return self._n if self._n is not None else 0

    def __getitem__(self, index):
        if self._it is None or (self._n is not None and self._served >= self._n):
            self._it, self._served = iter(self._dataset), 0
        self._served += 1
        try:
            return next(self._it)
        except StopIteration:
            raise IndexError(f"the dataset ended after {self._served - 1} elements") from None


def as_feed(data):
    """``data`` as fit/evaluate/predict take it: a Dataset becomes a ``_Feed`` (anything else is unchanged)."""
    return _Feed(data) if isinstance(data, Dataset) else data


def _experimental_cardinality(dataset):
    return dataset.cardinality()


experimental = types.SimpleNamespace(AUTOTUNE=AUTOTUNE, INFINITE_CARDINALITY=INFINITE_CARDINALITY,
                                     UNKNOWN_CARDINALITY=UNKNOWN_CARDINALITY, cardinality=_experimental_cardinality)
