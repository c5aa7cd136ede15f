"""The plan: how every model runs (fit's training step, train_on_batch, evaluate, predict, and a model
nested in another as a layer).

A model describes itself as steps over value slots: ``(layer, input slots, output slots, single_input,
single_output)`` in topological order (a Sequential is a chain, a functional model its graph's nodes).
The plan walks them calling each layer's ``_forward``/``_backward`` pair on arrays; no graph is built per
step. Backward visits the steps in reverse, adds the gradients of a value read by several layers
(fan-out), hands a multi-input layer its output gradient and spreads the list of input gradients it
returns. Steps that neither lead to a trainable weight nor carry a gradient a caller asked for are
skipped. A plan is cached by its model and rebuilt when any layer, weight, trainable flag, loss or metric
changes (``fastnn.layers.base.structure_changed``).

Masks (Keras 3): when some step makes a mask (Embedding(mask_zero=True), Masking), forward is the masked
walk: a bool mask (B, T) per value slot, given to the steps that take one (``mask=``), passed on by
``compute_mask`` (dropped by layers that do not support masking), and applied to an output's loss and
metrics (only its unmasked time steps count, as Keras's mask-as-sample-weight does). Plans without a
mask producer run exactly the code they ran before.
"""
import functools
import math

import numpy as np

from fastnn import backend
from fastnn._ops import conv as _conv
from fastnn._malloc import keep_freed_memory
from fastnn.layers.base import _NO_GRADS, backward_adding, end_sums, start_sums
from fastnn.models.data import input_dtype

# evaluate/predict run the forward pass in chunks sized by the model, not by batch_size (each sample's output
# does not depend on the chunk): the largest activation of a chunk is kept near this many floats, which keeps
# it in cache and the memory bounded (measured, MNIST CNN predict, 1 thread: 3,200 samples/s in chunks of 64
# rows vs 1,500 in chunks of 1,024), clamped to [_CHUNK_MIN, _CHUNK_MAX] rows.
_CHUNK_FLOATS = 2 * 1024 * 1024
_CHUNK_MIN, _CHUNK_MAX = 16, 1024


def _softmax(z):
    return backend.of(z).softmax_forward(z)


def _identity(x):
    return x


def _folded_conv(op, kernel, bias, act, constants, x):
    """A conv op on x with a BatchNormalization folded into kernel/bias (Plan._folded), then act."""
    z = op(_NO_GRADS).forward(x, kernel, bias, "relu" if act == "relu" and op is _conv.Conv2D else None, **constants)
    if act == "relu6" or (act == "relu" and op is not _conv.Conv2D):
        getattr(backend.of(z), act + "_forward")(z, out=z)
    return z


def _unique(items):
    return list(dict.fromkeys(items))


def _as_mask(mask):
    """A mask as a numpy bool array (a layer's compute_mask may return a Tensor), or None."""
    if mask is None or isinstance(mask, (list, tuple)):
        return None
    return np.asarray(getattr(mask, "data", mask), dtype=bool)


class Plan:
    """The steps of ``model`` with what a training step needs: variables, which steps need a backward pass,
    the softmax-into-loss fusion (decided here once for fit, train_on_batch and evaluate), losses and
    metrics per output."""

    def __init__(self, model, version):
        keep_freed_memory()  # (once per process: a step's activations reuse the last step's pages)
        self.version = version
        self.model = model
        self.steps, self.input_slots, self.output_slots, self.nslots = model._plan_steps()
        steps = self.steps
        self.layers = [step[0] for step in steps]
        self.input_dtypes = [input_dtype(d) for d in model._input_dtypes()]  # float32 or int32 per input
        # masks: only when a step can make one; then forward is the masked walk (the others stay untouched)
        self.masked = any(layer._makes_mask() for layer in self.layers)
        self.out_masks = [None] * len(self.output_slots)  # the output masks of the last masked forward
        self.mask_takers = [layer._takes_mask() for layer in self.layers]
        if self.masked:
            self.forward = self._forward_masked
        self.chain = (not self.masked and self.input_slots == [0] and self.output_slots == [len(steps)]
                      and all(s[1] == (k,) and s[2] == (k + 1,) and s[3] and s[4] for k, s in enumerate(steps)))
        self.variables = _unique(v for layer in _unique(self.layers) for v in layer.trainable_weights)
        # layers called at several places: backward adds up their calls' weight gradients
        calls = {}
        for layer in self.layers:
            calls[id(layer)] = calls.get(id(layer), 0) + 1
        self.shared_steps = {k for k, layer in enumerate(self.layers) if calls[id(layer)] > 1}
        self.shared_variables = _unique(v for k in sorted(self.shared_steps) for v in self.layers[k].trainable_weights)
        self.regularized = [v for v in self.variables if v.regularizer is not None]
        self.loss_adders = [layer for layer in _unique(self.layers) if layer._may_add_losses()]
        # which steps must return input gradients (ndx) and which need a backward call at all (back), for a
        # top-level model (its inputs need no gradient); a nested model asked for dx runs every step
        requires = [False] * self.nslots
        self.ndx, self.back = [], []
        for layer, ins, outs, _, _ in steps:
            ndx = any(requires[i] for i in ins)
            back = ndx or bool(layer.trainable_weights)
            for o in outs:
                requires[o] = back
            self.ndx.append(ndx)
            self.back.append(back)
        self.every = [True] * len(steps)
        # outputs that a final softmax produces and nothing else reads: their softmax may be fused
        readers = [0] * self.nslots
        for _, ins, _, _, _ in steps:
            for i in ins:
                readers[i] += 1
        producer = {o: k for k, s in enumerate(steps) for o in s[2]}
        self.softmax_steps = set()
        self.output_softmax = []
        for slot in self.output_slots:
            k = producer.get(slot)
            ends = (k is not None and readers[slot] == 0 and steps[k][4]
                    and getattr(steps[k][0], "_act", None) == "softmax" and self.output_slots.count(slot) == 1)
            self.output_softmax.append(k if ends else None)
            if ends:
                self.softmax_steps.add(k)
        self._fuse(readers)
        self._compile_state(model)
        self.grad_sync = None  # fastnn.distribution's gradient all-reduce during fit (step(k) / finish())
        widest = max([math.prod(d or 1 for d in layer._output_shape[1:]) for layer in self.layers
                      if not isinstance(layer._output_shape, list)] + [1])
        self.rows = int(min(_CHUNK_MAX, max(_CHUNK_MIN, _CHUNK_FLOATS // widest)))

    def _fuse(self, readers):
        """Steps run together, where the first one's output is read by the second only, neither step is called at
        several places, and the plan is not masked:
        - BatchNormalization followed by ReLU/ReLU6 (``_bn_fusable``): the BN kernel applies the activation in its
          store (and its mask in its backward);
        - ZeroPadding2D followed by a 'valid' DepthwiseConv2D when the padding is the one 'same' padding gives it
          (Keras's applications pad so before every stride-2 depthwise layer): the depthwise layer runs with
          padding='same' on the unpadded input;
        - for predict only (``infer``): a Conv2D/DepthwiseConv2D without activation followed by BatchNormalization
          runs as one convolution with the normalization folded into its kernel and bias (``self.folds``).
        ``self.fused_kwargs[k]``: the keywords step k's ``_forward`` takes for it (None: not fused); ``self.passed``:
        the steps whose work the other step does (forward passes the input on, backward the gradient back)."""
        from fastnn.layers.convolutional import Conv2D, DepthwiseConv2D
        from fastnn.layers.normalization import BatchNormalization
        from fastnn.layers.padding import ZeroPadding2D
        steps = self.steps
        self.fused_kwargs, self.passed = [None] * len(steps), set()
        self.folds = {}  # conv step -> the BatchNormalization step folded into it for predict (_folded)
        self._no_fusion = (self.fused_kwargs, self.passed)
        self._fused_layers = []
        if self.masked:
            return
        reader = {}  # slot -> the step reading it (when it has one reader)
        for k, (_, ins, _, _, _) in enumerate(steps):
            for i in ins:
                reader[i] = k
        outputs = set(self.output_slots)
        for k, (layer, ins, outs, single_in, single_out) in enumerate(steps):
            if not (single_in and single_out) or k in self.shared_steps or readers[outs[0]] != 1 or outs[0] in outputs:
                continue
            j = reader[outs[0]]
            second, _, _, second_in, second_out = steps[j]
            if not (second_in and second_out) or j in self.shared_steps:
                continue
            if type(layer) in (Conv2D, DepthwiseConv2D) and type(second) is BatchNormalization and \
                    layer._act in (None, "linear") and second.axis in (-1, len(second._input_shape) - 1):
                self.folds[k] = j  # (predict only: this pairing does not exclude the others below)
            if type(layer) is BatchNormalization and getattr(second, "_bn_fusable", None) is not None:
                self.fused_kwargs[k] = {"activation": second._bn_fusable}
                self.passed.add(j)
            elif type(layer) is ZeroPadding2D and type(second) is DepthwiseConv2D and \
                    second.padding == "valid" and second._same_pads(layer._input_shape) == layer.padding:
                self.fused_kwargs[j] = {"padding": "same"}
                self.passed.add(k)
            else:
                continue
            self._fused_layers += [layer, second]
        self._no_fusion = ([None] * len(steps), set())

    def _fusion(self):
        """(fused_kwargs, passed) for one forward and its backward: none while a fused layer's passes are replaced
        (fastnn.distribution installs its synchronized BatchNormalization's own _forward/_backward on the layer)."""
        for layer in self._fused_layers:
            if "_forward" in layer.__dict__:
                return self._no_fusion
        return self.fused_kwargs, self.passed

    def _compile_state(self, model):
        """Losses, loss weights and metrics per output, and the fusion they allow."""
        n = len(self.output_slots)
        self.losses = list(getattr(model, "_output_losses", None) or [None] * n)
        self.loss_weights = list(getattr(model, "_output_loss_weights", None) or [1.0] * n)
        self.fused = [loss is not None and loss._softmax_fusable and not loss.from_logits
                      and self.output_softmax[k] is not None for k, loss in enumerate(self.losses)]
        self.fused_steps = {self.output_softmax[k] for k in range(n) if self.fused[k]}
        self.metrics = list(getattr(model, "_output_metrics", None) or [])  # (output index, metric)
        self.probs_needed = [self.fused[k] and any(not m._argmax_only for j, m in self.metrics if j == k)
                             for k in range(n)]

    # ---- the layer loops ----------------------------------------------------------------------------
    def forward(self, xs, training, need_dx=False, logit_steps=(), folded=None):
        """(output arrays, ctx) for input arrays ``xs``. ``need_dx``: every step returns input gradients
        (a nested model whose input gradient is wanted); ``logit_steps``: steps whose final softmax is
        skipped (fused into a loss); ``folded``: {step: function of its input} replacing steps, for predict
        (``_folded``)."""
        vals = [None] * self.nslots
        for s, x in zip(self.input_slots, xs):
            vals[s] = x
        ndx = self.every if need_dx else self.ndx
        fused, passed = self._fusion()
        ctxs = []
        for k, (layer, ins, outs, single_in, single_out) in enumerate(self.steps):
            x = vals[ins[0]] if single_in else [vals[i] for i in ins]
            if folded is not None and k in folded:
                y, ctx = folded[k](x), None
            elif fused[k] is not None:  # this step does the work of a neighbour too (_fuse)
                y, ctx = layer._forward(x, training, ndx[k], **fused[k])
            elif k in passed:  # (that neighbour: its work is done by the other step)
                y, ctx = x, None
            elif k in logit_steps:
                y, ctx = layer._forward(x, training, ndx[k], True)
            else:
                y, ctx = layer._forward(x, training, ndx[k])
            if single_out:
                vals[outs[0]] = y
            else:
                for o, v in zip(outs, y):
                    vals[o] = v
            ctxs.append(ctx)
        return [vals[o] for o in self.output_slots], (ctxs, vals, passed)

    def _forward_masked(self, xs, training, need_dx=False, logit_steps=(), in_masks=None):
        """``forward`` with a mask per value slot (see the module docstring), starting from ``in_masks`` (one
        per input or None: a nested model's input masks); the output masks are left in ``self.out_masks``."""
        vals = [None] * self.nslots
        masks = [None] * self.nslots
        for s, x in zip(self.input_slots, xs):
            vals[s] = x
        for s, m in zip(self.input_slots, in_masks or ()):
            masks[s] = m
        ndx = self.every if need_dx else self.ndx
        ctxs = []
        for k, (layer, ins, outs, single_in, single_out) in enumerate(self.steps):
            if single_in:
                x, mask = vals[ins[0]], masks[ins[0]]
                has = mask is not None
            else:
                x, mask = [vals[i] for i in ins], [masks[i] for i in ins]
                has = any(m is not None for m in mask)
                mask = mask if has else None
            kwargs = {"mask": mask} if has and self.mask_takers[k] else {}
            if k in logit_steps:
                y, ctx = layer._forward(x, training, ndx[k], True, **kwargs)
            else:
                y, ctx = layer._forward(x, training, ndx[k], **kwargs)
            out_mask = layer.compute_mask(x, mask) if has or layer._makes_mask() else None
            if single_out:
                vals[outs[0]] = y
                masks[outs[0]] = out_mask
            else:
                out_masks = out_mask if isinstance(out_mask, (list, tuple)) else [out_mask] * len(outs)
                for o, v, m in zip(outs, y, out_masks):
                    vals[o], masks[o] = v, m
            ctxs.append(ctx)
        self.out_masks = [_as_mask(masks[o]) for o in self.output_slots]
        return [vals[o] for o in self.output_slots], (ctxs, vals, ())

    def masked_rows(self, k, out, y, w=None):
        """(output rows, target rows, weights) of output ``k`` that its mask keeps: the time steps of an output
        (B, T, ...) whose mask (B, T) is True, flattened to rows (per-sample weights (B,) spread over the steps);
        None when the output carries no mask."""
        mask = self.out_masks[k]
        if mask is None or out.ndim <= mask.ndim or out.shape[:mask.ndim] != mask.shape:
            return None
        if w is not None:
            w = np.broadcast_to(np.asarray(w, np.float32).reshape((-1,) + (1,) * (mask.ndim - 1)), mask.shape)[mask]
        return out[mask], (None if y is None else np.asarray(y)[mask]), w

    def loss_value(self, k, out, y, w=None):
        """Output ``k``'s loss without its gradient (evaluation): over the unmasked steps of a masked output
        (0 when every step is masked, as Keras)."""
        loss = self.losses[k]
        kept = self.masked and self.masked_rows(k, out, y, w)
        if kept:
            return loss._value(*kept, self.fused[k]) if len(kept[0]) else 0.0
        return loss._value(out, y, w, self.fused[k])

    def infer(self, xs, folded=None):
        """Output arrays only (predict; the caller holds ``no_grad``, so no op saves anything). ``folded``: the
        plan's ``_folded()``, made once by a caller that runs many chunks with the same weights."""
        if self.chain and not self.passed and not self.folds:
            x = xs[0]
            for layer in self.layers:
                x = layer._forward(x, False, False)[0]
            return [x]
        if not self.folds:
            return self.forward(xs, False)[0]
        return self.forward(xs, False, folded=self._folded() if folded is None else folded)[0]

    def _folded(self):
        """{step: function} for predict: each conv of ``self.folds`` with its BatchNormalization folded in
        (inference BN is per-channel affine: gamma (z - mean) / sqrt(var + eps) + beta, so the conv's kernel and
        bias scale by s = gamma / sqrt(var + eps) per output channel and the bias becomes (b - mean) s + beta),
        then the activation fused into that BN (relu/relu6); the BN step passes its input on. Folded from the
        current weights (~20 us a pair) once per predict/evaluate call (its chunks share them) or per infer
        call: a trained or reloaded weight is never stale."""
        fused, passed = self._fusion()
        if fused is self._no_fusion[0]:  # a layer's passes are replaced (fastnn.distribution): run them
            return None
        out = {}
        for k, j in self.folds.items():
            conv, bn = self.steps[k][0], self.steps[j][0]
            var = bn.moving_variance.data.astype(np.float64)
            scale = 1.0 / np.sqrt(var + bn.epsilon)
            if bn.scale:
                scale = scale * bn.gamma.data
            shift = -bn.moving_mean.data.astype(np.float64) * scale
            if conv.use_bias:
                shift = shift + conv.bias.data * scale
            if bn.center:
                shift = shift + bn.beta.data
            # output channel o of a Conv2D is the kernel's last axis; of a depthwise conv, (c, m) of its (C, DM) axes
            per_out = conv.kernel.shape[2:] if conv._op is _conv.DepthwiseConv2D else conv.kernel.shape[-1:]
            kernel = conv.kernel.data * scale.reshape(per_out).astype(np.float32)
            bias = shift.astype(np.float32)
            constants = dict(conv._constants, **(fused[k] or {}))
            act = (fused[j] or {}).get("activation")
            out[k] = functools.partial(_folded_conv, conv._op, kernel, bias, act, constants)
            out[j] = _identity
        return out

    def backward(self, ctx, out_grads, need_dx=False):
        """Input gradients (a list, when ``need_dx``) from the output gradients (None: no gradient)."""
        ctxs, vals, passed = ctx
        grads = [None] * self.nslots
        for s, g in zip(self.output_slots, out_grads):
            if g is not None:
                grads[s] = g if grads[s] is None else grads[s] + g
        ndx, back = (self.every, self.every) if need_dx else (self.ndx, self.back)
        steps = self.steps
        sync = None if need_dx else self.grad_sync
        for k in range(len(steps) - 1, -1, -1):
            if sync is not None:  # steps after k are done: their gradient buckets can start travelling
                sync.step(k)
            if not back[k]:
                continue
            layer, ins, outs, single_in, single_out = steps[k]
            if single_out:
                dy = grads[outs[0]]
                if dy is None:
                    continue
            else:
                dy = [grads[o] for o in outs]
                if all(g is None for g in dy):
                    continue
                dy = [np.zeros_like(vals[o]) if g is None else g for o, g in zip(outs, dy)]
            if k in passed:  # a step whose work a neighbour did in this forward (_fuse)
                dx = dy
            elif k in self.shared_steps:
                dx = backward_adding(layer, ctxs[k], dy)
            else:
                dx = layer._backward(ctxs[k], dy)
            if not ndx[k]:
                continue
            for i, d in ((ins[0], dx),) if single_in else zip(ins, dx):
                if d is not None:
                    grads[i] = d if grads[i] is None else grads[i] + d
        return [grads[s] for s in self.input_slots] if need_dx else None

    # ---- a training step ------------------------------------------------------------------------------
    def losses_and_grads(self, outs, ys, wb=None):
        """(total loss, per-output losses, per-output gradients) for targets ``ys`` (None where an output has
        no loss), weighted by the compiled loss_weights."""
        total, per, grads = 0.0, [], []
        for k, loss in enumerate(self.losses):
            if loss is None:
                per.append(None)
                grads.append(None)
                continue
            kept = self.masked and self.masked_rows(k, outs[k], ys[k], wb)
            if kept:  # only the unmasked time steps count (their gradient rows; zeros elsewhere)
                out, y, w = kept
                g = np.zeros_like(outs[k])
                if len(out):  # (every step masked: Keras's loss is 0)
                    value, g_rows = (loss._value_and_grad(out, y, self.fused[k]) if w is None
                                     else loss._weighted_value_and_grad(out, y, w, self.fused[k]))
                    g[self.out_masks[k]] = g_rows
                else:
                    value = 0.0
            elif wb is None:
                value, g = loss._value_and_grad(outs[k], ys[k], self.fused[k])
            else:
                value, g = loss._weighted_value_and_grad(outs[k], ys[k], wb, self.fused[k])
            weight = self.loss_weights[k]
            if weight != 1.0:
                g = g * np.float32(weight)
            total += weight * value
            per.append(value)
            grads.append(g)
        return total, per, grads

    def update_metrics(self, ys, outs):
        if self.masked:  # the metrics of a masked output see its unmasked time steps only
            for k in range(len(outs)):
                kept = self.masked_rows(k, outs[k], ys[k])
                if kept:
                    outs, ys = list(outs), list(ys)
                    outs[k], ys[k], _ = kept
        probs = [_softmax(h) if need else h for h, need in zip(outs, self.probs_needed)]
        for k, m in self.metrics:
            m._update(ys[k], outs[k] if m._argmax_only else probs[k])

    def penalty(self):
        return sum(v.regularizer(v.value) for v in self.regularized)

    def added_losses(self):
        """The add_loss terms of the last forward (their gradients flow in the adders' own backward)."""
        return sum(float(t.item()) for layer in self.loss_adders for t in layer._added_loss_terms())

    def train_step(self, xs, ys, wb=None):
        """One step on a batch (lists of arrays per input and per output); returns (loss, per-output losses)."""
        outs, ctx = self.forward(xs, True, False, self.fused_steps)
        loss, per, grads = self.losses_and_grads(outs, ys, wb)
        variables = self.variables
        start_sums(self.shared_variables)  # shared layers' calls add their gradients (backward_adding)
        self.backward(ctx, grads)
        end_sums(self.shared_variables)
        if self.grad_sync is not None:  # every rank's gradients, averaged over the global batch
            self.grad_sync.finish()
        if self.loss_adders:
            loss += self.added_losses()
        if self.regularized:
            loss += self.penalty()
            for v in self.regularized:
                v.grad = v.grad + v.regularizer.gradient(v.value)
        if variables:
            self.model.optimizer._apply_vars(variables)
        if self.metrics:
            self.update_metrics(ys, outs)
        return loss, per
