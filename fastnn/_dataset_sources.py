"""Keras's dataset builders that return a tf.data-style ``fastnn.data.Dataset`` (as Keras returns a
``tf.data.Dataset``): ``text_dataset_from_directory``, ``timeseries_dataset_from_array``, and
``image_dataset_from_directory`` (the image folder PyDataset of ``fastnn/_image_dataset.py`` seen as a Dataset,
so ``.cache().shuffle().prefetch()``, ``.map``, ``.take`` work on it as in the TF tutorials)."""
import os

import numpy as np

from fastnn import _image_dataset
from fastnn.data import Dataset, _leaf


class _PyDatasetView(Dataset):
    """A Dataset whose elements are the batches of a PyDataset (one pass per iteration, followed by its
    ``on_epoch_end``, which reshuffles a shuffling dataset). Indexing and the PyDataset's own attributes
    (``class_names``, ``file_paths``, ...) still reach the PyDataset."""

    def __init__(self, pyds):
        def items():
            pyds.on_epoch_begin()
            for i in range(len(pyds)):
                batch = pyds[i]
                yield tuple(_leaf(b) for b in batch) if isinstance(batch, tuple) else _leaf(batch)
            pyds.on_epoch_end()
        super().__init__(items, len(pyds))
        self._pyds = pyds

    def __getitem__(self, index):
        return self._pyds[index]

    def __getattr__(self, name):
        if name.startswith("__") or name == "_pyds":
            raise AttributeError(name)
        return getattr(self._pyds, name)


def from_pydataset(pyds):
    """The PyDataset ``pyds`` seen as a Dataset (see ``_PyDatasetView``)."""
    return _PyDatasetView(pyds)


def image_dataset_from_directory(*args, **kwargs):
    """Keras's ``image_dataset_from_directory`` (arguments as ``fastnn._image_dataset``), returning a Dataset of
    ``(images, labels)`` batches (``subset="both"``: a pair)."""
    out = _image_dataset.image_dataset_from_directory(*args, **kwargs)
    return tuple(from_pydataset(d) for d in out) if isinstance(out, tuple) else from_pydataset(out)


def _split(items, validation_split, subset):
    """Keras's get_training_or_validation_split: the last ``int(validation_split * n)`` items validate."""
    if not validation_split:
        return items
    n_val = int(validation_split * len(items))
    return items[:len(items) - n_val] if subset == "training" else items[len(items) - n_val:]


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """Keras 3's ``text_dataset_from_directory``: a Dataset of ``(texts, labels)`` batches from one subfolder of
    ``.txt`` files per class (texts: a numpy array of ``str``; labels int32, or float32 one-hot / (B, 1) for
    "categorical" / "binary"). Files are sorted, then shuffled with ``RandomState(seed)`` and split (the last
    ``validation_split`` fraction validates) exactly as Keras does, so the same seed picks the same files;
    ``subset="both"`` returns (training, validation). Batches reshuffle each iteration when ``shuffle``."""
    _image_dataset.check_directory_args("text_dataset_from_directory", directory, label_mode, subset, validation_split,
                                        shuffle, seed)
    if labels is None:
        label_mode = None
    paths, ints, class_names = _image_dataset._index(directory, labels, class_names, follow_links, (".txt",))
    ints = np.zeros(len(paths), np.int32) if ints is None else ints
    if verbose:
        print(f"Found {len(paths)} files" + (f" belonging to {len(class_names)} classes." if class_names else "."))
    if shuffle:
        if seed is None:
            seed = int(np.random.randint(1e6))
        np.random.RandomState(seed).shuffle(paths)
        np.random.RandomState(seed).shuffle(ints)

    def make(which):
        p, y = _split(paths, validation_split, which), _split(ints, validation_split, which)
        if validation_split and verbose:
            print(f"Using {len(p)} files for {which}.")

        def read(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            return text[:max_length] if max_length is not None else text
        texts = Dataset(lambda: (_leaf(np.str_(read(q))) for q in p), len(p))
        if label_mode is None:
            ds = texts
        else:
            if label_mode == "categorical":
                y = np.eye(len(class_names), dtype=np.float32)[y]
            elif label_mode == "binary":
                y = y.astype(np.float32).reshape(-1, 1)
            ds = Dataset.zip((texts, Dataset.from_tensor_slices(y)))
        if shuffle:
            ds = ds.shuffle(buffer_size=batch_size * 8, seed=seed)
        ds = ds.batch(batch_size)
        ds.class_names = class_names
        ds.file_paths = p
        return ds
    if subset == "both":
        return make("training"), make("validation")
    return make(subset)


def timeseries_dataset_from_array(data, targets, sequence_length, sequence_stride=1, sampling_rate=1,
                                  batch_size=128, shuffle=False, seed=None, start_index=None, end_index=None):
    """Keras's ``timeseries_dataset_from_array``: batches of windows ``data[s : s + sequence_length *
    sampling_rate : sampling_rate]`` for start positions ``s = 0, sequence_stride, ...`` within
    ``[start_index, end_index)`` (with ``targets``: ``(windows, targets[s])`` pairs), shuffled as Keras does
    (the start positions by ``RandomState(seed)``, then a buffer of ``batch_size * 8``)."""
    data = np.asarray(data)
    for arg, value in (("sequence_length", sequence_length), ("sequence_stride", sequence_stride),
                       ("sampling_rate", sampling_rate)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{arg}` must be a positive integer, received: {arg}={value!r}")
    start_index = 0 if start_index is None else start_index
    end_index = len(data) if end_index is None else end_index
    if not 0 <= start_index < len(data) or not start_index < end_index <= len(data):
        raise ValueError(f"timeseries_dataset_from_array: need 0 <= start_index < end_index <= len(data) = "
                         f"{len(data)}, got start_index={start_index}, end_index={end_index}")
    num_seqs = end_index - start_index - (sequence_length - 1) * sampling_rate
    if targets is not None:
        targets = np.asarray(targets)
        num_seqs = min(num_seqs, len(targets))
    starts = np.arange(0, max(num_seqs, 0), sequence_stride)
    if shuffle:
        if seed is None:
            seed = int(np.random.randint(1e6))
        np.random.RandomState(seed).shuffle(starts)
    span = sequence_length * sampling_rate
    window_data = data[start_index:end_index]
    target_data = None if targets is None else targets[start_index:end_index]

    def items():
        for s in starts:
            window = _leaf(window_data[s:s + span:sampling_rate])
            yield window if target_data is None else (window, _leaf(target_data[s]))
    ds = Dataset(items, len(starts))
    if batch_size is None:
        return ds
    if shuffle:
        ds = ds.shuffle(buffer_size=batch_size * 8, seed=seed)
    return ds.batch(batch_size)
