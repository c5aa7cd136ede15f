"""Keras-program behaviours of sequence models found by running Keras 3 programs side by side: a Sequential
built for T steps runs other lengths when its first layer takes any (Keras checks only the first layer's
input spec); Functional models stay strict."""
import numpy as np
import pytest

import fastnn
from fastnn import layers


@pytest.mark.parametrize("first,data", [
    (lambda: layers.Embedding(20, 4), lambda T: np.ones((2, T), np.int32)),
    (lambda: layers.Masking(), lambda T: np.ones((2, T, 3), np.float32)),
    (lambda: layers.LSTM(4, return_sequences=True), lambda T: np.ones((2, T, 3), np.float32)),
    (lambda: layers.Conv1D(4, 3), lambda T: np.ones((2, T, 3), np.float32)),
])
def test_sequential_built_for_six_steps_runs_other_lengths(first, data):
    shape = data(6).shape[1:]
    model = fastnn.Sequential([fastnn.Input(shape, dtype="int32" if len(shape) == 1 else "float32"), first(),
                               layers.GRU(3)])
    want = model.predict(data(6), verbose=0)
    for T in (4, 9):
        assert model.predict(data(T), verbose=0).shape == want.shape
    # the padded/unpadded identity the masking programs check: 4 real steps + 2 masked ones == the 4 steps alone
    if isinstance(model.layers[0], layers.Masking):
        x = np.ones((1, 6, 3), np.float32)
        x[:, 4:] = 0
        np.testing.assert_allclose(model.predict(x, verbose=0), model.predict(x[:, :4], verbose=0), atol=1e-6)


def test_sequence_length_freedom_keeps_feature_and_functional_checks():
    model = fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), layers.GRU(3)])
    with pytest.raises(ValueError):
        model.predict(np.ones((1, 6, 2), np.float32), verbose=0)
    dense = fastnn.Sequential([fastnn.Input((5,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="incompatible"):
        dense.predict(np.ones((1, 4), np.float32), verbose=0)
    inp = fastnn.Input((6, 3))
    functional = fastnn.Model(inp, layers.LSTM(2)(inp))
    with pytest.raises(ValueError, match="incompatible"):
        functional.predict(np.ones((1, 4, 3), np.float32), verbose=0)


def test_time_distributed_weight_paths_are_keras():
    td = layers.TimeDistributed(layers.Dense(1, name="head"), name="per_step")
    td(np.zeros((1, 2, 3), np.float32))
    assert [w.path for w in td.weights] == ["per_step/head/kernel", "per_step/head/bias"]


def _seq2seq(cell, **kwargs):
    """Encoder (return_state) -> decoder started from the encoder's states -> Dense (the Keras seq2seq shape)."""
    enc_in, dec_in = fastnn.Input((None, 3)), fastnn.Input((None, 3))
    _, *states = cell(5, return_state=True, **kwargs)(enc_in)
    dec = cell(5, return_sequences=True, **kwargs)
    out = layers.Dense(2)(dec(dec_in, initial_state=states))
    return fastnn.Model([enc_in, dec_in], out), dec


@pytest.mark.parametrize("cell,kwargs", [(layers.LSTM, {}), (layers.GRU, {}),
                                         (layers.SimpleRNN, {"activation": "softsign"})])  # last: the Tensor path
def test_symbolic_initial_state_connects_the_encoder(cell, kwargs):
    fastnn.utils.set_random_seed(0)
    model, dec = _seq2seq(cell, **kwargs)
    assert len(model.trainable_weights) == 8 and model.count_params() == 2 * sum(
        v.size for v in dec.trainable_weights) + 12
    rng = np.random.default_rng(0)
    xe, xd = rng.standard_normal((4, 6, 3)).astype(np.float32), rng.standard_normal((4, 3, 3)).astype(np.float32)
    # the graph equals the eager composition
    encoder = next(l for l in model.layers if getattr(l, "return_state", False))
    _, *states = encoder(xe)
    want = model.layers[-1](dec(xd, initial_state=[np.asarray(s) for s in states]))
    np.testing.assert_allclose(model.predict([xe, xd], verbose=0), np.asarray(want), rtol=1e-5, atol=1e-6)
    # the decoder's loss reaches the encoder's weights: tape gradients against central differences
    with fastnn.GradientTape() as tape:
        loss = fastnn.ops.sum(model([xe, xd], training=True) ** 2)
    grads = tape.gradient(loss, encoder.trainable_weights)
    kernel = encoder.trainable_weights[0]
    g, w0 = grads[0].numpy(), kernel.numpy().copy()
    for idx in [(0, 0), (2, 3)]:
        vals = []
        for eps in (1e-2, -1e-2):
            w = w0.copy()
            w[idx] += eps
            kernel.assign(w)
            with fastnn.no_grad():
                vals.append(float(np.sum(np.asarray(model([xe, xd])) ** 2)))
        kernel.assign(w0)
        numeric = (vals[0] - vals[1]) / 2e-2
        assert abs(numeric) > 1e-3
        assert g[idx] == pytest.approx(numeric, rel=3e-2, abs=1e-3)


def test_symbolic_initial_state_count_is_checked():
    x = fastnn.Input((None, 3))
    h = fastnn.Input((5,))
    with pytest.raises(ValueError, match="2 initial state"):
        layers.LSTM(5)(x, initial_state=[h])


def test_fit_on_outputs_with_free_time_axis():
    """A seq2seq model's output is (None, None, F): the targets give the steps (Keras fits it)."""
    fastnn.utils.set_random_seed(0)
    model, _ = _seq2seq(layers.LSTM)
    assert model.output.shape == (None, None, 2)
    model.compile(optimizer="adam", loss="mse")
    rng = np.random.default_rng(1)
    xe, xd = rng.standard_normal((8, 5, 3)).astype(np.float32), rng.standard_normal((8, 4, 3)).astype(np.float32)
    hist = model.fit([xe, xd], np.zeros((8, 4, 2), np.float32), epochs=3, batch_size=4, verbose=0)
    assert len(hist.history["loss"]) == 3 and hist.history["loss"][-1] < hist.history["loss"][0]
