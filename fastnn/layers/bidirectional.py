"""Bidirectional wrapper (Keras 3): a forward and a backward copy of a recurrent layer, outputs merged."""
import numpy as np

from fastnn._naming import shape_str
from fastnn._ops import recurrent as _recurrent
from fastnn.layers.base import Layer, _tensor
from fastnn.layers.recurrent import _SequenceCall

_MODES = ("concat", "sum", "mul", "ave", None)


def _from_config(config):
    # NOTE: classes come only from the saving registry (never getattr on a module by a name from a file, #20)
    from fastnn.saving import deserialize_layer
    return deserialize_layer(config, where="Bidirectional")


def _clone(layer, name, **changes):
    config = layer.get_config()
    config.update(name=name, **changes)
    return type(layer).from_config(config)


class Bidirectional(_SequenceCall, Layer):
    """Runs ``layer`` forward and a copy of it backward over the sequence and merges the two outputs
    (``merge_mode`` "concat", "sum", "mul", "ave" or None for a list of both). With return_sequences the
    backward output is flipped back to input time order, as Keras does.

    >>> from fastnn.layers import LSTM
    >>> Bidirectional(LSTM(4))(np.zeros((2, 5, 3), np.float32)).shape
    (2, 8)
    """

    supports_masking = True
    _uses_mask = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(**kwargs)
        if merge_mode not in _MODES:
            raise ValueError(f"Bidirectional '{self.name}': invalid merge mode {merge_mode!r}. Merge mode should "
                             f"be one of {{'sum', 'mul', 'ave', 'concat', None}}")
        if isinstance(layer, dict):
            layer = _from_config(layer)
        if isinstance(backward_layer, dict):
            backward_layer = _from_config(backward_layer)
        if not hasattr(layer, "return_sequences"):
            raise ValueError(f"Bidirectional '{self.name}': `layer` must be a recurrent layer, got {layer!r}")
        self.merge_mode = merge_mode
        self.forward_layer = _clone(layer, "forward_" + layer.name)
        self.backward_layer = backward_layer if backward_layer is not None else \
            _clone(layer, "backward_" + layer.name, go_backwards=not layer.go_backwards)
        self.return_sequences, self.return_state = layer.return_sequences, layer.return_state
        for sub in (self.forward_layer, self.backward_layer):  # Keras: masked steps output zeros
            sub.zero_output_for_mask = sub.return_sequences
        self._initial_weights = weights

    def _multi_output(self):
        return self.return_state or self.merge_mode is None

    def build(self, input_shape):
        for sub in (self.forward_layer, self.backward_layer):
            sub._maybe_build(input_shape)
            for v in sub.weights:
                if not v.path.startswith(self.name + "/"):
                    v.path = f"{self.name}/{v.path}"
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"Bidirectional '{self.name}' expects inputs of rank 3 (batch, timesteps, features), "
                             f"got shape {shape_str(input_shape)}")
        fw = self.forward_layer.compute_output_shape(input_shape)
        bw = self.backward_layer.compute_output_shape(input_shape)
        y_f, states_f = (fw[0], fw[1:]) if self.return_state else (fw, [])
        y_b, states_b = (bw[0], bw[1:]) if self.return_state else (bw, [])
        if self.merge_mode == "concat":
            y = [y_f[:-1] + (y_f[-1] + y_b[-1],)]
        elif self.merge_mode is None:
            y = [y_f, y_b]
        else:
            y = [y_f]
        out = y + list(states_f) + list(states_b)
        return out if len(out) > 1 else out[0]

    def compute_mask(self, inputs, previous_mask=None):
        out = previous_mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            outs += [None] * 2 * self.forward_layer._n_states
        return outs if len(outs) > 1 else outs[0]

    def _pair_ok(self, training):
        """Whether both directions can run as one kernel pair, one per core (rnn_forward_pair)."""
        f, b = self.forward_layer, self.backward_layer
        same = lambda name: getattr(f, name) == getattr(b, name)  # noqa: E731
        return (type(f) is type(b) and f._fused(training) and b._fused(training) and not f.stateful
                and not b.stateful and f.go_backwards != b.go_backwards and same("return_sequences")
                and same("zero_output_for_mask") and f.cell._act_names == b.cell._act_names
                and f.cell.use_bias == b.cell.use_bias and f.cell.get_config().get("reset_after") ==
                b.cell.get_config().get("reset_after")
                and not (training and (0 < f.cell.dropout < 1 or 0 < b.cell.dropout < 1)))

    def _directions(self, x, training, need_dx, mask):
        """(forward outputs, backward outputs, context): outputs are [y, *states]."""
        subs = (self.forward_layer, self.backward_layer)
        if self._pair_ok(training):
            t = self._trainable and _tensor._grad_enabled
            ops = [sub._recurrent_op((need_dx and _tensor._grad_enabled, t, t, t and sub.cell.use_bias, False, False))
                   for sub in subs]
            outs = _recurrent.forward_pair(ops, np.ascontiguousarray(x, np.float32),
                                           [sub._weight_arrays() for sub in subs], self.forward_layer._check(x, mask))
            outs = [[y, h] + ([c] if c is not None else []) for y, h, c in outs]
            return outs[0], outs[1], ("pair", ops)
        outs, ctxs = [], []
        for sub in subs:
            y, ctx = sub._forward(x, training, need_dx, mask=mask)
            outs.append(list(y) if self.return_state else [y])
            ctxs.append(ctx)
        return outs[0], outs[1], ("each", ctxs)

    def _forward(self, x, training, need_dx=True, mask=None, initial_state=None):
        if initial_state is not None:
            raise ValueError(f"Bidirectional '{self.name}': initial_state is not supported by fastnn yet")
        (yf, *sf), (yb, *sb), how = self._directions(x, training, need_dx, mask)
        if not self.return_state:
            sf, sb = [], []
        if self.return_sequences:
            yb = yb[:, ::-1]
        mode = self.merge_mode
        if mode == "concat":
            y = [np.concatenate([yf, yb], axis=-1)]
        elif mode == "sum":
            y = [yf + yb]
        elif mode == "mul":
            y = [yf * yb]
        elif mode == "ave":
            y = [(yf + yb) * np.float32(0.5)]
        else:
            y = [yf, np.ascontiguousarray(yb)]
        out = y + sf + sb
        ctx = (how, yf, yb, self.forward_layer._n_states, yf.shape[-1])
        return (out if len(out) > 1 else out[0]), ctx

    def _backward(self, ctx, dy):
        (kind, inner), yf, yb, ns, U = ctx
        dys = list(dy) if isinstance(dy, (list, tuple)) else [dy]
        mode = self.merge_mode
        n_y = 2 if mode is None else 1
        g, states = dys[:n_y], dys[n_y:]
        if mode == "concat":
            gf, gb = g[0][..., :U], g[0][..., U:]
        elif mode == "sum":
            gf = gb = g[0]
        elif mode == "mul":
            gf, gb = g[0] * yb, g[0] * yf
        elif mode == "ave":
            gf = gb = g[0] * np.float32(0.5)
        else:  # an output nothing depended on gets a zero gradient
            gf = g[0] if g[0] is not None else np.zeros_like(yf)
            gb = g[1] if g[1] is not None else np.zeros_like(yb)
        if self.return_sequences:
            gb = gb[:, ::-1]
        gf, gb = np.ascontiguousarray(gf, np.float32), np.ascontiguousarray(gb, np.float32)
        states = (states + [None] * 2 * ns) if self.return_state else [None] * 2 * ns
        sf, sb = states[:ns], states[ns:2 * ns]
        subs = (self.forward_layer, self.backward_layer)
        if kind == "pair":
            grads = _recurrent.backward_pair(inner, [[gf] + (sf + [None])[:2], [gb] + (sb + [None])[:2]])
            dxs = []
            for sub, (dx, dk, dr, db, _, _) in zip(subs, grads):
                sub._store_grads(dk, dr, db)
                dxs.append(dx)
        else:
            dxs = [sub._backward(c, [gd] + s if self.return_state else gd)
                   for sub, c, gd, s in zip(subs, inner, (gf, gb), (sf, sb))]
        if dxs[0] is None or dxs[1] is None:
            return None
        return dxs[0] + dxs[1]

    def get_config(self):
        config = super().get_config()
        def sub(layer):  # Keras 3's serialized layer (its built-in recurrent layers live in keras.layers)
            return {"module": "keras.layers", "class_name": type(layer).__name__, "config": layer.get_config(),
                    "registered_name": None}
        config.update(merge_mode=self.merge_mode, layer=sub(self.forward_layer), backward_layer=sub(self.backward_layer))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        layer = _from_config(config.pop("layer"))
        backward = config.pop("backward_layer", None)
        # the stored forward layer is named forward_<name>: strip it so the copy is not forward_forward_...
        name = layer.name[len("forward_"):] if layer.name.startswith("forward_") else layer.name
        layer = _clone(layer, name)
        return cls(layer, backward_layer=None if backward is None else _from_config(backward), **config)
