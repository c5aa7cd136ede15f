"""The other vision layers of issue #15: ZeroPadding2D, Cropping2D, UpSampling2D (nearest, bilinear vs
torch), GlobalMaxPooling2D, LayerNormalization / GroupNormalization (vs torch, float64, with gradients),
ReLU(max_value, negative_slope, threshold) (Keras 3's formula), PReLU (vs torch), ELU, SpatialDropout1D/2D,
GaussianNoise, GaussianDropout; gradients against finite differences; Keras's weights and configs."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

from test_vision_layers import check_layer_gradients

RNG = np.random.default_rng(0)


def _x(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _torch():
    return pytest.importorskip("torch")


# ---- padding family --------------------------------------------------------------------------
def test_zero_padding_and_cropping_are_inverse_slices():
    x = _x(2, 3, 4, 5)
    pad = layers.ZeroPadding2D(((1, 2), (3, 0)))
    y = pad(x).numpy()
    assert y.shape == (2, 6, 7, 5) and pad.compute_output_shape((None, 3, None, 5)) == (None, 6, None, 5)
    np.testing.assert_array_equal(y[:, 1:4, 3:7], x)
    assert np.abs(y).sum() == pytest.approx(np.abs(x).sum(), rel=1e-6)
    crop = layers.Cropping2D(((1, 2), (3, 0)))
    np.testing.assert_array_equal(crop(y).numpy(), x)
    assert layers.ZeroPadding2D(2).padding == ((2, 2), (2, 2))
    assert layers.Cropping2D((1, 2)).cropping == ((1, 1), (2, 2))
    with pytest.raises(ValueError, match="cropping"):
        layers.Cropping2D(((2, 2), (0, 0)))(x[:, :4])
    with pytest.raises(ValueError, match="padding"):
        layers.ZeroPadding2D((1, -1))


@pytest.mark.parametrize("make", [lambda: layers.ZeroPadding2D(((1, 0), (2, 1))),
                                  lambda: layers.Cropping2D(((1, 0), (0, 2))),
                                  lambda: layers.UpSampling2D((2, 3)),
                                  lambda: layers.UpSampling2D(2, interpolation="bilinear"),
                                  lambda: layers.GlobalMaxPooling2D(),
                                  lambda: layers.GlobalMaxPooling2D(keepdims=True)],
                         ids=["pad", "crop", "nearest", "bilinear", "globalmax", "globalmax_keepdims"])
def test_gradients_match_finite_differences(make):
    check_layer_gradients(make(), _x(2, 4, 5, 3))


def test_upsampling_nearest_repeats_and_bilinear_matches_torch():
    x = _x(2, 3, 4, 2)
    y = layers.UpSampling2D((2, 3))(x).numpy()
    np.testing.assert_array_equal(y, x.repeat(2, axis=1).repeat(3, axis=2))
    torch = _torch()
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    # TF's bilinear resize with half-pixel centers = torch's align_corners=False when upsampling
    yt = torch.nn.functional.interpolate(xt, scale_factor=(2, 3), mode="bilinear", align_corners=False)
    layer = layers.UpSampling2D((2, 3), interpolation="bilinear")
    y, ctx = layer._forward(x, True)
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-6)
    g = _x(*y.shape, seed=1)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    np.testing.assert_allclose(layer._backward(ctx, g), xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-5, atol=1e-5)


def test_global_max_pooling():
    x = _x(2, 7, 6, 3)
    np.testing.assert_array_equal(layers.GlobalMaxPooling2D()(x).numpy(), x.max(axis=(1, 2)))
    big = _x(1, 20, 20, 2)  # a window over 255 cells: backward re-reads x
    check_layer_gradients(layers.GlobalMaxPooling2D(), big)


# ---- normalization ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["layer", "group"])
def test_layer_and_group_norm_match_torch_float64(kind):
    torch = _torch()
    F = torch.nn.functional
    x = _x(2, 5, 6, 8) * 3 + 1
    layer = layers.LayerNormalization() if kind == "layer" else layers.GroupNormalization(groups=4)
    layer(x)
    layer.gamma.value[...] = RNG.standard_normal(8)
    layer.beta.value[...] = RNG.standard_normal(8)
    y, ctx = layer._forward(x, True)
    g = _x(*x.shape, seed=1)
    dx = layer._backward(ctx, g)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    gt = torch.tensor(layer.gamma.numpy().astype(np.float64), requires_grad=True)
    bt = torch.tensor(layer.beta.numpy().astype(np.float64), requires_grad=True)
    if kind == "layer":
        yt = F.layer_norm(xt, (8,), gt, bt, eps=1e-3)
    else:
        yt = F.group_norm(xt.permute(0, 3, 1, 2), 4, gt, bt, eps=1e-3).permute(0, 2, 3, 1)
    yt.backward(torch.tensor(g.astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.gamma.grad, gt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.beta.grad, bt.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_norm_layers_keras_defaults_and_errors():
    ln, gn = layers.LayerNormalization(), layers.GroupNormalization()
    assert ln.epsilon == gn.epsilon == 1e-3 and gn.groups == 32
    gn(_x(1, 2, 2, 64))
    assert [(v.name, v.shape) for v in gn.weights] == [("gamma", (64,)), ("beta", (64,))]
    with pytest.raises(ValueError, match="multiple"):
        layers.GroupNormalization(groups=3)(_x(1, 2, 2, 8))
    assert layers.LayerNormalization.from_config(ln.get_config()).epsilon == 1e-3
    check_layer_gradients(layers.GroupNormalization(groups=2, center=False), _x(2, 3, 3, 4))
    check_layer_gradients(layers.LayerNormalization(scale=False), _x(3, 5))


# ---- activations -----------------------------------------------------------------------------
def _keras_relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras 3's activations.relu (ReLU.static_call), in float64."""
    x = x.astype(np.float64)
    if negative_slope and max_value is None and threshold == 0:
        return np.where(x >= 0, x, negative_slope * x)
    negative = np.maximum(threshold - x, 0) if negative_slope else 0
    y = x * (x > threshold) if threshold else np.maximum(x, 0)
    if max_value is not None:
        y = np.clip(y, 0, max_value)
    return y - negative_slope * negative


@pytest.mark.parametrize("kw", [{}, {"max_value": 6.0}, {"max_value": 1.5, "negative_slope": 0.2, "threshold": 0.5},
                                {"threshold": 0.5}, {"negative_slope": 0.1}, {"max_value": 2.0, "threshold": 1.0}],
                         ids=str)
def test_relu_follows_keras(kw):
    x = _x(4, 50) * 3
    layer = layers.ReLU(**kw)
    np.testing.assert_allclose(layer(x).numpy(), _keras_relu(x, **kw), rtol=1e-6, atol=1e-6)
    config = layer.get_config()
    assert layers.ReLU.from_config(config).get_config() == config
    x = x[np.all(np.abs(x[..., None] - np.array([0, 0.5, 1.0, 1.5, 2.0, 6.0])) > 0.05, axis=-1)].reshape(1, -1)
    check_layer_gradients(layers.ReLU(**kw), x, samples=10)


def test_relu_rejects_negative_arguments():
    for kw in ({"max_value": -1}, {"negative_slope": -0.1}, {"threshold": -1}, {"threshold": None}):
        with pytest.raises(ValueError, match="negative"):
            layers.ReLU(**kw)


def test_elu_and_prelu():
    x = _x(3, 4, 5, 2)
    np.testing.assert_allclose(layers.ELU(0.5)(x).numpy(), np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-5, atol=1e-6)
    assert layers.ELU().alpha == 1.0
    prelu = layers.PReLU(shared_axes=[1, 2])
    prelu(x)
    assert prelu.alpha.shape == (1, 1, 2) and layers.PReLU()(x) is not None
    prelu.alpha.value[...] = [[[0.25, -0.5]]]
    torch = _torch()
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    at = torch.tensor([0.25, -0.5], dtype=torch.float64, requires_grad=True)
    yt = torch.nn.functional.prelu(xt, at)
    y, ctx = prelu._forward(x, True)
    g = _x(*x.shape, seed=2)
    dx = prelu._backward(ctx, g)
    yt.backward(torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    np.testing.assert_allclose(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=1e-6)
    np.testing.assert_allclose(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-6)
    np.testing.assert_allclose(prelu.alpha.grad.reshape(-1), at.grad.numpy(), rtol=1e-5)
    full = layers.PReLU(alpha_initializer="ones")
    full(x)
    assert full.alpha.shape == (4, 5, 2)
    check_layer_gradients(full, x)


# ---- noise -----------------------------------------------------------------------------------
@pytest.mark.parametrize("cls,shape", [(layers.SpatialDropout2D, (8, 5, 6, 16)), (layers.SpatialDropout1D, (8, 7, 16))])
def test_spatial_dropout_drops_whole_channels(cls, shape):
    x = np.abs(_x(*shape)) + 1
    layer = cls(0.5, seed=3)
    np.testing.assert_array_equal(layer(x).numpy(), x)  # inference: identity
    y = layer(x, training=True).numpy()
    ratio = (y / x).reshape(shape[0], -1, shape[-1])
    assert np.all(ratio == ratio[:, :1])  # one draw per (sample, channel)
    assert set(np.unique(ratio)) <= {0.0, 2.0} and 0.2 < (ratio[:, 0] == 0).mean() < 0.8
    again = cls(0.5, seed=3)
    np.testing.assert_array_equal(again(x, training=True).numpy(), y)  # seeded: reproducible
    assert not np.array_equal(layer(x, training=True).numpy(), y)       # next call, next mask
    y, ctx = layer._forward(x, True)  # backward: the forward's mask
    g = _x(*shape, seed=4)
    np.testing.assert_allclose(layer._backward(ctx, g), g * (y / x), rtol=1e-6)


def test_gaussian_noise_and_dropout():
    x = np.ones((200, 50), np.float32)
    noise = layers.GaussianNoise(0.5, seed=1)
    np.testing.assert_array_equal(noise(x).numpy(), x)
    d = noise(x, training=True).numpy() - 1
    assert abs(d.mean()) < 0.02 and abs(d.std() - 0.5) < 0.02
    drop = layers.GaussianDropout(0.2, seed=1)
    np.testing.assert_array_equal(drop(x).numpy(), x)
    m = drop(x, training=True).numpy()
    assert abs(m.mean() - 1) < 0.02 and abs(m.std() - np.sqrt(0.2 / 0.8)) < 0.02
    with pytest.raises(ValueError, match="rate"):
        layers.GaussianDropout(1.0)
    assert layers.GaussianNoise.from_config(noise.get_config()).stddev == 0.5


def test_every_vision_layer_saves_loads_and_trains(tmp_path):
    """A functional model using each new layer: .keras round trip (configs and weights) and a fit through the plan."""
    inp = fastnn.Input((8, 8, 4))
    h = layers.SeparableConv2D(4, 3, padding="same")(layers.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(inp))
    h = layers.Conv2DTranspose(4, 3, strides=2)(h)
    h = layers.Conv2D(4, 3, groups=2)(layers.ZeroPadding2D(1)(h))
    h = layers.UpSampling2D(2, interpolation="bilinear")(layers.Cropping2D(1)(h))
    h = layers.PReLU(shared_axes=[1, 2])(layers.GroupNormalization(2)(layers.LayerNormalization()(h)))
    h = layers.SpatialDropout2D(0.2)(layers.GaussianNoise(0.1)(layers.GaussianDropout(0.1)(h)))
    h = layers.ELU()(layers.ReLU(2.0, 0.1, 0.5)(layers.BatchNormalization()(h)))
    model = fastnn.Model(inp, layers.GlobalMaxPooling2D()(h))
    x = _x(2, 8, 8, 4)
    path = str(tmp_path / "m.keras")
    model.save(path)
    again = fastnn.models.load_model(path)
    assert [type(l).__name__ for l in again.layers] == [type(l).__name__ for l in model.layers]
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    model.compile("adam", "mse")
    hist = model.fit(x, np.zeros((2, 4), np.float32), epochs=2, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()


@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 7), (1, 1), (3, 130), (70, 9)], ids=str)
def test_layernorm_kernels_every_isa_match_reference(shape):
    from fastnn import _C, backend
    from _conv_util import threads
    x = _x(*shape) * 3 + 2
    C = shape[-1]
    gamma, beta = _x(C, seed=1), _x(C, seed=2)
    y, mean, inv = _C.ref.layernorm_forward(x, gamma, beta, epsilon=1e-3)
    x2 = x.reshape(-1, C).astype(np.float64)
    want = (x2 - x2.mean(1, keepdims=True)) / np.sqrt(x2.var(1, keepdims=True) + 1e-3) * gamma + beta
    np.testing.assert_allclose(y.reshape(-1, C), want, rtol=1e-5, atol=1e-5)
    g = _x(*shape, seed=3)
    ref = _C.ref.layernorm_backward(g, x, gamma, mean, inv)
    for name, t in backend.tables().items():
        got = t.layernorm_forward(x, gamma, beta, epsilon=1e-3)
        for a, b in zip(got, (y, mean, inv)):
            np.testing.assert_allclose(a, b, rtol=2e-6, atol=2e-6, err_msg=name)
        for a, b in zip(t.layernorm_backward(g, x, gamma, mean, inv), ref):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * np.sqrt(x.size), err_msg=name)
    runs = []
    for n in (1, 2):
        with threads(n):
            runs.append(_C.cpu.layernorm_backward(g, x, gamma, mean, inv) + _C.cpu.layernorm_forward(x, gamma, beta))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="gamma"):
        _C.cpu.layernorm_forward(x, gamma[:-1] if C > 1 else np.zeros(2, np.float32), beta)
    with pytest.raises(ValueError, match="mean"):
        _C.cpu.layernorm_backward(g, x, gamma, mean.reshape(-1)[:-1] if mean.size > 1 else np.zeros(3, np.float32), inv)
