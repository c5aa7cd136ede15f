"""ZeroPadding2D, Cropping2D and UpSampling2D (channels_last, Keras 3 arguments). They move memory and
do no arithmetic worth a kernel (bilinear upsampling is two small matrix products), so they run in numpy."""
import numpy as np

from fastnn._naming import shape_str
from fastnn.layers.base import Layer
from fastnn.layers.convolutional import _channels_last, _pair


def _two_sided(layer, arg, value):
    """Keras's padding/cropping argument: int, (sym_h, sym_w) or ((top, bottom), (left, right)) -> the
    nested form with non-negative ints."""
    if isinstance(value, (int, np.integer)):
        value = ((value, value), (value, value))
    elif len(value) == 2 and all(isinstance(v, (int, np.integer)) for v in value):
        value = ((value[0], value[0]), (value[1], value[1]))
    try:
        out = tuple(tuple(int(v) for v in pair) for pair in value)
    except TypeError:
        out = None
    if out is None or len(out) != 2 or any(len(p) != 2 or min(p) < 0 for p in out):
        raise ValueError(f"{layer}: `{arg}` must be an int, a pair of ints or a pair of pairs of non-negative "
                         f"ints, got {value!r}")
    return out


def _nhwc(layer, input_shape):
    if len(input_shape) != 4:
        raise ValueError(f"{layer} expects 4-D inputs (batch, height, width, channels), got shape "
                         f"{shape_str(input_shape)}")


def _grow(size, a, b):
    return None if size is None else size + a + b


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros: ``padding`` int, (h, w) or ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _two_sided(f"ZeroPadding2D '{self.name}'", "padding", padding)
        _channels_last(f"ZeroPadding2D '{self.name}'", data_format)

    def compute_output_shape(self, input_shape):
        _nhwc(f"ZeroPadding2D '{self.name}'", input_shape)
        (t, b), (l, r) = self.padding
        return (input_shape[0], _grow(input_shape[1], t, b), _grow(input_shape[2], l, r), input_shape[3])

    def _forward(self, x, training, need_dx=True):
        (t, b), (l, r) = self.padding
        y = np.zeros((x.shape[0], x.shape[1] + t + b, x.shape[2] + l + r, x.shape[3]), np.float32)
        y[:, t:t + x.shape[1], l:l + x.shape[2]] = x
        return y, x.shape

    def _backward(self, ctx, dy):
        (t, _), (l, _) = self.padding
        return np.ascontiguousarray(dy[:, t:t + ctx[1], l:l + ctx[2]])

    def get_config(self):
        config = super().get_config()
        config.update(padding=self.padding, data_format="channels_last")
        return config


class Cropping2D(Layer):
    """Removes rows and columns at the borders: ``cropping`` int, (h, w) or ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _two_sided(f"Cropping2D '{self.name}'", "cropping", cropping)
        _channels_last(f"Cropping2D '{self.name}'", data_format)

    def compute_output_shape(self, input_shape):
        who = f"Cropping2D '{self.name}'"
        _nhwc(who, input_shape)
        (t, b), (l, r) = self.cropping
        h, w = _grow(input_shape[1], -t, -b), _grow(input_shape[2], -l, -r)
        if (h is not None and h <= 0) or (w is not None and w <= 0):
            raise ValueError(f"{who}: cropping {self.cropping} leaves nothing of inputs of shape "
                             f"{shape_str(input_shape)}")
        return (input_shape[0], h, w, input_shape[3])

    def _forward(self, x, training, need_dx=True):
        (t, b), (l, r) = self.cropping
        return np.ascontiguousarray(x[:, t:x.shape[1] - b, l:x.shape[2] - r]), x.shape

    def _backward(self, ctx, dy):
        (t, _), (l, _) = self.cropping
        dx = np.zeros(ctx, np.float32)
        dx[:, t:t + dy.shape[1], l:l + dy.shape[2]] = dy
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(cropping=self.cropping, data_format="channels_last")
        return config


def _bilinear_matrix(n, s):
    """(n*s, n) weights of TF's bilinear resize (half-pixel centers, edges clamped) from n to n*s cells."""
    src = (np.arange(n * s) + 0.5) / s - 0.5
    src = np.clip(src, 0, n - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    frac = src - lo
    m = np.zeros((n * s, n))
    m[np.arange(n * s), lo] += 1 - frac
    m[np.arange(n * s), hi] += frac
    return m.astype(np.float32)


class UpSampling2D(Layer):
    """Repeats rows and columns ``size`` times (``interpolation="nearest"``) or resizes bilinearly
    (``"bilinear"``: TF's half-pixel centers, as Keras)."""

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        who = f"UpSampling2D '{self.name}'"
        self.size = _pair(who, "size", size)
        _channels_last(who, data_format)
        if interpolation not in ("nearest", "bilinear"):
            raise ValueError(f"{who}: interpolation must be 'nearest' or 'bilinear', got {interpolation!r}")
        self.interpolation = interpolation

    def compute_output_shape(self, input_shape):
        _nhwc(f"UpSampling2D '{self.name}'", input_shape)
        h, w = (None if d is None else d * s for d, s in zip(input_shape[1:3], self.size))
        return (input_shape[0], h, w, input_shape[3])

    def _forward(self, x, training, need_dx=True):
        sh, sw = self.size
        if self.interpolation == "nearest":
            return np.repeat(np.repeat(x, sh, axis=1), sw, axis=2), None
        mh, mw = _bilinear_matrix(x.shape[1], sh), _bilinear_matrix(x.shape[2], sw)
        return np.ascontiguousarray(np.einsum("ph,bhwc,qw->bpqc", mh, x, mw, optimize=True)), (mh, mw)

    def _backward(self, ctx, dy):
        sh, sw = self.size
        b, h, w, c = dy.shape
        if ctx is None:
            return np.ascontiguousarray(dy.reshape(b, h // sh, sh, w // sw, sw, c).sum(axis=(2, 4)))
        mh, mw = ctx
        return np.ascontiguousarray(np.einsum("ph,bpqc,qw->bhwc", mh, dy, mw, optimize=True))

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size, data_format="channels_last", interpolation=self.interpolation)
        return config
