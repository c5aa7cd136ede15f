"""Deterministic preprocessing layers against clearly written numpy references of Keras 3's definitions:
Rescaling, Normalization (adapt, invert, given mean/variance), Resizing (tf.image.resize's half-pixel bilinear and
nearest, crop/pad to aspect ratio), CenterCrop; their gradients; configs."""
import numpy as np
import pytest

import fastnn
from fastnn import layers


def _images(B=2, H=6, W=7, C=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (B, H, W, C)).astype(np.float32)


# ---- numpy reference of tf.image.resize (half_pixel_centers=True, antialias=False) ------------------------------
def ref_resize(x, OH, OW, method="bilinear"):
    B, H, W, C = x.shape
    sy, sx = H / OH, W / OW
    if method == "nearest":  # TF: floor((o + 0.5) * scale), clamped
        ry = np.minimum(np.floor((np.arange(OH) + 0.5) * sy).astype(int), H - 1)
        rx = np.minimum(np.floor((np.arange(OW) + 0.5) * sx).astype(int), W - 1)
        return x[:, ry][:, :, rx]
    iy, ix = (np.arange(OH) + 0.5) * sy - 0.5, (np.arange(OW) + 0.5) * sx - 0.5
    y0, x0 = np.floor(iy), np.floor(ix)
    wy, wx = (iy - y0)[None, :, None, None], (ix - x0)[None, None, :, None]
    y0i, y1i = np.clip(y0, 0, H - 1).astype(int), np.clip(y0 + 1, 0, H - 1).astype(int)
    x0i, x1i = np.clip(x0, 0, W - 1).astype(int), np.clip(x0 + 1, 0, W - 1).astype(int)
    xd = x.astype(np.float64)
    top = xd[:, y0i][:, :, x0i] * (1 - wx) + xd[:, y0i][:, :, x1i] * wx
    bottom = xd[:, y1i][:, :, x0i] * (1 - wx) + xd[:, y1i][:, :, x1i] * wx
    return top * (1 - wy) + bottom * wy


@pytest.mark.parametrize("size", [(3, 4), (12, 14), (6, 7), (1, 1), (5, 20), (13, 2)])
@pytest.mark.parametrize("method", ["bilinear", "nearest"])
def test_resizing_matches_tf_resize(size, method):
    x = _images()
    y = layers.Resizing(*size, interpolation=method)(x).numpy()
    assert y.shape == (2,) + size + (3,)
    np.testing.assert_allclose(y, ref_resize(x, *size, method), rtol=1e-5, atol=1e-3)


def test_resizing_crop_and_pad_to_aspect_ratio():
    x = _images(H=6, W=10)
    # crop: the centred 6 x 6 window (ratio 1:1), then resize
    y = layers.Resizing(3, 3, crop_to_aspect_ratio=True)(x).numpy()
    np.testing.assert_allclose(y, ref_resize(x[:, :, 2:8], 3, 3), rtol=1e-5, atol=1e-3)
    # pad: Keras pads (10 - 6) / 2 = 2 rows of fill_value on each side, then resizes
    y = layers.Resizing(5, 5, pad_to_aspect_ratio=True, fill_value=7.0)(x).numpy()
    padded = np.pad(x, ((0, 0), (2, 2), (0, 0), (0, 0)), constant_values=7.0)
    np.testing.assert_allclose(y, ref_resize(padded, 5, 5), rtol=1e-5, atol=1e-3)


def test_center_crop_and_its_resize_fallback():
    x = _images(H=7, W=9)
    y = layers.CenterCrop(3, 4)(x).numpy()
    np.testing.assert_array_equal(y, x[:, 2:5, 2:6])
    # larger than the image: smart_resize (crop to the 10:6 ratio -> 7 x 4 window at column 2, resize)
    y = layers.CenterCrop(10, 6)(x).numpy()
    cw = int(np.float32(7 * 6) / np.float32(10))  # the window keeps all 7 rows
    left = (9 - cw) // 2
    np.testing.assert_allclose(y, ref_resize(x[:, :, left:left + cw], 10, 6), rtol=1e-5, atol=1e-3)


def test_rescaling():
    x = _images()
    np.testing.assert_allclose(layers.Rescaling(1 / 127.5, offset=-1)(x).numpy(), x / 127.5 - 1, rtol=1e-6, atol=1e-6)
    scale = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_allclose(layers.Rescaling(scale)(x).numpy(), x * scale, rtol=1e-6)


def test_normalization_adapt_and_invert():
    rng = np.random.default_rng(1)
    data = rng.normal(3.0, 2.0, (200, 4)).astype(np.float32)
    norm = layers.Normalization()
    norm.adapt(data)
    mean, var = data.astype(np.float64).mean(0), data.astype(np.float64).var(0)
    np.testing.assert_allclose(norm.get_weights()[0], mean, rtol=1e-5)
    np.testing.assert_allclose(norm.get_weights()[1], var, rtol=1e-5)
    y = norm(data).numpy()
    np.testing.assert_allclose(y, (data - mean) / np.sqrt(var), rtol=1e-4, atol=1e-5)
    inv = layers.Normalization(mean=mean, variance=var, invert=True)
    np.testing.assert_allclose(inv(y).numpy(), data, rtol=1e-4, atol=1e-4)
    # adapt over batches (Keras's streaming merge) equals adapt over the whole array
    streamed = layers.Normalization()
    streamed.adapt([data[:70], data[70:150], data[150:]])
    np.testing.assert_allclose(streamed.get_weights()[0], mean, rtol=1e-5)
    np.testing.assert_allclose(streamed.get_weights()[1], var, rtol=1e-5)


def test_normalization_axes_and_scalars():
    x = _images(4, 3, 5, 2)
    n = layers.Normalization(axis=None)
    n.adapt(x)
    np.testing.assert_allclose(n(x).numpy(), (x - x.mean()) / x.std(), rtol=1e-4, atol=1e-4)
    # per-channel statistics of images (axis=-1 keeps C) and a scalar given mean/variance
    n = layers.Normalization(axis=-1)
    n.adapt(x)
    m, s = x.mean(axis=(0, 1, 2)), x.std(axis=(0, 1, 2))
    np.testing.assert_allclose(n(x).numpy(), (x - m) / s, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layers.Normalization(mean=2.0, variance=4.0)(x).numpy(), (x - 2) / 2, rtol=1e-6)
    # zero variance: the denominator is floored at epsilon = 1e-7
    np.testing.assert_allclose(layers.Normalization(mean=1.0, variance=0.0)(np.ones((2, 3), np.float32)).numpy(), 0)
    with pytest.raises(ValueError, match="both `mean` and `variance`"):
        layers.Normalization(mean=1.0)


def test_gradients_of_preprocessing_layers():
    # each of these layers is linear in x: <f(x), dy> == <x, f'(dy)> checks the backward exactly
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 6, 7, 3))
    for layer in (layers.Resizing(4, 9), layers.Resizing(5, 5, crop_to_aspect_ratio=True),
                  layers.Resizing(5, 5, pad_to_aspect_ratio=True), layers.CenterCrop(3, 4), layers.CenterCrop(8, 8),
                  layers.Rescaling(2.0), layers.RandomCrop(4, 4, seed=1), layers.RandomFlip(seed=2),
                  layers.RandomTranslation(0.3, 0.3, seed=3, fill_mode="constant")):
        t = fastnn.tensor(x.astype(np.float32), requires_grad=True)
        out = layer(t, training=True)
        dy = rng.standard_normal(out.shape).astype(np.float32)
        (out * fastnn.tensor(dy)).sum().backward()
        y = out.numpy().astype(np.float64) - (layer.offset if isinstance(layer, layers.Rescaling) else 0)
        np.testing.assert_allclose((x * t.grad.numpy()).sum(), (y * dy).sum(), rtol=1e-4, err_msg=layer.name)


def test_preprocessing_configs_and_errors():
    for layer in (layers.Rescaling(0.5, 1.0), layers.Resizing(3, 4, interpolation="nearest"),
                  layers.CenterCrop(2, 2), layers.Normalization(axis=(1, 2), mean=[1.0, 2.0], variance=[3.0, 4.0])):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="interpolation"):
        layers.Resizing(3, 3, interpolation="lanczos9")
    with pytest.raises(ValueError, match="height"):
        layers.Resizing(0, 3)
    with pytest.raises(ValueError, match="images"):
        layers.Resizing(3, 3)(np.zeros((2, 5), np.float32))


def test_preprocessing_model_saves_and_loads(tmp_path):
    norm = layers.Normalization()
    norm.adapt(np.random.default_rng(0).uniform(0, 1, (5, 4, 4, 3)))
    model = fastnn.models.Sequential([fastnn.Input((6, 7, 3)), layers.Rescaling(1 / 255), layers.Resizing(4, 4),
                                      norm, layers.Flatten(), layers.Dense(2)])
    x = _images()
    want = model.predict(x, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(fastnn.models.load_model(path).predict(x, verbose=0), want, rtol=1e-6)
