"""RepeatVector, Permute and TimeDistributed: values and gradients against numpy, configs that round-trip,
Keras's shapes and parameter counts, and small models that train."""
import contextlib
import io

import numpy as np
import pytest

import fastnn
from fastnn import layers


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _grad(layer, x, dy):
    t = fastnn.Tensor(x, requires_grad=True)
    (layer(t) * fastnn.Tensor(dy)).sum().backward()
    return t.grad.numpy()


def test_repeat_vector():
    x = _x((3, 4))
    layer = layers.RepeatVector(5)
    y = layer(x).numpy()
    np.testing.assert_array_equal(y, np.repeat(x[:, None], 5, axis=1))
    assert layer.compute_output_shape((None, 4)) == (None, 5, 4)
    dy = _x((3, 5, 4), 1)
    np.testing.assert_allclose(_grad(layer, x, dy), dy.sum(axis=1), rtol=1e-6)
    assert layers.RepeatVector.from_config(layer.get_config()).get_config() == layer.get_config()
    with pytest.raises(ValueError, match="2-D"):
        layers.RepeatVector(2)(np.ones((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="positive"):
        layers.RepeatVector(0)


@pytest.mark.parametrize("dims", [(2, 1), (1, 2), (3, 1, 2), (2, 3, 1)])
def test_permute(dims):
    shape = (2, 3, 4) if len(dims) == 2 else (2, 3, 4, 5)
    x = _x(shape)
    layer = layers.Permute(dims)
    y = layer(x).numpy()
    np.testing.assert_array_equal(y, x.transpose((0,) + dims))
    assert layer.compute_output_shape((None,) + shape[1:]) == (None,) + y.shape[1:]
    dy = _x(y.shape, 1)
    np.testing.assert_array_equal(_grad(layer, x, dy), dy.transpose(np.argsort((0,) + dims)))
    assert layer.get_config()["dims"] == dims
    assert layers.Permute.from_config(layer.get_config()).get_config() == layer.get_config()


def test_permute_validation():
    with pytest.raises(ValueError, match="consecutive"):
        layers.Permute((0, 1))
    with pytest.raises(ValueError, match="consecutive"):
        layers.Permute((1, 3))
    with pytest.raises(ValueError, match="3-D"):
        layers.Permute((2, 1))(np.ones((2, 3, 4, 5), np.float32))


def test_time_distributed_dense_values_gradients_and_shared_weights():
    x = _x((3, 5, 4))
    fastnn.utils.set_random_seed(0)
    td = layers.TimeDistributed(layers.Dense(6, activation="tanh"))
    y = td(x).numpy()
    k, b = td.layer.kernel.numpy(), td.layer.bias.numpy()
    np.testing.assert_allclose(y, np.tanh(x @ k + b), rtol=1e-5, atol=1e-6)
    assert td.weights == td.layer.weights and td.count_params() == 4 * 6 + 6
    dy = _x(y.shape, 1)
    t = fastnn.Tensor(x, requires_grad=True)
    with fastnn.GradientTape() as tape:
        out = td(t)
        loss = (out * fastnn.Tensor(dy)).sum()
    dk, db = tape.gradient(loss, [td.layer.kernel, td.layer.bias])
    dz = dy * (1 - np.tanh(x @ k + b) ** 2)
    np.testing.assert_allclose(np.asarray(dk), np.einsum("btf,btu->fu", x, dz), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(db), dz.sum(axis=(0, 1)), rtol=1e-4, atol=1e-5)


def test_time_distributed_conv2d_on_frames():
    x = _x((2, 3, 6, 6, 2))
    td = layers.TimeDistributed(layers.Conv2D(4, 3))
    y = td(x).numpy()
    assert y.shape == (2, 3, 4, 4, 4) == (2,) + td.compute_output_shape((None, 3, 6, 6, 2))[1:]
    per_frame = np.stack([td.layer(x[:, t]).numpy() for t in range(3)], axis=1)
    np.testing.assert_allclose(y, per_frame, rtol=1e-6, atol=1e-6)


def test_time_distributed_config_and_validation():
    td = layers.TimeDistributed(layers.Dense(5, activation="relu", name="inner"), name="td")
    td.build((None, 10, 3))
    config = td.get_config()
    assert config["layer"]["class_name"] == "Dense" and config["layer"]["config"]["units"] == 5
    clone = layers.TimeDistributed.from_config(config)
    assert clone.get_config() == config and clone.layer.units == 5
    with pytest.raises(ValueError, match="at least 3"):
        layers.TimeDistributed(layers.Dense(2))(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="Layer"):
        layers.TimeDistributed("dense")


def test_sequential_summary_shapes_and_params():
    model = fastnn.Sequential([fastnn.Input((10, 3)), layers.TimeDistributed(layers.Dense(5), name="td"),
                               layers.Conv1D(4, 3, padding="causal"), layers.MaxPooling1D(), layers.Permute((2, 1)),
                               layers.GlobalMaxPooling1D(), layers.RepeatVector(3)])
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [(None, 10, 5), (None, 10, 4), (None, 5, 4), (None, 4, 5), (None, 5), (None, 3, 5)]
    assert [layer.count_params() for layer in model.layers] == [3 * 5 + 5, 3 * 5 * 4 + 4, 0, 0, 0, 0]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        model.summary()
    text = out.getvalue()
    assert "td (TimeDistributed)" in text and "(None, 10, 5)" in text and "Total params: 84" in text


def test_seq2seq_regression_with_time_distributed_trains():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 12, 2)).astype(np.float32)
    y = np.cumsum(x[..., :1], axis=1) * 0.3  # a causal target per step
    fastnn.utils.set_random_seed(0)
    model = fastnn.Sequential([fastnn.Input((12, 2)), layers.Conv1D(16, 4, padding="causal", activation="relu"),
                               layers.Conv1D(16, 4, padding="causal", dilation_rate=2, activation="relu"),
                               layers.TimeDistributed(layers.Dense(1))])
    model.compile("adam", "mse")
    history = model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    assert model.predict(x[:3], verbose=0).shape == (3, 12, 1)


def test_encoder_decoder_shapes_with_repeat_vector():
    inp = fastnn.Input((8, 3))
    code = layers.GlobalAveragePooling1D()(layers.Conv1D(6, 3, padding="same")(inp))
    out = layers.TimeDistributed(layers.Dense(3))(layers.RepeatVector(8)(code))
    model = fastnn.Model(inp, out)
    model.compile("adam", "mse")
    x = _x((10, 8, 3))
    model.fit(x, x, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (10, 8, 3)
