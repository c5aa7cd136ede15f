"""Random image augmentation layers (Keras 3 names, arguments and geometry): RandomFlip, RandomRotation,
RandomZoom, RandomTranslation, RandomCrop, RandomContrast, RandomBrightness.

They transform only when training (``fit``, or ``layer(x)`` called directly, whose ``training`` defaults to
True as in Keras 3); ``evaluate``/``predict`` and ``training=False`` pass the images through unchanged
(RandomCrop, whose output size differs, then crops the centred window of the target aspect ratio and
resizes, as Keras documents).

Geometry: every spatial layer builds one 8-entry transform per image (Keras's ``_compute_affine_matrix``,
``_get_zoom_matrix``, ``_get_translation_matrix``: output pixel -> input point) and makes ONE call of the C++
resample kernel for the batch (TF's ImageProjectiveTransformV3 semantics: fill_mode reflect / wrap / constant /
nearest with fill_value, interpolation bilinear / nearest). The gradient is the kernel's adjoint, so the layers
are differentiable like Keras's (free when they sit first: the plan skips the backward of layers that lead to
no weight).

Randomness: a layer's draws come from numpy's counter-based Philox keyed by the layer's seed (``seed=``, or
one drawn from ``fastnn.random`` on first use, so ``fastnn.utils.set_random_seed`` reproduces them), with its
call number as the counter: the same seed gives the same transforms run after run, for any thread count. The
values differ from Keras's (another generator); the distributions are Keras's.
"""
import numpy as np

from fastnn import backend
from fastnn import random as _random
from fastnn.layers.convolutional import _channels_last
from fastnn.layers.preprocessing import (_check_images, _ImageLayer, _positive_size, aspect_window, crop_resize,
                                         crop_resize_backward)

_F32 = np.float32
_MASK64 = (1 << 64) - 1
_FILL_MODES = ("reflect", "wrap", "constant", "nearest")
_INTERPOLATIONS = ("nearest", "bilinear")
HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL = "horizontal", "vertical", "horizontal_and_vertical"


def _number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _factor_range(who, arg, factor, low, high, low_open=False):
    """Keras's (lower, upper) from a number f (-> (-|f|, |f|), clipped at ``low``) or a pair (sorted); each entry
    must lie in [low, high] (``low_open``: (low, high])."""
    msg = (f"{who}: the `{arg}` argument should be a number (or a list of two numbers) in the range "
           f"[{low}, {high}]. Received: {arg}={factor!r}")

    def check(v):
        if not _number(v) or v > high or v < low or (low_open and v == low):
            raise ValueError(msg)
    if isinstance(factor, (tuple, list)):
        if len(factor) != 2:
            raise ValueError(msg)
        check(factor[0])
        check(factor[1])
        lower, upper = sorted(float(f) for f in factor)
        return lower, upper
    check(factor)
    f = abs(float(factor))
    return max(-f, low), f


def _value_range(who, value_range):
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2 or not all(_number(v) for v in value_range):
        raise ValueError(f"{who}: the `value_range` argument should be a list of two numbers. Received: "
                         f"value_range={value_range!r}")
    return [float(v) for v in value_range]


class _RandomLayer(_ImageLayer):
    """Seeding, the training switch and Keras's direct-call default (``layer(x)`` or ``model(x)`` without
    ``training`` augments) shared by the augmentation layers. Subclasses implement ``_augment(x, gen) -> (y, ctx)`` and ``_grad(ctx, dy)``."""

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"{type(self).__name__} '{self.name}': seed must be a non-negative int or None, "
                             f"got {seed!r}")
        self.seed = None if seed is None else int(seed)
        self._seed = None   # the Philox key, fixed on first use
        # the call number, the Philox counter's high word (one stream per call); named as Dropout's counter so
        # that saving stores both as the layer's "seed_generator" state and training resumes with the same draws
        self._offset = 0


    def _generator(self):
        if self._seed is None:
            self._seed = (self.seed if self.seed is not None else _random.next_seed()) & _MASK64
        gen = np.random.Generator(np.random.Philox(counter=self._offset << 64, key=self._seed))
        self._offset += 1
        return gen

    def compute_output_shape(self, input_shape):
        _check_images(self, input_shape)
        return tuple(input_shape)

    def _forward(self, x, training, need_dx=True):
        # training None: called directly (the layer, or a model holding it) without saying: Keras 3's call
        # signature default for these layers is training=True, so they augment
        if training is not None and not training:
            return self._inference(x)
        return self._augment(x, self._generator())

    def _inference(self, x):
        return x, None

    def _backward(self, ctx, dy):
        return dy if ctx is None else self._grad(ctx, dy)

    def get_config(self):
        config = super().get_config()
        config["seed"] = self.seed
        return config


class _AffineLayer(_RandomLayer):
    """A random affine transform per image, resampled by one kernel call; ``_transforms(B, H, W, gen)``
    gives the (B, 8) float32 transforms (output pixel -> input point)."""

    _interpolation, _fill_mode, _fill_value = "nearest", "constant", 0.0

    def _init_fill(self, fill_mode, interpolation, fill_value):
        if fill_mode not in _FILL_MODES:
            raise NotImplementedError(f"Unknown `fill_mode` {fill_mode}. Expected of one {_FILL_MODES}.")
        if interpolation not in _INTERPOLATIONS:
            raise NotImplementedError(f"Unknown `interpolation` {interpolation}. Expected of one {_INTERPOLATIONS}.")
        self.fill_mode, self.interpolation, self.fill_value = fill_mode, interpolation, float(fill_value)
        self._fill_mode, self._interpolation, self._fill_value = fill_mode, interpolation, float(fill_value)

    def _augment(self, x, gen):
        B, H, W, _ = x.shape
        t = self._transforms(B, H, W, gen)
        y = backend.of(x).resample_forward(x, t, None, self._interpolation, self._fill_mode, self._fill_value)
        return y, (t, (H, W))

    def _grad(self, ctx, dy):
        t, hw = ctx
        return backend.of(dy).resample_backward(dy, t, hw, self._interpolation, self._fill_mode)


def affine_matrix(angle, scale_x, scale_y, translate_x, translate_y, H, W):
    """(B, 8) transforms (float32) of a rotation by ``angle`` radians about the image centre ((W-1)/2, (H-1)/2),
    zooms ``scale_x/scale_y`` about it and translations in pixels: Keras's ``_compute_affine_matrix`` (output
    pixel -> input point), computed in float64 so that quarter turns are exact."""
    cx, cy = (W - 1) / 2.0, (H - 1) / 2.0
    cos, sin = np.cos(angle), np.sin(angle)
    # NOTE: sin/cos of k*pi/2 are off by ~1e-16, not 0: rounded away so quarter turns copy pixels exactly
    cos, sin = np.where(np.abs(cos) < 1e-12, 0.0, cos), np.where(np.abs(sin) < 1e-12, 0.0, sin)
    a0, a1 = scale_x * cos, -scale_x * sin
    b0, b1 = scale_y * sin, scale_y * cos
    a2 = translate_x + cx - cx * a0 - cy * a1
    b2 = translate_y + cy - cx * b0 - cy * b1
    zeros = np.zeros_like(a0)
    return np.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1).astype(_F32)


class RandomFlip(_AffineLayer):
    """Randomly flip each image with probability 1/2: ``mode`` "horizontal" (left-right), "vertical" or
    "horizontal_and_vertical" (one draw per image flips both axes, as Keras 3).

    >>> import fastnn
    >>> fastnn.layers.RandomFlip("horizontal", seed=0)(np.ones((2, 4, 4, 3), np.float32)).shape
    (2, 4, 4, 3)
    """

    def __init__(self, mode=HORIZONTAL_AND_VERTICAL, seed=None, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        _channels_last(f"RandomFlip '{self.name}'", data_format)
        if mode not in (HORIZONTAL, VERTICAL, HORIZONTAL_AND_VERTICAL):
            raise ValueError(f"RandomFlip layer {self.name} received an unknown mode argument {mode}")
        self.mode = mode

    def _flips(self, B, gen):
        return gen.uniform(size=B) <= 0.5

    def _transforms(self, B, H, W, gen):
        flips = self._flips(B, gen)
        sx = np.where(flips & (self.mode != VERTICAL), -1.0, 1.0)
        sy = np.where(flips & (self.mode != HORIZONTAL), -1.0, 1.0)
        # x_in = sx * x + (W - 1) * (sx < 0): a mirror keeps pixel centres on pixel centres (nearest is exact)
        return affine_matrix(np.zeros(B), sx, sy, np.zeros(B), np.zeros(B), H, W)

    def _augment(self, x, gen):
        """The flipped images' rows/columns reversed by numpy (a mirror moves whole pixels: the same values as the
        resample kernel with these transforms, at a fraction of its per-pixel cost); the others copied."""
        flips = np.flatnonzero(self._flips(x.shape[0], gen))
        return self._mirror(x, flips), flips

    def _grad(self, flips, dy):
        return self._mirror(dy, flips)  # (a mirror is its own adjoint)

    def _mirror(self, a, flips):
        """``a`` (B, H, W, C) with the images ``flips`` mirrored; pixels move as one C-float item each (a void
        view: numpy copies a reversed axis of 3-float pixels several times slower float by float)."""
        a = np.ascontiguousarray(a, dtype=_F32)
        pixels = a.view(np.dtype((np.void, 4 * a.shape[3])))
        out = pixels.copy()
        if len(flips):
            h = slice(None, None, -1) if self.mode != VERTICAL else slice(None)
            v = slice(None, None, -1) if self.mode != HORIZONTAL else slice(None)
            out[flips] = pixels[flips][:, v, h]
        return out.view(_F32).reshape(a.shape)

    def get_config(self):
        config = super().get_config()
        config.update(mode=self.mode, data_format="channels_last")
        return config


class RandomRotation(_AffineLayer):
    """Rotate each image by a random angle ``factor * 2π``: ``factor`` a number f (angles in [-f, f] turns) or a
    pair (lower, upper); positive angles turn counter-clockwise. ``fill_mode`` ("reflect", "wrap", "constant",
    "nearest") says what fills the corners, ``fill_value`` the constant; ``interpolation`` "bilinear" or
    "nearest". A factor of exactly k/4 gives ``np.rot90(image, k)`` on square images.

    >>> import fastnn
    >>> fastnn.layers.RandomRotation(0.1, seed=0)(np.ones((2, 8, 8, 3), np.float32)).shape
    (2, 8, 8, 3)
    """

    def __init__(self, factor, fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0,
                 data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = f"RandomRotation '{self.name}'"
        _channels_last(who, data_format)
        self.factor = _factor_range(who, "factor", factor, -1.0, 1.0)
        self._init_fill(fill_mode, interpolation, fill_value)

    def _transforms(self, B, H, W, gen):
        lower, upper = self.factor
        degrees = gen.uniform(lower * 360.0, upper * 360.0, size=B) if lower != upper else np.full(B, lower * 360.0)
        ones, zeros = np.ones(B), np.zeros(B)
        return affine_matrix(np.deg2rad(degrees), ones, ones, zeros, zeros, H, W)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, data_format="channels_last", fill_mode=self.fill_mode,
                      fill_value=self.fill_value, interpolation=self.interpolation)
        return config


class RandomZoom(_AffineLayer):
    """Zoom each image by a random factor: ``height_factor`` (and ``width_factor``; None: the same zoom on both
    axes) a number f in (-1, 1] (zoom drawn from [-|f|, |f|]) or a pair; the sampled image is ``1 + zoom`` times
    as large as the output, so positive values zoom OUT and negative values zoom in (Keras 3).

    >>> import fastnn
    >>> fastnn.layers.RandomZoom(0.2, seed=0)(np.ones((2, 8, 8, 3), np.float32)).shape
    (2, 8, 8, 3)
    """

    def __init__(self, height_factor, width_factor=None, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = f"RandomZoom '{self.name}'"
        _channels_last(who, data_format)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_range(who, "height_factor", height_factor, -1.0, 1.0, low_open=True)
        self._width = None if width_factor is None else \
            _factor_range(who, "width_factor", width_factor, -1.0, 1.0, low_open=True)
        self._init_fill(fill_mode, interpolation, fill_value)

    def _transforms(self, B, H, W, gen):
        zh = 1.0 + gen.uniform(*self._height, size=B)
        zw = zh if self._width is None else 1.0 + gen.uniform(*self._width, size=B)
        zeros = np.zeros(B)
        return affine_matrix(zeros, zw, zh, zeros, zeros, H, W)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor, fill_mode=self.fill_mode,
                      interpolation=self.interpolation, fill_value=self.fill_value, data_format="channels_last")
        return config


class RandomTranslation(_AffineLayer):
    """Shift each image by random fractions of its size: ``height_factor`` / ``width_factor`` numbers f in
    [-1, 1] (shifts drawn from [-|f|, |f|] times the height / width) or pairs; positive values move the
    content down / right.

    >>> import fastnn
    >>> fastnn.layers.RandomTranslation(0.1, 0.1, seed=0)(np.ones((2, 8, 8, 3), np.float32)).shape
    (2, 8, 8, 3)
    """

    def __init__(self, height_factor, width_factor, fill_mode="reflect", interpolation="bilinear", seed=None,
                 fill_value=0.0, data_format=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = f"RandomTranslation '{self.name}'"
        _channels_last(who, data_format)
        self.height_factor, self.width_factor = height_factor, width_factor
        self._height = _factor_range(who, "height_factor", height_factor, -1.0, 1.0)
        self._width = _factor_range(who, "width_factor", width_factor, -1.0, 1.0)
        self._init_fill(fill_mode, interpolation, fill_value)

    def _transforms(self, B, H, W, gen):
        dy = gen.uniform(*self._height, size=B) * H
        dx = gen.uniform(*self._width, size=B) * W
        ones, zeros = np.ones(B), np.zeros(B)
        return affine_matrix(zeros, ones, ones, -dx, -dy, H, W)

    def get_config(self):
        config = super().get_config()
        config.update(height_factor=self.height_factor, width_factor=self.width_factor, fill_mode=self.fill_mode,
                      interpolation=self.interpolation, fill_value=self.fill_value, data_format="channels_last")
        return config


class RandomCrop(_RandomLayer):
    """Crop a random ``(height, width)`` window of each image when training (an image not larger than that in
    both dimensions is resized instead, as Keras); outside training, the centred window of the target aspect
    ratio, resized to ``(height, width)``.

    NOTE: Keras 3 draws one window per batch, fastnn one per image; Keras 3.15 passes images through unchanged
    outside training (contradicting its own output shape); fastnn does what Keras documents.

    >>> import fastnn
    >>> fastnn.layers.RandomCrop(4, 4, seed=0)(np.ones((2, 8, 8, 3), np.float32)).shape
    (2, 4, 4, 3)
    """

    def __init__(self, height, width, seed=None, data_format=None, name=None, **kwargs):
        super().__init__(seed=seed, name=name, **kwargs)
        who = f"RandomCrop '{self.name}'"
        _channels_last(who, data_format)
        self.height, self.width = _positive_size(who, height=height, width=width)

    def compute_output_shape(self, input_shape):
        _check_images(self, input_shape)
        return (input_shape[0], self.height, self.width, input_shape[3])

    def _augment(self, x, gen):
        B, H, W, C = x.shape
        if not (H > self.height and W > self.width):
            return self._inference(x)
        top = np.floor(gen.uniform(0, H - self.height + 1, size=B))
        left = np.floor(gen.uniform(0, W - self.width + 1, size=B))
        t = np.zeros((B, 8), _F32)  # output pixel (x, y) reads input (x + left, y + top)
        t[:, 0] = t[:, 4] = 1.0
        t[:, 2], t[:, 5] = left, top
        y = backend.of(x).resample_forward(x, t, (self.height, self.width), "nearest", "constant", 0.0)
        return y, ("crop", t, (H, W))

    def _inference(self, x):
        y, ctx = crop_resize(x, *aspect_window(x.shape[1], x.shape[2], self.height, self.width), self.height,
                             self.width)
        return y, ("resize", ctx)

    def _backward(self, ctx, dy):
        if ctx[0] == "crop":
            return backend.of(dy).resample_backward(dy, ctx[1], ctx[2], "nearest", "constant")
        return crop_resize_backward(ctx[1], dy)

    def get_config(self):
        config = super().get_config()
        config.update(height=self.height, width=self.width, data_format="channels_last")
        return config


class _ValueRangeLayer(_RandomLayer):
    """Contrast and brightness: one random factor per image, the result clipped to ``value_range``."""

    def _clip(self, y):
        lo, hi = min(self.value_range), max(self.value_range)
        np.clip(y, lo, hi, out=y)
        return y

    def _inside(self, y):
        lo, hi = min(self.value_range), max(self.value_range)
        return (y > lo) & (y < hi)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor, value_range=self.value_range)
        return config


class RandomContrast(_ValueRangeLayer):
    """Adjust each image's contrast by a random factor c: ``(x - mean) * c + mean`` per channel (mean over the
    image's pixels), clipped to ``value_range``. ``factor`` f in [0, 1] draws c from [1 - f, 1 + f] (Keras 3
    keeps (lower, upper) = (max(-f, 0), f), i.e. c in [1, 1 + f] for a number; a pair gives [1 - lower,
    1 + upper]).

    >>> import fastnn
    >>> fastnn.layers.RandomContrast(0.5, seed=0)(np.ones((2, 4, 4, 3), np.float32)).shape
    (2, 4, 4, 3)
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = f"RandomContrast '{self.name}'"
        self.factor = _factor_range(who, "factor", factor, 0.0, 1.0)
        self.value_range = _value_range(who, value_range)

    def _augment(self, x, gen):
        B = x.shape[0]
        c = gen.uniform(1.0 - self.factor[0], 1.0 + self.factor[1], size=B).astype(_F32).reshape(B, 1, 1, 1)
        mean = x.mean(axis=(1, 2), keepdims=True, dtype=np.float64).astype(_F32)
        y = self._clip((x - mean) * c + mean)
        return y, (c, self._inside(y))

    def _grad(self, ctx, dy):
        c, inside = ctx
        g = dy * inside
        hw = g.shape[1] * g.shape[2]
        return (g * c + g.sum(axis=(1, 2), keepdims=True) * ((1 - c) / hw)).astype(_F32)


class RandomBrightness(_ValueRangeLayer):
    """Add a random delta to each image: ``factor`` f in [-1, 1] (a number: delta drawn from [-|f|, |f|]; a pair:
    [lower, upper]) times the width of ``value_range``; the result is clipped to ``value_range``.

    >>> import fastnn
    >>> fastnn.layers.RandomBrightness(0.2, seed=0)(np.ones((2, 4, 4, 3), np.float32)).shape
    (2, 4, 4, 3)
    """

    def __init__(self, factor, value_range=(0, 255), seed=None, **kwargs):
        super().__init__(seed=seed, **kwargs)
        who = f"RandomBrightness '{self.name}'"
        self.factor = _factor_range(who, "factor", factor, -1.0, 1.0)
        self.value_range = sorted(_value_range(who, value_range))

    def _augment(self, x, gen):
        B = x.shape[0]
        delta = gen.uniform(*self.factor, size=B) * (self.value_range[1] - self.value_range[0])
        y = self._clip(x + delta.astype(_F32).reshape(B, 1, 1, 1))
        return y, self._inside(y)

    def _grad(self, ctx, dy):
        return dy * ctx


__all__ = ["RandomFlip", "RandomRotation", "RandomZoom", "RandomTranslation", "RandomCrop", "RandomContrast",
           "RandomBrightness"]
