"""fit/evaluate/predict fed by Python generators and fastnn.utils.PyDataset (Keras 3 semantics:
steps_per_epoch, validation_steps, running out of data, on_epoch_end, workers), and
fastnn.utils.image_dataset_from_directory on generated PNG folders."""
import threading
import time
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import layers


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x.sum(axis=1) > 0).astype(np.int32)
    return x, y


def _model():
    fastnn.utils.set_random_seed(1)
    model = fastnn.models.Sequential([fastnn.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(2)])
    model.compile("sgd", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def _batches(x, y, bs=16, weights=None):
    for lo in range(0, len(x), bs):
        if weights is None:
            yield x[lo:lo + bs], y[lo:lo + bs]
        else:
            yield x[lo:lo + bs], y[lo:lo + bs], weights[lo:lo + bs]


class Batches(fastnn.utils.PyDataset):
    def __init__(self, x, y, bs=16, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.bs = x, y, bs
        self.begins = self.ends = 0
        self.threads = set()

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        self.threads.add(threading.get_ident())
        return self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]

    def on_epoch_begin(self):
        self.begins += 1

    def on_epoch_end(self):
        self.ends += 1


def test_generator_fit_equals_array_fit_without_shuffle():
    x, y = _data()
    a, b = _model(), _model()
    ha = a.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    hb = b.fit(_batches(x, y), epochs=1, verbose=0)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-6)
    np.testing.assert_allclose(hb.history["accuracy"], ha.history["accuracy"], rtol=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def test_generator_steps_per_epoch_and_running_out():
    x, y = _data()
    model = _model()

    def endless():
        while True:
            yield from _batches(x, y)
    h = model.fit(endless(), steps_per_epoch=3, epochs=4, verbose=0)
    assert len(h.history["loss"]) == 4
    # a finite generator without steps: epoch 1 runs to exhaustion, epoch 2 has no data -> warning and stop
    with pytest.warns(UserWarning, match="ran out of data"):
        h = model.fit(_batches(x, y), epochs=3, verbose=0)
    assert len(h.history["loss"]) == 1
    # 4 batches, 3 per epoch: epoch 2 gets 1 batch and training stops after it
    with pytest.warns(UserWarning, match="ran out of data"):
        h = model.fit(_batches(x, y), steps_per_epoch=3, epochs=5, verbose=0)
    assert len(h.history["loss"]) == 2


def test_generator_is_not_read_past_the_steps_it_needs():
    x, y = _data()
    pulled = []

    def counting():
        for k, batch in enumerate(_batches(x, y)):
            pulled.append(k)
            yield batch
    _model().fit(counting(), steps_per_epoch=1, epochs=2, verbose=0)
    assert pulled == [0, 1]


def test_sample_weights_from_batches_and_class_weight():
    x, y = _data()
    w = np.linspace(0.1, 2.0, len(x)).astype(np.float32)
    a, b = _model(), _model()
    ha = a.fit(x, y, sample_weight=w, batch_size=16, shuffle=False, verbose=0)
    hb = b.fit(_batches(x, y, weights=w), verbose=0)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-6)
    c, d = _model(), _model()
    hc = c.fit(x, y, class_weight={0: 0.5, 1: 2.0}, batch_size=16, shuffle=False, verbose=0)
    hd = d.fit(_batches(x, y), class_weight={0: 0.5, 1: 2.0}, verbose=0)
    np.testing.assert_allclose(hd.history["loss"], hc.history["loss"], rtol=1e-6)


@pytest.mark.parametrize("workers", [1, 3])
def test_pydataset_fit_epochs_and_workers(workers):
    x, y = _data()
    ds = Batches(x, y, workers=workers, use_multiprocessing=(workers > 1))
    a, b = _model(), _model()
    hb = b.fit(ds, epochs=2, shuffle=False, verbose=0)
    ha = a.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    np.testing.assert_allclose(hb.history["loss"], ha.history["loss"], rtol=1e-6)
    assert ds.begins == 2 and ds.ends == 2
    assert threading.get_ident() not in ds.threads  # loaded on background threads, overlapping the steps
    # shuffle=True visits every batch once per epoch in a seeded order
    fastnn.utils.set_random_seed(4)
    h = b.fit(ds, epochs=1, shuffle=True, verbose=0)
    assert len(h.history["loss"]) == 1


def test_pydataset_steps_per_epoch_and_validation():
    x, y = _data()
    model = _model()
    # Keras's EpochIterator: the pass over the 4 batches continues across epochs; an epoch cut short by the end of
    # the pass warns (training goes on) and the next epoch starts a new pass
    seen = []

    class Recording(Batches):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)
    with pytest.warns(UserWarning, match="ran out of data"):
        h = model.fit(Recording(x, y, max_queue_size=1), steps_per_epoch=3, epochs=3, shuffle=False, verbose=0)
    assert len(h.history["loss"]) == 3 and seen[:4] == [0, 1, 2, 3] and seen[4:7] == [0, 1, 2]
    h = model.fit(Batches(x, y), steps_per_epoch=2, epochs=2, validation_data=Batches(x[:32], y[:32]), verbose=0)
    assert len(h.history["val_loss"]) == 2
    want = model.evaluate(x[:32], y[:32], verbose=0, return_dict=True)
    np.testing.assert_allclose(h.history["val_loss"][-1], want["loss"], rtol=1e-6)
    h = model.fit(x, y, epochs=1, verbose=0, validation_data=_batches(x, y), validation_steps=2)
    assert len(h.history["val_accuracy"]) == 1


def test_evaluate_and_predict_on_streams():
    x, y = _data()
    model = _model()
    model.fit(x, y, epochs=2, verbose=0)
    want = model.evaluate(x, y, verbose=0)
    np.testing.assert_allclose(model.evaluate(_batches(x, y), verbose=0), want, rtol=1e-6)
    np.testing.assert_allclose(model.evaluate(Batches(x, y, workers=2), verbose=0), want, rtol=1e-6)
    part = model.evaluate(x[:32], y[:32], verbose=0)
    np.testing.assert_allclose(model.evaluate(_batches(x, y), steps=2, verbose=0), part, rtol=1e-6)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(model.predict(_batches(x, y), verbose=0), pred, rtol=1e-6)
    np.testing.assert_allclose(model.predict((b for b in np.split(x, 4)), verbose=0), pred, rtol=1e-6)
    np.testing.assert_allclose(model.predict(Batches(x, y), steps=2, verbose=0), pred[:32], rtol=1e-6)


def test_streams_with_an_overridden_test_step():
    x, y = _data()

    class Custom(fastnn.models.Sequential):
        def test_step(self, data):
            xb, yb = data
            pred = self(xb, training=False)
            return {"mean_pred": float(np.mean(pred.numpy())), "rows": float(len(xb))}
    model = Custom([fastnn.Input((4,)), layers.Dense(2)])
    model.compile("sgd", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    logs = model.evaluate(_batches(x, y, bs=24), verbose=0, return_dict=True)
    assert logs["rows"] == 64 - 48  # the last batch's logs, as Keras


def test_verbose_progress_with_unknown_length(capsys):
    x, y = _data()
    model = _model()
    model.fit(_batches(x, y), epochs=1, verbose=2)
    model.evaluate(_batches(x, y), verbose=1)
    out = capsys.readouterr().out
    assert "4/4" in out


def test_stream_errors():
    x, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="y and sample_weight must be None"):
        model.fit(_batches(x, y), y, verbose=0)
    with pytest.raises(ValueError, match="without targets"):
        model.fit((b for b in np.split(x, 4)), verbose=0)
    with pytest.raises(ValueError, match="no batches"):
        model.fit(iter([]), verbose=0)
    with pytest.raises(ValueError, match="expects inputs with 4 features|incompatible|4"):
        model.fit(((np.zeros((2, 5), np.float32), np.zeros(2)) for _ in range(2)), verbose=0)

    class Broken(Batches):
        def __getitem__(self, i):
            raise RuntimeError("disk on fire")
    with pytest.raises(RuntimeError, match="disk on fire"):
        model.fit(Broken(x, y, workers=2), verbose=0)


def test_loading_overlaps_the_step():
    # each batch takes 20 ms to load and each step is cheap: with loading ahead, 8 batches take well under the
    # 8 x 2 x 20 ms of a serial load + wait for a 2-worker dataset
    x, y = _data(128)

    class Slow(Batches):
        def __getitem__(self, i):
            time.sleep(0.02)
            return super().__getitem__(i)
    model = _model()
    model.fit(x[:16], y[:16], verbose=0)  # build the plan first
    t0 = time.perf_counter()
    model.fit(Slow(x, y, workers=4, max_queue_size=8), epochs=1, verbose=0)
    assert time.perf_counter() - t0 < 8 * 0.02 * 0.9


# ---- image_dataset_from_directory ------------------------------------------------------------------------------
def _folder(tmp_path, counts=(5, 3, 4), size=(10, 14)):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    for k, n in enumerate(counts):
        d = tmp_path / f"class_{'abc'[k]}"
        d.mkdir()
        for i in range(n):
            arr = rng.integers(0, 256, size + (3,), dtype=np.uint8)
            Image.fromarray(arr).save(d / f"img_{i}.png")
    (tmp_path / "class_a" / "notes.txt").write_text("not an image")
    return tmp_path


def test_image_dataset_from_directory(tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    root = _folder(tmp_path)
    ds = fastnn.utils.image_dataset_from_directory(root, image_size=(5, 7), batch_size=4, shuffle=False)
    assert "Found 12 files belonging to 3 classes." in capsys.readouterr().out
    assert ds.class_names == ["class_a", "class_b", "class_c"] and len(ds) == 3
    x, y = ds[0]
    assert x.shape == (4, 5, 7, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert list(np.concatenate([b[1] for b in ds])) == [0] * 5 + [1] * 3 + [2] * 4
    # pixel values: the file resized as tf.image.resize (bilinear, half-pixel) does, from [0, 255] uint8
    first = np.asarray(Image.open(ds.file_paths[0]), np.float32)[None]
    from test_preprocessing_layers import ref_resize
    np.testing.assert_allclose(x[:1], ref_resize(first, 5, 7), rtol=1e-5, atol=1e-3)
    # fit takes it directly
    model = fastnn.models.Sequential([fastnn.Input((5, 7, 3)), layers.Rescaling(1 / 255), layers.Flatten(),
                                      layers.Dense(3)])
    model.compile("adam", fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    assert len(model.fit(ds, epochs=2, verbose=0).history["loss"]) == 2


def test_image_dataset_split_modes_and_errors(tmp_path):
    pytest.importorskip("PIL.Image")
    root = _folder(tmp_path)
    train, val = fastnn.utils.image_dataset_from_directory(root, image_size=(4, 4), batch_size=5, seed=7,
                                                           validation_split=0.25, subset="both", verbose=False,
                                                           label_mode="categorical", color_mode="grayscale")
    assert len(train.file_paths) == 9 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    x, y = train[0]
    assert x.shape == (5, 4, 4, 1) and y.shape == (5, 3) and np.all(y.sum(axis=1) == 1)
    # the same seed gives the same split (Keras: RandomState(seed) shuffles the paths, the last fraction validates)
    again = fastnn.utils.image_dataset_from_directory(root, image_size=(4, 4), seed=7, validation_split=0.25,
                                                      subset="validation", verbose=False)
    assert again.file_paths == val.file_paths
    with pytest.raises(ValueError, match="seed"):
        fastnn.utils.image_dataset_from_directory(root, validation_split=0.2, subset="training", verbose=False)
    with pytest.raises(ValueError, match="binary"):
        fastnn.utils.image_dataset_from_directory(root, label_mode="binary", verbose=False)
    with pytest.raises(ValueError, match="subset"):
        fastnn.utils.image_dataset_from_directory(root, subset="training", verbose=False)


def test_image_dataset_without_pillow_names_the_extra(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_pil(name, *args, **kwargs):
        if name == "PIL" or name.startswith("PIL."):
            raise ImportError("No module named 'PIL'")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_pil)
    with pytest.raises(ImportError, match=r"fastnn\[images\]"):
        fastnn.utils.image_dataset_from_directory(".")


def test_pydataset_iterates_and_warns_nothing_without_super():
    class Plain(fastnn.utils.PyDataset):  # forgot super().__init__(): the defaults apply
        def __init__(self):
            pass

        def __len__(self):
            return 2

        def __getitem__(self, i):
            return np.full((2, 4), i, np.float32), np.zeros(2, np.int32)
    ds = Plain()
    assert fastnn.utils.Sequence is fastnn.utils.PyDataset  # Keras 3's alias
    assert ds.workers == 1 and ds.max_queue_size == 10 and [b[0][0, 0] for b in ds] == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model().fit(ds, verbose=0)


def test_steps_with_arrays_follow_keras():
    x, y = _data()  # 4 batches of 16
    model = _model()
    # steps_per_epoch=3 over 4 batches: epoch 2 gets the 4th batch and warns; epoch 3 starts a new pass
    with pytest.warns(UserWarning, match="ran out of data"):
        h = model.fit(x, y, batch_size=16, steps_per_epoch=3, epochs=3, verbose=0)
    assert len(h.history["loss"]) == 3
    np.testing.assert_allclose(model.evaluate(x, y, batch_size=16, steps=2, verbose=0),
                               model.evaluate(x[:32], y[:32], verbose=0), rtol=1e-6)
    np.testing.assert_allclose(model.predict(x, batch_size=8, steps=3, verbose=0), model.predict(x[:24], verbose=0),
                               rtol=1e-6)
    with pytest.raises(ValueError, match="positive integer"):
        model.fit(x, y, steps_per_epoch=0, verbose=0)
