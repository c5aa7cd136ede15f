"""compile / fit / evaluate / predict for every kind of model (Keras 3 semantics), over the model's plan.

A model provides ``_input_names``, ``_output_names``, ``_output_shapes`` (lists), ``_plan()`` and
``_check_inputs(arrays, what)`` (builds or checks shapes); inputs and targets may be one array, a list
or a dict by name. Single-output models keep Keras's flat log names (``loss``, ``accuracy``); models with
several outputs add ``<output>_loss`` and ``<output>_<metric>`` as Keras 3 does.
"""
import math

import numpy as np

from fastnn import callbacks as callbacks_module
from fastnn import losses as losses_module
from fastnn import metrics as metrics_module
from fastnn import optimizers as optimizers_module
from fastnn import saving
from fastnn._progbar import Progbar
from fastnn.layers.base import check_text_input, structure_changed
from fastnn.models import data as D
from fastnn.distribution import data_parallel as distributed
from fastnn.models import feeding
from fastnn.data import as_feed  # tf.data-style Datasets (fastnn/data.py) fed as PyDatasets
from fastnn.regularizers import Penalty
from fastnn.layers.base import _tensor
from fastnn.tensor import no_grad

_F32 = np.float32
_VERBOSE = {0: 0, 1: 1, 2: 2, "auto": 1}


def _pythonify(value):
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else value


def _per_output(spec, names, what, default=None):
    """A compile argument (one item for every output, a list in output order, or a dict by output name) as a
    list with one entry per output."""
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - set(names))
        if unknown:
            raise ValueError(f"compile: {what} has keys {unknown} that are not output names {names}")
        return [spec.get(n, default) for n in names]
    if isinstance(spec, (list, tuple)) and len(names) > 1 and what != "metrics":
        if len(spec) != len(names):
            raise ValueError(f"compile: {what} is a list of {len(spec)} but the model has {len(names)} outputs {names}")
        return list(spec)
    return [spec] * len(names)


class _Unweighted:
    """A compiled metric as an overridden train_step sees it in ``self.metrics``: ``update_state`` drops the
    sample weights (as Keras's compile_metrics container does for ``metrics=``); all else is the metric's."""

    def __init__(self, metric):
        self._metric = metric

    def update_state(self, y_true, y_pred, sample_weight=None):
        return self._metric.update_state(y_true, y_pred)

    def __getattr__(self, name):
        return getattr(self._metric, name)


class Trainer:
    """The training API shared by Model, Sequential and subclassed models."""

    # ---- compile --------------------------------------------------------------------------------
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None, weighted_metrics=None,
                run_eagerly=False, steps_per_execution=1, jit_compile="auto", auto_scale_loss=True):
        """Configure training: optimizer, loss(es), loss_weights and metrics (one item, a list in output order or
        a dict by output name; strings, functions or objects)."""
        if weighted_metrics is not None:
            raise ValueError("compile: weighted_metrics is not supported yet")
        self.optimizer = optimizers_module.get(optimizer)
        names = self._output_names
        self.loss = loss
        self._output_losses = [None if item is None else losses_module.get(item)
                               for item in _per_output(loss, names, "loss")]
        if loss is not None and not isinstance(loss, (list, tuple, dict)):
            self.loss = self._output_losses[0]  # Keras's model.loss is the resolved object for a single loss
        weights = _per_output(loss_weights, names, "loss_weights", 1.0) if loss_weights is not None else [1.0] * len(names)
        self._output_loss_weights = [float(w) for w in weights]
        if metrics is None:
            metrics = []
        if isinstance(metrics, (str, metrics_module.Metric)) or callable(metrics):
            metrics = [metrics]
        if isinstance(metrics, dict):
            per = _per_output(metrics, names, "metrics", [])
        elif len(names) > 1 and metrics and all(isinstance(m, (list, tuple)) for m in metrics):
            if len(metrics) != len(names):
                raise ValueError(f"compile: metrics is a list of {len(metrics)} lists but the model has "
                                 f"{len(names)} outputs {names}")
            per = list(metrics)
        else:
            per = [metrics] * len(names)
        per = [[m] if isinstance(m, (str, metrics_module.Metric)) or callable(m) else list(m or []) for m in per]
        for ms in per:  # unknown names fail now, not at fit time
            for m in ms:
                if isinstance(m, str) and m not in ("accuracy", "acc"):
                    metrics_module.get(m)
        self._metric_ids = per
        self._output_metrics, self._metrics_resolved = [], False
        self.compiled = True
        structure_changed()

    @property
    def metrics(self):
        """The compiled metrics; with an overridden ``train_step``, Keras's "loss" tracker comes first, and the
        compiled metrics ignore a ``sample_weight`` given to their ``update_state`` (Keras weights only
        ``weighted_metrics``; its ``compile_metrics`` container drops the weights of ``metrics=``)."""
        compiled = [m for _, m in getattr(self, "_output_metrics", [])]
        if not self._custom_step():
            return compiled
        views = self.__dict__.setdefault("_unweighted_views", {})
        return [self._loss_tracker] + [views.setdefault(id(m), _Unweighted(m)) for m in compiled]

    # ---- the tf.keras-style hooks an overridden train_step/test_step uses --------------------------
    def _custom_step(self):
        return type(self).train_step is not Trainer.train_step or type(self).test_step is not Trainer.test_step

    @property
    def _loss_tracker(self):
        tracker = self.__dict__.get("_loss_tracker_metric")
        if tracker is None:
            tracker = self.__dict__["_loss_tracker_metric"] = metrics_module.Mean(name="loss")
        return tracker

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled loss(es) of ``y_pred`` (a Tensor, or a list per output) against ``y``, weighted, plus the
        regularization losses: a Tensor that GradientTape differentiates (Keras 3's ``compute_loss``)."""
        preds = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
        ys = D.as_arrays(y, self._output_names, "compute_loss: y") if len(preds) > 1 else [y]
        total = None
        for loss, weight, yk, pk in zip(self._output_losses, self._output_loss_weights, ys, preds):
            if loss is None:
                continue
            term = loss(yk, pk, sample_weight=sample_weight)
            term = term if weight == 1.0 else term * weight
            total = term if total is None else total + term
        for v in self.trainable_weights:  # recorded, so the tape gives the regularizers' gradients too
            if v.regularizer is not None:
                total = total + Penalty.apply(v, regularizer=v.regularizer)
        for term in self._added_loss_terms():
            total = total + term
        return total

    def compiled_loss(self, y, y_pred, sample_weight=None, regularization_losses=None):
        """tf.keras 2's ``self.compiled_loss(y, y_pred)``: compute_loss, also tracked by the "loss" metric."""
        loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
        self._loss_tracker.update_state(float(loss.item()))
        return loss

    @property
    def compiled_metrics(self):
        """tf.keras 2's ``self.compiled_metrics.update_state(y, y_pred)`` over the compiled metrics."""
        model = self

        class _Compiled:
            def update_state(self, y, y_pred, sample_weight=None):
                preds = y_pred if isinstance(y_pred, (list, tuple)) else [y_pred]
                ys = y if isinstance(y, (list, tuple)) else [y]
                if not model._metrics_resolved:
                    model._resolve_metrics([np.shape(t) for t in ys])
                for k, m in model._output_metrics:
                    m.update_state(np.asarray(ys[k]), np.asarray(preds[k]))
        return _Compiled()

    def train_step(self, data):
        """One step on ``data`` = (x, y): override it in the tf.keras style (GradientTape inside,
        ``self.compute_loss``, ``self.optimizer.apply``, return a dict of metric results)."""
        x, y = data[0], data[1]
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        loss, _ = self._plan().train_step(xs, ys)
        logs = {m.name: _pythonify(m.result()) for m in self.metrics}
        logs["loss"] = loss
        return logs

    @property
    def metrics_names(self):
        return ["loss"] + list(self._metric_log_names())

    def _metric_log_names(self):
        multi = len(self._output_names) > 1
        for k, m in self._output_metrics:
            yield f"{self._output_names[k]}_{m.name}" if multi else m.name

    def _resolve_metrics(self, y_shapes):
        if not self._metrics_resolved:
            self._output_metrics = [(k, metrics_module.get(m, y_shapes[k], self._output_shapes[k]))
                                    for k, ms in enumerate(self._metric_ids) for m in ms]
            self._metrics_resolved = True
            structure_changed()

    def _require_compiled(self, what):
        if not getattr(self, "compiled", False):
            raise RuntimeError(f"You must call `compile()` before using the model's {what}().")
        custom = type(self).test_step is not Trainer.test_step if what == "evaluate" else \
            type(self).train_step is not Trainer.train_step
        if all(loss is None for loss in self._output_losses) and not custom:  # (a custom step may compute it)
            raise ValueError(f"{what}: the model was compiled without a loss; pass `loss=` to compile()")

    # ---- data -----------------------------------------------------------------------------------
    def _prepare_x(self, x, what):
        xs = self._adjust_ranks(self._match_inputs(D.as_arrays(x, self._input_names, f"{what}: x"), what))
        self._check_inputs(xs, what)
        return xs

    def _adjust_ranks(self, xs):
        """Keras's Functional._adjust_input_rank: an array one axis short of its Input whose last axis is 1 gets
        that axis ((N,) for an Input((1,))), one with an extra trailing axis of 1 loses it; other shapes are
        left to _check_inputs' message."""
        inputs = self.__dict__.get("_inputs")
        if not inputs:
            return xs
        out = xs
        for k, (x, t) in enumerate(zip(xs, inputs)):
            rank = len(t.shape)
            if x.ndim == rank:
                continue
            if x.ndim == rank - 1 and rank > 1 and t.shape[-1] == 1:
                x = x[..., None]
            elif x.ndim == rank + 1 and x.shape[-1] == 1:
                x = x[..., 0]
            else:
                continue
            out = list(out) if out is xs else out
            out[k] = x
        return out

    def _match_inputs(self, xs, what):
        """Text only for string inputs, numbers only for the others (data.match_inputs); numeric arrays of
        numeric inputs pass untouched."""
        if all(x.dtype.kind in "biuf" for x in xs) and "string" not in self._input_dtypes():
            return xs
        shapes = [t.shape for t in getattr(self, "_inputs", None) or []]
        xs = D.match_inputs(xs, [D.input_dtype(d) for d in self._input_dtypes()], self._input_names, shapes, what)
        if self.built and "string" in self._input_dtypes():  # every step reading a string input must take text
            plan = self._plan()
            for slot, dt, name in zip(plan.input_slots, plan.input_dtypes, self._input_names):
                for layer, ins, *_ in plan.steps if dt is D._STR else ():
                    if slot in ins:
                        check_text_input(layer, f"the string input '{name}'")
        return xs

    def _prepare_xy(self, x, y, what):
        """(input arrays, prepared target arrays (None for outputs without a loss), target shapes)."""
        xs = self._prepare_x(x, what)
        ys = D.as_arrays(y, self._output_names, f"{what}: y")
        D.check_cardinality(xs, ys)
        targets = []
        for k, (loss, yk) in enumerate(zip(self._output_losses, ys)):
            # (an axis the output leaves free, e.g. a sequence's time steps (None, None, F), takes the target's size)
            template = np.broadcast_to(_F32(0), (len(yk),) + tuple(
                (yk.shape[j] if j < yk.ndim else 1) if d is None else d
                for j, d in enumerate(self._output_shapes[k][1:], 1)))
            if loss is None and self._custom_step():  # the user's train_step/test_step gets y as given
                targets.append(yk.astype(_F32) if yk.dtype == np.float64 else yk)
                continue
            targets.append(None if loss is None else loss._prepare_targets(yk, template))
        return xs, targets, [yk.shape for yk in ys]

    # ---- training -------------------------------------------------------------------------------
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None, validation_split=0.0,
            validation_data=None, shuffle=True, class_weight=None, sample_weight=None, initial_epoch=0,
            steps_per_epoch=None, validation_steps=None, validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a ``History`` (``.history``: dict of per-epoch lists)."""
        self._require_compiled("fit")
        verbose, batch_size = D.verbose_level(verbose), D.batch_size_of(batch_size)
        for arg, value in (("epochs", epochs), ("initial_epoch", initial_epoch), ("validation_freq", validation_freq)):
            least = 1 if arg == "validation_freq" else 0
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"fit: {arg} must be a non-negative integer, got {value!r}")
        x, validation_data = as_feed(x), as_feed(validation_data)
        x_only = y is None and type(self).train_step is not Trainer.train_step and not feeding.is_stream(x)
        if feeding.is_stream(x):  # a generator or PyDataset (models/feeding.py)
            if validation_split:
                raise ValueError("fit: validation_split is only supported for arrays, not for generators or PyDatasets")
            batches = feeding.fit_batches(self, x, y, sample_weight, class_weight, steps_per_epoch, shuffle,
                                          epochs - initial_epoch)
            xs, y_shapes = None, batches.y_shapes
        elif x_only:  # Keras: an overridden train_step may take x alone (a VAE's fit(x)); data = x as given
            xs = [D.as_array(a, "fit: x") for a in (x if isinstance(x, (list, tuple)) else [x])]
            ys = [np.zeros(len(xs[0]), _F32)]
        else:
            xs = D.as_arrays(x, self._input_names, "fit: x")
            ys = D.as_arrays(y, self._output_names, "fit: y")
            D.check_cardinality(xs, ys)
        n = 0 if xs is None else len(xs[0])
        if xs is not None and validation_data is None and validation_split:
            if not 0.0 < validation_split < 1.0:
                raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
            split_at = int(math.floor(n * (1.0 - validation_split)))
            if split_at == 0 or split_at == n:
                raise ValueError(f"Training data contains {n} samples, which is not sufficient to split it into a "
                                 f"validation and training set as specified by `validation_split={validation_split}`. "
                                 f"Either provide more data, or a different value for the `validation_split` argument.")
            # the LAST fraction, taken before shuffling (sample weights are split the same way)
            val_sw = None if sample_weight is None else np.asarray(sample_weight)[split_at:]
            validation_data = ([a[split_at:] for a in xs], [a[split_at:] for a in ys], val_sw)
            xs, ys = [a[:split_at] for a in xs], [a[:split_at] for a in ys]
            sample_weight = None if sample_weight is None else np.asarray(sample_weight)[:split_at]
        if x_only:
            yt, y_shapes = ys, None
            weights = None if sample_weight is None else np.asarray(sample_weight, _F32)
        elif xs is not None:
            xs, yt, y_shapes = self._prepare_xy(xs, ys, "fit")
            weights = D.sample_weights(len(xs[0]), next(t for t in yt if t is not None), class_weight, sample_weight,
                                       "fit")
        val = None
        if feeding.is_stream(validation_data):
            val = feeding.validation_runner(self, validation_data, validation_steps)
        elif validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be a tuple (x_val, y_val) or (x_val, y_val, sample_weight)")
            xv, yv, _ = self._prepare_xy(validation_data[0], validation_data[1], "fit: validation_data")
            vw = validation_data[2] if len(validation_data) == 3 else None
            val = (xv, yv, D.sample_weights(len(xv[0]), None, None, vw, "fit: validation_data"))
        val_bs = D.batch_size_of(validation_batch_size or batch_size, "validation_batch_size")
        if not x_only:  # (x alone: the user's train_step does all; the model may have no call() to plan)
            self._resolve_metrics(y_shapes)
        plan = None if x_only else self._plan()
        dp = None
        if xs is not None:
            # under DataParallel: this rank's share of each global batch (None: one process, or a stream, which every
            # rank then runs whole)
            dp = None if x_only else distributed.fit_begin(self, plan, xs, yt, batch_size, shuffle, epochs,
                                                           initial_epoch)
            targets = [t if t is not None else np.zeros(len(xs[0]), _F32) for t in yt]
            # integer inputs are gathered as int32, float ones as float32 (plan.input_dtypes)
            dtypes = [np.int32 if a.dtype.kind in "biu" else _F32 for a in xs] if x_only else plan.input_dtypes
            loader = (dp or D).Loader(xs, targets, batch_size, shuffle, dtypes)
            batches = feeding.ArrayBatches(loader, weights,
                                           feeding.check_steps(steps_per_epoch, "fit: steps_per_epoch"))
        steps = batches.steps
        cbs = (dp or callbacks_module).CallbackList(callbacks, self,
                                                    {"verbose": verbose, "epochs": epochs, "steps": steps},
                                                    add_history=True, add_progbar=verbose != 0)
        self.stop_training = False
        metrics = [m for _, m in self._output_metrics]
        names = self._output_names
        multi = len(names) > 1
        totals = [0.0, 0, [0.0] * len(names)]  # the epoch's loss summed over samples, samples seen, per output

        def batch_logs():
            logs = dict(zip(self._metric_log_names(), (_pythonify(m.result()) for m in metrics)))
            seen = max(totals[1], 1)
            logs["loss"] = totals[0] / seen
            if multi:
                for k, name in enumerate(names):
                    if plan.losses[k] is not None:
                        logs[f"{name}_loss"] = totals[2][k] / seen
            return dict(sorted(logs.items()))

        custom = type(self).train_step is not Trainer.train_step
        if custom:  # the user's train_step gets (x, y) as given (one array or a list) and returns the logs
            for m in self.metrics:
                m.reset_state()
            user_logs = {}

            def train_step(xb, yb, wb=None):
                data = (xb[0] if len(xb) == 1 else xb, yb[0] if len(yb) == 1 else yb)
                if x_only:
                    data = data[0] if wb is None else (data[0], None, wb)
                elif wb is not None:
                    data += (wb,)  # Keras: (x, y, sample_weight)
                out = self.train_step(data)
                user_logs.clear()
                user_logs.update((k, _pythonify(v.numpy() if hasattr(v, "numpy") else v)) for k, v in out.items())
                return float(user_logs.get("loss", 0.0)), []

            def user_batch_logs():
                return dict(sorted(user_logs.items()))
            logs_now = user_batch_logs
        else:
            train_step, logs_now = plan.train_step, batch_logs
        if dp:  # this rank's share of each batch; logs summed over the ranks
            train_step, logs_now = dp.step_fns(train_step, logs_now, totals, metrics)
        begin_hooks, end_hooks = cbs.needs_batch_begin, cbs.needs_batch_end
        self._initial_epoch = None
        cbs.on_train_begin()
        initial_epoch = self._initial_epoch or initial_epoch  # BackupAndRestore's resumed epoch (Keras)
        epoch_logs = {}
        for epoch in range(initial_epoch, epochs):
            for m in (self.metrics if custom else metrics):
                m.reset_state()
            totals[0] = totals[1] = 0
            totals[2] = [0.0] * len(names)
            cbs.on_epoch_begin(epoch)
            for step, (xb, yb, wb) in enumerate(batches.epoch(epoch)):
                if begin_hooks:
                    cbs.train_batch_begin(step)
                rows = len(xb[0])
                if wb is None:
                    loss, per = train_step(xb, yb)
                else:
                    loss, per = train_step(xb, yb, wb)
                totals[0] += loss * rows
                totals[1] += rows
                if multi:
                    for k, value in enumerate(per):
                        if value is not None:
                            totals[2][k] += value * rows
                if end_hooks:
                    cbs.train_batch_end(step, logs_now)
                if self.stop_training:
                    break
            if batches.ran_out:  # a generator ran out: Keras warns and stops (after this epoch if it had batches)
                feeding.warn_ran_out()
                self.stop_training = True
                if not totals[1]:
                    break
            epoch_logs = logs_now()
            if val is not None and (epoch + 1) % validation_freq == 0:
                val_logs = val() if callable(val) else self._evaluate_arrays(val[0], val[1], val_bs, weights=val[2])
                epoch_logs.update(("val_" + k, v) for k, v in val_logs.items())
            cbs.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        batches.close()
        finalize = getattr(self.optimizer, "finalize_variable_values", None)
        if finalize is not None and epochs > initial_epoch:  # use_ema: weights := their moving averages (Keras)
            finalize(self.trainable_weights)
        cbs.on_train_end(epoch_logs)
        if dp:
            dp.end()
        return cbs.history

    def train_on_batch(self, x, y):
        """One training step on one batch; returns the loss (or [loss, metrics...] when compiled with metrics)."""
        self._require_compiled("train_on_batch")
        xs, yt, y_shapes = self._prepare_xy(x, y, "train_on_batch")
        self._resolve_metrics(y_shapes)
        metrics = [m for _, m in self._output_metrics]
        for m in metrics:
            m.reset_state()
        plan = self._plan()
        loss, _ = plan.train_step([D.rows(a, slice(None), dt) for a, dt in zip(xs, plan.input_dtypes)], yt)
        return loss if not metrics else [loss] + [_pythonify(m.result()) for m in metrics]

    def test_on_batch(self, x, y, sample_weight=None, return_dict=False):
        """Loss (and metrics) on one batch, inference mode."""
        n = len(D.as_arrays(x, self._input_names, "test_on_batch: x")[0])
        return self.evaluate(x, y, batch_size=max(1, n), verbose=0, sample_weight=sample_weight,
                             return_dict=return_dict)

    # ---- inference ------------------------------------------------------------------------------
    def _inference_chunks(self, xs, logit_steps=(), rows=None):
        """Yield (start, stop, output arrays) over the inputs in chunks (of ``rows``, default the plan's), in
        inference mode (no dropout, no graph)."""
        plan = self._plan()
        chunk = rows or plan.rows
        n = len(xs[0])
        with no_grad():
            folded = plan._folded() if plan.folds and not logit_steps else None  # (once for every chunk)
            for lo in range(0, n, chunk):
                hi = min(n, lo + chunk)
                batch = [D.rows(a, slice(lo, hi), dt) for a, dt in zip(xs, plan.input_dtypes)]
                yield lo, hi, plan.forward(batch, False, False, logit_steps)[0] if logit_steps else \
                    plan.infer(batch, folded)

    def test_step(self, data):
        """Loss and metrics on one batch ``data`` = (x, y) in inference mode; override it in the tf.keras style
        (``y_pred = self(x, training=False)``, update ``self.metrics``, return a dict of results)."""
        x, y = data[0], data[1]
        xs = x if isinstance(x, list) else [x]
        ys = y if isinstance(y, list) else [y]
        return self._evaluate_plan([D.rows(a, slice(None), dt) for a, dt in zip(xs, self._plan().input_dtypes)], ys,
                                   max(1, len(xs[0])))

    def _custom_test_step(self, xs, yt, batch_size, progbar=None):
        """evaluate with an overridden test_step: batches of ``batch_size``, the last batch's logs."""
        n = len(xs[0])
        batches = (([a[lo:lo + batch_size] for a in xs], [t[lo:lo + batch_size] for t in yt],
                    -(-(lo + batch_size) // batch_size) if lo + batch_size < n else None)
                   for lo in range(0, n, batch_size))
        return self._custom_test_step_batches(batches, progbar)

    def _custom_test_step_batches(self, batches, progbar=None):
        """The user's test_step over (xs, ys, progress step or None) batches; the last batch's logs."""
        for m in self.metrics:
            m.reset_state()
        logs = {}
        for xb, yb, step in batches:
            out = self.test_step((xb[0] if len(xb) == 1 else xb, yb[0] if len(yb) == 1 else yb))
            logs = {k: _pythonify(v.numpy() if hasattr(v, "numpy") else v) for k, v in out.items()}
            if progbar is not None and step is not None:
                progbar.update(step, list(logs.items()))
        return dict(sorted(logs.items()))

    def _evaluate_arrays(self, xs, yt, batch_size, progbar=None, weights=None):
        if type(self).test_step is not Trainer.test_step:
            return self._custom_test_step(xs, yt, batch_size, progbar)
        return self._evaluate_plan(xs, yt, batch_size, progbar, weights)

    def _evaluate_plan(self, xs, yt, batch_size, progbar=None, weights=None):
        reduce = distributed.active() is not None
        if reduce:  # this rank's rows; _evaluate_chunks sums every rank's
            xs, yt, weights = distributed.shard_eval(xs, yt, weights)
        n = len(xs[0])

        def chunks():  # a masked output's loss is a mean over its unmasked steps per batch, as Keras: chunks = batches
            plan = self._plan()
            for lo, hi, outs in self._inference_chunks(xs, plan.fused_steps, batch_size if plan.masked else None):
                yield (hi - lo, outs, [None if t is None else t[lo:hi] for t in yt],
                       None if weights is None else weights[lo:hi], -(-hi // batch_size) if hi < n else None)
        return self._evaluate_chunks(chunks(), progbar, reduce)

    def _evaluate_chunks(self, chunks, progbar=None, reduce=False):
        """Loss and metric logs over (rows, output arrays, targets, sample weights or None, progress step or None)
        chunks computed in inference mode; ``reduce``: sums over the ranks of a DataParallel run (each had its rows)."""
        plan = self._plan()
        metrics = [m for _, m in self._output_metrics]
        for m in metrics:
            m.reset_state()
        names = self._output_names
        multi = len(names) > 1
        total, seen, per_total = 0.0, 0, [0.0] * len(names)

        def logs():
            out = dict(zip(self._metric_log_names(), (_pythonify(m.result()) for m in metrics)))
            out["loss"] = total / max(seen, 1)
            if multi:
                for k, name in enumerate(names):
                    if plan.losses[k] is not None:
                        out[f"{name}_loss"] = per_total[k] / max(seen, 1)
            return dict(sorted(out.items()))

        for rows, outs, ys, wb, step in chunks:
            for k, loss in enumerate(plan.losses):
                if loss is None:
                    continue
                value = plan.loss_value(k, outs[k], ys[k], wb) * rows  # (a masked output: its unmasked steps)
                total += plan.loss_weights[k] * value
                per_total[k] += value
            if plan.loss_adders:
                total += plan.added_losses() * rows
            seen += rows
            plan.update_metrics(ys, outs)
            if progbar is not None and step is not None:
                progbar.update(step, list(logs().items()))
        if reduce:
            total, seen, per_total = distributed.sum_eval(total, seen, per_total, metrics)
        out = logs()
        if plan.regularized:
            out["loss"] += plan.penalty()
        return out

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None, steps=None, callbacks=None,
                 return_dict=False):
        """Loss (and metrics) on (x, y) in inference mode: a float, or ``[loss, *output losses, *metrics]``
        when there are metrics or several outputs (``return_dict=True``: a dict)."""
        self._require_compiled("evaluate")
        verbose, batch_size = distributed.verbose(D.verbose_level(verbose)), D.batch_size_of(batch_size)
        cbs = callbacks_module.CallbackList(callbacks, self, {"verbose": verbose}, add_history=False)
        x = as_feed(x)
        if feeding.is_stream(x):  # a generator or PyDataset (models/feeding.py)
            if y is not None or sample_weight is not None:
                raise ValueError("evaluate: when x is a generator or a PyDataset, y and sample_weight must be None")
            cbs.on_test_begin()
            progbar = Progbar(None, verbose=verbose) if verbose else None
            logs = feeding.evaluate_stream(self, x, steps, progbar)
        else:
            xs, yt, y_shapes = self._prepare_xy(x, y, "evaluate")
            weights = D.sample_weights(len(xs[0]), None, None, sample_weight, "evaluate")
            if steps is not None:  # Keras: the first `steps` batches
                xs, yt, weights = feeding.first_batches([xs, yt, weights], steps, batch_size, "evaluate: steps")
            self._resolve_metrics(y_shapes)
            cbs.on_test_begin()
            progbar = Progbar(-(-len(xs[0]) // batch_size), verbose=verbose) if verbose else None
            logs = self._evaluate_arrays(xs, yt, batch_size, progbar, weights)
        if progbar is not None:
            progbar.update(progbar.target, list(logs.items()), finalize=True)
        cbs.on_test_end(logs)
        if return_dict:
            return logs
        if type(self).test_step is not Trainer.test_step:  # the user's logs: loss first, then the rest
            values = [logs["loss"]] * ("loss" in logs) + [v for k, v in logs.items() if k != "loss"]
            return values[0] if len(values) == 1 else values
        names = self._output_names
        keys = ["loss"]
        if len(names) > 1:
            keys += [f"{name}_loss" for k, name in enumerate(names) if self._output_losses[k] is not None]
        keys += list(self._metric_log_names())
        return logs["loss"] if len(keys) == 1 else [logs[k] for k in keys]

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Model outputs for x (inference mode): one array, or a list/dict of arrays as the outputs were given."""
        # NOTE: the argument checks are dict lookups first: a batch-1 predict is latency-bound
        verbose = _VERBOSE.get(verbose, -1) if type(verbose) in (int, str) else -1
        if verbose < 0:
            verbose = D.verbose_level(verbose)
        batch_size = 32 if batch_size is None else D.batch_size_of(batch_size)
        if type(x) is not np.ndarray:
            x = as_feed(x)
        if type(x) is not np.ndarray and feeding.is_stream(x):  # a generator or PyDataset (models/feeding.py)
            return feeding.predict_stream(self, x, steps, lambda n: Progbar(n, verbose=verbose) if verbose else None)
        xs = D.as_arrays(x, self._input_names, "predict: x")  # (_prepare_x, inlined)
        if xs[0].dtype.kind not in "biuf" or len(xs) > 1 or "string" in self._input_dtypes():
            xs = self._match_inputs(xs, "predict")
        if steps is not None:  # Keras: the first `steps` batches
            xs = feeding.first_batches([xs], steps, batch_size, "predict: steps")[0]
        xs = self._adjust_ranks(xs)
        self._check_inputs(xs, "predict")
        plan = self._plan()
        n = len(xs[0])
        if not verbose and callbacks is None and n <= plan.rows:
            # one forward pass, no progress bar or callbacks: the low-latency path. NOTE: no_grad's flag is set
            # directly (the context manager's object and two calls are ~10% of a batch-1 predict)
            enabled, _tensor._grad_enabled = _tensor._grad_enabled, False
            try:
                if len(xs) == 1:
                    x0, dt = xs[0], plan.input_dtypes[0]
                    outs = plan.infer([x0 if x0.dtype == dt else x0.astype(dt)])
                else:
                    outs = plan.infer([a if a.dtype == dt else a.astype(dt) for a, dt in zip(xs, plan.input_dtypes)])
            finally:
                _tensor._grad_enabled = enabled
            # kernels return fresh arrays; a view (of x, through Flatten/Reshape) or x itself is copied
            if len(outs) == 1 and self._output_structure == "single":
                h = outs[0]
                return h.copy() if h.base is not None or h is xs[0] else h
            return self._structure_outputs([h.copy() if h.base is not None or any(h is a for a in xs) else h
                                            for h in outs])
        outs = [np.empty((n,) + tuple(shape[1:]), _F32) for shape in self._output_shapes]
        dp, verbose = distributed.active(), distributed.verbose(verbose)
        cbs = callbacks_module.CallbackList(callbacks, self, {"verbose": verbose}, add_history=False)
        cbs.on_predict_begin()
        progbar = Progbar(-(-n // batch_size), verbose=verbose) if verbose else None
        for lo, hi, hs in distributed.predict_chunks(self, xs) if dp else self._inference_chunks(xs):
            for out, h in zip(outs, hs):
                out[lo:hi] = h
            if progbar is not None and hi < n:
                progbar.update(-(-hi // batch_size))
        if dp:  # every rank's rows
            distributed.gather(outs)
        if progbar is not None:
            progbar.update(progbar.target, finalize=True)
        cbs.on_predict_end()
        return self._structure_outputs(outs)

    def predict_on_batch(self, x):
        """Outputs for one batch (inference mode)."""
        n = len(D.as_arrays(x, self._input_names, "predict_on_batch: x")[0])
        return self.predict(x, batch_size=max(1, n), verbose=0)

    def _structure_outputs(self, outs):
        """Output arrays as the model's outputs were given: one array, a list, or a dict by name."""
        kind = self._output_structure
        if kind == "single":
            return outs[0]
        if kind == "dict":
            return dict(zip(self._output_names, outs))
        return outs

    # ---- saving (fastnn.saving) -----------------------------------------------------------------
    def save(self, filepath, overwrite=True):
        """Save architecture, weights, compile configuration and optimizer state to one `.keras` file."""
        if distributed.writes():  # under DataParallel, rank 0 writes
            saving.save_model(self, filepath, overwrite=overwrite)

    def save_weights(self, filepath, overwrite=True):
        """Save the weights to `<name>.weights.npz` (or `.weights.h5` with h5py installed)."""
        if distributed.writes():
            saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False, by_name=False):
        """Load weights from `save_weights` files, `.keras` or legacy `.h5` files into this (built) model."""
        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, by_name=by_name)
