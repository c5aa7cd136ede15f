"""Callbacks: hooks order, History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, CSVLogger, TerminateOnNaN, LambdaCallback."""
import csv
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, optimizers
from fastnn._naming import clear_session
from fastnn.models import Sequential


@pytest.fixture(autouse=True)
def _fresh():
    clear_session()
    fastnn.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def data():
    (x, y), _ = fastnn.datasets.digits.load_data()
    return x[:256].reshape(256, 64) / 16.0, y[:256]


def _model(optimizer="adam"):
    model = Sequential([layers.Dense(16, activation="relu", input_shape=(64,)), layers.Dense(10, activation="softmax")])
    model.compile(optimizer, "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


class _Stub:
    """The part of a model EarlyStopping touches."""

    def __init__(self):
        self.weights, self.stop_training, self.metrics = [np.zeros(1)], False, []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = weights


def _drive(cb, values, monitor="val_loss"):
    """Feed one monitored value per epoch; the stub's weight records the epoch it was set in."""
    model = _Stub()
    cb.set_model(model)
    cb.on_train_begin()
    for epoch, v in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        cb.on_epoch_end(epoch, {monitor: v})
        if model.stop_training:
            break
    cb.on_train_end()
    return model, epoch


def test_hook_order_and_logs(data):
    x, y = data
    events = []
    cb = callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append("train_begin"),
        on_epoch_begin=lambda epoch, logs: events.append(f"epoch_begin {epoch}"),
        on_train_batch_begin=lambda batch, logs: events.append(f"batch_begin {batch}"),
        on_train_batch_end=lambda batch, logs: events.append(f"batch_end {batch} {sorted(logs)}"),
        on_epoch_end=lambda epoch, logs: events.append(f"epoch_end {epoch} {sorted(logs)}"),
        on_train_end=lambda logs: events.append("train_end"))
    model = _model()
    model.fit(x[:64], y[:64], batch_size=32, epochs=2, validation_data=(x[:10], y[:10]), callbacks=[cb], verbose=0)
    assert events == ["train_begin", "epoch_begin 0", "batch_begin 0", "batch_end 0 ['accuracy', 'loss']",
                      "batch_begin 1", "batch_end 1 ['accuracy', 'loss']",
                      "epoch_end 0 ['accuracy', 'loss', 'val_accuracy', 'val_loss']", "epoch_begin 1",
                      "batch_begin 0", "batch_end 0 ['accuracy', 'loss']", "batch_begin 1",
                      "batch_end 1 ['accuracy', 'loss']",
                      "epoch_end 1 ['accuracy', 'loss', 'val_accuracy', 'val_loss']", "train_end"]


def test_test_and_predict_hooks(data):
    x, y = data
    seen = []

    class Hooks(callbacks.Callback):
        def on_test_begin(self, logs=None):
            seen.append("test_begin")

        def on_test_end(self, logs=None):
            seen.append(("test_end", sorted(logs)))

        def on_predict_begin(self, logs=None):
            seen.append("predict_begin")

        def on_predict_end(self, logs=None):
            seen.append("predict_end")

    model = _model()
    model.evaluate(x, y, callbacks=[Hooks()], verbose=0)
    model.predict(x, callbacks=[Hooks()], verbose=0)
    assert seen == ["test_begin", ("test_end", ["accuracy", "loss"]), "predict_begin", "predict_end"]
    with pytest.raises(TypeError, match="Callback"):
        model.fit(x, y, callbacks=[lambda: None], verbose=0)


def test_history_records_every_epoch(data):
    x, y = data
    model = _model()
    history = model.fit(x, y, epochs=3, verbose=0)
    assert isinstance(history, callbacks.History) and history.epoch == [0, 1, 2]
    assert model.history is history and all(len(v) == 3 for v in history.history.values())
    assert all(isinstance(v, float) for v in history.history["loss"])


def test_early_stopping_patience_and_restore_best_weights():
    es = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    model, stopped = _drive(es, [1.0, 0.5, 0.6, 0.7, 0.4])
    assert stopped == 3 and es.stopped_epoch == 3 and es.best == 0.5 and es.best_epoch == 1
    assert model.weights[0][0] == 1.0  # restored from the best epoch at train end
    es = callbacks.EarlyStopping(monitor="val_loss", patience=0)
    _, stopped = _drive(es, [1.0, 1.0])
    assert stopped == 1  # no improvement (min_delta 0 needs strictly better)
    es = callbacks.EarlyStopping(monitor="val_loss", patience=1, min_delta=0.1)
    _, stopped = _drive(es, [1.0, 0.95, 0.5, 0.45])
    assert stopped == 1  # 0.95 is not better by more than min_delta


def test_early_stopping_modes_baseline_and_start_epoch():
    es = callbacks.EarlyStopping(monitor="val_accuracy", patience=1, mode="max")
    _, stopped = _drive(es, [0.5, 0.6, 0.55, 0.7], monitor="val_accuracy")
    assert stopped == 2
    es = callbacks.EarlyStopping(monitor="val_loss", patience=1, baseline=0.95)
    _, stopped = _drive(es, [1.0, 0.99, 0.98, 0.97])
    assert es.stopped_epoch == 0 and es.wait == 4  # improving (never stopped) but not beyond the baseline
    _, stopped = _drive(es, [1.0, 1.5, 1.6])
    assert stopped == 1
    es = callbacks.EarlyStopping(monitor="val_loss", patience=0, start_from_epoch=2)
    _, stopped = _drive(es, [1.0, 2.0, 3.0, 4.0])
    assert stopped == 3
    with pytest.raises(ValueError, match="maximized or minimized"):
        _drive(callbacks.EarlyStopping(monitor="custom"), [1.0], monitor="custom")


def test_early_stopping_in_fit_auto_mode_and_verbose(data, capsys):
    x, y = data
    model = _model(optimizers.SGD(learning_rate=0.0))  # the loss never improves
    es = callbacks.EarlyStopping(monitor="accuracy", patience=1, verbose=1, restore_best_weights=True)
    history = model.fit(x, y, epochs=10, callbacks=[es], verbose=0)
    assert es._greater is True and len(history.history["loss"]) == 2
    assert capsys.readouterr().out == ("Epoch 2: early stopping\n"
                                       "Restoring model weights from the end of the best epoch: 1.\n")
    with pytest.warns(UserWarning, match="not available"):
        model.fit(x, y, epochs=1, callbacks=[callbacks.EarlyStopping(monitor="val_loss")], verbose=0)


class _Saving(Sequential):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved = []

    def save(self, path):
        self.saved.append(("model", path))

    def save_weights(self, path):
        self.saved.append(("weights", path))


def test_model_checkpoint(data, tmp_path, capsys):
    x, y = data
    model = _Saving([layers.Dense(8, activation="relu", input_shape=(64,)), layers.Dense(10, activation="softmax")])
    model.compile(optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy")
    path = str(tmp_path / "sub" / "ckpt-{epoch:02d}-{loss:.2f}.keras")
    model.fit(x, y, epochs=2, callbacks=[callbacks.ModelCheckpoint(path, monitor="loss")], verbose=0)
    assert [kind for kind, _ in model.saved] == ["model", "model"]
    assert model.saved[0][1].startswith(str(tmp_path / "sub" / "ckpt-01-")) and model.saved[1][1].endswith(".keras")
    assert (tmp_path / "sub").is_dir()
    model.saved.clear()
    best = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="loss", save_best_only=True,
                                     save_weights_only=True, verbose=1)
    model.fit(x, y, epochs=3, callbacks=[best], verbose=0)  # lr 0: only the first epoch improves
    assert model.saved == [("weights", str(tmp_path / "best.weights.h5"))]
    out = capsys.readouterr().out
    assert "Epoch 1: loss improved from inf to" in out and "Epoch 2: loss did not improve from" in out
    with pytest.raises(ValueError, match=r"must end in `\.keras`"):
        callbacks.ModelCheckpoint("model.hdf5")
    with pytest.raises(ValueError, match=r"must end in `\.weights\.h5`"):
        callbacks.ModelCheckpoint("model.keras", save_weights_only=True)


def test_reduce_lr_on_plateau(data, capsys):
    x, y = data
    opt = optimizers.SGD(learning_rate=0.0)
    model = _model(opt)
    opt.learning_rate = 0.5
    plateau = callbacks.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_lr=0.1, verbose=1)
    # the loss changes only while lr > 0: freeze it with a zero-gradient setup by monitoring a constant
    constant = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: logs.__setitem__("loss", 1.0))
    history = model.fit(x, y, epochs=6, callbacks=[constant, plateau], verbose=0)
    assert history.history["learning_rate"] == [0.5, 0.5, 0.5, 0.25, 0.25, 0.125]
    assert opt.learning_rate == 0.125 * 1.0 or opt.learning_rate == 0.125
    assert "Epoch 3: ReduceLROnPlateau reducing learning rate to 0.25." in capsys.readouterr().out
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.5)


def test_reduce_lr_respects_min_lr_and_cooldown():
    class Model:
        optimizer = optimizers.Adam(learning_rate=1.0)
    cb = callbacks.ReduceLROnPlateau(monitor="m", factor=0.1, patience=1, cooldown=1, min_lr=0.005)
    cb.set_model(Model())
    cb.on_train_begin()
    lrs = []
    for epoch in range(8):
        cb.on_epoch_end(epoch, {"m": 1.0})
        lrs.append(Model.optimizer.learning_rate)
    # Keras decrements the cooldown before testing it, so cooldown=1 delays nothing
    assert lrs == pytest.approx([1.0, 0.1, 0.01, 0.005, 0.005, 0.005, 0.005, 0.005])


def test_learning_rate_scheduler(data, capsys):
    x, y = data
    model = _model(optimizers.SGD(learning_rate=0.1))
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr, verbose=1)
    history = model.fit(x, y, epochs=3, callbacks=[sched], verbose=0)
    assert history.history["learning_rate"] == [0.1, 0.05, 0.025]
    assert "Epoch 2: LearningRateScheduler setting learning rate to 0.05." in capsys.readouterr().out
    one_arg = callbacks.LearningRateScheduler(lambda epoch: 0.01 * (epoch + 1))
    assert model.fit(x, y, epochs=2, callbacks=[one_arg], verbose=0).history["learning_rate"] == [0.01, 0.02]
    with pytest.raises(ValueError, match="should be a float"):
        model.fit(x, y, epochs=1, callbacks=[callbacks.LearningRateScheduler(lambda e: "fast")], verbose=0)


def test_csv_logger(data, tmp_path):
    x, y = data
    path = tmp_path / "log.csv"
    model = _model()
    history = model.fit(x, y, epochs=2, validation_data=(x[:20], y[:20]), callbacks=[callbacks.CSVLogger(path)],
                        verbose=0)
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "val_accuracy", "val_loss"]
    assert [r["epoch"] for r in rows] == ["0", "1"]
    assert float(rows[1]["val_loss"]) == pytest.approx(history.history["val_loss"][1])
    model.fit(x, y, epochs=1, callbacks=[callbacks.CSVLogger(path, append=True, separator=",")], verbose=0)
    assert len(open(path).read().splitlines()) == 4  # header written once


def test_terminate_on_nan(data, capsys):
    x, y = data
    model = Sequential([layers.Dense(16, activation="tanh", input_shape=(64,)), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    bad = x.copy()
    bad[40:] = np.nan
    history = model.fit(bad, y, batch_size=32, epochs=3, shuffle=False, callbacks=[callbacks.TerminateOnNaN()],
                        verbose=0)
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"
    assert len(history.history["loss"]) == 1 and np.isnan(history.history["loss"][0])


def test_unknown_lambda_hook_and_warning_free_default_fit(data):
    with pytest.raises(ValueError, match="unknown hook"):
        callbacks.LambdaCallback(on_something=print)
    x, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _model().fit(x, y, epochs=1, verbose=0)
