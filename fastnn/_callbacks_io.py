"""Callbacks that write training state or logs outside the process (Keras 3's behaviour):
BackupAndRestore (resume an interrupted fit), RemoteMonitor (POST the epoch logs to a server),
TensorBoard (scalar event files, written with the ``tensorboard`` package's event-file writer).
Re-exported by fastnn.callbacks."""
import json
import os
import shutil
import time
import types
import urllib.parse
import urllib.request
import warnings

import numpy as np

from fastnn.callbacks import Callback


def _epoch_only(cb):
    """Hide ``cb``'s batch hook from fit (which then builds no per-batch logs for it): for callbacks
    configured to act at epoch ends only."""
    cb.on_train_batch_end = types.MethodType(Callback.on_train_batch_end, cb)


class _EveryNBatches:
    """Keras's ``_should_save_on_batch``: True once every ``save_freq`` training batches (counted
    across epochs); never when ``save_freq == "epoch"``."""

    def __init__(self, save_freq, who):
        if save_freq != "epoch" and (isinstance(save_freq, bool) or not isinstance(save_freq, int) or save_freq <= 0):
            raise ValueError(f"{who}: invalid value for argument `save_freq`. Received: save_freq={save_freq}. "
                             f"Expected either 'epoch' or a positive integer")
        self.save_freq, self.seen, self.last = save_freq, 0, None

    def new_epoch(self):
        self.last = None

    def due(self, batch):
        if self.save_freq == "epoch":
            return False
        self.seen += batch + 1 if self.last is None or batch <= self.last else batch - self.last
        self.last = batch
        if self.seen >= self.save_freq:
            self.seen = 0
            return True
        return False


class BackupAndRestore(Callback):
    """Backs up the weights (``latest.weights.h5``) and the epoch reached (``training_metadata.json``) in
    ``backup_dir`` at each epoch end (or every ``save_freq`` batches); a fit started again with the same
    callback restores them and continues from that epoch. ``delete_checkpoint``: remove the backup when
    fit completes. ``double_checkpoint``: keep the previous backup (``.bkp``) to fall back on."""

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False, delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self._freq = _EveryNBatches(save_freq, "BackupAndRestore")
        self.save_freq, self.double_checkpoint, self.delete_checkpoint = save_freq, double_checkpoint, delete_checkpoint
        self.backup_dir = os.fspath(backup_dir)
        self._weights_path = os.path.join(self.backup_dir, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self.backup_dir, "training_metadata.json")
        self._prev_weights_path = self._weights_path + ".bkp"
        self._prev_training_metadata_path = self._training_metadata_path + ".bkp"
        self._current_epoch, self._last_batch_seen = 0, 0
        if save_freq == "epoch":
            _epoch_only(self)

    def on_train_begin(self, logs=None):
        try:
            self._load_model()
        except OSError:
            if not os.path.exists(self._prev_weights_path):
                raise
            shutil.copy(self._prev_weights_path, self._weights_path)
            if os.path.exists(self._prev_training_metadata_path):
                shutil.copy(self._prev_training_metadata_path, self._training_metadata_path)
            elif os.path.exists(self._training_metadata_path):
                os.remove(self._training_metadata_path)
            self._load_model()

    def _load_model(self):
        if not self.model.built:
            raise ValueError("To use the BackupAndRestore callback, your model must be built before you call "
                             "`fit()`. Call `model.build(input_shape)` or give the model an Input first.")
        if os.path.exists(self._weights_path):
            self.model.load_weights(self._weights_path)
        if os.path.exists(self._training_metadata_path):
            with open(self._training_metadata_path) as f:
                self.model._initial_epoch = json.load(f)["epoch"]

    def on_epoch_begin(self, epoch, logs=None):
        self._freq.new_epoch()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch, self._last_batch_seen = epoch + 1, 0
        if self.save_freq == "epoch":
            self._save_model()

    def on_train_batch_end(self, batch, logs=None):
        self._last_batch_seen = batch
        if self._freq.due(batch):
            self._save_model()

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint:
            for path, prev in ((self._weights_path, self._prev_weights_path),
                               (self._training_metadata_path, self._prev_training_metadata_path)):
                if os.path.exists(path):
                    shutil.copy(path, prev)
        self.model.save_weights(self._weights_path)
        with open(self._training_metadata_path, "w") as f:
            json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen}, f)

    def on_train_end(self, logs=None):
        if self.delete_checkpoint and os.path.exists(self.backup_dir):
            shutil.rmtree(self.backup_dir)


def _jsonable(logs):
    return {k: (v.item() if isinstance(v, np.generic) else np.asarray(v).tolist() if isinstance(v, np.ndarray)
                else v) for k, v in logs.items()}


class RemoteMonitor(Callback):
    """POSTs ``{"epoch": epoch, **logs}`` to ``root + path`` at each epoch end: as a JSON body
    (``send_as_json=True``) or as the form field ``field`` holding the JSON text (Keras's default).
    Uses the standard library (Keras uses ``requests``); a server that cannot be reached gives a warning."""

    def __init__(self, root="http://localhost:9000", path="/publish/epoch/end/", field="data", headers=None,
                 send_as_json=False):
        super().__init__()
        self.root, self.path, self.field = root, path, field
        self.headers, self.send_as_json = dict(headers or {}), send_as_json

    def on_epoch_end(self, epoch, logs=None):
        send = {"epoch": epoch, **_jsonable(logs or {})}
        if self.send_as_json:
            body, ctype = json.dumps(send).encode(), "application/json"
        else:
            body, ctype = urllib.parse.urlencode({self.field: json.dumps(send)}).encode(), \
                "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.root + self.path, data=body, method="POST",
                                         headers={"Content-Type": ctype, **self.headers})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                response.read()
        except OSError:
            warnings.warn(f"Could not reach RemoteMonitor root server at {self.root}", stacklevel=2)


class TensorBoard(Callback):
    """Writes the logs as TensorBoard scalars: ``epoch_<name>`` per epoch (training values under
    ``log_dir/train``, ``val_`` values under ``log_dir/validation``, plus ``epoch_learning_rate``), and
    with ``update_freq`` "batch" or an integer N, ``batch_<name>`` every N training batches (step = the
    batch count since the start of training). Needs the ``tensorboard`` package (its event-file writer);
    histograms, graphs, images, embeddings and profiling are not written."""

    def __init__(self, log_dir="logs", histogram_freq=0, write_graph=True, write_images=False,
                 write_steps_per_second=False, update_freq="epoch", profile_batch=0, embeddings_freq=0,
                 embeddings_metadata=None):
        super().__init__()
        try:
            from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: F401
        except ImportError as e:
            raise ImportError("fastnn.callbacks.TensorBoard needs the tensorboard package: pip install tensorboard") \
                from e
        if histogram_freq or write_images or embeddings_freq or profile_batch:
            warnings.warn("TensorBoard: only scalars are written (histogram_freq, write_images, embeddings_freq "
                          "and profile_batch are not supported)", stacklevel=2)
        if update_freq == "batch":
            update_freq = 1
        if update_freq != "epoch" and (isinstance(update_freq, bool) or not isinstance(update_freq, int)
                                       or update_freq <= 0):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive integer, got "
                             f"{update_freq!r}")
        self.log_dir, self.update_freq = os.fspath(log_dir), update_freq
        if update_freq == "epoch" and not write_steps_per_second:
            _epoch_only(self)
        self.write_steps_per_second = write_steps_per_second
        self._writers = {}
        self._train_step = 0

    def _writer(self, kind):
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
        if kind not in self._writers:
            self._writers[kind] = EventFileWriter(os.path.join(self.log_dir, kind))
        return self._writers[kind]

    def _scalars(self, kind, values, step):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))
                                             for tag, value in values.items() if np.ndim(value) == 0])
        writer = self._writer(kind)
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=int(step), summary=summary))
        writer.flush()

    def on_train_begin(self, logs=None):
        self._train_step = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start, self._epoch_steps = time.time(), 0

    def on_train_batch_end(self, batch, logs=None):
        self._train_step += 1
        self._epoch_steps = getattr(self, "_epoch_steps", 0) + 1
        if self.update_freq != "epoch" and self._train_step % self.update_freq == 0:
            self._scalars("train", {"batch_" + k: v for k, v in (logs or {}).items()}, self._train_step)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        train = {k: v for k, v in logs.items() if not k.startswith("val_")}
        val = {k[4:]: v for k, v in logs.items() if k.startswith("val_")}
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None and "learning_rate" not in train:
            train["learning_rate"] = optimizer.learning_rate
        if self.write_steps_per_second:
            train["steps_per_second"] = self._epoch_steps / max(time.time() - self._epoch_start, 1e-9)
        self._scalars("train", {"epoch_" + k: v for k, v in train.items()}, epoch)
        if val:
            self._scalars("validation", {"epoch_" + k: v for k, v in val.items()}, epoch)

    def on_train_end(self, logs=None):
        for w in self._writers.values():
            w.close()
        self._writers = {}
