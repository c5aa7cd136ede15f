"""Recurrent layers with Keras 3's arguments and weight layouts: SimpleRNN, LSTM, GRU (weights on
``layer.cell``: ``lstm/lstm_cell/kernel`` ...).

The fast path is one fused kernel call for the whole sequence (fastnn._ops.recurrent.Recurrent): input
dropout is a mask on x outside it, masking runs inside it. Custom activations and recurrent_dropout take a
correct slower path: the cell's formulas step by step on Tensors through the autograd.
"""
import numpy as np

from fastnn import activations, backend, initializers, ops, regularizers
from fastnn import random as _random
from fastnn._naming import shape_str
from fastnn._ops.recurrent import FUSED_ACTIVATIONS, Recurrent
from fastnn.layers.base import Layer, _attach_masks, _tensor, _unsupported, mask_of
from fastnn.tensor import Function, Tensor

_MASK64 = (1 << 64) - 1


def _sequence_part(value):
    """The sequence's entry of a layer called on [x, *initial states] (shapes, masks, arrays), else value."""
    return value[0] if isinstance(value, list) else value


def _rate(owner, name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value <= 1:
        raise ValueError(f"{owner}: `{name}` must be a float in [0, 1], got {value!r}")
    return float(value)


class _Cell(Layer):
    """The weights and per-step formulas of one recurrent cell (Keras's ``LSTMCell`` ...)."""

    _kind_name = None  # kernel cell name: "simple_rnn", "lstm", "gru"
    _gates = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal", bias_initializer="zeros",
                 kernel_regularizer=None, recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        owner = f"{type(self).__name__} '{self.name}'"
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{owner}: units must be a positive integer, got {units!r}")
        _unsupported(owner, kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                     bias_constraint=bias_constraint)
        self.units = int(units)
        self.activation = activations.get(activation)
        self.recurrent_activation = activations.get(recurrent_activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.dropout = min(1.0, max(0.0, _rate(owner, "dropout", dropout)))
        self.recurrent_dropout = min(1.0, max(0.0, _rate(owner, "recurrent_dropout", recurrent_dropout)))
        self.seed = seed
        self.kernel = self.recurrent_kernel = self.bias = None

    @property
    def _act_names(self):
        return activations.canonical_name(self.activation), activations.canonical_name(self.recurrent_activation)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_initializer(self):
        return self.bias_initializer

    def build(self, input_shape):
        GU = self._gates * self.units
        self.kernel = self.add_weight((input_shape[-1], GU), self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight((self.units, GU), self.recurrent_initializer, name="recurrent_kernel",
                                                regularizer=self.recurrent_regularizer)
        if self.use_bias:
            self.bias = self.add_weight(self._bias_shape(), self._bias_initializer(), name="bias",
                                        regularizer=self.bias_regularizer)
        self.built = True

    def get_config(self):
        return dict(units=self.units, activation=activations.serialize(self.activation),
                    recurrent_activation=activations.serialize(self.recurrent_activation), use_bias=self.use_bias,
                    kernel_initializer=initializers.serialize(self.kernel_initializer),
                    recurrent_initializer=initializers.serialize(self.recurrent_initializer),
                    bias_initializer=initializers.serialize(self.bias_initializer),
                    kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                    recurrent_regularizer=regularizers.serialize(self.recurrent_regularizer),
                    bias_regularizer=regularizers.serialize(self.bias_regularizer),
                    kernel_constraint=None, recurrent_constraint=None, bias_constraint=None,
                    dropout=self.dropout, recurrent_dropout=self.recurrent_dropout, seed=self.seed)

    # one step on Tensors (the slower path): xg = x_t @ kernel + input bias, h (B,U), hr = h for the recurrent
    # product (recurrent dropout applied); returns the new states
    def _step(self, xg, states, hr):
        raise NotImplementedError


class SimpleRNNCell(_Cell):
    _kind_name, _gates = "simple_rnn", 1

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["recurrent_activation"]
        return config

    def _step(self, xg, states, hr):
        return [self.activation(xg + hr @ self.recurrent_kernel)]


class LSTMCell(_Cell):
    _kind_name, _gates = "lstm", 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        init, U = self.bias_initializer, self.units

        def forget_ones(shape, dtype="float32"):  # Keras: [init(U), ones(U), init(2U)]
            return np.concatenate([np.asarray(init((U,)), np.float32), np.ones(U, np.float32),
                                   np.asarray(init((2 * U,)), np.float32)])
        return forget_ones

    def get_config(self):
        config = super().get_config()
        config["unit_forget_bias"] = self.unit_forget_bias
        return config

    def _step(self, xg, states, hr):
        h, c = states
        U, f, fr = self.units, self.activation, self.recurrent_activation
        z = xg + hr @ self.recurrent_kernel
        i, fg, g, o = fr(z[:, :U]), fr(z[:, U:2 * U]), f(z[:, 2 * U:3 * U]), fr(z[:, 3 * U:])
        c = fg * c + i * g
        return [o * f(c), c]


class GRUCell(_Cell):
    _kind_name, _gates = "gru", 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    @property
    def _kernel_cell(self):
        return "gru" if self.reset_after else "gru_reset_before"

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def get_config(self):
        config = super().get_config()
        config["reset_after"] = self.reset_after
        return config

    def _step(self, xg, states, hr):
        (h,), U, f, fr = states, self.units, self.activation, self.recurrent_activation
        R = self.recurrent_kernel
        inner = hr @ R
        if self.reset_after and self.use_bias:
            inner = inner + self.bias[1]
        z = fr(xg[:, :U] + inner[:, :U])
        r = fr(xg[:, U:2 * U] + inner[:, U:2 * U])
        hh = f(xg[:, 2 * U:] + (r * inner[:, 2 * U:] if self.reset_after else (r * hr) @ R[:, 2 * U:]))
        return [z * h + (1 - z) * hh]


class _RnnCall(Function):
    """A recurrent layer as one node of the Tensor graph (eager calls with mask / initial_state / several
    outputs): forward returns the outputs packed side by side per batch row, (B, sum of sizes)."""

    def forward(self, x, *weights, layer=None, training=False, mask=None, initial_state=None):
        self.layer = layer
        y, self.ctx = layer._forward(x, training, self.needs_input_grad[0], mask=mask, initial_state=initial_state)
        outs = y if isinstance(y, list) else [y]
        self.shapes = [o.shape for o in outs]
        return np.concatenate([o.reshape(o.shape[0], -1) for o in outs], axis=1)

    def backward(self, grad):
        dys, at = [], 0
        for shape in self.shapes:
            n = int(np.prod(shape[1:]))
            dys.append(np.ascontiguousarray(grad[:, at:at + n]).reshape(shape))
            at += n
        dx = self.layer._backward(self.ctx, dys if len(dys) > 1 else dys[0])
        return (dx,) + (None,) * (len(self.needs_input_grad) - 1)


class _SequenceCall:
    """Eager calls (Tensors / arrays) of a recurrent layer with ``mask=``, ``initial_state=`` or several outputs:
    one _RnnCall node whose packed output is sliced back into the layer's outputs (gradients flow through the
    slices). Other calls take the base Layer's path."""

    def _multi_output(self):
        return self.return_state

    def _check_state_count(self, states):
        raise ValueError(f"{type(self).__name__} '{self.name}': initial_state on symbolic inputs is not supported")

    def __call__(self, inputs, training=False, mask=None, initial_state=None, **kwargs):
        from fastnn._graph import is_symbolic, symbolic_call
        if is_symbolic(inputs) and initial_state is not None:
            # a graph node whose inputs are [x, *states]: the states' gradients flow back to their producers (an
            # encoder's return_state outputs in a sequence-to-sequence model)
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            self._check_state_count(states)
            return symbolic_call(self, [inputs] + states)
        if is_symbolic(inputs) or (initial_state is None and not self._multi_output()):
            return super().__call__(inputs, training=training, mask=mask, **kwargs)
        if kwargs:
            raise TypeError(f"Layer '{self.name}': unexpected call arguments {sorted(kwargs)}")
        if mask is None:  # the mask a previous layer attached to its output
            mask = mask_of(inputs)
        x = inputs if isinstance(inputs, Tensor) else Tensor(np.ascontiguousarray(inputs, np.float32))
        self._maybe_build(tuple(x.shape))
        weights = self.trainable_weights if _tensor._grad_enabled else ()
        packed = _RnnCall.apply(x, *weights, layer=self, training=bool(training), mask=mask,
                                initial_state=initial_state)
        shapes = self.compute_output_shape(tuple(x.shape))
        outs, at = [], 0
        for shape in (shapes if isinstance(shapes, list) else [shapes]):
            n = int(np.prod(shape[1:]))
            outs.append(packed[:, at:at + n].reshape(x.shape[0], *shape[1:]))
            at += n
        out = outs if isinstance(shapes, list) else outs[0]
        if mask is not None:
            _attach_masks(out, self.compute_mask(inputs, mask))
        return out


class _RNN(_SequenceCall, Layer):
    """Shared by SimpleRNN, LSTM and GRU: sequence handling around a cell (Keras 3 ``RNN``)."""

    _cell_class = None
    supports_masking = True
    _uses_mask = True

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, name=None, trainable=True, dtype=None, input_shape=None,
                 input_dim=None, batch_input_shape=None, batch_size=None, **cell_kwargs):
        super().__init__(name=name, trainable=trainable, dtype=dtype, input_shape=input_shape, input_dim=input_dim,
                         batch_input_shape=batch_input_shape, batch_size=batch_size)
        _unsupported(f"{type(self).__name__} '{self.name}'", activity_regularizer=cell_kwargs.pop("activity_regularizer", None))
        self.cell = self._cell_class(units, name=f"{self._cell_class._kind_name}_cell", **cell_kwargs)
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), bool(stateful), bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.states = None  # stateful: the last call's final states (arrays)
        self._seed = None
        self._offset = 0

    units = property(lambda self: self.cell.units)

    def __getattr__(self, name):  # Keras exposes the cell's arguments on the layer (layer.activation ...)
        cell = self.__dict__.get("cell")
        if cell is not None and name in ("activation", "recurrent_activation", "use_bias", "dropout",
                                         "recurrent_dropout", "kernel_initializer", "recurrent_initializer",
                                         "bias_initializer", "unit_forget_bias", "reset_after", "kernel",
                                         "recurrent_kernel", "bias"):
            return getattr(cell, name)
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    @property
    def _n_states(self):
        return 2 if self.cell._kind_name == "lstm" else 1

    def _check_state_count(self, states):
        if len(states) != self._n_states:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {self._n_states} initial state(s), "
                             f"got {len(states)}")

    def _rank3(self, input_shape):
        """The sequence's shape (the first of [x, *states]), which must be (batch, timesteps, features)."""
        input_shape = _sequence_part(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs of rank 3 (batch, timesteps, "
                             f"features), got shape {shape_str(input_shape)}")
        return input_shape

    def build(self, input_shape):
        input_shape = self._rank3(input_shape)
        self.cell.build(input_shape)
        # Keras 3 paths: <layer>/<cell>/<weight>
        for v in self.cell.weights:
            v.path = f"{self.name}/{self.cell.name}/{v.name}"
        self.built = True

    def _check_input_shape(self, input_shape):
        """Any number of timesteps (Keras's input spec is (None, None, features)); the features must match."""
        expected, states = _sequence_part(self._input_shape), input_shape[1:] if isinstance(input_shape, list) else []
        input_shape = _sequence_part(input_shape)
        for shape in states:
            if len(shape) != 2 or shape[1] not in (None, self.units):
                raise ValueError(f"{type(self).__name__} '{self.name}': an initial state has shape {shape_str(shape)}, "
                                 f"expected {shape_str((None, self.units))}")
        if len(input_shape) != 3 or (
                expected[-1] is not None and input_shape[-1] is not None and input_shape[-1] != expected[-1]):
            raise ValueError(f"Input of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected shape={shape_str((None, None, expected[-1]))}, found shape="
                             f"{shape_str(input_shape)}")

    def compute_output_shape(self, input_shape):
        input_shape = self._rank3(input_shape)
        B, T = input_shape[0], input_shape[1]
        y = (B, T, self.units) if self.return_sequences else (B, self.units)
        return [y] + [(B, self.units)] * self._n_states if self.return_state else y

    def compute_mask(self, inputs, previous_mask=None):
        previous_mask = _sequence_part(previous_mask)  # (called on [x, *states]: the mask of x)
        out = previous_mask if self.return_sequences else None  # as Keras: not flipped by go_backwards
        return [out] + [None] * self._n_states if self.return_state else out

    def reset_states(self, states=None):
        self.states = None if states is None else [np.asarray(s, np.float32) for s in states]

    reset_state = reset_states

    # ---- math -----------------------------------------------------------------------------------
    def _fused(self, training):
        act, ract = self.cell._act_names
        return (act in FUSED_ACTIVATIONS and ract in FUSED_ACTIVATIONS
                and not (training and 0 < self.cell.recurrent_dropout < 1))

    def _next_seed(self):
        if self._seed is None:
            self._seed = (self.cell.seed if self.cell.seed is not None else _random.next_seed()) & _MASK64
        return self._seed

    def _dropout_mask(self, shape, rate):
        """An inverted-dropout mask of ``shape`` (Philox, keyed by the layer's seed and a running offset)."""
        seed = self._next_seed()
        ones = np.ones(shape, np.float32)
        mask = backend.of(ones).dropout(ones, rate, seed, self._offset)
        self._offset = (self._offset + int(np.prod(shape))) & _MASK64
        return mask

    def _initial(self, x, initial_state):
        B = x.shape[0]
        states = initial_state
        if states is None and self.stateful and self.states is not None:
            states = self.states
        if states is None:
            return [None] * self._n_states
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self._n_states:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects {self._n_states} initial state(s), "
                             f"got {len(states)}")
        out = []
        for s in states:
            s = np.ascontiguousarray(s.data if isinstance(s, Tensor) else s, np.float32)
            if s.shape != (B, self.units):
                raise ValueError(f"{type(self).__name__} '{self.name}': initial state has shape {s.shape}, expected "
                                 f"{(B, self.units)}")
            out.append(s)
        return out

    def _check(self, x, mask):
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} '{self.name}' expects inputs of rank 3 (batch, timesteps, "
                             f"features), got shape {x.shape}")
        if mask is not None:
            mask = np.asarray(mask.data if isinstance(mask, Tensor) else mask).astype(bool, copy=False)
            if mask.shape != x.shape[:2]:
                raise ValueError(f"{type(self).__name__} '{self.name}': mask has shape {mask.shape}, expected "
                                 f"{x.shape[:2]} (batch, timesteps)")
            mask = np.ascontiguousarray(mask)
        return mask

    def _forward(self, x, training, need_dx=True, mask=None, initial_state=None):
        listed = isinstance(x, list)  # a graph node on [x, *initial states]: dx is [dx, *dstates]
        if listed:
            x, initial_state, mask = x[0], x[1:], _sequence_part(mask)
        x = np.ascontiguousarray(x, np.float32)
        mask = self._check(x, mask)
        states0 = self._initial(x, initial_state)
        cell = self.cell
        if not self._fused(training):
            return self._slow_forward(x, training, need_dx, mask, states0, listed)
        dmask = None
        if training and 0 < cell.dropout < 1:
            dmask = self._dropout_mask((x.shape[0], 1, x.shape[2]), cell.dropout)
            x = x * dmask
        t = self._trainable
        dstates = listed and need_dx
        needs = (need_dx, t, t, t and cell.use_bias, dstates, dstates) if _tensor._grad_enabled else (False,) * 6
        op = self._recurrent_op(needs)
        op.listed = listed
        y, h, c = op.forward(x, *self._weight_arrays(), *(states0 + [None])[:2], mask)
        states = [h, c] if c is not None else [h]
        if self.stateful:
            self.states = [s.copy() for s in states]
        return ([y] + states if self.return_state else y), (op, dmask)

    def _backward(self, ctx, dy):
        if len(ctx) == 3:  # the slower path's Tensor graph
            return Layer._backward(self, ctx, dy)
        op, dmask = ctx
        dys = list(dy) if isinstance(dy, (list, tuple)) else [dy]
        dys += [None] * (3 - len(dys))
        dx, dk, dr, db, dh0, dc0 = op.backward(*dys[:3])
        self._store_grads(dk, dr, db)
        if dx is not None and dmask is not None:
            dx *= dmask
        return [dx, dh0, dc0][:1 + self._n_states] if op.listed else dx

    def _store_grads(self, dk, dr, db):
        cell = self.cell
        if dk is not None:
            cell.kernel.grad, cell.recurrent_kernel.grad = dk, dr
            if db is not None:
                cell.bias.grad = db

    def _recurrent_op(self, needs):
        """The fused op of this layer's configuration; weights() gives its weight arrays."""
        cell = self.cell
        act, ract = cell._act_names
        return Recurrent(getattr(cell, "_kernel_cell", cell._kind_name), act, ract, self.go_backwards,
                         self.return_sequences, needs, self.zero_output_for_mask)

    def _weight_arrays(self):
        cell = self.cell
        return cell.kernel.data, cell.recurrent_kernel.data, cell.bias.data if cell.use_bias else None

    def _slow_forward(self, x, training, need_dx, mask, states0, listed=False):
        """The cell's formulas step by step on Tensors (custom activations, recurrent dropout); ``listed``: the
        initial states are graph inputs too (their gradients come back with dx)."""
        record = _tensor._grad_enabled
        xt = Tensor(x, requires_grad=need_dx and record)
        cell, (B, T, C), U = self.cell, x.shape, self.units
        xin = xt
        if training and 0 < cell.dropout < 1:
            xin = xt * self._dropout_mask((B, 1, C), cell.dropout)
        rmask = self._dropout_mask((B, U), cell.recurrent_dropout) if training and 0 < cell.recurrent_dropout < 1 \
            else None
        xg = xin @ cell.kernel
        if cell.use_bias:
            xg = xg + (cell.bias[0] if cell._bias_shape()[0] == 2 else cell.bias)
        states = [Tensor(np.zeros((B, U), np.float32) if s is None else s, requires_grad=listed and need_dx and record)
                  for s in states0]
        inputs = [xt] + states if listed else xt
        out = Tensor(np.zeros((B, U), np.float32))
        ys = []
        for s in range(T):
            t = T - 1 - s if self.go_backwards else s
            new = cell._step(xg[:, t], states, states[0] * rmask if rmask is not None else states[0])
            if mask is not None:
                m = mask[:, t:t + 1].astype(np.float32)
                new = [n * m + old * (1 - m) for n, old in zip(new, states)]
                out = new[0] * m if self.zero_output_for_mask else new[0] * m + out * (1 - m)
            else:
                out = new[0]
            states = new
            ys.append(out)
        y = ops.stack(ys, axis=1) if self.return_sequences else out
        outs = [y] + states if self.return_state else [y]
        if self.stateful:
            self.states = [np.array(s.data) for s in states]
        arrays = [np.asarray(o.data, np.float32) for o in outs]
        return (arrays if self.return_state else arrays[0]), ((inputs, outs, need_dx) if record else None)

    def get_config(self):
        config = super().get_config()
        config.update(return_sequences=self.return_sequences, return_state=self.return_state,
                      go_backwards=self.go_backwards, stateful=self.stateful, unroll=self.unroll,
                      zero_output_for_mask=self.zero_output_for_mask)
        config.update(self.cell.get_config())
        return config


class SimpleRNN(_RNN):
    """Fully-connected RNN: h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias) (Keras 3).

    Args: units, activation="tanh", use_bias, kernel/recurrent/bias initializers and regularizers, dropout,
    recurrent_dropout, return_sequences, return_state, go_backwards, stateful, unroll, seed.

    >>> SimpleRNN(4)(np.zeros((2, 5, 3), np.float32)).shape
    (2, 4)
    """
    _cell_class = SimpleRNNCell


class LSTM(_RNN):
    """Long Short-Term Memory layer (Keras 3): kernel (in, 4U), recurrent_kernel (U, 4U), bias (4U), gates
    i, f, c, o; ``unit_forget_bias`` starts the forget gate's bias at 1.

    Args: units, activation="tanh", recurrent_activation="sigmoid", use_bias, initializers, regularizers,
    unit_forget_bias=True, dropout, recurrent_dropout, return_sequences, return_state, go_backwards, stateful,
    unroll, seed.

    >>> LSTM(4, return_sequences=True)(np.zeros((2, 5, 3), np.float32)).shape
    (2, 5, 4)
    """
    _cell_class = LSTMCell


class GRU(_RNN):
    """Gated Recurrent Unit (Keras 3): gates z, r, h; ``reset_after=True`` (cuDNN/torch formulation, bias
    (2, 3U): input and recurrent biases) or False (bias (3U,), the reset gate applied before the product).

    Args: as LSTM, plus reset_after=True.

    >>> GRU(4)(np.zeros((2, 5, 3), np.float32)).shape
    (2, 4)
    """
    _cell_class = GRUCell
