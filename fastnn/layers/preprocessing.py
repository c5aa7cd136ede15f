"""Deterministic preprocessing layers (Keras 3 names, arguments and values): Rescaling, Normalization (adapt,
invert), Resizing (bilinear / nearest, crop_to_aspect_ratio, pad_to_aspect_ratio) and CenterCrop.

Images are channels_last ``(B, H, W, C)``. Resizing runs the C++ resample kernel (``resample_forward``: one
pass over the batch with TensorFlow's ``tf.image.resize`` half-pixel geometry, so values match Keras's); its
gradient is the kernel's adjoint (``resample_backward``), so these layers may sit anywhere in a model.
"""
import numpy as np

from fastnn import backend
from fastnn._graph import is_symbolic
from fastnn._naming import shape_str
from fastnn.layers.base import Layer
from fastnn.tensor import Tensor
from fastnn.layers.convolutional import _channels_last

_F32 = np.float32
_EPSILON = 1e-7  # keras.config.epsilon(): Normalization's floor on sqrt(variance)
_RESIZE_INTERPOLATIONS = ("bilinear", "nearest")


def _check_images(layer, shape):
    if len(shape) != 4:
        raise ValueError(f"{type(layer).__name__} '{layer.name}' expects images of shape (batch, height, width, "
                         f"channels), got {shape_str(shape)}")


class _ImageLayer(Layer):
    """A layer on NHWC images that, called directly (as Keras), also takes one unbatched (H, W, C) image."""

    def __call__(self, inputs, training=None, **kwargs):
        if not is_symbolic(inputs) and np.ndim(inputs) == 3:
            batched = inputs.reshape((1,) + tuple(inputs.shape)) if isinstance(inputs, Tensor) else \
                np.asarray(inputs)[None]
            out = super().__call__(batched, training=training, **kwargs)
            return out.reshape(tuple(out.shape[1:]))
        return super().__call__(inputs, training=training, **kwargs)


def _positive_size(layer, **sizes):
    for arg, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{layer}: `{arg}` must be a positive integer, got {value!r}")
    return tuple(int(v) for v in sizes.values())


def _interpolation(layer, interpolation):
    if interpolation not in _RESIZE_INTERPOLATIONS:
        raise ValueError(f"{layer}: interpolation must be one of {_RESIZE_INTERPOLATIONS} (fastnn has no "
                         f"bicubic/area/lanczos yet), got {interpolation!r}")
    return interpolation


def aspect_window(H, W, OH, OW):
    """(top, left, height, width) of the largest centred window of ``H x W`` with the aspect ratio ``OH:OW``
    (Keras's crop_to_aspect_ratio / smart_resize arithmetic: float32 products, truncated)."""
    ch = max(min(H, int(_F32(W * OH) / _F32(OW))), 1)
    cw = max(min(W, int(_F32(H * OW) / _F32(OH))), 1)
    return int(_F32(H - ch) / 2), int(_F32(W - cw) / 2), ch, cw


def scale_transform(H, W, OH, OW):
    """(1, 8) transform of tf.image.resize's half-pixel geometry: output pixel o reads input (o + 0.5) * s - 0.5
    with s = in / out (the fill mode "nearest" clamps the edges, as TF's resize does)."""
    sx, sy = float(_F32(W) / _F32(OW)), float(_F32(H) / _F32(OH))
    return np.array([[sx, 0.0, 0.5 * sx - 0.5, 0.0, sy, 0.5 * sy - 0.5, 0.0, 0.0]], _F32)


def resize(x, OH, OW, interpolation="bilinear"):
    """Images ``x`` (B, H, W, C) resized to (B, OH, OW, C) like ``tf.image.resize`` (antialias=False); returns
    (y, ctx) for ``resize_backward``."""
    H, W = x.shape[1], x.shape[2]
    if (H, W) == (OH, OW):
        return x, None
    t = scale_transform(H, W, OH, OW)
    y = backend.of(x).resample_forward(x, t, (OH, OW), interpolation, "nearest", 0.0)
    return y, (t, (H, W), interpolation)


def resize_backward(ctx, dy):
    if ctx is None:
        return dy
    t, hw, interpolation = ctx
    return backend.of(dy).resample_backward(dy, t, hw, interpolation, "nearest")


def crop_resize(x, top, left, ch, cw, OH, OW):
    """The window ``[top:top + ch, left:left + cw]`` of images ``x`` (B, H, W, C) resized (bilinear) to
    (B, OH, OW, C), a plain crop when the window has that size; returns (y, ctx) for ``crop_resize_backward``."""
    y, rctx = resize(np.ascontiguousarray(x[:, top:top + ch, left:left + cw]), OH, OW)
    return y, (rctx, top, left, x.shape)


def crop_resize_backward(ctx, dy):
    """dx of ``crop_resize``: the resized gradient in the window, zeros around it."""
    rctx, top, left, shape = ctx
    d = resize_backward(rctx, dy)
    dx = np.zeros(shape, _F32)
    dx[:, top:top + d.shape[1], left:left + d.shape[2]] = d
    return dx


class Rescaling(Layer):
    """``inputs * scale + offset`` (e.g. ``Rescaling(1 / 255)`` maps [0, 255] to [0, 1], ``Rescaling(1 / 127.5,
    offset=-1)`` to [-1, 1]). ``scale`` and ``offset`` are numbers or arrays broadcast against the channels.

    >>> import fastnn
    >>> fastnn.layers.Rescaling(0.5, offset=1.0)(np.array([[2.0, 4.0]], np.float32)).numpy()
    array([[2., 3.]], dtype=float32)
    """

    def __init__(self, scale, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.scale, self.offset = scale, offset
        self._scale, self._offset = np.asarray(scale, _F32), np.asarray(offset, _F32)

    def _forward(self, x, training, need_dx=True):
        return x * self._scale + self._offset, None

    def _backward(self, ctx, dy):
        return dy * self._scale

    def get_config(self):
        config = super().get_config()
        config.update(scale=_json(self.scale), offset=_json(self.offset))
        return config


def _json(value):
    return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value


class Normalization(Layer):
    """Feature-wise standardisation ``(x - mean) / max(sqrt(variance), 1e-7)`` (``invert=True``: the inverse,
    ``mean + x * max(sqrt(variance), 1e-7)``), with one mean and variance per position of the kept ``axis``
    (default -1: per channel/feature; ``axis=None``: one scalar pair). Pass ``mean`` and ``variance``, or call
    ``adapt(data)`` on a numpy array (or an iterable of batches) before training.

    >>> import fastnn
    >>> norm = fastnn.layers.Normalization()
    >>> norm.adapt(np.array([[0.0], [2.0]], np.float32))
    >>> norm(np.array([[1.0], [3.0]], np.float32)).numpy()
    array([[0.],
           [2.]], dtype=float32)
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = () if axis is None else (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        self.input_mean, self.input_variance, self.invert = mean, variance, bool(invert)
        if (mean is not None) != (variance is not None):
            raise ValueError("When setting values directly, both `mean` and `variance` must be set. Received: "
                             f"mean={mean} and variance={variance}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError("When setting values directly, `mean` and `variance` must have the same shape. "
                                 f"Received: mean shape {np.shape(mean)} and variance shape {np.shape(variance)}")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"The rank of `mean` must be less than or equal to the number of axes "
                                 f"({len(self.axis)}). Received: mean shape {np.shape(mean)} for axis {self.axis}")
        self.adapt_mean = self.adapt_variance = self.count = None
        self._mean = self._denominator = None

    def build(self, input_shape):
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"All `axis` values must be in the range [-ndim, ndim). Received inputs with "
                             f"ndim={ndim}, while axis={self.axis}")
        self._keep = tuple(sorted(a % ndim for a in self.axis))
        if 0 in self._keep:
            raise ValueError(f"Normalization '{self.name}': axis {self.axis} includes the batch axis")
        for d in self._keep:
            if input_shape[d] is None:
                raise ValueError(f"All `axis` values to be kept must have a known shape. Received axis="
                                 f"{self.axis}, inputs.shape={shape_str(input_shape)}, with unknown axis at index {d}")
        self._reduce = tuple(d for d in range(ndim) if d not in self._keep)
        self._broadcast = tuple(input_shape[d] if d in self._keep else 1 for d in range(ndim))
        self._stats_shape = tuple(input_shape[d] for d in self._keep)
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(self._stats_shape, "zeros", trainable=False, name="mean")
            self.adapt_variance = self.add_weight(self._stats_shape, "ones", trainable=False, name="variance")
            self.count = self.add_weight((), "zeros", trainable=False, name="count")
        else:
            self._set_stats(*(self._broadcast_stat(np.asarray(v, np.float64))
                              for v in (self.input_mean, self.input_variance)))

    def _broadcast_stat(self, value):
        """A mean/variance given at construction, aligned on the kept axes from the right (as Keras)."""
        if value.ndim:
            aligned = [1] * len(self._broadcast)
            for i in range(1, value.ndim + 1):
                aligned[self._keep[-i]] = value.shape[-i]
            value = value.reshape(aligned)
        return np.broadcast_to(value, self._broadcast)

    def _set_stats(self, mean, variance):
        # axis=None: scalars, which broadcast against inputs of any rank (Keras checks only the kept axes)
        shape = self._broadcast if self._keep else ()
        self._mean = np.asarray(mean, _F32).reshape(shape)
        self._denominator = np.maximum(np.sqrt(np.asarray(variance, _F32)), _F32(_EPSILON)).reshape(shape)

    def _check_input_shape(self, input_shape):
        """As Keras: only the kept axes must match the built shape (axis=None: any shape)."""
        if isinstance(input_shape, list) or not self._keep:
            return super()._check_input_shape(input_shape) if isinstance(input_shape, list) else None
        if len(input_shape) != len(self._broadcast) or any(
                input_shape[d] is not None and input_shape[d] != self._broadcast[d] for d in self._keep):
            raise ValueError(f"Input of layer '{self.name}' (Normalization) is incompatible with the layer: expected "
                             f"shape={shape_str(self._input_shape)} on axis {self.axis}, found shape="
                             f"{shape_str(input_shape)}")

    def _stat(self, adapted, given):
        if not self.built:
            raise AttributeError(f"Normalization '{self.name}' has no statistics before it is built or adapted")
        value = adapted.data if adapted is not None else self._broadcast_stat(np.asarray(given, np.float64))
        return Tensor(np.asarray(value, _F32).reshape(self._broadcast))

    @property
    def mean(self):
        """The mean, shaped to broadcast against the inputs (Keras's ``layer.mean``)."""
        return self._stat(self.adapt_mean, self.input_mean)

    @property
    def variance(self):
        """The variance, shaped to broadcast against the inputs (Keras's ``layer.variance``)."""
        return self._stat(self.adapt_variance, self.input_variance)

    def _stats(self):
        if self.adapt_mean is not None:  # the weights may have been set (set_weights, load_model) since
            self._set_stats(self.adapt_mean.data, self.adapt_variance.data)
        return self._mean, self._denominator

    def adapt(self, data):
        """Compute the mean and variance of ``data`` (an array, or an iterable of batches / of (x, y) pairs)
        over every axis but the kept ones, and store them in the layer's weights."""
        batches = [np.asarray(data, np.float64)] if isinstance(data, np.ndarray) else \
            (np.asarray(b[0] if isinstance(b, tuple) else b, np.float64) for b in data)
        mean = var = None
        total = 0
        for batch in batches:
            if not self.built:
                self._maybe_build(batch.shape)
            elif any(batch.shape[d] != self._input_shape[d] for d in self._keep):
                raise ValueError(f"The layer was built with input_shape={self._input_shape}, but adapt() is being "
                                 f"called with data with an incompatible shape, data.shape={batch.shape}")
            if self.adapt_mean is None:
                raise ValueError(f"Normalization '{self.name}' was given mean and variance; adapt() cannot change "
                                 f"them")
            count = int(np.prod([batch.shape[d] for d in self._reduce])) if self._reduce else 1
            b_mean, b_var = batch.mean(axis=self._reduce), batch.var(axis=self._reduce)
            total += count
            if mean is None:
                mean, var = b_mean, b_var
                continue
            w = count / total  # Keras's streaming merge of (mean, variance) pairs
            new_mean = mean * (1 - w) + b_mean * w
            var = (var + (mean - new_mean) ** 2) * (1 - w) + (b_var + (b_mean - new_mean) ** 2) * w
            mean = new_mean
        if mean is None:
            raise ValueError("adapt() received an empty iterable (no batches)")
        self.adapt_mean.value[...] = mean.reshape(self._stats_shape)
        self.adapt_variance.value[...] = var.reshape(self._stats_shape)

    def _forward(self, x, training, need_dx=True):
        mean, den = self._stats()
        return ((mean + x * den) if self.invert else ((x - mean) / den)).astype(_F32, copy=False), None

    def _backward(self, ctx, dy):
        mean, den = self._stats()
        return (dy * den if self.invert else dy / den).astype(_F32, copy=False)

    def get_config(self):
        config = super().get_config()
        config.update(axis=self.axis, invert=self.invert, mean=np.array(self.input_mean).tolist(),
                      variance=np.array(self.input_variance).tolist())
        return config


class Resizing(_ImageLayer):
    """Resize images to ``(height, width)`` as ``tf.image.resize`` does (half-pixel centres, no antialias):
    ``interpolation`` "bilinear" or "nearest". ``crop_to_aspect_ratio=True`` first crops the largest centred
    window with the target aspect ratio; ``pad_to_aspect_ratio=True`` pads with ``fill_value`` instead.

    >>> import fastnn
    >>> fastnn.layers.Resizing(2, 3)(np.ones((1, 4, 4, 3), np.float32)).shape
    (1, 2, 3, 3)
    """

    def __init__(self, height, width, interpolation="bilinear", crop_to_aspect_ratio=False, pad_to_aspect_ratio=False,
                 fill_mode="constant", fill_value=0.0, antialias=False, data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"Resizing '{self.name}'"
        _channels_last(who, data_format)
        self.height, self.width = _positive_size(who, height=height, width=width)
        self.interpolation = _interpolation(who, interpolation)
        if crop_to_aspect_ratio and pad_to_aspect_ratio:
            raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`.")
        if fill_mode != "constant":
            raise ValueError(f"Invalid value for argument `fill_mode`. Only `'constant'` is supported. Received: "
                             f"fill_mode={fill_mode}")
        if antialias:
            raise ValueError(f"{who}: antialias=True is not supported by fastnn yet")
        self.crop_to_aspect_ratio, self.pad_to_aspect_ratio = bool(crop_to_aspect_ratio), bool(pad_to_aspect_ratio)
        self.fill_mode, self.fill_value, self.antialias = fill_mode, float(fill_value), False

    def compute_output_shape(self, input_shape):
        _check_images(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def _forward(self, x, training, need_dx=True):
        H, W = x.shape[1], x.shape[2]
        window = None
        if self.crop_to_aspect_ratio:
            top, left, ch, cw = aspect_window(H, W, self.height, self.width)
            window = (top, left, H, W)
            x = np.ascontiguousarray(x[:, top:top + ch, left:left + cw])
        elif self.pad_to_aspect_ratio:
            ph = max(H, int(_F32(W * self.height) / _F32(self.width)))
            pw = max(W, int(_F32(H * self.width) / _F32(self.height)))
            top, left = int(_F32(ph - H) / 2), int(_F32(pw - W) / 2)
            # NOTE: Keras pads `top` rows on both sides (and `left` columns), so odd differences lose a row
            x = np.pad(x, ((0, 0), (top, top), (left, left), (0, 0)), constant_values=self.fill_value)
            window = (-top, -left, H, W)
        y, ctx = resize(x, self.height, self.width, self.interpolation)
        return y, (ctx, window, x.shape)

    def _backward(self, ctx, dy):
        rctx, window, shape = ctx
        dx = resize_backward(rctx, dy)
        if window is None:
            return dx
        top, left, H, W = window
        if top >= 0 and left >= 0:  # cropped: the gradient of the window, zeros around it
            full = np.zeros((dx.shape[0], H, W, dx.shape[3]), _F32)
            full[:, top:top + shape[1], left:left + shape[2]] = dx
            return full
        return np.ascontiguousarray(dx[:, -top:-top + H, -left:-left + W])  # padded: drop the padding

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, interpolation=self.interpolation,
                      crop_to_aspect_ratio=self.crop_to_aspect_ratio, pad_to_aspect_ratio=self.pad_to_aspect_ratio,
                      fill_mode=self.fill_mode, fill_value=self.fill_value, antialias=False,
                      data_format="channels_last")
        return config


class CenterCrop(_ImageLayer):
    """Crop the central ``(height, width)`` window of each image; an image smaller than that is resized
    instead (Keras's smart_resize: crop to the target aspect ratio, then bilinear resize).

    >>> import fastnn
    >>> fastnn.layers.CenterCrop(2, 2)(np.ones((1, 4, 5, 3), np.float32)).shape
    (1, 2, 2, 3)
    """

    def __init__(self, height, width, data_format=None, **kwargs):
        super().__init__(**kwargs)
        who = f"CenterCrop '{self.name}'"
        _channels_last(who, data_format)
        self.height, self.width = _positive_size(who, height=height, width=width)

    def compute_output_shape(self, input_shape):
        _check_images(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def _forward(self, x, training, need_dx=True):
        H, W, h, w = x.shape[1], x.shape[2], self.height, self.width
        window = ((H - h) // 2, (W - w) // 2, h, w) if H >= h and W >= w else aspect_window(H, W, h, w)
        return crop_resize(x, *window, h, w)

    def _backward(self, ctx, dy):
        return crop_resize_backward(ctx, dy)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, data_format="channels_last")
        return config
