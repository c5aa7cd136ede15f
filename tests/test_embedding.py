"""Embedding: gather and its gradient's deterministic scatter-add on every ISA against the reference;
the layer's Keras arguments, mask, integer/float ids and out-of-range errors."""
import numpy as np
import pytest
from _conv_util import threads

import fastnn
from fastnn import backend
from fastnn.layers import Embedding

TABLES = {"ref": backend.ref, **backend.tables()}


@pytest.mark.parametrize("V,D,shape", [(1, 1, (3,)), (7, 5, (4, 3)), (300, 33, (2, 17, 3)), (5000, 128, (64, 20))])
def test_kernels_match_numpy(V, D, shape):
    rng = np.random.default_rng(V)
    table = rng.standard_normal((V, D)).astype(np.float32)
    ids = rng.integers(0, V, shape)
    ids.flat[0] = ids.flat[-1]  # a repeated id
    g = rng.standard_normal(shape + (D,)).astype(np.float32)
    want = np.zeros((V, D))
    np.add.at(want, ids.reshape(-1), g.reshape(-1, D).astype(np.float64))
    for name, t in TABLES.items():
        assert np.array_equal(t.embedding_forward(table, ids), table[ids]), name
        np.testing.assert_allclose(t.embedding_backward(g, ids, V), want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_backward_bit_identical_for_1_and_2_threads():
    rng = np.random.default_rng(1)
    ids = rng.integers(0, 50, (64, 100))  # many repeats per row
    g = rng.standard_normal((64, 100, 64)).astype(np.float32)
    for t in backend.tables().values():
        with threads(1):
            a = t.embedding_backward(g, ids, 50)
        with threads(2):
            b = t.embedding_backward(g, ids, 50)
        assert np.array_equal(a, b)


def test_kernel_refuses_out_of_range_ids():
    table = np.zeros((4, 2), np.float32)
    for bad in (4, -1):
        with pytest.raises(ValueError, match="out of range"):
            backend.cpu.embedding_forward(table, np.array([0, bad]))
    with pytest.raises(ValueError, match="integer"):
        backend.cpu.embedding_forward(table, np.array([0.5]))


def test_layer_defaults_config_and_weights():
    layer = Embedding(10, 4, mask_zero=True)
    y = layer(np.array([[1, 2, 0]], np.int32))
    assert y.shape == (1, 3, 4)
    assert [w.name for w in layer.weights] == ["embeddings"] and layer.weights[0].path == f"{layer.name}/embeddings"
    w = layer.get_weights()[0]
    assert w.shape == (10, 4) and np.abs(w).max() <= 0.05 and np.abs(w).max() > 0.01
    config = layer.get_config()
    assert config["input_dim"] == 10 and config["output_dim"] == 4 and config["mask_zero"] is True
    assert config["embeddings_initializer"]["class_name"] == "RandomUniform"
    assert Embedding.from_config(config).mask_zero
    assert np.array_equal(layer.compute_mask(np.array([[1, 0, 3]])), [[True, False, True]])
    assert layer._produces_mask and not Embedding(3, 2)._produces_mask
    assert Embedding(3, 2).compute_mask(np.array([[0]])) is None


def test_layer_values_gradient_and_float_ids():
    layer = Embedding(6, 3)
    ids = np.array([[1, 5, 1], [0, 2, 5]])
    y = layer(ids)
    table = layer.get_weights()[0]
    assert np.array_equal(y.numpy(), table[ids])
    assert np.array_equal(layer(ids.astype(np.float64)).numpy(), table[ids])  # integral floats are cast
    with fastnn.GradientTape() as tape:
        loss = (layer(ids) * 2.0).sum()
    (g,) = tape.gradient(loss, [layer.embeddings])
    want = np.zeros((6, 3))
    np.add.at(want, ids.reshape(-1), 2.0)
    np.testing.assert_allclose(np.asarray(g), want)


def test_layer_out_of_range_error_names_layer_id_and_input_dim():
    layer = Embedding(5, 2, name="tokens")
    with pytest.raises(ValueError, match=r"tokens.*7.*input_dim=5"):
        layer(np.array([[1, 7]]))
    with pytest.raises(ValueError, match=r"tokens.*-1.*input_dim=5"):
        layer(np.array([[-1, 2]]))
    with pytest.raises(ValueError, match="integer"):
        layer(np.array([[1.5]]))
