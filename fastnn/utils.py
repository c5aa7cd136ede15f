"""Keras's utilities: `to_categorical`, `normalize`, `set_random_seed`, `clear_session`."""
import numpy as np

from fastnn._naming import clear_session
from fastnn.random import set_random_seed

__all__ = ["to_categorical", "normalize", "set_random_seed", "clear_session"]


def to_categorical(x, num_classes=None):
    """One-hot encode class indices (Keras's `keras.utils.to_categorical`).

    `x`: array-like of integer class indices in [0, num_classes), any shape; a trailing axis of
    size 1 is dropped, as in Keras (labels of shape (N, 1) give (N, num_classes)).
    `num_classes`: number of classes; None infers `max(x) + 1`.
    Returns a float32 array of shape `x.shape + (num_classes,)`.

    Unlike Keras (which casts to int64 silently), negative, NaN, non-integral or out-of-range
    labels raise ValueError instead of producing wrong rows.
    """
    x = np.asarray(x)
    if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
        raise ValueError(f"to_categorical: labels must be numeric, got dtype {x.dtype}")
    if np.issubdtype(x.dtype, np.complexfloating):
        raise ValueError("to_categorical: labels must be real integers, got complex values")
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise ValueError("to_categorical: labels contain NaN or infinity")
        if np.any(x != np.floor(x)):
            raise ValueError("to_categorical: labels must be integers, got non-integral values")
    shape = x.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    flat = x.reshape(-1)
    if flat.size and flat.min() < 0:
        raise ValueError(f"to_categorical: labels must be >= 0, got {flat.min()}")
    flat = flat.astype(np.int64)
    if num_classes is None:
        if flat.size == 0:
            raise ValueError("to_categorical: cannot infer num_classes from empty labels; pass num_classes")
        num_classes = int(flat.max()) + 1
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"to_categorical: num_classes must be a positive int, got {num_classes!r}")
    num_classes = int(num_classes)
    if flat.size and flat.max() >= num_classes:
        raise ValueError(f"to_categorical: label {flat.max()} is out of range for num_classes={num_classes} "
                         f"(labels must be in [0, {num_classes}))")
    out = np.zeros((flat.size, num_classes), dtype=np.float32)
    out[np.arange(flat.size), flat] = 1.0
    return out.reshape(shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Scale `x` to unit `order`-norm along `axis` (Keras's `keras.utils.normalize`).

    Slices whose norm is 0 are left unchanged (divided by 1). Floating inputs keep their dtype;
    others are computed in float32. `order` is a vector norm order as in `np.linalg.norm`
    (1, 2, ..., np.inf). NOTE: Keras's numpy path turns `axis=0` into -1 (`axis or -1`); here
    `axis=0` means the first axis.
    """
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32)
    if x.ndim == 0:
        raise ValueError("normalize: x must have at least one dimension")
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"normalize: axis must be an int in [{-x.ndim}, {x.ndim}), got {axis!r}")
    if isinstance(order, bool) or not (order == np.inf or (isinstance(order, (int, np.integer)) and order >= 1)):
        raise ValueError(f"normalize: order must be an int >= 1 or np.inf, got {order!r}")
    norm = np.linalg.norm(x, ord=order, axis=int(axis), keepdims=True)
    norm[norm == 0] = 1
    return (x / norm).astype(x.dtype, copy=False)


# text data (issue #14): pad_sequences lives in fastnn/preprocessing/sequence.py
from fastnn.preprocessing.sequence import pad_sequences  # noqa: E402

__all__ += ["pad_sequences"]

# feeding data the Keras way (issue #15)
from fastnn._image_dataset import image_dataset_from_directory  # noqa: E402
from fastnn._pydataset import PyDataset  # noqa: E402

Sequence = PyDataset  # Keras 3 keeps keras.utils.Sequence as an alias of PyDataset
__all__ += ["PyDataset", "Sequence", "image_dataset_from_directory"]

# tf.data-style datasets (issue #21): Keras returns a tf.data.Dataset from these; fastnn a fastnn.data.Dataset
from fastnn._dataset_sources import (image_dataset_from_directory, text_dataset_from_directory,  # noqa: E402,F811
                                     timeseries_dataset_from_array)

__all__ += ["text_dataset_from_directory", "timeseries_dataset_from_array"]
