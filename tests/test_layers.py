"""Layers: Keras 3 semantics (lazy build, names, weights, config, freezing) and forward/backward math."""
import numpy as np
import pytest

import fastnn
from fastnn import initializers, layers, regularizers
from fastnn._naming import clear_session
from op_table import KERAS, forward, sample

KERAS_ROW = {r.keras: r for r in KERAS}


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()
    fastnn.utils.set_random_seed(1)


def _num_grad(f, x, eps=1e-3):
    """Central finite differences of the scalar f() w.r.t. the float64 array x (modified in place)."""
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        fp = f()
        x[i] = old - eps
        fm = f()
        x[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def _layer_grads(layer, x, dy, training=True):
    """(dx, [weight grads]) from the layer's numpy-level forward/backward pair."""
    y, ctx = layer._forward(x, training)
    dx = layer._backward(ctx, dy)
    return y, dx, [v.grad for v in layer.trainable_weights]


def _check_grads(layer, x, training=True, atol=2e-2):
    """Backward of sum(y * w) against finite differences in x and in every trainable weight."""
    rng = np.random.default_rng(0)
    layer._maybe_build(x.shape)
    y, _ = layer._forward(x, training)
    w = rng.standard_normal(y.shape).astype(np.float32)
    _, dx, dws = _layer_grads(layer, x, w, training)
    x64 = x.astype(np.float64)

    def loss():
        return float((layer._forward(x64.astype(np.float32), training)[0] * w).sum(dtype=np.float64))
    np.testing.assert_allclose(dx, _num_grad(loss, x64), atol=atol, rtol=2e-2)
    for var, dw in zip(layer.trainable_weights, dws):
        v64 = var.value.astype(np.float64)

        def loss_w(v64=v64, var=var):
            var.value[...] = v64
            return loss()
        num = _num_grad(loss_w, v64)
        var.value[...] = v64
        np.testing.assert_allclose(dw, num, atol=atol, rtol=2e-2, err_msg=var.path)


# ---- names, build, weights -----------------------------------------------------------------------

def test_auto_names_per_class_counter():
    names = [layers.Dense(2).name, layers.Dense(2).name, layers.Conv2D(1, 3).name,
             layers.MaxPooling2D().name, layers.BatchNormalization().name, layers.Dense(1).name,
             layers.GlobalAveragePooling2D().name]
    assert names == ["dense", "dense_1", "conv2d", "max_pooling2d", "batch_normalization", "dense_2",
                     "global_average_pooling2d"]


def test_lazy_build_on_first_call():
    d = layers.Dense(3, activation="relu")
    assert not d.built and d.weights == []
    out = d(np.ones((2, 5)))
    assert isinstance(out, fastnn.Tensor) and out.shape == (2, 3)
    assert d.built and [v.shape for v in d.weights] == [(5, 3), (3,)]
    assert d.kernel.path == "dense/kernel" and d.output_shape == (None, 3) and d.input_shape == (None, 5)
    assert d.count_params() == 18
    np.testing.assert_array_equal(d.bias.numpy(), np.zeros(3, np.float32))


def test_count_params_unbuilt_raises():
    with pytest.raises(ValueError, match="isn't built"):
        layers.Dense(3).count_params()


def test_wrong_feature_count_names_layer_and_shapes():
    d = layers.Dense(4, name="hidden")
    d(np.ones((2, 784)))
    with pytest.raises(ValueError, match=r"hidden.*784 features.*\(None, 784\).*\(32, 785\)"):
        d(np.ones((32, 785)))


def test_get_set_weights_shape_checked():
    d = layers.Dense(2)
    d(np.ones((1, 3)))
    k, b = d.get_weights()
    k[0, 0] = 42.0
    assert d.kernel.value[0, 0] != 42.0  # get_weights returns copies
    d.set_weights([np.full((3, 2), 0.5), np.ones(2)])
    np.testing.assert_array_equal(d(np.ones((1, 3))).numpy(), [[2.5, 2.5]])
    with pytest.raises(ValueError, match=r"'dense' weight shape \(3, 2\).*\(2, 3\)"):
        d.set_weights([np.zeros((2, 3)), np.zeros(2)])
    with pytest.raises(ValueError, match="on layer 'dense' with a weight list of length 1.*expecting 2"):
        d.set_weights([np.zeros((3, 2))])


def test_trainable_freezes_weights():
    d = layers.Dense(2)
    d(np.ones((1, 3)))
    assert len(d.trainable_weights) == 2 and d.non_trainable_weights == []
    d.trainable = False
    assert d.trainable_weights == [] and len(d.non_trainable_weights) == 2 and len(d.weights) == 2


def test_get_config_round_trip():
    d = layers.Dense(7, activation="tanh", use_bias=False, kernel_regularizer=regularizers.L2(0.1), name="d7")
    config = d.get_config()
    assert config["units"] == 7 and config["activation"] == "tanh" and config["use_bias"] is False
    clone = layers.Dense.from_config(config)
    assert clone.units == 7 and clone.name == "d7" and clone.kernel_regularizer.l2 == pytest.approx(0.1)
    for cls, kwargs in [(layers.Conv2D, dict(filters=4, kernel_size=(3, 2), strides=2, padding="same")),
                        (layers.MaxPooling2D, dict(pool_size=3)), (layers.Dropout, dict(rate=0.3, seed=5)),
                        (layers.Reshape, dict(target_shape=(2, -1))), (layers.BatchNormalization, dict(momentum=0.9)),
                        (layers.Activation, dict(activation="softmax")), (layers.Flatten, {})]:
        layer = cls(**kwargs)
        again = cls.from_config(layer.get_config())
        assert again.get_config() == layer.get_config()


def test_input_shape_and_input_dim_accepted():
    assert layers.Dense(3, input_shape=(784,))._batch_input_shape == (None, 784)
    assert layers.Dense(3, input_dim=784)._batch_input_shape == (None, 784)
    assert layers.Input((28, 28)).shape == (None, 28, 28)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="units"):
        layers.Dense(0)
    with pytest.raises(ValueError, match="Unknown activation"):
        layers.Dense(3, activation="nope")
    with pytest.raises(ValueError, match="Unknown initializer"):
        layers.Dense(3, kernel_initializer="nope")
    with pytest.raises(TypeError, match="Unrecognized keyword"):
        layers.Dense(3, bogus=1)
    with pytest.raises(ValueError, match="rate"):
        layers.Dropout(1.5)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv2D(2, 3, padding="full")


# ---- math ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", [None] + [r.keras for r in KERAS])
def test_dense_forward_and_gradients(activation):
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    d = layers.Dense(3, activation=activation)
    y = d(x).numpy()
    z = (x @ d.kernel.value + d.bias.value).astype(np.float64)
    expected = z if activation is None else forward(KERAS_ROW[activation], z)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    _check_grads(d, x)


@pytest.mark.parametrize("activation", [r.keras for r in KERAS])
def test_activation_layer_and_function(activation):
    """Activation(<name>) against finite differences; fastnn.activations.<name> against the formula."""
    row = KERAS_ROW[activation]
    x = sample(row, (2, 3, 4), 5, spread=1.0)
    np.testing.assert_allclose(getattr(fastnn.activations, activation)(x).numpy(), forward(row, x), rtol=1e-5,
                               atol=1e-6)
    _check_grads(layers.Activation(activation), x)


def test_dense_on_3d_inputs_uses_last_axis():
    d = layers.Dense(2)
    x = np.random.default_rng(3).standard_normal((2, 3, 4)).astype(np.float32)
    assert d(x).shape == (2, 3, 2) and d.output_shape == (None, 3, 2)
    _check_grads(d, x)


def test_layer_call_is_differentiable():
    d = layers.Dense(2, activation="relu")
    x = fastnn.tensor(np.random.default_rng(4).standard_normal((3, 4)), requires_grad=True)
    d(x).sum().backward()
    mask = (x.numpy() @ d.kernel.value + d.bias.value) > 0
    np.testing.assert_allclose(x.grad.numpy(), mask.astype(np.float32) @ d.kernel.value.T, rtol=1e-5)
    np.testing.assert_allclose(d.kernel.grad, x.numpy().T @ mask.astype(np.float32), rtol=1e-5)


def test_flatten_reshape_activation():
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    assert layers.Flatten()(x).shape == (2, 12)
    r = layers.Reshape((4, -1))
    assert r(x).shape == (2, 4, 3) and r.output_shape == (None, 4, 3)
    with pytest.raises(ValueError, match=r"total size.*\(None, 3, 4\)"):
        layers.Reshape((5, 5))(x)
    np.testing.assert_allclose(layers.Activation("relu")(x - 10).numpy(), np.maximum(x - 10, 0))
    _check_grads(layers.Flatten(), x)
    _check_grads(layers.Activation(fastnn.activations.tanh), x / 24)  # a function as the identifier


def test_dropout_training_and_inference():
    x = np.ones((200, 50), np.float32)
    d = layers.Dropout(0.4, seed=3)
    np.testing.assert_array_equal(d(x).numpy(), x)  # training=False: identity
    y = d(x, training=True).numpy()
    kept = y != 0
    assert 0.5 < kept.mean() < 0.7
    np.testing.assert_allclose(y[kept], 1 / 0.6, rtol=1e-6)
    y2, mask = d._forward(x, True)
    assert not np.array_equal(y, y2)  # a fresh mask per call
    np.testing.assert_array_equal(d._backward(mask, x), y2)
    again = layers.Dropout(0.4, seed=3)(x, training=True).numpy()
    np.testing.assert_array_equal(again, y)  # same seed, same first mask


def test_batch_normalization_keras_semantics():
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((16, 3)) * 2 + 1).astype(np.float32)
    bn = layers.BatchNormalization()
    assert (bn.momentum, bn.epsilon) == (0.99, 1e-3)
    y = bn(x, training=True).numpy()
    mean, var = x.mean(0), x.var(0)  # biased variance
    np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.value, 0.01 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.value, 0.99 + 0.01 * var, rtol=1e-5)
    assert [v.name for v in bn.weights] == ["gamma", "beta", "moving_mean", "moving_variance"]
    assert len(bn.trainable_weights) == 2 and len(bn.non_trainable_weights) == 2
    inference = bn(x).numpy()  # training=False: moving statistics
    np.testing.assert_allclose(inference, (x - bn.moving_mean.value) / np.sqrt(bn.moving_variance.value + 1e-3),
                               rtol=1e-4, atol=1e-5)
    bn.trainable = False  # frozen: inference mode even with training=True, statistics untouched
    before = bn.moving_mean.numpy()
    np.testing.assert_allclose(bn(x, training=True).numpy(), inference, rtol=1e-6)
    np.testing.assert_array_equal(bn.moving_mean.value, before)


def test_batch_normalization_gradients():
    x = np.random.default_rng(6).standard_normal((6, 4)).astype(np.float32)
    bn = layers.BatchNormalization()
    bn._maybe_build(x.shape)
    bn.gamma.value[...] = [0.5, 1.5, 2.0, -1.0]
    momentum_free = layers.BatchNormalization(momentum=1.0)  # statistics unchanged by the finite differences
    momentum_free._maybe_build(x.shape)
    momentum_free.set_weights(bn.get_weights())
    _check_grads(momentum_free, x, training=True)
    _check_grads(momentum_free, x, training=False)


# ---- initializers and regularizers --------------------------------------------------------------

def test_glorot_uniform_keras_fan_rule():
    dense = initializers.GlorotUniform(seed=0)((784, 128))
    assert np.abs(dense).max() <= np.sqrt(6 / (784 + 128))
    assert np.abs(dense).max() > 0.95 * np.sqrt(6 / (784 + 128))
    conv = initializers.GlorotUniform(seed=0)((3, 3, 32, 64))  # fan_in 288, fan_out 576
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))
    assert limit * 0.95 < np.abs(conv).max() <= limit
    assert initializers._fans((3, 3, 32, 64)) == (288, 576)


@pytest.mark.parametrize("name", ["glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                                  "lecun_normal", "random_normal", "random_uniform", "truncated_normal", "orthogonal",
                                  "zeros", "ones"])
def test_initializers_seeded_and_scaled(name):
    init = initializers.get(name)
    a = init((64, 32))
    assert a.dtype == np.float32 and a.shape == (64, 32)
    fastnn.utils.set_random_seed(7)
    b = initializers.get(name)((64, 32))
    fastnn.utils.set_random_seed(7)
    c = initializers.get(name)((64, 32))
    np.testing.assert_array_equal(b, c)  # set_random_seed makes draws bit-identical
    std = {"he_normal": np.sqrt(2 / 64), "he_uniform": np.sqrt(2 / 64), "lecun_normal": np.sqrt(1 / 64),
           "glorot_normal": np.sqrt(2 / 96), "random_normal": 0.05}.get(name)
    if std is not None:
        assert abs(b.std() / std - 1) < 0.1
    if name == "orthogonal":
        np.testing.assert_allclose(b.T @ b, np.eye(32), atol=1e-5)
    if name == "truncated_normal":
        assert np.abs(b).max() <= 0.1 + 1e-6


def test_regularizers_penalty_and_gradient():
    w = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    assert regularizers.L2(0.1)(w) == pytest.approx(0.1 * 5.25)
    assert regularizers.L1(0.1)(w) == pytest.approx(0.35)
    np.testing.assert_allclose(regularizers.L1L2(0.1, 0.2).gradient(w), 0.1 * np.sign(w) + 0.4 * w)
    d = layers.Dense(2, kernel_regularizer="l2", bias_regularizer=regularizers.L1(0.5))
    d(np.ones((1, 2)))
    assert d.losses == [pytest.approx(0.01 * float(np.square(d.kernel.value).sum())), 0.0]
    with pytest.raises(ValueError, match="Unknown regularizer"):
        regularizers.get("l3")


def test_keras_alias_namespaces():
    import fastnn as keras
    import fastnn as tf
    assert tf.keras.layers.Dense is layers.Dense and keras.Sequential is fastnn.models.Sequential
    assert keras.Input is layers.Input and tf.keras.optimizers.Adam is fastnn.optimizers.Adam


# ---- convolution and pooling layers -----------------------------------------------------------------

def _conv_reference(x, k, b, stride, padding):
    """Direct NHWC convolution in float64 with TF 'same' padding (extra pixel bottom/right)."""
    n, h, w, c = x.shape
    kh, kw, _, oc = k.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-w // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - w, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (w - kw) // stride + 1
    out = np.zeros((n, oh, ow, oc))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            out[:, i, j, :] = np.tensordot(patch, k, axes=([1, 2, 3], [0, 1, 2]))
    return out + b


@pytest.mark.parametrize("stride,padding", [(1, "valid"), (2, "same"), (1, "same")])
def test_conv2d_forward_shapes_and_gradients(stride, padding):
    x = np.random.default_rng(8).standard_normal((2, 6, 5, 3)).astype(np.float32)
    conv = layers.Conv2D(4, (3, 2), strides=stride, padding=padding, activation="relu")
    y = conv(x).numpy()
    ref = np.maximum(_conv_reference(x.astype(np.float64), conv.kernel.value, conv.bias.value, stride, padding), 0)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    assert conv.output_shape == (None,) + y.shape[1:] and conv.kernel.shape == (3, 2, 3, 4)
    _check_grads(layers.Conv2D(2, 2, strides=stride, padding=padding, activation="tanh"), x[:, :4, :4, :2])


def test_conv2d_errors_name_layer_and_shapes():
    conv = layers.Conv2D(4, 5, name="c1")
    with pytest.raises(ValueError, match=r"Conv2D 'c1'.*\(None, 3, 3, 1\).*kernel_size=\(5, 5\)"):
        conv(np.zeros((1, 3, 3, 1)))
    conv(np.zeros((1, 8, 8, 1)))
    with pytest.raises(ValueError, match=r"Conv2D 'c1' expects inputs of shape \(None, 8, 8, 1\).*\(1, 8, 8, 3\)"):
        conv(np.zeros((1, 8, 8, 3)))
    with pytest.raises(ValueError, match="channels_last"):
        layers.Conv2D(4, 3, data_format="channels_first")


def test_pooling_layers():
    x = np.random.default_rng(9).standard_normal((2, 5, 4, 3)).astype(np.float32)
    mp = layers.MaxPooling2D()
    y = mp(x).numpy()
    assert y.shape == (2, 2, 2, 3) and mp.output_shape == (None, 2, 2, 3)  # floor: 5 -> 2
    np.testing.assert_allclose(y, x[:, :4].reshape(2, 2, 2, 2, 2, 3).max(axis=(2, 4)))
    ap = layers.AveragePooling2D(pool_size=2, strides=1, padding="same")
    assert ap(x).shape == (2, 5, 4, 3)
    np.testing.assert_allclose(ap(x).numpy()[:, -1, -1], x[:, -1, -1], rtol=1e-6)  # edge window: one valid cell
    gap = layers.GlobalAveragePooling2D()
    np.testing.assert_allclose(gap(x).numpy(), x.mean(axis=(1, 2)), rtol=1e-5)
    assert layers.GlobalAveragePooling2D(keepdims=True)(x).shape == (2, 1, 1, 3)
    _check_grads(layers.AveragePooling2D(), x)
    _check_grads(gap, x)
    xm = np.arange(2 * 4 * 4 * 1, dtype=np.float32).reshape(2, 4, 4, 1) * 0.1  # distinct values: max is unique
    _check_grads(layers.MaxPooling2D(), xm)


def test_activation_layers_softmax_relu_leaky():
    x = np.array([[-2.0, 0.5, 1.0]], np.float32)
    np.testing.assert_allclose(layers.Softmax()(x).numpy(), np.exp(x) / np.exp(x).sum(), rtol=1e-6)
    np.testing.assert_allclose(layers.ReLU()(x).numpy(), [[0.0, 0.5, 1.0]])
    np.testing.assert_allclose(layers.LeakyReLU()(x).numpy(), [[-0.6, 0.5, 1.0]], rtol=1e-6)  # layer slope 0.3
    np.testing.assert_allclose(fastnn.activations.leaky_relu(x).numpy(), [[-0.4, 0.5, 1.0]], rtol=1e-6)  # fn 0.2
    leaky = layers.LeakyReLU(negative_slope=0.1)
    assert layers.LeakyReLU.from_config(leaky.get_config()).negative_slope == pytest.approx(0.1)
    assert layers.Softmax.from_config(layers.Softmax().get_config())._act == "softmax"
    _check_grads(leaky, x)
