"""Fused recurrent layers and Embedding on the C++ kernels (numpy in, numpy out).

``Recurrent`` runs a whole SimpleRNN / LSTM / GRU sequence in one kernel call and keeps what its
backward (BPTT from the saved gate activations) reads; it has several outputs (y, h, c), so it is a plain
forward/backward pair used by the layers rather than a Tensor Function. ``Embedding`` is a Function.
"""
import numpy as np

from fastnn.backend import of
from fastnn.tensor import Function

# activations the kernels fuse (the derivative of each is a function of its output)
FUSED_ACTIVATIONS = frozenset(("tanh", "sigmoid", "relu", "linear", "hard_sigmoid"))


class Recurrent:
    """One call of a fused recurrent layer.

    forward(x (B,T,C), kernel, recurrent_kernel, bias or None, h0, c0, mask (B,T) bool or None) ->
    (y, h, c): y is (B,T,U) by step (return_sequences) or the last output (B,U); c is None but for the LSTM.
    backward(dy, dh, dc) -> (dx, dkernel, drecurrent, dbias, dh0, dc0); dy matches y; any input may be None.
    ``needs``: (dx, dkernel, drecurrent, dbias, dh0, dc0) flags; all False skips saving (inference).
    ``zero_output_for_mask``: masked steps output zeros instead of repeating the previous output (Keras).
    """

    def __init__(self, cell, activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
                 return_sequences=True, needs=(True,) * 6, zero_output_for_mask=False):
        self.cell, self.act, self.ract = cell, activation, recurrent_activation
        self.zero_masked = bool(zero_output_for_mask)
        self.go_backwards, self.return_sequences, self.needs = bool(go_backwards), bool(return_sequences), needs

    def forward(self, x, kernel, recurrent, bias=None, h0=None, c0=None, mask=None):
        y, h, c, saved = of(x).rnn_forward(self.cell, x, kernel, recurrent, bias, h0, c0, mask,
                                           activation=self.act, recurrent_activation=self.ract,
                                           go_backwards=self.go_backwards, return_sequences=self.return_sequences,
                                           zero_output_for_mask=self.zero_masked)
        if any(self.needs):
            self.saved = saved
            self.inputs = (x, kernel, recurrent, bias is not None, h0, c0, mask)
        return y, h, c

    def _grads(self, dy, dh, dc):
        """(dy, dlast, dh, dc) as the kernel takes them: dy is the last output's gradient without sequences."""
        return (dy, None, dh, dc) if self.return_sequences else (None, dy, dh, dc)

    def backward(self, dy=None, dh=None, dc=None):
        x, kernel, recurrent, has_bias, h0, c0, mask = self.inputs
        nx, nk, nr, nb, nh, nc = self.needs
        dy, dlast, dh, dc = self._grads(dy, dh, dc)
        return of(x).rnn_backward(self.cell, x, kernel, recurrent, self.saved, dy=dy, dlast=dlast, dh=dh, dc=dc,
                                  h0=h0, c0=c0, mask=mask,
                                  has_bias=has_bias, activation=self.act, recurrent_activation=self.ract,
                                  go_backwards=self.go_backwards, zero_output_for_mask=self.zero_masked, dx=nx, dkernel=nk, drecurrent=nr, dbias=nb,
                                  dh0=nh, dc0=nc)


def forward_pair(ops, x, weights, mask=None):
    """Two Recurrent calls on the same x in opposite directions (Bidirectional), one per core: ops and weights
    are (forward, backward) pairs, weights (kernel, recurrent_kernel, bias or None); zero initial states.
    Returns ((y, h, c), (y, h, c))."""
    fw, bw = ops
    results = of(x).rnn_forward_pair(fw.cell, x, weights[0], weights[1], mask, activation=fw.act,
                                     recurrent_activation=fw.ract, go_backwards=fw.go_backwards,
                                     return_sequences=fw.return_sequences, zero_output_for_mask=fw.zero_masked)
    for op, w, (y, h, c, saved) in zip(ops, weights, results):
        if any(op.needs):
            op.saved = saved
            op.inputs = (x, w[0], w[1], w[2] is not None, None, None, mask)
    return [r[:3] for r in results]


def backward_pair(ops, grads):
    """The backward of forward_pair: grads = ((dy, dh, dc), (dy, dh, dc)); returns the two gradient tuples of
    Recurrent.backward."""
    fw, bw = ops
    x, *_, mask = fw.inputs
    # (kernel, recurrent_kernel, has_bias): the backward reads only whether there is a bias
    weights = [(op.inputs[1], op.inputs[2], True if op.inputs[3] else None) for op in ops]
    return of(x).rnn_backward_pair(fw.cell, x, weights[0], weights[1], fw.saved, bw.saved, fw._grads(*grads[0]),
                                   bw._grads(*grads[1]), mask, activation=fw.act, recurrent_activation=fw.ract,
                                   go_backwards=fw.go_backwards, zero_output_for_mask=fw.zero_masked,
                                   needs=dict(zip(("dx", "dkernel", "drecurrent", "dbias"), fw.needs[:4])))


class Embedding(Function):
    """table (V, D) rows at integer ids (any shape) -> ids.shape + (D,); backward: (dtable, None).
    Positional order (table, ids) so the table's gradient comes first."""

    def forward(self, table, ids):
        self.ids, self.V = ids, table.shape[0]
        return of(table).embedding_forward(table, ids)

    def backward(self, g):
        return (of(g).embedding_backward(g, self.ids, self.V) if self.needs_input_grad[0] else None), None
