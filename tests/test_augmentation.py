"""The resample kernel (every ISA against the reference and a numpy reference of TF's
ImageProjectiveTransformV3; 1 vs 2 threads; its adjoint) and the random augmentation layers (a flip flips, a
quarter-turn rotation is np.rot90, zoom 0 is identity, seeds reproduce, identity outside training)."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, layers

from _conv_util import threads

FILLS = ["reflect", "wrap", "constant", "nearest"]
INTERPS = ["bilinear", "nearest"]
ISAS = list(_C.supported_isas)


# ---- numpy reference of TF's ImageProjectiveTransformV3 (tensorflow/core/kernels/image/image_ops.h) ----------
def _map(c, n, mode):
    c = c.copy()
    lo, hi = c < 0, c > n - 1  # NOTE: TF's if / else-if: a low point wrapped past the end is not mapped again
    if mode == "constant":
        return c
    if n <= 1:
        return np.zeros_like(c)
    if mode == "reflect":
        sz2 = 2.0 * n
        t = sz2 * np.trunc(-c[lo] / sz2) + c[lo]
        c[lo] = np.where(t < -n, t + sz2, -t - 1)
        t = c[hi] - sz2 * np.trunc(c[hi] / sz2)
        c[hi] = np.where(t >= n, sz2 - t - 1, t)
    elif mode == "wrap":
        sz = n - 1.0
        c[lo] += n * (np.trunc(-c[lo] / sz) + 1)
        c[hi] -= n * np.trunc(c[hi] / sz)
    return np.clip(c, 0, n - 1)


def ref_transform(x, t, out_hw, interpolation, fill_mode, fill_value):
    B, H, W, C = x.shape
    OH, OW = out_hw
    oy, ox = np.meshgrid(np.arange(OH, dtype=np.float64), np.arange(OW, dtype=np.float64), indexing="ij")
    out = np.empty((B, OH, OW, C))
    for b in range(B):
        a = t[b if len(t) > 1 else 0].astype(np.float64)
        k = a[6] * ox + a[7] * oy + 1
        ix = _map((a[0] * ox + a[1] * oy + a[2]) / k, W, fill_mode)
        iy = _map((a[3] * ox + a[4] * oy + a[5]) / k, H, fill_mode)

        def read(yy, xx):
            inside = (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
            v = x[b][np.clip(yy, 0, H - 1).astype(int), np.clip(xx, 0, W - 1).astype(int)]
            return np.where(inside[..., None], v, fill_value)
        if interpolation == "nearest":
            rnd = lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5)  # noqa: E731 (round half away from zero)
            out[b] = read(rnd(iy), rnd(ix))
        else:
            fy, fx = np.floor(iy), np.floor(ix)
            wy, wx = (iy - fy)[..., None], (ix - fx)[..., None]
            top = (1 - wx) * read(fy, fx) + wx * read(fy, fx + 1)
            bottom = (1 - wx) * read(fy + 1, fx) + wx * read(fy + 1, fx + 1)
            out[b] = (1 - wy) * top + wy * bottom
    return out


def _random_transforms(B, H, W, rng, projective=False):
    """Rotations, zooms, shifts and shears large enough to sample far outside the image."""
    angle = rng.uniform(-np.pi, np.pi, B)
    s = rng.uniform(0.5, 2.5, (B, 2))
    t = np.zeros((B, 8))
    t[:, 0], t[:, 1] = s[:, 0] * np.cos(angle), -s[:, 0] * np.sin(angle) + rng.uniform(-0.3, 0.3, B)
    t[:, 3], t[:, 4] = s[:, 1] * np.sin(angle), s[:, 1] * np.cos(angle)
    t[:, 2], t[:, 5] = rng.uniform(-2 * W, 2 * W, B), rng.uniform(-2 * H, 2 * H, B)
    if projective:
        t[:, 6:] = rng.uniform(-0.02, 0.02, (B, 2))
    return t.astype(np.float32)


CASES = [(2, 7, 5, 3), (1, 1, 9, 2), (3, 8, 8, 1), (2, 13, 11, 17), (1, 2, 1, 4)]


@pytest.mark.parametrize("fill_mode", FILLS)
@pytest.mark.parametrize("interpolation", INTERPS)
@pytest.mark.parametrize("case", CASES)
def test_kernel_matches_numpy_reference_on_every_isa(case, interpolation, fill_mode):
    B, H, W, C = case
    rng = np.random.default_rng(hash(case) % 2**32)
    x = rng.standard_normal(case).astype(np.float32)
    t = _random_transforms(B, H, W, rng, projective=(C % 2 == 1))
    out_hw = (H + 2, max(1, W - 1))
    want = ref_transform(x, t, out_hw, interpolation, fill_mode, -1.5)
    for isa in ["ref"] + ISAS:
        got = getattr(_C, isa).resample_forward(x, t, out_hw, interpolation, fill_mode, -1.5)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"{isa} {interpolation} {fill_mode}")


@pytest.mark.parametrize("fill_mode", FILLS)
def test_backward_is_the_adjoint_on_every_isa(fill_mode):
    # the map x -> y is linear (fill 0), so <resample(x), dy> == <x, resample_backward(dy)> for any x, dy
    rng = np.random.default_rng(3)
    B, H, W, C = 2, 9, 7, 5
    x = rng.standard_normal((B, H, W, C))
    t = _random_transforms(B, H, W, rng)
    dy = rng.standard_normal((B, 6, 8, C)).astype(np.float32)
    for isa in ["ref"] + ISAS:
        k = getattr(_C, isa)
        dx = k.resample_backward(dy, t, (H, W), "bilinear", fill_mode)
        y = ref_transform(x, t, (6, 8), "bilinear", fill_mode, 0.0)
        np.testing.assert_allclose((x * dx).sum(), (y * dy).sum(), rtol=1e-4, err_msg=isa)
        np.testing.assert_allclose(dx, _C.ref.resample_backward(dy, t, (H, W), "bilinear", fill_mode), rtol=1e-5,
                                   atol=1e-5, err_msg=isa)


def test_kernel_is_thread_count_independent():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 31, 29, 3)).astype(np.float32)
    t = _random_transforms(5, 31, 29, rng)
    dy = rng.standard_normal((5, 31, 29, 3)).astype(np.float32)
    runs = []
    for n in (1, 2):
        with threads(n):
            runs.append((_C.cpu.resample_forward(x, t, None, "bilinear", "reflect"),
                         _C.cpu.resample_backward(dy, t, (31, 29), "bilinear", "reflect")))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


def test_kernel_validates_arguments():
    x = np.zeros((2, 4, 4, 3), np.float32)
    t = np.zeros((2, 8), np.float32)
    with pytest.raises(ValueError, match="transforms must have shape"):
        _C.cpu.resample_forward(x, np.zeros((3, 8), np.float32))
    with pytest.raises(ValueError, match="fill_mode"):
        _C.cpu.resample_forward(x, t, None, "bilinear", "mirror")
    with pytest.raises(ValueError, match="interpolation"):
        _C.cpu.resample_forward(x, t, None, "cubic")
    with pytest.raises(ValueError, match="4-D"):
        _C.cpu.resample_forward(np.zeros((4, 4, 3), np.float32), t)
    with pytest.raises(ValueError, match="overlap|same memory|alias"):
        _C.cpu.resample_forward(x, t, out=x)
    with pytest.raises(ValueError, match="too large"):
        _C.cpu.resample_forward(x, t, (2**31, 2**31))
    with pytest.raises(ValueError, match="sizes in"):
        _C.cpu.resample_forward(x, t, (0, 3))
    with pytest.raises(TypeError, match="pair of ints"):
        _C.cpu.resample_backward(x, t, 4)
    with pytest.raises(ValueError, match="too large"):
        _C.cpu.resample_backward(x, t, (2**31, 2**31))
    # NaN / infinite / huge transforms read fill_value instead of anything out of bounds
    bad = np.array([[np.nan, 0, 0, 0, 1, 0, 0, 0], [1, 0, 1e30, 0, 1, 0, 0, 0]], np.float32)
    for mode in FILLS:
        y = _C.cpu.resample_forward(np.ones((2, 4, 4, 3), np.float32), bad, None, "bilinear", mode, 7.0)
        assert np.all(y == 7.0), mode


# ---- layers ----------------------------------------------------------------------------------------------------
def _images(B=4, H=6, W=6, C=3, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (B, H, W, C)).astype(np.float32)


def test_flip_flips_and_is_identity_outside_training():
    x = _images(64, 5, 4)
    for mode, axes in (("horizontal", (1,)), ("vertical", (0,)), ("horizontal_and_vertical", (0, 1))):  # of one image
        layer = layers.RandomFlip(mode, seed=1)
        y = layer(x).numpy()  # a direct call trains, as in Keras 3
        flipped = np.array([np.array_equal(y[i], np.flip(x[i], axes)) for i in range(len(x))])
        kept = np.array([np.array_equal(y[i], x[i]) for i in range(len(x))])
        assert np.all(flipped | kept) and 16 < flipped.sum() < 48, (mode, flipped.sum())
        np.testing.assert_array_equal(layer(x, training=False).numpy(), x)


@pytest.mark.parametrize("k", [-2, -1, 1, 2])
@pytest.mark.parametrize("interpolation", INTERPS)
def test_quarter_turns_are_rot90(k, interpolation):
    x = _images(3, 7, 7)
    layer = layers.RandomRotation((k / 4, k / 4), interpolation=interpolation, fill_mode="constant")
    np.testing.assert_array_equal(layer(x, training=True).numpy(), np.rot90(x, k, axes=(1, 2)))


def test_rotation_matches_the_reference_geometry():
    # Keras: angle = factor * 360 degrees about ((W-1)/2, (H-1)/2); output pixel -> input point
    x = _images(1, 9, 6)
    y = layers.RandomRotation((0.1, 0.1), fill_mode="wrap", fill_value=3.0)(x).numpy()
    a = np.deg2rad(36.0)
    cx, cy = 2.5, 4.0
    t = np.array([[np.cos(a), -np.sin(a), cx - cx * np.cos(a) + cy * np.sin(a),
                   np.sin(a), np.cos(a), cy - cx * np.sin(a) - cy * np.cos(a), 0, 0]])
    np.testing.assert_allclose(y, ref_transform(x, t, (9, 6), "bilinear", "wrap", 3.0), rtol=1e-5, atol=1e-3)


def test_zoom_zero_is_identity_and_zoom_out_shrinks():
    x = _images(3, 8, 10)
    np.testing.assert_allclose(layers.RandomZoom((0.0, 0.0))(x).numpy(), x, rtol=0, atol=1e-4)
    # height_factor 1 (zoom 2, out): the centre pixel stays, the content shrinks around it, reflected around
    x = np.zeros((1, 9, 9, 1), np.float32)
    x[0, 4, 4, 0] = 1.0
    y = layers.RandomZoom((1.0, 1.0), fill_mode="constant", interpolation="nearest")(x).numpy()
    assert y[0, 4, 4, 0] == 1.0 and y.sum() == 1.0


def test_translation_shifts_by_fractions():
    x = _images(2, 10, 8)
    y = layers.RandomTranslation((0.2, 0.2), (-0.25, -0.25), fill_mode="constant", interpolation="nearest")(x).numpy()
    # down by 2 rows, left by 2 columns
    np.testing.assert_array_equal(y[:, 2:, :6], x[:, :8, 2:])
    assert np.all(y[:, :2] == 0) and np.all(y[:, :, 6:] == 0)


def test_seeds_reproduce_and_calls_differ():
    x = _images(8, 12, 12)
    a = layers.RandomRotation(0.2, seed=5)
    b = layers.RandomRotation(0.2, seed=5)
    first = a(x).numpy()
    np.testing.assert_array_equal(first, b(x).numpy())
    assert not np.array_equal(first, a(x).numpy())  # the next call draws new angles
    fastnn.utils.set_random_seed(3)
    c = layers.RandomZoom(0.3)(x).numpy()
    fastnn.utils.set_random_seed(3)
    np.testing.assert_array_equal(c, layers.RandomZoom(0.3)(x).numpy())
    with threads(2):
        d = layers.RandomRotation(0.2, seed=5)(x).numpy()
    np.testing.assert_array_equal(first, d)


def test_contrast_and_brightness_ranges():
    x = _images(32, 4, 4)
    y = layers.RandomBrightness((0.1, 0.1), value_range=(0, 255))(x).numpy()
    np.testing.assert_allclose(y, np.clip(x + 25.5, 0, 255), rtol=1e-6)
    y = layers.RandomContrast((0.5, 0.5), seed=0)(x).numpy()
    mean = x.mean(axis=(1, 2), keepdims=True)
    factors = ((y - mean) / (x - mean))[np.abs(x - mean) > 1]  # unclipped entries give the factor
    inside = (y > 0) & (y < 255)
    got = ((y - mean) / np.where(np.abs(x - mean) > 1, x - mean, 1))[inside & (np.abs(x - mean) > 1)]
    assert factors.size and np.all((got > 0.5 - 1e-4) & (got < 1.5 + 1e-4))
    np.testing.assert_array_equal(layers.RandomContrast(0.5)(x, training=False).numpy(), x)


def test_random_crop_train_and_inference():
    x = _images(6, 9, 11)
    layer = layers.RandomCrop(4, 5, seed=2)
    y = layer(x).numpy()
    for i in range(len(x)):  # every output is a window of its image
        found = any(np.array_equal(y[i], x[i, r:r + 4, c:c + 5]) for r in range(6) for c in range(7))
        assert found, i
    z = layer(x, training=False).numpy()  # the centred 9 x 11.25 -> 9 x 11 window of ratio 4:5 resized
    assert z.shape == (6, 4, 5, 3)


def test_augmentation_in_a_model_trains_and_predict_is_identity():
    fastnn.utils.set_random_seed(0)
    x = _images(32, 8, 8) / 255.0
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)
    model = fastnn.models.Sequential([fastnn.Input((8, 8, 3)), layers.RandomFlip("horizontal"),
                                      layers.RandomRotation(0.1), layers.Flatten(), layers.Dense(2)])
    model.compile("adam", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    plain = fastnn.models.Sequential([fastnn.Input((8, 8, 3)), layers.Flatten(), layers.Dense(2)])
    plain.build((None, 8, 8, 3))
    plain.set_weights(model.get_weights())
    np.testing.assert_allclose(model.predict(x, verbose=0), plain.predict(x, verbose=0), rtol=1e-6)


def test_gradient_flows_through_rotation():
    x = fastnn.tensor(_images(2, 5, 5), requires_grad=True)
    layer = layers.RandomRotation(0.1, seed=0, fill_mode="constant")
    out = layer(x, training=True)
    out.sum().backward()
    assert x.grad is not None and x.grad.shape == (2, 5, 5, 3) and 0 < x.grad.numpy().sum() <= 150.0 + 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        layers.RandomFlip("diagonal")
    with pytest.raises(NotImplementedError, match="fill_mode"):
        layers.RandomRotation(0.1, fill_mode="mirror")
    with pytest.raises(ValueError, match="factor"):
        layers.RandomZoom(-1.0)
    with pytest.raises(ValueError, match="factor"):
        layers.RandomTranslation(1.5, 0.1)
    with pytest.raises(ValueError, match="images"):
        layers.RandomRotation(0.1)(np.zeros((2, 5), np.float32))


def test_config_round_trip():
    for layer in (layers.RandomFlip("vertical", seed=1), layers.RandomRotation((-0.1, 0.2), fill_mode="wrap"),
                  layers.RandomZoom(0.1, (0.2, 0.3)), layers.RandomTranslation(0.1, 0.2, fill_value=2.0),
                  layers.RandomCrop(3, 4), layers.RandomContrast(0.3), layers.RandomBrightness(0.2)):
        config = layer.get_config()
        again = type(layer).from_config(config)
        assert again.get_config() == config


def test_unbatched_images_in_direct_calls():
    image = _images(1, 6, 5)[0]
    y = layers.RandomFlip("vertical", seed=0)(image, training=False)
    assert y.shape == (6, 5, 3)
    np.testing.assert_array_equal(layers.RandomRotation((0.5, 0.5))(image).numpy(), np.rot90(image, 2))
    assert layers.Resizing(3, 4)(image).shape == (3, 4, 3)


def test_saved_models_resume_the_same_draws(tmp_path):
    fastnn.utils.set_random_seed(2)
    model = fastnn.models.Sequential([fastnn.Input((6, 6, 3)), layers.RandomRotation(0.2), layers.RandomFlip(),
                                      layers.Flatten(), layers.Dense(2)])
    x = _images(4, 6, 6)
    model(x, training=True)  # one draw before saving
    path = str(tmp_path / "aug.keras")
    model.save(path)
    again = fastnn.models.load_model(path)
    resumed = again(x, training=True).numpy()
    np.testing.assert_array_equal(resumed, model(x, training=True).numpy())
    assert not np.allclose(resumed, model(x, training=False).numpy())  # the draws were applied


@pytest.mark.parametrize("mode", ["horizontal", "vertical", "horizontal_and_vertical"])
@pytest.mark.parametrize("shape", [(9, 5, 7, 3), (6, 1, 4, 1), (5, 4, 6, 5)], ids=str)
def test_flip_mirrors_as_the_resample_kernel_with_its_transforms(mode, shape):
    """RandomFlip mirrors in numpy: the same values and gradients as resampling with the layer's own transforms
    (the same draws), for every mode."""
    from fastnn.layers.augmentation import _AffineLayer
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    g = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    a, b = layers.RandomFlip(mode, seed=11), layers.RandomFlip(mode, seed=11)
    y, ctx = a._forward(x, True, True)
    want, wctx = _AffineLayer._augment(b, x, b._generator())
    assert 0 < len(ctx) < shape[0]  # some images flipped, some not
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(a._backward(ctx, g), _AffineLayer._grad(b, wctx, g))


def test_a_model_called_without_training_augments_as_keras():
    # Keras 3: training left unspecified reaches each layer as its own default: the augmentation layers'
    # is True (the tutorials call `data_augmentation(images)` to show augmented images), Dropout's False
    x = _images(64, 5, 4)
    aug = fastnn.Sequential([fastnn.Input((5, 4, 3)), layers.RandomFlip("horizontal", seed=3), layers.Dropout(0.9)])
    y = aug(x).numpy()
    flipped = sum(np.array_equal(y[i], np.flip(x[i], 1)) and not np.array_equal(y[i], x[i]) for i in range(len(x)))
    assert 16 < flipped < 48 and np.all((y == x) | (y == x[:, :, ::-1]))  # flips, and no dropout zeros
    np.testing.assert_array_equal(aug(x, training=False).numpy(), x)
    np.testing.assert_array_equal(aug.predict(x, verbose=0), x)
