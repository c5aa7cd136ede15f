"""MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D (mask-aware), GlobalMaxPooling1D on the 2-D
pooling kernels: a sequence (B, L, C) is the image (B, 1, L, C), a free reshape."""
import numpy as np

from fastnn._naming import shape_str
from fastnn._ops import conv as _conv
from fastnn.layers.base import _NO_RECORD, Layer, _tensor
from fastnn.layers.conv1d import _padding1d, _single, check_sequence, length_out
from fastnn.layers.convolutional import _channels_last
from fastnn.tensor import recording


def _image(x):
    """(B, L, C) -> the (B, 1, L, C) view."""
    return x.reshape(x.shape[0], 1, x.shape[1], x.shape[2])


class _Pooling1D(Layer):
    _op = None  # the 2-D pooling Function of fastnn._ops.conv

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"{type(self).__name__} '{self.name}'"
        self.pool_size = (_single(who, "pool_size", pool_size),)
        self.strides = self.pool_size if strides is None else (_single(who, "strides", strides),)
        self.padding = _padding1d(who, padding, ("valid", "same"))
        _channels_last(who, data_format)

    def compute_output_shape(self, input_shape):
        who = f"{type(self).__name__} '{self.name}'"
        check_sequence(who, input_shape)
        length = length_out(input_shape[1], self.pool_size[0], self.strides[0], 1, self.padding)
        if length is not None and length <= 0:
            raise ValueError(f"{who}: computed output size would be negative or zero: input shape "
                             f"{shape_str(input_shape)}, pool_size={self.pool_size}, strides={self.strides}, "
                             f"padding='{self.padding}'")
        return (input_shape[0], length, input_shape[2])

    def _forward(self, x, training, need_dx=True):
        fn = self._op((need_dx,) if _tensor._grad_enabled else _NO_RECORD)  # recording(), inlined
        y = fn.forward(_image(x), pool_size=(1,) + self.pool_size, strides=(1,) + self.strides, padding=self.padding)
        return y.reshape(y.shape[0], y.shape[2], y.shape[3]), (fn, x.shape)

    def _backward(self, ctx, dy):
        fn, shape = ctx
        dx = fn.backward(_image(dy))[0]
        return None if dx is None else dx.reshape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, padding=self.padding, strides=self.strides,
                      data_format="channels_last")
        return config


class MaxPooling1D(_Pooling1D):
    """Max over windows of ``pool_size`` steps (strides default to pool_size): (B, L, C) -> (B, L', C).

    >>> import fastnn
    >>> fastnn.layers.MaxPooling1D()(np.ones((1, 5, 3), np.float32)).shape
    (1, 2, 3)
    """
    _op = _conv.MaxPool2D


class AveragePooling1D(_Pooling1D):
    """Mean over windows of ``pool_size`` steps (steps outside the sequence are not counted with
    padding='same'). As in Keras 3, ``pool_size`` has no default here (MaxPooling1D's is 2)."""
    _op = _conv.AvgPool2D

    def __init__(self, pool_size, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPooling1D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        _channels_last(f"{type(self).__name__} '{self.name}'", data_format)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape):
        check_sequence(f"{type(self).__name__} '{self.name}'", input_shape)
        return (input_shape[0], 1, input_shape[2]) if self.keepdims else (input_shape[0], input_shape[2])

    def _shaped(self, y):
        """(B, C) -> the output shape."""
        return y.reshape(y.shape[0], 1, y.shape[1]) if self.keepdims else y

    def get_config(self):
        config = super().get_config()
        config.update(data_format="channels_last", keepdims=self.keepdims)
        return config


class GlobalAveragePooling1D(_GlobalPooling1D):
    """Mean over the steps: (B, T, C) -> (B, C) (``keepdims=True``: (B, 1, C)). With a mask (B, T) only the
    unmasked steps count, as in Keras (a sequence with every step masked gives NaN there, as Keras does);
    the output carries no mask.

    >>> import fastnn
    >>> fastnn.layers.GlobalAveragePooling1D()(np.ones((2, 5, 3), np.float32)).shape
    (2, 3)
    """
    supports_masking = True
    _uses_mask = True

    def compute_mask(self, inputs, previous_mask):
        return None

    def _forward(self, x, training, need_dx=True, mask=None):
        if mask is None:
            fn = _conv.GlobalAvgPool2D(recording((need_dx,)))
            return self._shaped(fn.forward(_image(x))), (fn, x.shape)
        # masked mean: sum over the kept steps / their count (numpy: a rare path, linear in x)
        m = np.asarray(mask, dtype=np.float32)[:, :, None]  # (B, T, 1)
        count = m.sum(axis=1)                               # (B, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (x * m).sum(axis=1) / count
        return self._shaped(y.astype(np.float32)), (m, count)

    def _backward(self, ctx, dy):
        dy = dy.reshape(dy.shape[0], -1)
        if not isinstance(ctx[0], np.ndarray):
            fn, shape = ctx
            dx = fn.backward(dy)[0]
            return None if dx is None else dx.reshape(shape)
        m, count = ctx
        with np.errstate(invalid="ignore", divide="ignore"):
            return (m * (dy / count)[:, None, :]).astype(np.float32)


class GlobalMaxPooling1D(_GlobalPooling1D):
    """Max over the steps: (B, T, C) -> (B, C) (``keepdims=True``: (B, 1, C)); the gradient goes to the first
    maximal step. Like Keras 3 it does not support masking (a mask is dropped, every step counts).

    >>> import fastnn
    >>> fastnn.layers.GlobalMaxPooling1D()(np.ones((2, 5, 3), np.float32)).shape
    (2, 3)
    """

    def _forward(self, x, training, need_dx=True):
        fn = _conv.MaxPool2D((need_dx,) if _tensor._grad_enabled else _NO_RECORD)
        y = fn.forward(_image(x), pool_size=(1, x.shape[1]), strides=(1, x.shape[1]))
        return self._shaped(y.reshape(y.shape[0], y.shape[3])), (fn, x.shape)

    def _backward(self, ctx, dy):
        fn, shape = ctx
        dx = fn.backward(dy.reshape(shape[0], 1, 1, shape[2]))[0]
        return None if dx is None else dx.reshape(shape)
