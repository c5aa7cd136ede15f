"""RepeatVector and Permute (Keras 3 arguments)."""
import numpy as np

from fastnn._naming import shape_str
from fastnn.layers.base import Layer
from fastnn.layers.core import _positive_int


class RepeatVector(Layer):
    """Repeats a (B, F) input ``n`` times: (B, n, F).

    >>> import fastnn
    >>> fastnn.layers.RepeatVector(3)(np.ones((2, 4), np.float32)).shape
    (2, 3, 4)
    """

    def __init__(self, n, **kwargs):
        super().__init__(**kwargs)
        self.n = _positive_int(f"RepeatVector '{self.name}'", "n", n)

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RepeatVector '{self.name}' expects 2-D inputs (batch, features), got shape "
                             f"{shape_str(input_shape)}")
        return (input_shape[0], self.n, input_shape[1])

    def _forward(self, x, training, need_dx=True):
        return np.repeat(x[:, None, :], self.n, axis=1), None

    def _backward(self, ctx, dy):
        return dy.sum(axis=1, dtype=np.float32)

    def get_config(self):
        config = super().get_config()
        config["n"] = self.n
        return config


class Permute(Layer):
    """Permutes the non-batch axes: ``dims`` is a permutation of 1..rank-1, e.g. (2, 1) swaps steps and features.

    >>> import fastnn
    >>> fastnn.layers.Permute((2, 1))(np.ones((2, 3, 4), np.float32)).shape
    (2, 4, 3)
    """

    def __init__(self, dims, **kwargs):
        super().__init__(**kwargs)
        dims = tuple(dims)
        if sorted(dims) != list(range(1, len(dims) + 1)) or any(
                isinstance(d, bool) or not isinstance(d, (int, np.integer)) for d in dims):
            raise ValueError(f"Permute '{self.name}': Invalid permutation argument `dims` for Permute Layer. The set "
                             f"of indices in `dims` must be consecutive and start from 1. Received dims={dims}")
        self.dims = tuple(int(d) for d in dims)
        self._axes = (0,) + self.dims
        self._inverse = tuple(int(a) for a in np.argsort(self._axes))

    def compute_output_shape(self, input_shape):
        if len(input_shape) != len(self.dims) + 1:
            raise ValueError(f"Permute '{self.name}' with dims={self.dims} expects {len(self.dims) + 1}-D inputs, got "
                             f"shape {shape_str(input_shape)}")
        return tuple(input_shape[a] for a in self._axes)

    def _forward(self, x, training, need_dx=True):
        return np.ascontiguousarray(x.transpose(self._axes)), None

    def _backward(self, ctx, dy):
        return np.ascontiguousarray(dy.transpose(self._inverse))

    def get_config(self):
        config = super().get_config()
        config["dims"] = self.dims
        return config
