"""Argument and data handling of fit/evaluate/predict: validation with Keras's messages, inputs and targets
given as one array, a list or a dict by name, sample and class weights, and the batch loader."""
import os

import numpy as np

from fastnn import backend
from fastnn._graph import KerasTensor

_F32 = np.float32
_STR = np.dtype(object)  # string inputs: Python str in object arrays


def as_array(data, what):
    """A numeric numpy array (no copy for arrays; Tensors unwrap) or a ValueError/TypeError naming ``what``."""
    if data is None:
        raise ValueError(f"{what} is required, got None")
    if isinstance(data, KerasTensor):
        raise ValueError(f"{what} is a symbolic KerasTensor (shape {data.shape}): pass arrays of data; a KerasTensor "
                         f"only describes a model's graph")
    arr = np.asarray(data)
    if arr.dtype.kind not in "biufUSO":
        raise TypeError(f"{what} must be numeric (int, uint or float) or strings, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a batch dimension, got a scalar")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}): expected at least one sample")
    return arr


def as_arrays(data, names, what):
    """``data`` (one array, a list/tuple in ``names`` order, or a dict by name) as a list of arrays, one per
    name. A ValueError names what is missing, extra or miscounted."""
    if type(data) is np.ndarray and len(names) == 1 and data.ndim and len(data) and data.dtype.kind in "biuf":
        return [data]  # the common case, checked inline (predict's latency)
    if isinstance(data, KerasTensor):
        raise ValueError(f"{what}: got the symbolic KerasTensor {data.name!r} (shape {data.shape}) for the model's "
                         f"input(s) {names}: pass arrays of data; a KerasTensor only describes a model's graph")
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{what}: missing data for {missing}; the model expects {names}, got keys "
                             f"{sorted(data)}")
        extra = sorted(set(data) - set(names))
        if extra:
            raise ValueError(f"{what}: unexpected keys {extra}; the model expects {names}")
        return [as_array(data[n], f"{what}['{n}']") for n in names]
    if isinstance(data, (list, tuple)) and len(names) > 1:
        if len(data) != len(names):
            raise ValueError(f"{what}: the model has {len(names)} of them ({names}) but got a list of {len(data)}")
        return [as_array(d, f"{what}[{i}]") for i, d in enumerate(data)]
    if len(names) > 1:
        raise ValueError(f"{what}: the model has {len(names)} of them ({names}): pass a list or a dict by name")
    if isinstance(data, (list, tuple)) and len(data) == 1 and isinstance(data[0], np.ndarray):
        data = data[0]  # [x] for a one-input model (a list of numbers stays one array)
    return [as_array(data, what)]


def verbose_level(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def batch_size_of(batch_size, what="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"{what} must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def input_dtype(dtype):
    """The array dtype a model input of ``dtype`` is fed in: int32 for integer inputs (token ids for an
    Embedding, never through float), object (Python str) for string inputs, float32 otherwise."""
    if dtype == "string":
        return _STR
    return np.int32 if dtype is not None and np.dtype(dtype).kind in "iu" else _F32


def _text_kind(arr):
    """Whether ``arr`` holds text: a str/bytes array, or an object array of str/bytes (its first item tells)."""
    kind = arr.dtype.kind
    if kind in "US":
        return True
    return kind == "O" and arr.size > 0 and isinstance(arr.flat[0], (str, bytes, np.str_, np.bytes_))


def match_inputs(xs, dtypes, names, shapes, what):
    """The input arrays in the kinds the model's inputs take: text for a string Input (Input(dtype="string"))
    as an object array of str (a 1-D batch of strings for an input of shape (None, 1) gets its feature axis);
    numbers for the others. A TypeError names the input when text meets a numeric input or numbers a string
    one (strings must go through a TextVectorization before any numeric layer)."""
    out = list(xs)
    for k, (x, dt) in enumerate(zip(xs, dtypes)):
        name = names[k] if k < len(names) else k
        if dt is _STR:
            if x.dtype.kind not in "USO" or (x.dtype.kind == "O" and x.size and not _text_kind(x)):
                raise TypeError(f"{what}: input '{name}' is a string input (Input(dtype='string')) but got an array of "
                                f"dtype {x.dtype}: pass text (str) data")
            x = x if x.dtype == _STR else x.astype(_STR)
            shape = shapes[k] if k < len(shapes) else None
            if x.ndim == 1 and shape is not None and len(shape) == 2 and shape[1] == 1:
                x = x.reshape(-1, 1)
            out[k] = x
        elif x.dtype.kind in "USO":
            if not _text_kind(x):
                raise TypeError(f"{what}: input '{name}' must be numeric (int, uint or float), got dtype {x.dtype}")
            raise TypeError(f"{what}: input '{name}' got strings (dtype {x.dtype}) but the model's input is numeric "
                            f"({np.dtype(dt).name}): text must enter through Input(dtype='string') and a "
                            f"TextVectorization layer before any numeric layer")
    return out


def check_cardinality(xs, ys):
    if len({len(a) for a in xs + ys}) > 1:
        def desc(arrays):
            counts = sorted({len(a) for a in arrays})
            return (f"{counts[0] if len(counts) == 1 else counts} samples (shape "
                    f"{', '.join(str(a.shape) for a in arrays)})")
        raise ValueError(f"Data cardinality is ambiguous: x has {desc(xs)} but y has {desc(ys)}. Make sure all "
                         f"arrays contain the same number of samples.")


def prefetch():
    """Whether fit's loader gathers the next batch in its background thread: only when the kernels' OpenMP
    threads leave a core free. NOTE: with every core busy the gather thread competes with OpenMP and was
    measured to slow steps down (MLP 784-128-10, batch 256, loaded 2-core machine: 4.5 vs 2.9 ms/step)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > backend.get_num_threads()


def sample_weights(n, targets, class_weight, sample_weight, what):
    """Per-sample float32 weights from ``sample_weight`` (N,) and/or ``class_weight`` {class: weight} (Keras:
    classes from integer labels, the arg-max of one-hot targets or rounded binary targets), or None."""
    if class_weight is None and sample_weight is None:
        return None
    w = np.ones(n, np.float32)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)
        if sw.shape not in ((n,), (n, 1)):
            raise ValueError(f"{what}: sample_weight must have shape ({n},), got {sw.shape}")
        if not np.isfinite(sw).all():
            raise ValueError(f"{what}: sample_weight contains NaN or infinite values")
        w *= sw.reshape(n)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise ValueError(f"{what}: class_weight must be a dict {{class index: weight}}, got {class_weight!r}")
        labels = np.asarray(targets)
        if labels.ndim > 1:
            labels = labels.argmax(axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
        labels = np.round(labels).astype(np.int64).reshape(n)
        table = np.ones(max(int(labels.max()) + 1, max(class_weight) + 1), np.float32)
        for cls, weight in class_weight.items():
            table[int(cls)] = weight
        w *= table[labels]
    return w


def rows(x, idx, dtype=_F32):
    """Rows ``idx`` (a slice or index array) of x as a ``dtype`` array: float32, or int32 for an integer model
    input (the cast fused into the gather)."""
    xb = x[idx]
    return xb if xb.dtype == dtype else xb.astype(dtype)


class Loader:
    """Batches of (inputs, targets) lists for fit: one input and one target go through the Cython loader
    (shuffled gather + cast into reused float32 buffers, int32 ones for integer inputs, the next batch
    prefetched while a step runs); further arrays are gathered in the same order. ``x_dtypes``: the
    dtype each input is fed to the model in (float32 or int32)."""

    def __init__(self, xs, ys, batch_size, shuffle, x_dtypes=None):
        from fastnn._pipeline import BatchLoader
        self.xs, self.ys = xs, ys
        self.x_dtypes = x_dtypes or [_F32] * len(xs)
        first_y = ys[0] if ys else np.zeros(len(xs[0]), _F32)
        # the Cython loader gathers numbers only: with a text input it just orders the epochs (on a stand-in x)
        # and every array is gathered here (rows)
        text = any(dt is _STR for dt in self.x_dtypes)
        first_x = np.zeros((len(xs[0]), 1), _F32) if text else xs[0]
        self.loader = BatchLoader(first_x, first_y, batch_size=batch_size, shuffle=bool(shuffle), prefetch=prefetch(),
                                  x_dtype=_F32 if text else self.x_dtypes[0])
        self.batch_size = batch_size
        self.simple = len(xs) == 1 and len(ys) == 1 and not text

    def __len__(self):
        return len(self.loader)

    def epoch_indices(self, epoch):
        return self.loader.epoch_indices(epoch)

    def epoch(self, epoch):
        """Yield (list of input batches, list of target batches) for ``epoch``."""
        if self.simple:
            for xb, yb in self.loader.epoch(epoch):
                yield [xb], [yb]
            return
        order = self.loader.epoch_indices(epoch)
        bs = self.batch_size
        for lo in range(0, len(order), bs):
            idx = order[lo:lo + bs]
            yield [rows(x, idx, dt) for x, dt in zip(self.xs, self.x_dtypes)], [y[idx] for y in self.ys]
