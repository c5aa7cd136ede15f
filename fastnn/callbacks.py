"""Training callbacks with Keras 3's hooks and behaviour.

``fit`` calls, in order: the user's callbacks, then ``History``, then the progress bar
(``ProgbarLogger``); they all see the same ``logs`` dict, so a callback that adds a key (e.g.
``ReduceLROnPlateau`` adds ``learning_rate``) is recorded in the history.

>>> import fastnn
>>> stop = fastnn.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
"""
import collections
import csv
import os
import warnings

import numpy as np

from fastnn._progbar import Progbar


def _print(message):
    import sys
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


class Callback:
    """Base class: override any of the ``on_*`` hooks. ``self.model`` and ``self.params`` are set by fit."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass

    def on_train_batch_begin(self, batch, logs=None):
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


def _overrides(cb, *names):
    """True when ``cb`` (its class or an instance attribute) replaces one of the hooks ``names``."""
    for n in names:
        hook = getattr(cb, n)
        if getattr(hook, "__func__", hook) is not getattr(Callback, n):
            return True
    return False


class History(Callback):
    """Records ``logs`` of every epoch in ``history`` (dict of lists); ``fit`` returns it."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)
        self.model.history = self


class ProgbarLogger(Callback):
    """Prints Keras's progress bar (``Epoch 1/12`` then ``n/N ━━━ 2s 4ms/step - loss: ...``)."""

    def __init__(self):
        super().__init__()
        self.progbar = None

    def on_train_begin(self, logs=None):
        self.verbose, self.epochs = self.params.get("verbose", 1), self.params.get("epochs", 1)
        self.steps = self.params.get("steps")

    def on_epoch_begin(self, epoch, logs=None):
        if self.verbose and self.epochs > 1:
            _print(f"Epoch {epoch + 1}/{self.epochs}")
        self.progbar = Progbar(self.steps, verbose=self.verbose)

    def _batch_update(self, batch, logs_fn):
        """fit's fast path: builds the logs only when the bar will actually redraw."""
        self._seen = batch + 1  # the epoch's length when steps is unknown (a generator without steps_per_epoch)
        if self.progbar.due(batch + 1):
            self.progbar.update(batch + 1, list(logs_fn().items()), finalize=False)

    def on_train_batch_end(self, batch, logs=None):
        self._seen = batch + 1
        self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        steps = self.steps if self.steps is not None else getattr(self, "_seen", 0)
        self.progbar.target = steps
        self.progbar.update(steps, list((logs or {}).items()), finalize=True)


class CallbackList:
    """Runs hooks over the user's callbacks + History + ProgbarLogger (Keras order)."""

    def __init__(self, callbacks, model, params, add_history=True, add_progbar=False):
        self.callbacks = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be fastnn.callbacks.Callback instances, got {type(cb).__name__}")
        self.history = next((cb for cb in self.callbacks if isinstance(cb, History)), None)
        if self.history is None and add_history:
            self.history = History()
            self.callbacks.append(self.history)
        self.progbar = next((cb for cb in self.callbacks if isinstance(cb, ProgbarLogger)), None)
        if self.progbar is None and add_progbar:
            self.progbar = ProgbarLogger()
            self.callbacks.append(self.progbar)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        batch_hooks = ("on_train_batch_begin", "on_batch_begin")
        self._batch_begin = [cb for cb in self.callbacks if _overrides(cb, *batch_hooks)]
        self._batch_end = [cb for cb in self.callbacks if cb is not self.progbar
                           and _overrides(cb, "on_train_batch_end", "on_batch_end")]
        progbar_custom = self.progbar is not None and type(self.progbar) is not ProgbarLogger
        if progbar_custom:
            self._batch_end.append(self.progbar)
        self._fast_progbar = self.progbar if self.progbar is not None and not progbar_custom else None
        self.needs_batch_begin = bool(self._batch_begin)
        self.needs_batch_end = bool(self._batch_end) or self._fast_progbar is not None

    def _call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    # NOTE: logs are passed positionally, as Keras does (LambdaCallback functions take them so)
    def on_train_begin(self, logs=None):
        self._call("on_train_begin", logs)

    def on_train_end(self, logs=None):
        self._call("on_train_end", logs)

    def on_epoch_begin(self, epoch, logs=None):
        self._call("on_epoch_begin", epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self._call("on_epoch_end", epoch, logs)

    def on_test_begin(self, logs=None):
        self._call("on_test_begin", logs)

    def on_test_end(self, logs=None):
        self._call("on_test_end", logs)

    def on_predict_begin(self, logs=None):
        self._call("on_predict_begin", logs)

    def on_predict_end(self, logs=None):
        self._call("on_predict_end", logs)

    def train_batch_begin(self, batch):
        for cb in self._batch_begin:
            cb.on_train_batch_begin(batch, {})

    def train_batch_end(self, batch, logs_fn):
        if self._batch_end:
            logs = logs_fn()
            for cb in self._batch_end:
                cb.on_train_batch_end(batch, logs)
        if self._fast_progbar is not None:
            self._fast_progbar._batch_update(batch, logs_fn)


def _auto_greater(monitor, model):
    """True when ``monitor`` should be maximised (Keras: accuracy-like metrics, by the metric's direction)."""
    name = monitor[4:] if monitor.startswith("val_") else monitor
    if name == "loss":
        return False
    for m in getattr(model, "metrics", None) or []:
        if getattr(m, "name", None) == name and hasattr(m, "_direction"):
            return m._direction == "up"
    return None


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by more than ``min_delta`` for ``patience`` epochs.

    ``restore_best_weights=True`` restores the best epoch's weights when training ends (Keras 3)."""

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"EarlyStopping mode {mode} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor, self.patience, self.verbose, self.baseline = monitor, patience, verbose, baseline
        self.min_delta, self.mode = abs(min_delta), mode
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = self.best_weights = None
        self._greater = None

    def _resolve_mode(self):
        greater = {"min": False, "max": True}.get(self.mode)
        if greater is None:
            greater = _auto_greater(self.monitor, self.model)
        if greater is None:
            raise ValueError(f"EarlyStopping callback received monitor={self.monitor} but fastnn isn't able to "
                             f"automatically determine whether that metric should be maximized or minimized. Pass "
                             f"`mode='max'` in order to do early stopping based on the highest metric value, or pass "
                             f"`mode='min'` in order to use the lowest value.")
        self._greater = greater

    def _is_improvement(self, value, reference):
        if reference is None:
            return True
        if self._greater:
            return value - self.min_delta > reference
        return value + self.min_delta < reference

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if self._greater is None:
            self._resolve_mode()
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            _print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                _print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Saves the model (``model.save``: path ending ``.keras``, or legacy ``.h5``) or its weights
    (``save_weights_only=True``: ``.weights.h5``, or ``.weights.npz``) at every epoch end, or every
    ``save_freq`` training batches (an integer, counted across epochs), optionally only when ``monitor``
    improves (``save_best_only=True``). The path may hold format fields:
    ``"ckpt-{epoch:02d}-{val_loss:.2f}.keras"`` (``{batch}`` too when saving by batches)."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__()
        filepath = os.fspath(filepath)
        if save_weights_only and not filepath.endswith((".weights.h5", ".weights.npz")):
            raise ValueError("When using `save_weights_only=True` in `ModelCheckpoint`, the filepath provided must "
                             f"end in `.weights.h5` (Keras weights format, needs h5py) or `.weights.npz`. "
                             f"Received: filepath={filepath}")
        if not save_weights_only and not filepath.endswith((".keras", ".h5")):
            raise ValueError("The filepath provided must end in `.keras` (Keras model format) or `.h5` (legacy "
                             f"HDF5 format). Received: filepath={filepath}")
        from fastnn._callbacks_io import _EveryNBatches, _epoch_only
        self._freq = _EveryNBatches(save_freq, "ModelCheckpoint")
        if save_freq == "epoch":
            _epoch_only(self)
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"ModelCheckpoint mode '{mode}' is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.filepath, self.monitor, self.verbose = filepath, monitor, verbose
        self.save_best_only, self.save_weights_only, self.save_freq = save_best_only, save_weights_only, save_freq
        self._greater = mode == "max" or (mode == "auto" and ("acc" in monitor or monitor.startswith("fmeasure")))
        self.best = initial_value_threshold if initial_value_threshold is not None else (
            -np.inf if self._greater else np.inf)
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._freq.due(batch):
            self._save(self._epoch, logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save(epoch, logs)

    def _save(self, epoch, logs, batch=None):
        logs = logs or {}
        try:
            fields = {"epoch": epoch + 1, **({} if batch is None or "batch" in logs else {"batch": batch + 1})}
            filepath = self.filepath.format(**fields, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}') from e
        dirname = os.path.dirname(filepath)
        if dirname:
            os.makedirs(dirname, exist_ok=True)
        if self.save_best_only:
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available, skipping.", stacklevel=2)
                return
            better = current > self.best if self._greater else current < self.best
            if not better:
                if self.verbose > 0:
                    _print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                _print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best:.5f} to {current:.5f}, "
                       f"saving model to {filepath}")
            self.best = current
        elif self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: saving model to {filepath}")
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if kwargs:
            raise ValueError(f"ReduceLROnPlateau: unrecognized arguments {kwargs}")
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"Learning rate reduction mode {mode} is unknown, fallback to auto mode.", stacklevel=2)
            mode = "auto"
        self.monitor, self.factor, self.patience, self.verbose = monitor, float(factor), patience, verbose
        self.mode = mode
        self.min_delta, self.cooldown, self.min_lr = min_delta, cooldown, min_lr
        self._reset()

    def _reset(self):
        self._greater = not (self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor))
        self.best = -np.inf if self._greater else np.inf
        self.cooldown_counter = self.wait = 0

    def _improved(self, current):
        if self._greater:
            return current > self.best + self.min_delta
        return current < self.best - self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs if logs is not None else {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                          f"available. Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = float(self.model.optimizer.learning_rate)
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        _print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """Sets the learning rate at each epoch start to ``schedule(epoch, lr)`` (or ``schedule(epoch)``)."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = float(self.model.optimizer.learning_rate)
        try:
            lr = self.schedule(epoch, lr)
        except TypeError:
            lr = self.schedule(epoch)
        if not isinstance(lr, (float, int, np.floating, np.integer)) or isinstance(lr, bool):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {lr!r}")
        self.model.optimizer.learning_rate = float(lr)
        if self.verbose > 0:
            _print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {float(lr)}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(self.model.optimizer.learning_rate)


class CSVLogger(Callback):
    """Streams each epoch's logs to a CSV file (``epoch`` column, then the sorted log keys)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.writer = self.keys = self.csv_file = None

    def on_train_begin(self, logs=None):
        has_content = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self.append_header = not has_content
        self.csv_file = open(self.filename, "a" if self.append else "w", newline="")
        self.writer, self.keys = None, None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}

        def handle_value(v):
            if isinstance(v, str):
                return v
            if isinstance(v, collections.abc.Iterable) and not (isinstance(v, np.ndarray) and v.ndim == 0):
                return f'"[{", ".join(map(str, v))}]"'
            return v

        if self.keys is None:
            self.keys = sorted(logs)
        if self.writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep
            self.writer = csv.DictWriter(self.csv_file, fieldnames=["epoch"] + self.keys, dialect=Dialect)
            if self.append_header:
                self.writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, handle_value(logs.get(k, "NA"))) for k in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs=None):
        if self.csv_file is not None:
            self.csv_file.close()
        self.writer = self.csv_file = None


class TerminateOnNaN(Callback):
    """Stops training as soon as a batch's loss is NaN or infinite."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(loss):
            _print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """Callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None,
                 on_train_batch_begin=None, on_train_batch_end=None, **kwargs):
        super().__init__()
        hooks = dict(on_epoch_begin=on_epoch_begin, on_epoch_end=on_epoch_end, on_train_begin=on_train_begin,
                     on_train_end=on_train_end, on_train_batch_begin=on_train_batch_begin,
                     on_train_batch_end=on_train_batch_end, **kwargs)
        for name, fn in hooks.items():
            if fn is not None:
                if not hasattr(Callback, name):
                    raise ValueError(f"LambdaCallback: unknown hook {name!r}")
                setattr(self, name, fn)


from fastnn._callbacks_io import BackupAndRestore, RemoteMonitor, TensorBoard  # noqa: E402,F401
