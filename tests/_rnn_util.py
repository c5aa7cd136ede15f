"""A float64 numpy implementation of Keras 3's recurrent cells (the formulas of keras/src/layers/rnn/*.py),
the oracle of the recurrent kernel and layer tests."""
import numpy as np

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3, "gru_reset_before": 3}
ACTS = {
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "relu": lambda x: np.maximum(x, 0),
    "linear": lambda x: x,
    "hard_sigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
}


def np_rnn(cell, x, kernel, recurrent, bias=None, h0=None, c0=None, mask=None, go_backwards=False,
           activation="tanh", recurrent_activation="sigmoid", zero_output_for_mask=False):
    """-> (y (B,T,U) by step, last output (B,U), h (B,U), c (B,U) or None), float64; Keras's masking (a masked
    step keeps the state and repeats the previous output, zeros before the first valid step; with
    zero_output_for_mask it outputs zeros)."""
    f, fr = ACTS[activation], ACTS[recurrent_activation]
    x = np.asarray(x, np.float64)
    B, T, _ = x.shape
    U = recurrent.shape[0]
    W, R = np.asarray(kernel, np.float64), np.asarray(recurrent, np.float64)
    if bias is None:
        bx, bh = 0.0, 0.0
    elif cell == "gru":
        bx, bh = np.asarray(bias[0], np.float64), np.asarray(bias[1], np.float64)
    else:
        bx, bh = np.asarray(bias, np.float64), 0.0
    h = np.zeros((B, U)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((B, U)) if c0 is None else np.asarray(c0, np.float64)
    out = np.zeros((B, U))
    ys = []
    for s in range(T):
        t = T - 1 - s if go_backwards else s
        xg = x[:, t] @ W + bx
        if cell == "simple_rnn":
            hn, cn = f(xg + h @ R), c
        elif cell == "lstm":
            zz = xg + h @ R
            i, fg, g, o = fr(zz[:, :U]), fr(zz[:, U:2 * U]), f(zz[:, 2 * U:3 * U]), fr(zz[:, 3 * U:])
            cn = fg * c + i * g
            hn = o * f(cn)
        else:
            inner = h @ R + bh
            z = fr(xg[:, :U] + inner[:, :U])
            r = fr(xg[:, U:2 * U] + inner[:, U:2 * U])
            if cell == "gru":
                hh = f(xg[:, 2 * U:] + r * inner[:, 2 * U:])
            else:
                hh = f(xg[:, 2 * U:] + (r * h) @ R[:, 2 * U:])
            hn, cn = z * h + (1 - z) * hh, c
        if mask is not None:
            m = np.asarray(mask[:, t], bool)[:, None]
            hn, cn = np.where(m, hn, h), np.where(m, cn, c)
            out = np.where(m, hn, 0.0 if zero_output_for_mask else out)
        else:
            out = hn
        h, c = hn, cn
        ys.append(out)
    y = np.stack(ys, 1) if ys else np.zeros((B, 0, U))
    return y, out, h, (c if cell == "lstm" else None)


def random_weights(rng, cell, C, U, scale=0.5):
    G = GATES[cell]
    kernel = rng.uniform(-scale, scale, (C, G * U)).astype(np.float32)
    recurrent = rng.uniform(-scale, scale, (U, G * U)).astype(np.float32)
    bias = rng.uniform(-scale, scale, (2, G * U) if cell == "gru" else (G * U,)).astype(np.float32)
    return kernel, recurrent, bias
