"""What Keras's IMDB and Reuters loaders do to the stored word-index sequences (keras/src/datasets/imdb.py,
reuters.py), step for step so that the results are identical: shuffle with `np.random.RandomState(seed)`,
mark starts and shift indices, drop long sequences, map rare/too-frequent words to the OOV index."""
import json

import numpy as np

from fastnn.datasets._download import get_file
from fastnn.datasets._safe_npz import load_npz

_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"


def load_arrays(fname, file_hash, keys, path):
    """The members `keys` of the cached Keras .npz `fname` (downloaded once to `path`), checked: each x a
    1-D object array of int sequences, each y a 1-D integer array."""
    path = get_file(path, _ORIGIN + fname, file_hash)
    arrays = load_npz(path)
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise ValueError(f"{path} is not Keras's {fname}: it lacks {missing} (it has {sorted(arrays)})")
    out = []
    for k in keys:
        a = arrays[k]
        if k.startswith("x"):
            if a.dtype != object or a.ndim != 1:
                raise ValueError(f"{path}: '{k}' must be a 1-D object array of sequences, got {a.dtype} {a.shape}")
            a = _int_lists(a, f"{path}: '{k}'")
        elif a.ndim != 1 or a.dtype.kind not in "iu":
            raise ValueError(f"{path}: '{k}' must be a 1-D integer array of labels, got {a.dtype} {a.shape}")
        out.append(a)
    return path, out


def _int_lists(seqs, what):
    """The object array `seqs` with every item a list of Python ints (items may be stored as lists or arrays)."""
    out = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        if isinstance(s, np.ndarray) and s.ndim == 1 and s.dtype.kind in "iu":
            s = s.tolist()
        if not isinstance(s, list) or not set(map(type, s)) <= {int}:
            raise ValueError(f"{what}[{i}] is not a sequence of integers ({type(s).__name__})")
        out[i] = s
    return out


def shuffle(rng, xs, labels):
    """Keras: one permutation of `rng` applied to both."""
    if len(xs) != len(labels):
        raise ValueError(f"{len(xs)} sequences but {len(labels)} labels")
    indices = np.arange(len(xs))
    rng.shuffle(indices)
    return xs[indices], labels[indices]


def shift(xs, start_char, index_from):
    """Prefix `start_char` (unless None) and add `index_from` to every word index."""
    if start_char is not None:
        return [[start_char] + [w + index_from for w in x] for x in xs]
    return [[w + index_from for w in x] for x in xs]


def remove_long(maxlen, xs, labels):
    """Keras's `remove_long_seq`: keep the sequences SHORTER than maxlen (the start mark counts)."""
    kept = [(x, y) for x, y in zip(xs, labels) if len(x) < maxlen]
    return [x for x, _ in kept], [y for _, y in kept]


def limit_words(xs, num_words, skip_top, oov_char):
    """Indices outside [skip_top, num_words) become `oov_char` (dropped when it is None). As in Keras,
    num_words=None (or 0) means "the largest index", which itself is then out of range."""
    if not num_words:
        num_words = max(max(x) for x in xs)
    if oov_char is not None:
        return [[w if skip_top <= w < num_words else oov_char for w in x] for x in xs]
    return [[w for w in x if skip_top <= w < num_words] for x in xs]


def object_array(seqs):
    """`np.array(seqs, dtype="object")` as Keras returns it (a 2-D object array when all lengths agree)."""
    return np.array(seqs, dtype="object")


def word_index(fname, file_hash, path):
    """The cached JSON {word: index} `fname` (plain JSON; nothing else is read from it)."""
    path = get_file(path, _ORIGIN + fname, file_hash)
    with open(path, encoding="utf-8") as f:
        try:
            index = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not a JSON file: {e}") from None
    if not isinstance(index, dict) or not all(isinstance(k, str) and type(v) is int for k, v in index.items()):
        raise ValueError(f"{path} is not a word index: expected a JSON object of word -> integer")
    return index
