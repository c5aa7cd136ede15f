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
    """

    def __init__(self, cell, activation="tanh", recurrent_activation="sigmoid", go_backwards=False,
                 return_sequences=True, needs=(True,) * 6):
        self.cell, self.act, self.ract = cell, activation, recurrent_activation
        self.go_backwards, self.return_sequences, self.needs = bool(go_backwards), bool(return_sequences), needs

    def forward(self, x, kernel, recurrent, bias=None, h0=None, c0=None, mask=None):
        y, h, c, saved = of(x).rnn_forward(self.cell, x, kernel, recurrent, bias, h0, c0, mask,
                                           activation=self.act, recurrent_activation=self.ract,
                                           go_backwards=self.go_backwards, return_sequences=self.return_sequences)
        if any(self.needs):
            self.saved = saved
            self.inputs = (x, kernel, recurrent, bias is not None, h0, c0, mask)
        return y, h, c

    def backward(self, dy=None, dh=None, dc=None):
        x, kernel, recurrent, has_bias, h0, c0, mask = self.inputs
        seq = self.return_sequences
        nx, nk, nr, nb, nh, nc = self.needs
        return of(x).rnn_backward(self.cell, x, kernel, recurrent, self.saved, dy=dy if seq else None,
                                  dlast=None if seq else dy, dh=dh, dc=dc, h0=h0, c0=c0, mask=mask,
                                  has_bias=has_bias, activation=self.act, recurrent_activation=self.ract,
                                  go_backwards=self.go_backwards, dx=nx, dkernel=nk, drecurrent=nr, dbias=nb,
                                  dh0=nh, dc0=nc)


class Embedding(Function):
    """table (V, D) rows at integer ids (any shape) -> ids.shape + (D,); backward: (dtable, None).
    Positional order (table, ids) so the table's gradient comes first."""

    def forward(self, table, ids):
        self.ids, self.V = ids, table.shape[0]
        return of(table).embedding_forward(table, ids)

    def backward(self, g):
        return (of(g).embedding_backward(g, self.ids, self.V) if self.needs_input_grad[0] else None), None
