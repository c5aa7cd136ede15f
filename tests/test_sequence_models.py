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
    with pytest.raises(ValueError, match="features"):
        dense.predict(np.ones((1, 4), np.float32), verbose=0)
    inp = fastnn.Input((6, 3))
    functional = fastnn.Model(inp, layers.LSTM(2)(inp))
    with pytest.raises(ValueError, match="incompatible"):
        functional.predict(np.ones((1, 4, 3), np.float32), verbose=0)


def test_time_distributed_weight_paths_are_keras():
    td = layers.TimeDistributed(layers.Dense(1, name="head"), name="per_step")
    td(np.zeros((1, 2, 3), np.float32))
    assert [w.path for w in td.weights] == ["per_step/head/kernel", "per_step/head/bias"]
