"""fastnn.data (tf.data for `import fastnn as tf`) and the Keras dataset builders that return it
(text_dataset_from_directory, timeseries_dataset_from_array), fed to fit/evaluate/predict."""
import os

import numpy as np
import pytest

import fastnn as tf
from fastnn import data as D


def _slices(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return x, y


def test_from_tensor_slices_batch_and_cardinality():
    x, y = _slices(10)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    batches = list(ds)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    assert int(ds.cardinality()) == 3 and len(ds) == 3
    assert int(tf.data.Dataset.from_tensor_slices(x).batch(4, drop_remainder=True).cardinality()) == 2
    # leaves have TF's .numpy(); a float64 input becomes float32, ints keep their dtype
    xb, yb = batches[0]
    assert isinstance(xb.numpy(), np.ndarray) and xb.dtype == np.float32 and yb.dtype == np.int64


def test_from_tensor_slices_dict_and_mismatch():
    ds = tf.data.Dataset.from_tensor_slices({"a": np.zeros((5, 2)), "b": np.ones(5)}).batch(2)
    first = next(iter(ds))
    assert set(first) == {"a", "b"} and first["a"].shape == (2, 2)
    with pytest.raises(ValueError, match="first"):
        tf.data.Dataset.from_tensor_slices((np.zeros(3), np.zeros(4)))


def test_take_skip_repeat_map_filter_unbatch_cache():
    x, y = _slices(10)
    ds = tf.data.Dataset.from_tensor_slices(y)
    assert [int(v) for v in ds.take(3)] == [0, 1, 2]
    assert [int(v) for v in ds.skip(8)] == [8, 9]
    assert int(ds.take(3).cardinality()) == 3 and int(ds.skip(8).cardinality()) == 2
    rep = ds.repeat()
    assert int(rep.cardinality()) == D.INFINITE_CARDINALITY
    assert [int(v) for v in rep.take(12)][-2:] == [0, 1]
    assert int(ds.repeat(2).cardinality()) == 20
    assert [int(v) for v in ds.map(lambda v: v * 2).take(3)] == [0, 2, 4]
    # tuple elements are unpacked into map's arguments, as TF does
    pairs = tf.data.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a.sum(), b + 1))
    assert [int(b) for _, b in pairs.take(2)] == [1, 2]
    evens = ds.filter(lambda v: v % 2 == 0)
    assert int(evens.cardinality()) == D.UNKNOWN_CARDINALITY and [int(v) for v in evens] == [0, 2, 4, 6, 8]
    assert [int(v) for v in ds.batch(3).unbatch()] == list(range(10))
    calls = []
    cached = ds.map(lambda v: calls.append(1) or v).cache()
    assert list(map(int, cached)) == list(map(int, cached)) and len(calls) == 10
    assert ds.prefetch(tf.data.AUTOTUNE) is ds


def test_map_returning_tensors_gives_host_arrays():
    ds = tf.data.Dataset.from_tensor_slices(np.ones((4, 2), np.float32)).batch(2)
    out = next(iter(ds.map(lambda v: tf.layers.Rescaling(2.0)(v))))
    assert isinstance(out, np.ndarray) and float(np.max(out)) == 2.0  # np.max works, as on TF's tensors


def test_shuffle_is_a_permutation_reproducible_with_seed():
    ds = tf.data.Dataset.range(50)
    a = [int(v) for v in ds.shuffle(10, seed=3)]
    assert sorted(a) == list(range(50)) and a != list(range(50))
    # a buffer of 10 never emits an element more than 9 places early
    assert all(v <= i + 9 for i, v in enumerate(a))
    fixed = ds.shuffle(10, seed=3, reshuffle_each_iteration=False)
    assert [int(v) for v in fixed] == [int(v) for v in fixed]
    assert [int(v) for v in ds.shuffle(10, seed=3)] == a


def _model(n_in=3, n_out=4):
    tf.utils.set_random_seed(0)
    model = tf.Sequential([tf.Input((n_in,)), tf.layers.Dense(n_out)])
    model.compile(optimizer="sgd", loss=tf.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    return model


def test_fit_evaluate_predict_on_a_dataset_match_arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    y = rng.integers(0, 4, 40)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    a, b = _model(), _model()
    ha = a.fit(ds, epochs=3, verbose=0, validation_data=ds)
    hb = b.fit(x, y, batch_size=8, epochs=3, verbose=0, shuffle=False, validation_data=(x, y))
    # a Dataset is re-iterated each epoch, in its own order (fit's shuffle does not reorder it)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    np.testing.assert_allclose(ha.history["val_loss"], hb.history["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(a.evaluate(ds, verbose=0), b.evaluate(x, y, verbose=0), rtol=1e-5)
    np.testing.assert_allclose(a.predict(ds.map(lambda xb, yb: xb), verbose=0), b.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def test_fit_on_a_repeated_dataset_with_steps_per_epoch():
    x, y = np.ones((12, 3), np.float32), np.zeros(12, np.int64)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(12, seed=0).repeat().batch(4)
    model = _model()
    h = model.fit(ds, steps_per_epoch=2, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3 and h.history["loss"][-1] < h.history["loss"][0]


def test_timeseries_dataset_from_array_windows_and_targets():
    data = np.arange(20, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    targets = np.arange(100, 120)
    ds = tf.utils.timeseries_dataset_from_array(data, targets, sequence_length=4, sequence_stride=2,
                                                sampling_rate=2, batch_size=3, start_index=1, end_index=18)
    windows, labels = [], []
    for xb, yb in ds:
        windows.append(xb)
        labels.append(yb)
    windows, labels = np.concatenate(windows), np.concatenate(labels)
    # Keras: starts s = 0, 2, ... < end - start - (L - 1) * rate = 17 - 6 = 11; window data[1 + s :: 2][:4]
    starts = np.arange(0, 11, 2)
    np.testing.assert_array_equal(windows[:, :, 0], [[1 + s + 2 * k for k in range(4)] for s in starts])
    np.testing.assert_array_equal(labels, 101 + starts)
    shuffled = tf.utils.timeseries_dataset_from_array(data, None, sequence_length=3, batch_size=4, shuffle=True,
                                                      seed=1)
    firsts = sorted(int(w[0, 0]) for b in shuffled for w in b)
    assert firsts == list(range(18))


def _write_texts(root):
    for split, label, words in (("a", "neg", "bad awful"), ("b", "pos", "good great")):
        d = os.path.join(root, label)
        os.makedirs(d, exist_ok=True)
        for i in range(5):
            with open(os.path.join(d, f"{i}.txt"), "w") as f:
                f.write(f"{words} {i}")
    with open(os.path.join(root, "pos", "skip.md"), "w") as f:
        f.write("not a text file")


def test_text_dataset_from_directory(tmp_path, capsys):
    _write_texts(str(tmp_path))
    ds = tf.utils.text_dataset_from_directory(str(tmp_path), batch_size=4, shuffle=False)
    assert "Found 10 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["neg", "pos"]
    texts, labels = zip(*[(t, y) for tb, yb in ds for t, y in zip(tb.numpy(), yb.numpy())])
    assert texts[0] == "bad awful 0" and list(labels) == [0] * 5 + [1] * 5
    train, val = tf.utils.text_dataset_from_directory(str(tmp_path), batch_size=4, validation_split=0.2,
                                                      subset="both", seed=7)
    seen = sorted(str(t) for ds_ in (train, val) for tb, _ in ds_ for t in tb.numpy())
    assert len(seen) == 10 and len(set(seen)) == 10  # the subsets are disjoint and cover the files
    assert sum(len(yb) for _, yb in val) == 2
    binary = tf.utils.text_dataset_from_directory(str(tmp_path), label_mode="binary", shuffle=False)
    assert next(iter(binary))[1].shape == (10, 1)
    with pytest.raises(ValueError, match="seed"):
        tf.utils.text_dataset_from_directory(str(tmp_path), validation_split=0.2, subset="training")
    # keras.preprocessing's path is the same function
    assert tf.preprocessing.text_dataset_from_directory is tf.utils.text_dataset_from_directory


def test_tf_data_experimental_names():
    ds = tf.data.Dataset.range(7).batch(2)
    assert int(tf.data.experimental.cardinality(ds)) == 4
    assert int(ds.cardinality()) // 2 == 2  # `val_batches // 5` as the transfer-learning tutorial writes it
    assert tf.data.AUTOTUNE == tf.data.experimental.AUTOTUNE
    # transfer-learning tutorial: test_dataset.as_numpy_iterator().next()
    first = ds.as_numpy_iterator().next()
    assert type(first) is np.ndarray and first.tolist() == [0, 1]
