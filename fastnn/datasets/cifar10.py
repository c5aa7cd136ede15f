"""CIFAR-10: 50,000 training and 10,000 test 32x32 colour images in 10 classes.

Labels: 0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck.
Alex Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009
(https://www.cs.toronto.edu/~kriz/cifar.html).

The archive holds Python pickles; they are read with fastnn's own pickle reader
(`fastnn.datasets._safe_pickle`), which rebuilds numpy arrays, lists, bytes and numbers and refuses
everything else, so nothing in a downloaded (or planted) file is executed.
"""
import tarfile

import numpy as np

from fastnn.datasets import _safe_pickle
from fastnn.datasets._download import get_file

ORIGIN = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"  # Keras's hash of that file
FNAME = "cifar-10-python.tar.gz"
_FOLDER = "cifar-10-batches-py/"
_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
_TEST = "test_batch"

__all__ = ["load_data", "load_batch"]


def load_batch(data, label_key="labels", source="batch"):
    """Parse one pickled CIFAR batch (bytes) into (images (N, 3, 32, 32) uint8, labels (N,) uint8)."""
    d = _safe_pickle.loads(data)
    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a pickled dict, got {type(d).__name__}")
    d = {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in d.items()}
    x, labels = d.get("data"), d.get(label_key)
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{source}: 'data' must be a uint8 array of shape (N, 3072)")
    y = np.asarray(labels if labels is not None else [], dtype=np.int64)
    if y.shape != (len(x),) or (y.size and (y.min() < 0 or y.max() > 255)):
        raise ValueError(f"{source}: '{label_key}' must hold {len(x)} labels in [0, 255]")
    return x.reshape(-1, 3, 32, 32), y.astype(np.uint8)


def load_data():
    """Load CIFAR-10 (Keras's `keras.datasets.cifar10.load_data`).

    `cifar-10-python.tar.gz` is cached in `~/.fastnn/datasets/` (`$FASTNN_HOME` overrides),
    downloaded from the Toronto site on first use and checked against Keras's sha256; the batches
    are read straight from the archive (nothing is extracted).

    Returns `((x_train, y_train), (x_test, y_test))`: uint8 images (50000, 32, 32, 3) and
    (10000, 32, 32, 3) (channels last, C-contiguous), uint8 labels of shapes (50000, 1), (10000, 1).
    """
    path = get_file(FNAME, ORIGIN, SHA256)
    batches = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:  # one pass in archive order: the batches are not stored in name order
            name = member.name[len(_FOLDER):] if member.name.startswith(_FOLDER) else None
            if member.isfile() and name in _TRAIN + [_TEST]:
                batches[name] = load_batch(tar.extractfile(member).read(), source=f"{path}:{member.name}")
    missing = [n for n in _TRAIN + [_TEST] if n not in batches]
    if missing:
        raise ValueError(f"{path} is not the CIFAR-10 python archive: {', '.join(missing)} missing")

    def to_keras(parts):
        x = np.concatenate([p[0] for p in parts]).transpose(0, 2, 3, 1)
        y = np.concatenate([p[1] for p in parts]).reshape(-1, 1)
        return np.ascontiguousarray(x), y

    return to_keras([batches[n] for n in _TRAIN]), to_keras([batches[_TEST]])
