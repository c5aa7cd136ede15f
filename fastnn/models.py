"""Sequential models: build, summary, compile / fit / evaluate / predict with Keras 3 semantics.

The training step runs each layer's numpy-level ``_forward``/``_backward`` pair directly (no autograd
graph), fuses a final softmax into a cross-entropy loss (computed from the logits), and updates every
parameter with one fused optimizer call.

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> model = fastnn.models.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> history = model.fit(np.random.rand(64, 4), np.random.randint(0, 3, 64), epochs=2, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""
import math
import os
import shutil

import numpy as np

from fastnn import backend
from fastnn import callbacks as callbacks_module
from fastnn import losses as losses_module
from fastnn import metrics as metrics_module
from fastnn import optimizers as optimizers_module
from fastnn import saving
from fastnn._naming import shape_str
from fastnn._progbar import Progbar
from fastnn.layers.base import _VERSION, Layer, structure_changed
from fastnn.layers.core import InputLayer
from fastnn.tensor import no_grad

_F32 = np.float32
# evaluate/predict run the forward pass in chunks sized by the model, not by batch_size (each sample's output
# does not depend on the chunk): the largest activation of a chunk is kept near this many floats, which keeps
# it in cache and the memory bounded (measured, MNIST CNN predict, 1 thread: 3,200 samples/s in chunks of 64
# rows vs 1,500 in chunks of 1,024), clamped to [_CHUNK_MIN, _CHUNK_MAX] rows.
_CHUNK_FLOATS = 2 * 1024 * 1024
_CHUNK_MIN, _CHUNK_MAX = 16, 1024


def _as_array(data, what):
    """A numeric numpy array (no copy for arrays; Tensors unwrap) or a ValueError/TypeError naming ``what``."""
    if data is None:
        raise ValueError(f"{what} is required, got None")
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be numeric (int, uint or float), got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{what} must have a batch dimension, got a scalar")
    if arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}): expected at least one sample")
    return arr


def _verbose(verbose):
    if verbose == "auto":
        return 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return int(verbose)


def _batch_size(batch_size, what="batch_size"):
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"{what} must be a positive integer, got {batch_size!r}")
    return int(batch_size)


def _check_cardinality(x, y):
    if len(x) != len(y):
        raise ValueError(f"Data cardinality is ambiguous: x has {len(x)} samples (shape {x.shape}) but y has "
                         f"{len(y)} samples (shape {y.shape}). Make sure all arrays contain the same number of "
                         f"samples.")


def _prefetch():
    """Whether fit's loader gathers the next batch in its background thread: only when the kernels' OpenMP
    threads leave a core free. NOTE: with every core busy the gather thread competes with OpenMP and was
    measured to slow steps down (MLP 784-128-10, batch 256, loaded 2-core machine: 4.5 vs 2.9 ms/step)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores > backend.get_num_threads()


def _sample_weights(n, targets, class_weight, sample_weight, what):
    """Per-sample float32 weights from ``sample_weight`` (N,) and/or ``class_weight`` {class: weight} (Keras:
    classes from integer labels, the arg-max of one-hot targets or rounded binary targets), or None."""
    if class_weight is None and sample_weight is None:
        return None
    w = np.ones(n, np.float32)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float32)
        if sw.shape not in ((n,), (n, 1)):
            raise ValueError(f"{what}: sample_weight must have shape ({n},), got {sw.shape}")
        if not np.isfinite(sw).all():
            raise ValueError(f"{what}: sample_weight contains NaN or infinite values")
        w *= sw.reshape(n)
    if class_weight is not None:
        if not isinstance(class_weight, dict):
            raise ValueError(f"{what}: class_weight must be a dict {{class index: weight}}, got {class_weight!r}")
        labels = np.asarray(targets)
        if labels.ndim > 1:
            labels = labels.argmax(axis=-1) if labels.shape[-1] != 1 else labels[..., 0]
        labels = np.round(labels).astype(np.int64).reshape(n)
        table = np.ones(max(int(labels.max()) + 1, max(class_weight) + 1), np.float32)
        for cls, weight in class_weight.items():
            table[int(cls)] = weight
        w *= table[labels]
    return w


def _rows(x, idx):
    """Rows ``idx`` (a slice or index array) of x as a float32 array (the cast fused into the gather)."""
    xb = x[idx]
    return xb if xb.dtype == _F32 else xb.astype(_F32)


def _softmax(z):
    return backend.of(z).softmax_forward(z)


class _Plan:
    """The one way a Sequential runs: fit's training step, train_on_batch, evaluate, predict and a nested
    model's ``_forward``/``_backward`` all walk these lists of layer pairs. Built on first use and cached
    by the model until its layers, loss, metrics or any layer's weights/trainable state change
    (``Sequential._plan``)."""

    def __init__(self, model, version):
        self.version = version
        self.model = model
        self.layers = layers = list(model._layers)
        self.last = len(layers) - 1
        loss = self.loss = model.loss
        # the softmax-into-loss fusion, decided once here for fit, train_on_batch and evaluate
        self.fused = (loss is not None and loss._softmax_fusable and not loss.from_logits
                      and getattr(layers[-1], "_act", None) == "softmax")
        self.metrics = metrics = model._compiled_metrics
        # metrics see probabilities: softmax(h) when the softmax was fused away, for those needing more
        # than the arg-max
        self.probs_needed = self.fused and any(not m._argmax_only for m in metrics)
        self.variables = [v for layer in layers for v in layer.trainable_weights]
        self.regularized = [v for v in self.variables if v.regularizer is not None]
        trainable = [i for i, layer in enumerate(layers) if layer.trainable_weights]
        self.first = trainable[0] if trainable else len(layers)  # layers below it need no backward
        # rows per inference chunk (see _CHUNK_FLOATS)
        widest = max([math.prod(d or 1 for d in layer._output_shape[1:]) for layer in layers] + [1])
        self.rows = int(min(_CHUNK_MAX, max(_CHUNK_MIN, _CHUNK_FLOATS // widest)))

    # ---- the layer loops ----------------------------------------------------------------------------
    def forward(self, x, training, need_dx=False, logits=False):
        """(outputs, ctxs). Layer i must return dx if i > first, or every layer when ``need_dx`` (a nested
        model whose input gradient is wanted); ``logits`` skips a final softmax."""
        ctxs = []
        first = -1 if need_dx else self.first
        last = self.last
        for i, layer in enumerate(self.layers):
            if logits and i == last:
                x, ctx = layer._forward(x, training, i > first, True)
            else:
                x, ctx = layer._forward(x, training, i > first)
            ctxs.append(ctx)
        return x, ctxs

    def infer(self, x):
        """Outputs only: the same layer ``_forward`` calls without keeping their ctxs (predict; the caller
        holds ``no_grad``, so no op saves anything)."""
        for layer in self.layers:
            x = layer._forward(x, False, False)[0]
        return x

    def backward(self, ctxs, dy, need_dx=False):
        """dx (None unless ``need_dx``) from the output gradient, through the ctxs of ``forward``."""
        layers = self.layers
        for i in range(self.last, -1 if need_dx else self.first - 1, -1):
            dy = layers[i]._backward(ctxs[i], dy)
        return dy if need_dx else None

    # ---- loss and metrics on the outputs -------------------------------------------------------------
    def update_metrics(self, yb, h):
        pred = _softmax(h) if self.probs_needed else h
        for m in self.metrics:
            m._update(yb, h if m._argmax_only else pred)

    def penalty(self):
        return sum(v.regularizer(v.value) for v in self.regularized)

    def train_step(self, xb, yb, wb=None):
        h, ctxs = self.forward(xb, True, False, self.fused)
        if wb is None:
            loss, dh = self.loss._value_and_grad(h, yb, self.fused)
        else:
            loss, dh = self.loss._weighted_value_and_grad(h, yb, wb, self.fused)
        self.backward(ctxs, dh)
        if self.regularized:
            loss += self.penalty()
            for v in self.regularized:
                v.grad = v.grad + v.regularizer.gradient(v.value)
        if self.variables:
            self.model.optimizer._apply_vars(self.variables)
        if self.metrics:
            self.update_metrics(yb, h)
        return loss


class Sequential(Layer):
    """A linear stack of layers that can be trained.

    Args:
        layers: list of layers (the first may be ``Input(shape)`` or carry ``input_shape=``).
        name: model name (default ``sequential``, ``sequential_1``, ...).

    >>> import fastnn
    >>> from fastnn.layers import Dense, Flatten
    >>> model = fastnn.models.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"), Dense(10)])
    >>> model.count_params()
    101770
    """

    _kind = "model"

    def __init__(self, layers=None, trainable=True, name=None):
        super().__init__(name=name, trainable=trainable)
        self._layers = []
        self._batch_input_shape = None
        self.optimizer = self.loss = None
        self.compiled = False
        self._metric_ids = []
        self._compiled_metrics = []
        self._metrics_resolved = False
        self.stop_training = False
        self.history = None
        for layer in layers or []:
            self.add(layer)

    # ---- structure ------------------------------------------------------------------------------
    @property
    def layers(self):
        return list(self._layers)

    def add(self, layer):
        """Append a layer; with a known input shape it is built at once, so shape errors surface here."""
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError(f"Sequential '{self.name}': an Input can only be the first entry of the model")
            self._batch_input_shape = (None,) + tuple(layer.shape[1:])
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer. Received: layer={layer!r} of type "
                            f"{type(layer).__name__}.")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name '{layer.name}' is "
                             f"already the name of a layer in this model. Update the `name` argument to pass a "
                             f"unique name.")
        if not self._layers and self._batch_input_shape is None and layer._batch_input_shape is not None:
            self._batch_input_shape = (None,) + tuple(layer._batch_input_shape[1:])
        self._layers.append(layer)
        structure_changed()
        if self._batch_input_shape is not None:
            try:
                self._build_chain(self._batch_input_shape)
            except Exception:
                self._layers.pop()
                raise

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError(f"There are no layers in the model '{self.name}'.")
        layer = self._layers.pop()
        structure_changed()
        self._output_shape = self._layers[-1]._output_shape if self._layers and self.built else None
        if not self._layers:
            self.built = False
        return layer

    def _build_chain(self, input_shape):
        shape = (None,) + tuple(input_shape[1:])
        for layer in self._layers:
            shape = layer._maybe_build(shape)
        self._input_shape, self._output_shape = (None,) + tuple(input_shape[1:]), shape
        self.built = bool(self._layers)
        structure_changed()
        return shape

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch dimension first)."""
        input_shape = input_shape or self._batch_input_shape
        if input_shape is None:
            raise ValueError(f"Sequential '{self.name}': build() needs an input shape")
        self._batch_input_shape = (None,) + tuple(input_shape[1:])
        self._build_chain(self._batch_input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def _maybe_build(self, input_shape):
        input_shape = tuple(input_shape)
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        if not self.built:
            return self._build_chain(input_shape)
        self._check_input_shape(input_shape)
        return self._output_shape

    def _check_input_shape(self, input_shape):
        expected = self._input_shape
        if input_shape[1:] == expected[1:]:
            return
        if len(input_shape) != len(expected) or any(
                e is not None and g != e for e, g in zip(expected[1:], input_shape[1:])):
            first = self._layers[0]
            raise ValueError(f"Input of model '{self.name}' is incompatible with its first layer '{first.name}' "
                             f"({type(first).__name__}): expected shape={shape_str(expected)}, found "
                             f"shape={shape_str(input_shape)}")

    # ---- weights --------------------------------------------------------------------------------
    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        for layer in self._layers:
            layer.trainable = value

    @property
    def weights(self):
        return [v for layer in self._layers for v in layer.weights]

    @property
    def trainable_weights(self):
        return [v for layer in self._layers for v in layer.trainable_weights] if self._trainable else []

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return self.weights
        return [v for layer in self._layers for v in layer.non_trainable_weights]

    @property
    def losses(self):
        return [p for layer in self._layers for p in layer.losses]

    # ---- math (a Sequential is also a layer) -------------------------------------------------------
    def _plan(self):
        """The cached plan, rebuilt when the layers, the loss or any layer's weights/trainable state changed."""
        plan = self.__dict__.get("_cached_plan")
        if plan is None or plan.version != _VERSION[0]:
            plan = self._cached_plan = _Plan(self, _VERSION[0])
        return plan

    def _forward(self, x, training, need_dx=True, logits=False):
        plan = self._plan()
        y, ctxs = plan.forward(x, training, need_dx, logits)
        return y, (plan, ctxs, need_dx)

    def _backward(self, ctx, dy):
        plan, ctxs, need_dx = ctx
        return plan.backward(ctxs, dy, need_dx)

    @property
    def _act(self):
        return getattr(self._layers[-1], "_act", None) if self._layers else None

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                             for layer in self._layers]}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        from fastnn import layers as layers_module
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("batch_input_shape") is not None:
            model._batch_input_shape = tuple(config["batch_input_shape"])
        for entry in config["layers"]:
            layer_cls = getattr(layers_module, entry["class_name"], None) or (
                cls if entry["class_name"] == cls.__name__ else None)
            if layer_cls is None:
                raise ValueError(f"Unknown layer class in config: {entry['class_name']!r}")
            model.add(layer_cls.from_config(entry["config"]))
        return model

    # ---- summary --------------------------------------------------------------------------------
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Print Keras 3's summary table (layer name and type, output shape, param count, totals)."""
        text = _summary_text(self, line_length, positions)
        if print_fn is None:
            print(text)
        else:
            for line in text.split("\n"):
                print_fn(line)

    # ---- compile --------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure training: optimizer, loss and metrics (strings, functions or objects)."""
        if loss_weights is not None or weighted_metrics is not None:
            raise ValueError("compile: loss_weights and weighted_metrics are not supported yet")
        self.optimizer = optimizers_module.get(optimizer)
        self.loss = losses_module.get(loss) if loss is not None else None
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_module.Metric)) or callable(metrics):
            metrics = [metrics]
        if isinstance(metrics, dict):
            raise ValueError("compile: metrics must be a list for a single-output model, got a dict")
        for m in metrics:  # unknown names fail now, not at fit time
            if isinstance(m, str) and m not in ("accuracy", "acc"):
                metrics_module.get(m)
        self._metric_ids = list(metrics)
        self._compiled_metrics, self._metrics_resolved = [], False
        self.compiled = True
        structure_changed()

    @property
    def metrics(self):
        return list(self._compiled_metrics)

    @property
    def metrics_names(self):
        return ["loss"] + [m.name for m in self._compiled_metrics]

    def _resolve_metrics(self, y_shape):
        if not self._metrics_resolved:
            self._compiled_metrics = [metrics_module.get(m, y_shape, self._output_shape) for m in self._metric_ids]
            self._metrics_resolved = True
            structure_changed()

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"You must call `compile()` before using the model's {what}().")
        if self.loss is None:
            raise ValueError(f"{what}: the model was compiled without a loss; pass `loss=` to compile()")

    # ---- data -----------------------------------------------------------------------------------
    def _prepare_x(self, x, what):
        x = _as_array(x, f"{what}: x")
        if not self.built:
            self._maybe_build((None,) + x.shape[1:])
        else:
            self._check_input_shape((None,) + x.shape[1:])
        return x

    def _prepare_xy(self, x, y, what):
        x = self._prepare_x(x, what)
        y = _as_array(y, f"{what}: y")
        _check_cardinality(x, y)
        template = np.broadcast_to(_F32(0), (len(y),) + tuple(self._output_shape[1:]))
        return x, self.loss._prepare_targets(y, template), y.shape

    # ---- training -------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a ``History`` (``.history``: dict of per-epoch lists)."""
        self._require_compiled("fit")
        verbose, batch_size = _verbose(verbose), _batch_size(batch_size)
        if steps_per_epoch is not None:
            raise ValueError("fit: steps_per_epoch is not supported yet")
        for arg, value in (("epochs", epochs), ("initial_epoch", initial_epoch), ("validation_freq", validation_freq)):
            least = 1 if arg == "validation_freq" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"fit: {arg} must be a non-negative integer, got {value!r}")
        x = _as_array(x, "fit: x")
        y = _as_array(y, "fit: y")
        _check_cardinality(x, y)
        if validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
            split_at = int(math.floor(len(x) * (1.0 - validation_split)))
            if split_at == 0 or split_at == len(x):
                raise ValueError(f"Training data contains {len(x)} samples, which is not sufficient to split it into a "
                                 f"validation and training set as specified by `validation_split={validation_split}`. "
                                 f"Either provide more data, or a different value for the `validation_split` argument.")
            # the LAST fraction, taken before shuffling (sample weights are split the same way)
            val_sw = None if sample_weight is None else np.asarray(sample_weight)[split_at:]
            validation_data = (x[split_at:], y[split_at:], val_sw)
            x, y = x[:split_at], y[:split_at]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[:split_at]
        x, yt, y_shape = self._prepare_xy(x, y, "fit")
        weights = _sample_weights(len(x), yt, class_weight, sample_weight, "fit")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
            xv, yv, _ = self._prepare_xy(validation_data[0], validation_data[1], "fit: validation_data")
            vw = validation_data[2] if len(validation_data) == 3 else None
            val = (xv, yv, _sample_weights(len(xv), yv, None, vw, "fit: validation_data"))
        val_bs = _batch_size(validation_batch_size or batch_size, "validation_batch_size")
        self._resolve_metrics(y_shape)
        plan = self._plan()

        from fastnn._pipeline import BatchLoader
        # shuffled gather + cast into reused float32 buffers, next batch prefetched while a step runs
        loader = BatchLoader(x, yt, batch_size=batch_size, shuffle=bool(shuffle), prefetch=_prefetch())
        steps = len(loader)
        cbs = callbacks_module.CallbackList(callbacks, self, {"verbose": verbose, "epochs": epochs, "steps": steps},
                                            add_history=True, add_progbar=verbose != 0)
        self.stop_training = False
        metrics = self._compiled_metrics
        totals = [0.0, 0]  # the epoch's loss summed over samples, samples seen

        def batch_logs():
            logs = {m.name: _pythonify(m.result()) for m in metrics}
            logs["loss"] = totals[0] / max(totals[1], 1)
            return dict(sorted(logs.items()))

        train_step, begin_hooks, end_hooks = plan.train_step, cbs.needs_batch_begin, cbs.needs_batch_end
        cbs.on_train_begin()
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            for m in metrics:
                m.reset_state()
            totals[0] = totals[1] = 0
            cbs.on_epoch_begin(epoch)
            order = loader.epoch_indices(epoch) if weights is not None else None
            for step, (xb, yb) in enumerate(loader.epoch(epoch)):
                if begin_hooks:
                    cbs.train_batch_begin(step)
                rows = len(xb)
                if order is None:
                    loss = train_step(xb, yb)
                else:
                    loss = train_step(xb, yb, weights[order[totals[1]:totals[1] + rows]])
                totals[0] += loss * rows
                totals[1] += rows
                if end_hooks:
                    cbs.train_batch_end(step, batch_logs)
                if self.stop_training:
                    break
            epoch_logs = batch_logs()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._evaluate_arrays(val[0], val[1], val_bs, weights=val[2])
                epoch_logs.update(("val_" + k, v) for k, v in val_logs.items())
            cbs.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cbs.on_train_end(epoch_logs)
        return cbs.history

    def train_on_batch(self, x, y):
        """One training step on one batch; returns the loss (or [loss, metrics...] when compiled with metrics)."""
        self._require_compiled("train_on_batch")
        x, yt, y_shape = self._prepare_xy(x, y, "train_on_batch")
        self._resolve_metrics(y_shape)
        metrics = self._compiled_metrics
        for m in metrics:
            m.reset_state()
        loss = self._plan().train_step(_rows(x, slice(None)), yt)
        return loss if not metrics else [loss] + [_pythonify(m.result()) for m in metrics]

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, inference mode."""
        return self.evaluate(x, y, batch_size=max(1, len(_as_array(x, "test_on_batch: x"))), verbose=0,
                             sample_weight=sample_weight, return_dict=return_dict)

    # ---- inference ------------------------------------------------------------------------------
    def _inference_chunks(self, x, logits):
        """Yield (start, stop, outputs) over x in chunks, in inference mode (no graph, no dropout)."""
        plan = self._plan()
        chunk = plan.rows
        n = len(x)
        with no_grad():
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                rows = _rows(x, slice(lo, hi))
                yield lo, hi, plan.forward(rows, False, False, True)[0] if logits else plan.infer(rows)

    def _evaluate_arrays(self, x, yt, batch_size, progbar=None, weights=None):
        plan = self._plan()
        metrics = self._compiled_metrics
        for m in metrics:
            m.reset_state()
        total, seen = 0.0, 0

        def logs():
            out = {m.name: _pythonify(m.result()) for m in metrics}
            out["loss"] = total / max(seen, 1)
            return dict(sorted(out.items()))

        for lo, hi, h in self._inference_chunks(x, plan.fused):
            yb = yt[lo:hi]
            total += self.loss._value(h, yb, None if weights is None else weights[lo:hi], plan.fused) * (hi - lo)
            seen = hi
            plan.update_metrics(yb, h)
            if progbar is not None and hi < len(x):
                progbar.update(-(-hi // batch_size), list(logs().items()))
        out = logs()
        if any(v.regularizer is not None for v in self.trainable_weights):
            out["loss"] += sum(self.losses)
        return out

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        """Loss (and metrics) on (x, y) in inference mode: a float, or ``[loss, *metrics]`` when metrics
        were compiled (``return_dict=True``: a dict)."""
        self._require_compiled("evaluate")
        verbose, batch_size = _verbose(verbose), _batch_size(batch_size)
        if steps is not None:
            raise ValueError("evaluate: steps is not supported yet")
        x, yt, y_shape = self._prepare_xy(x, y, "evaluate")
        weights = _sample_weights(len(x), yt, None, sample_weight, "evaluate")
        self._resolve_metrics(y_shape)
        cbs = callbacks_module.CallbackList(callbacks, self, {"verbose": verbose}, add_history=False)
        cbs.on_test_begin()
        progbar = Progbar(-(-len(x) // batch_size), verbose=verbose) if verbose else None
        logs = self._evaluate_arrays(x, yt, batch_size, progbar, weights)
        if progbar is not None:
            progbar.update(progbar.target, list(logs.items()), finalize=True)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        if not self._compiled_metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self._compiled_metrics]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x (inference mode) as one numpy array."""
        verbose, batch_size = _verbose(verbose), _batch_size(batch_size)
        if steps is not None:
            raise ValueError("predict: steps is not supported yet")
        x = self._prepare_x(x, "predict")
        plan = self._plan()
        if not verbose and callbacks is None and len(x) <= plan.rows:
            with no_grad():  # one forward pass, no progress bar or callbacks: the low-latency path
                h = plan.infer(x if x.dtype == _F32 else x.astype(_F32))
            # kernels return fresh arrays; a view (of x, through Flatten/Reshape) is copied
            return h.copy() if h.base is not None or h is x else h
        out = np.empty((len(x),) + tuple(self._output_shape[1:]), _F32)
        cbs = callbacks_module.CallbackList(callbacks, self, {"verbose": verbose}, add_history=False)
        cbs.on_predict_begin()
        progbar = Progbar(-(-len(x) // batch_size), verbose=verbose) if verbose else None
        for lo, hi, h in self._inference_chunks(x, False):
            out[lo:hi] = h
            if progbar is not None and hi < len(x):
                progbar.update(-(-hi // batch_size))
        if progbar is not None:
            progbar.update(progbar.target, finalize=True)
        cbs.on_predict_end()
        return out

    def predict_on_batch(self, x):
        """Outputs for one batch (inference mode)."""
        return self.predict(x, batch_size=max(1, len(_as_array(x, "predict_on_batch: x"))), verbose=0)

    # ---- saving (fastnn.saving) -----------------------------------------------------------------
    def save(self, filepath, overwrite=True):
        """Save architecture, weights, compile configuration and optimizer state to one `.keras` file."""
        saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights to `<name>.weights.npz` (or `.weights.h5` with h5py installed)."""
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath):
        """Load weights from `save_weights` files or `.keras` files into this (built) model."""
        saving.load_weights(self, filepath)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `model.save(path)`: same architecture, weights, compile configuration and
    optimizer state (training resumes exactly where it stopped). See fastnn.saving for the format."""
    config, weights, source = saving.read_model_file(filepath, custom_objects)
    if config.get("class_name") != "Sequential":
        raise ValueError(f"{source}: unsupported model class {config.get('class_name')!r} (fastnn loads Sequential "
                         f"models)")
    try:
        model = Sequential.from_config(config["config"])
        shape = (config.get("build_config") or {}).get("input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
    except (KeyError, TypeError) as e:
        raise ValueError(f"{source}: config.json does not describe a model ({type(e).__name__}: {e})") from None
    return saving.restore_model_state(model, config, weights, source, compile)


def _pythonify(value):
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else value


# ---- summary (Keras 3 summary_utils, rendered as rich renders it) ----------------------------------------

def _readable_size(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def _column_widths(line_length, positions):
    """Cell widths (with the one-space padding each side) as rich sizes Keras's fixed-width columns."""
    positions = [int(line_length * p) for p in positions] if positions[-1] <= 1 else list(positions)
    widths, current = [], 0
    for pos in positions:
        widths.append(pos - current + 2)
        current = pos
    max_width = line_length - (len(widths) + 1)  # box edges and separators
    excess = sum(widths) - max_width
    if excess > 0:  # rich's ratio_reduce with equal ratios
        remaining, ratio_left, reduced = excess, len(widths), []
        for w in widths:
            cut = min(w, round(remaining / ratio_left))
            reduced.append(w - cut)
            remaining -= cut
            ratio_left -= 1
        widths = reduced
    return widths


def _cell(text, width, right=False):
    inner = width - 2
    text = text if len(text) <= inner else text[:max(inner - 1, 0)] + "…"
    return " " + (text.rjust(inner) if right else text.ljust(inner)) + " "


def _summary_text(model, line_length=None, positions=None):
    if line_length is None:
        line_length = min(88, shutil.get_terminal_size((80, 24)).columns - 4)
    widths = _column_widths(line_length, positions or [0.45, 0.80, 1.0])

    def rule(left, mid, right, fill):
        return left + mid.join(fill * w for w in widths) + right

    def row(cells, sep="│"):
        return sep + sep.join(_cell(c, w, right=(i == 2)) for i, (c, w) in enumerate(zip(cells, widths))) + sep

    lines = [f'Model: "{model.name}"', rule("┏", "┳", "┓", "━"),
             row(["Layer (type)", "Output Shape", "Param #"], "┃"), rule("┡", "╇", "┩", "━")]
    for i, layer in enumerate(model._layers):
        if i:
            lines.append(rule("├", "┼", "┤", "─"))
        if layer.built:
            shape, params = shape_str(layer._output_shape), f"{layer.count_params():,}"
        else:
            shape, params = "?", "0 (unbuilt)"
        lines.append(row([f"{layer.name} ({type(layer).__name__})", shape, params]))
    lines.append(rule("└", "┴", "┘", "─"))
    total = sum(v.value.size for v in model.weights)
    trainable = sum(v.value.size for v in model.trainable_weights)
    lines.append(f" Total params: {total:,} ({_readable_size(total * 4)})")
    lines.append(f" Trainable params: {trainable:,} ({_readable_size(trainable * 4)})")
    lines.append(f" Non-trainable params: {total - trainable:,} ({_readable_size((total - trainable) * 4)})")
    if model.optimizer is not None and model.optimizer.built:
        count = model.optimizer.count_params()
        lines.append(f" Optimizer params: {count:,} ({_readable_size(count * 4)})")
    return "\n".join(lines)

