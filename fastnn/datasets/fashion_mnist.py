"""Fashion-MNIST: 60,000 training and 10,000 test 28x28 grayscale images of 10 kinds of clothing.

Labels: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker,
8 Bag, 9 Ankle boot. Copyright Zalando SE, MIT license
(https://github.com/zalandoresearch/fashion-mnist).
"""
import gzip
import os

import numpy as np

from fastnn.datasets._download import get_file

BASE = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CACHE_SUBDIR = "fashion-mnist"
# sha256 of each gz file, as Keras pins them (keras/src/datasets/fashion_mnist.py).
FILE_HASHES = {
    "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
}

__all__ = ["load_data", "read_idx"]

# IDX type codes (http://yann.lecun.com/exdb/mnist/): all big-endian.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """Read a (gzip-compressed when the name ends in .gz) IDX file into a native-endian array."""
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path}: IDX shape {shape} needs {expected} bytes, the file has {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_data():
    """Load Fashion-MNIST (Keras's `keras.datasets.fashion_mnist.load_data`).

    The four gz IDX files are cached in `~/.fastnn/datasets/fashion-mnist/` (`$FASTNN_HOME`
    overrides), downloaded from Keras's bucket on first use and checked against Keras's sha256.

    Returns `((x_train, y_train), (x_test, y_test))`: uint8 images (60000, 28, 28) and
    (10000, 28, 28), uint8 labels 0-9 of shapes (60000,) and (10000,).
    """
    arrays = {}
    for fname, sha in FILE_HASHES.items():
        path = get_file(fname, BASE + fname, sha, cache_subdir=CACHE_SUBDIR)
        arrays["-".join(fname.split("-")[:2])] = read_idx(path)  # e.g. "train-images"
    out = []
    for split in ("train", "t10k"):
        x, y = arrays[f"{split}-images"], arrays[f"{split}-labels"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y) or x.dtype != np.uint8 or y.dtype != np.uint8:
            raise ValueError(f"Fashion-MNIST {split} files hold images {x.shape} {x.dtype} and labels "
                             f"{y.shape} {y.dtype}; expected uint8 (N, 28, 28) and (N,)")
        out.append((x, y))
    return tuple(out)
