"""BackupAndRestore, RemoteMonitor, TensorBoard, ModelCheckpoint's save_freq / formats, LambdaCallback and
ProgbarLogger given explicitly: Keras 3's behaviour."""
import http.server
import json
import threading
import urllib.parse

import numpy as np
import pytest

import fastnn
from fastnn import callbacks, layers, optimizers
from fastnn.models import Sequential
from test_callbacks import _fresh  # noqa: F401 (autouse: a fresh session and seed per test)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    return x, (x[:, :1] - x[:, 1:2] > 0).astype(np.float32)


def _model(cls=Sequential, lr=0.05):
    model = cls([layers.Input((5,)), layers.Dense(4, activation="relu"), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizers.SGD(learning_rate=lr), "binary_crossentropy", metrics=["accuracy"])
    return model


class _Stop(callbacks.Callback):
    """Interrupts fit at the end of epoch ``at`` (as a crash would)."""

    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise KeyboardInterrupt


def test_backup_and_restore_resumes_the_interrupted_epoch(data, tmp_path):
    pytest.importorskip("h5py")
    x, y = data
    backup = tmp_path / "backup"
    model = _model()
    with pytest.raises(KeyboardInterrupt):
        model.fit(x, y, epochs=5, batch_size=8, verbose=0,
                  callbacks=[_Stop(at=2), callbacks.BackupAndRestore(backup)])
    # epochs 0 and 1 were backed up (the interruption came before the backup of epoch 2)
    assert json.loads((backup / "training_metadata.json").read_text()) == {"epoch": 2, "batch": 0}
    saved = [w.copy() for w in model.get_weights()]
    fresh = _model()
    fresh.load_weights(str(backup / "latest.weights.h5"))
    weights_at_backup = fresh.get_weights()
    assert not all(np.array_equal(a, b) for a, b in zip(saved, weights_at_backup))  # epoch 2 trained on
    resumed = _model()
    hist = resumed.fit(x, y, epochs=5, batch_size=8, verbose=0, callbacks=[callbacks.BackupAndRestore(backup)])
    assert hist.epoch == [2, 3, 4]
    assert not backup.exists()  # delete_checkpoint=True removes it when fit completes
    kept = tmp_path / "kept"
    keep = _model()
    keep.fit(x, y, epochs=2, batch_size=8, verbose=0,
             callbacks=[callbacks.BackupAndRestore(kept, save_freq=3, delete_checkpoint=False,
                                                   double_checkpoint=True)])
    # 10 batches: backups after batches 3, 6, 9 (counted across epochs); the previous one kept as .bkp
    assert json.loads((kept / "training_metadata.json").read_text()) == {"epoch": 1, "batch": 3}
    assert (kept / "latest.weights.h5.bkp").exists() and (kept / "training_metadata.json.bkp").exists()
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.BackupAndRestore(tmp_path, save_freq="batch")
    with pytest.raises(ValueError, match="backup_dir"):
        callbacks.BackupAndRestore("")


class _Saving(Sequential):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.saved = []

    def save(self, path, overwrite=True):
        self.saved.append(("model", path))

    def save_weights(self, path, overwrite=True):
        self.saved.append(("weights", path))


def test_model_checkpoint_save_freq_in_batches_and_formats(data, tmp_path):
    x, y = data
    model = _model(_Saving)
    path = str(tmp_path / "ckpt-{epoch}-{batch}.h5")
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[callbacks.ModelCheckpoint(path, save_freq=4)])
    # 5 batches an epoch: saves after the 4th batch of epoch 1, then the 3rd of epoch 2 (8 batches seen)
    assert model.saved == [("model", str(tmp_path / "ckpt-1-4.h5")), ("model", str(tmp_path / "ckpt-2-3.h5"))]
    model.saved.clear()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "w.weights.h5"), save_weights_only=True, save_freq=5)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[cb])
    assert model.saved == [("weights", str(tmp_path / "w.weights.h5"))] * 2
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint("m.keras", save_freq=0)


def test_model_checkpoint_writes_files_that_load(data, tmp_path):
    pytest.importorskip("h5py")
    x, y = data
    model = _model()
    cb = callbacks.ModelCheckpoint(str(tmp_path / "best.weights.h5"), monitor="loss", save_best_only=True,
                                   save_weights_only=True)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[cb,
              callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq=2)])
    other = _model()
    other.load_weights(str(tmp_path / "best.weights.h5"))
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)  # the loss improved every epoch: the last one is the best
    loaded = fastnn.models.load_model(str(tmp_path / "m.keras"))
    assert len(loaded.get_weights()) == len(model.get_weights())


class _Handler(http.server.BaseHTTPRequestHandler):
    received = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Handler.received.append((self.path, self.headers["Content-Type"], self.headers.get("X-Test"), body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_remote_monitor_posts_epoch_logs_to_a_local_server(data):
    x, y = data
    server = http.server.HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        root = f"http://127.0.0.1:{server.server_port}"
        _Handler.received.clear()
        model = _model()
        hist = model.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=[
            callbacks.RemoteMonitor(root=root, path="/form", headers={"X-Test": "1"}),
            callbacks.RemoteMonitor(root=root, path="/json", send_as_json=True)])
    finally:
        server.shutdown()
        server.server_close()
    form = [r for r in _Handler.received if r[0] == "/form"]
    as_json = [r for r in _Handler.received if r[0] == "/json"]
    assert len(form) == len(as_json) == 2
    sent = json.loads(urllib.parse.parse_qs(form[1][3].decode())["data"][0])
    assert sent["epoch"] == 1 and sent["loss"] == pytest.approx(hist.history["loss"][1])
    assert form[0][1] == "application/x-www-form-urlencoded" and form[0][2] == "1"
    assert as_json[0][1] == "application/json" and json.loads(as_json[0][3])["epoch"] == 0
    with pytest.warns(UserWarning, match="Could not reach"):
        _model().fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.RemoteMonitor(root="http://127.0.0.1:9")])


def test_tensorboard_writes_scalars_tensorboard_reads(data, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    x, y = data
    model = _model()
    cb = callbacks.TensorBoard(log_dir=str(tmp_path / "logs"), update_freq=2)
    hist = model.fit(x[:32], y[:32], validation_data=(x[32:], y[32:]), epochs=3, batch_size=8, verbose=0,
                     callbacks=[cb])

    def scalars(kind, tag):
        acc = EventAccumulator(str(tmp_path / "logs" / kind))
        acc.Reload()
        return [(e.step, e.value) for e in acc.Scalars(tag)]

    loss = scalars("train", "epoch_loss")
    assert [s for s, _ in loss] == [0, 1, 2]
    np.testing.assert_allclose([v for _, v in loss], hist.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars("validation", "epoch_accuracy")],
                               hist.history["val_accuracy"], rtol=1e-6)
    assert [v for _, v in scalars("train", "epoch_learning_rate")] == pytest.approx([0.05] * 3)
    assert [s for s, _ in scalars("train", "batch_loss")] == [2, 4, 6, 8, 10, 12]  # every 2nd of 12 batches
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.TensorBoard(str(tmp_path), update_freq=0)


def test_lambda_callback_and_explicit_progbar_logger(data, capsys):
    x, y = data
    seen = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))),
                                  on_train_batch_end=lambda batch, logs: seen.append(batch))
    _model().fit(x, y, epochs=2, batch_size=20, verbose=2, callbacks=[cb, callbacks.ProgbarLogger()])
    assert seen == [0, 1, (0, ["accuracy", "loss"]), 0, 1, (1, ["accuracy", "loss"])]
    assert capsys.readouterr().out.count("Epoch 2/2") == 1  # the given ProgbarLogger replaces the default one
    _model().fit(x, y, epochs=2, batch_size=20, verbose=0, callbacks=[callbacks.ProgbarLogger()])
    assert capsys.readouterr().out == ""  # it follows fit's verbose, as in Keras


def test_epoch_only_callbacks_ask_fit_for_no_batch_logs(tmp_path):
    model = _model()
    cbs = [callbacks.ModelCheckpoint(str(tmp_path / "m.keras")), callbacks.BackupAndRestore(tmp_path / "b")]
    listed = callbacks.CallbackList(cbs, model, {"verbose": 0, "epochs": 1, "steps": 1})
    assert not listed.needs_batch_end  # fit builds no per-batch logs for them
    per_batch = callbacks.CallbackList([callbacks.ModelCheckpoint(str(tmp_path / "m.keras"), save_freq=2)], model,
                                       {"verbose": 0, "epochs": 1, "steps": 1})
    assert per_batch.needs_batch_end
