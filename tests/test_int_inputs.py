"""Integer model inputs (Input(dtype="int32"), or a first layer that reads token ids): fit/evaluate/predict and
the batch loader hand the model int32 batches, never a float round trip; float inputs stay float32."""
import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn._pipeline import BatchLoader


class Lookup(layers.Layer):
    """An embedding-like test layer: token ids (B, T) -> table rows (B, T, D); records the dtypes it gets."""
    _integer_input = True

    def __init__(self, vocab, dim, **kwargs):
        super().__init__(**kwargs)
        self.vocab, self.dim, self.dtypes = vocab, dim, []

    def build(self, input_shape):
        self.table = self.add_weight((self.vocab, self.dim), "glorot_uniform", name="embeddings")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.dim,)

    def _forward(self, x, training, need_dx=True):
        self.dtypes.append(x.dtype)
        return self.table.data[x], x

    def _backward(self, ctx, dy):
        grad = np.zeros_like(self.table.data)
        np.add.at(grad, ctx.reshape(-1), dy.reshape(-1, self.dim))
        self.table.grad = grad
        return None


def _ids(n=40, T=7, vocab=1000, seed=0, dtype=np.int64):
    # ids above 2**24 would not survive a float32 round trip: a lookup proves the integers are exact
    rng = np.random.default_rng(seed)
    return rng.integers(0, vocab, (n, T)).astype(dtype)


def _model(functional, vocab=1000):
    fastnn.utils.set_random_seed(1)
    lookup = Lookup(vocab, 4)
    if functional:
        inp = fastnn.Input((7,), dtype="int32")
        out = layers.Dense(1)(layers.GlobalAveragePooling1D()(lookup(inp)))
        model = fastnn.Model(inp, out)
    else:  # no Input: the first layer's _integer_input says the data are token ids
        model = fastnn.Sequential([lookup, layers.GlobalAveragePooling1D(), layers.Dense(1)])
        model.build((None, 7))
    model.compile("sgd", "mse")
    return model, lookup


@pytest.mark.parametrize("functional", [True, False])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.float64])
def test_integer_batches_on_every_path(functional, dtype):
    model, lookup = _model(functional)
    vocab = 200 if dtype == np.uint8 else 1000
    x = _ids(vocab=vocab, dtype=dtype)
    y = np.random.default_rng(2).standard_normal((40, 1)).astype(np.float32)
    p = model.predict(x, verbose=0)
    want = lookup.table.numpy()[x.astype(np.int64)].mean(axis=1) @ model.layers[-1].kernel.numpy()
    np.testing.assert_allclose(p, want + model.layers[-1].bias.numpy(), rtol=1e-5, atol=1e-6)
    model.predict(x, batch_size=8, verbose=1)  # the chunked path
    model.evaluate(x, y, verbose=0)
    model.train_on_batch(x, y)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    model.fit([x], [y], batch_size=8, epochs=1, verbose=0, validation_split=0.25)
    assert set(lookup.dtypes) == {np.dtype(np.int32)}


def test_large_ids_are_exact():
    vocab = (1 << 24) + 3
    fastnn.utils.set_random_seed(0)
    x = np.full((4, 7), vocab - 1, np.int64)
    x[:, 0] = (1 << 24) + 1  # float32 would round it to 2**24
    loader = BatchLoader(x, None, batch_size=4, shuffle=False, prefetch=False, x_dtype=np.int32)
    xb, _ = next(iter(loader.epoch(0)))
    np.testing.assert_array_equal(xb, x.astype(np.int32))
    assert xb.dtype == np.int32


@pytest.mark.parametrize("prefetch", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64, np.float32, np.float64, np.int16])
def test_batch_loader_integer_gather(dtype, prefetch):
    x = _ids(n=37, T=5, vocab=120, seed=3, dtype=dtype)
    y = np.arange(37)
    loader = BatchLoader(x, y, batch_size=8, shuffle=True, seed=5, prefetch=prefetch, x_dtype=np.int32)
    order = loader.epoch_indices(0)
    seen = 0
    for xb, yb in loader.epoch(0):
        idx = order[seen:seen + len(xb)]
        assert xb.dtype == np.int32
        np.testing.assert_array_equal(xb, x[idx].astype(np.int32))
        np.testing.assert_array_equal(yb, y[idx])
        seen += len(xb)
    assert seen == 37


def test_float_inputs_stay_float32():
    x = np.random.default_rng(0).integers(0, 5, (16, 3)).astype(np.int64)
    model = fastnn.Sequential([fastnn.Input((3,)), layers.Dense(2)])
    model.compile("sgd", "mse")
    assert model._plan().input_dtypes == [np.float32]
    np.testing.assert_allclose(model.predict(x, verbose=0), x @ model.layers[0].kernel.numpy(), rtol=1e-6)
    loader = BatchLoader(x, None, batch_size=4, shuffle=False, prefetch=False)
    assert next(iter(loader.epoch(0)))[0].dtype == np.float32
    with pytest.raises(ValueError, match="x_dtype"):
        BatchLoader(x, None, x_dtype=np.int64)


def test_input_dtype_config_and_validation():
    inp = fastnn.Input((5,), dtype="int32", name="tokens")
    assert inp.dtype == "int32" and inp.node.layer.get_config()["dtype"] == "int32"
    assert fastnn.Input((5,), dtype="int64").dtype == "int64"
    assert fastnn.Input((5,)).dtype == "float32"
    with pytest.raises(ValueError, match="dtype"):
        fastnn.Input((5,), dtype="complex64")


@pytest.mark.parametrize("functional", [True, False])
def test_generators_and_pydatasets_feed_integer_batches(functional):
    model, lookup = _model(functional)
    x, y = _ids(), np.random.default_rng(3).random((40, 1), np.float32)

    def batches():
        for lo in range(0, 40, 8):
            yield x[lo:lo + 8], y[lo:lo + 8]

    class Data(fastnn.utils.PyDataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return x[8 * i:8 * i + 8], y[8 * i:8 * i + 8]
    model.fit(batches(), epochs=1, verbose=0)
    model.fit(Data(), epochs=1, verbose=0)
    model.evaluate(Data(), verbose=0)
    model.predict(Data(), verbose=0)
    assert lookup.dtypes and all(d == np.int32 for d in lookup.dtypes), set(lookup.dtypes)
