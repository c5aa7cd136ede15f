"""Variable: a layer weight."""
import numpy as np

from fastnn import backend
from fastnn.tensor import Tensor

# NOTE: a weight larger than this many floats (16 GiB) is refused by name rather than left to numpy's or the
# allocator's errors ("Maximum allowed dimension exceeded", MemoryError, or an OOM kill).
_MAX_WEIGHT_SIZE = 2**32


def checked_shape(shape, what):
    """``shape`` (None: a scalar) as a tuple of ints, or a ValueError naming ``what`` when a dimension is not a
    non-negative integer or the weight would be unreasonably large."""
    if shape is None:
        return ()
    try:
        dims = tuple(shape)
    except TypeError:
        dims = (shape,)
    size = 1
    for d in dims:
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0:
            raise ValueError(f"{what}: shape {shape!r} must be non-negative integers")
        size *= int(d)
    if size > _MAX_WEIGHT_SIZE:
        raise ValueError(f"{what}: shape {tuple(int(d) for d in dims)} has {size:,} elements, more than fastnn "
                         f"allows for one weight ({_MAX_WEIGHT_SIZE:,}); check the layer's size arguments")
    return tuple(int(d) for d in dims)


class Variable(Tensor):
    """A layer weight: a float32 numpy array updated in place, plus its gradient buffer. A Variable is a
    leaf Tensor of the autograd (``requires_grad`` = trainable), so Tensor code, ``fastnn.ops`` and
    GradientTape see it; its ``.grad`` is a plain array (what the optimizer reads).

    ``name`` ("kernel"), ``path`` ("dense/kernel"), ``trainable``, ``value``, ``shape``, ``numpy()``, ``assign()``.
    """

    __slots__ = ("name", "path", "trainable", "regularizer")
    _grad_is_array = True

    def __init__(self, value, name, path, trainable=True, regularizer=None):
        self.data = np.array(value, dtype=np.float32, order="C")  # owns its storage
        self._ctx = None
        self.name, self.path, self.trainable, self.regularizer = name, path, trainable, regularizer
        self.grad = backend.of(self.data).zeros(self.data.shape) if trainable else None

    @property
    def value(self):
        return self.data

    @value.setter
    def value(self, new):  # `var.value *= m` (in place) or `var.value = array` (copied into the storage)
        if new is not self.data:
            self.assign(new)

    @property
    def requires_grad(self):
        return self.trainable

    @requires_grad.setter
    def requires_grad(self, flag):
        self.trainable = bool(flag)

    @property
    def dtype(self):
        return "float32"

    def numpy(self):
        return self.data.copy()

    def __array__(self, dtype=None, copy=None):
        return self.data if dtype is None else self.data.astype(dtype)

    def assign(self, value):
        value = np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float32)
        if value.shape != self.data.shape:
            raise ValueError(f"Variable '{self.path}' has shape {self.data.shape}, cannot assign a value "
                             f"of shape {value.shape}")
        self.data[...] = value

    def assign_add(self, value):
        self.assign(self.data + np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float32))

    def assign_sub(self, value):
        self.assign(self.data - np.asarray(value.data if isinstance(value, Tensor) else value, dtype=np.float32))

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.data.shape}, dtype=float32>"
