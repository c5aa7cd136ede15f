"""Fused recurrent kernels (SimpleRNN, LSTM, GRU both reset modes): every ISA and the reference against a
float64 implementation of Keras's formulas; gradients against central finite differences (float64) and
every ISA against the reference; masks; go_backwards; 1 vs 2 threads bit-identical."""
import numpy as np
import pytest
from _conv_util import threads
from _rnn_util import GATES, np_rnn, random_weights

from fastnn import backend

CELLS = list(GATES)
TABLES = {"ref": backend.ref, **backend.tables()}


def _inputs(rng, cell, B, T, C, U, masked=False, state=True):
    kernel, recurrent, bias = random_weights(rng, cell, C, U)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    h0 = rng.uniform(-0.5, 0.5, (B, U)).astype(np.float32) if state else None
    c0 = rng.uniform(-0.5, 0.5, (B, U)).astype(np.float32) if state and cell == "lstm" else None
    mask = rng.random((B, T)) > 0.35 if masked else None
    return x, kernel, recurrent, bias, h0, c0, mask


def _close(got, want, what, tol=2e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    err = np.abs(got - want).max(initial=0.0)
    assert err <= tol * (1 + np.abs(want).max(initial=0.0)), f"{what}: max error {err:.3g}"


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B,T,C,U,masked,back,act,ract,zero", [
    (3, 5, 7, 19, False, False, "tanh", "sigmoid", False),
    (2, 4, 1, 1, True, True, "tanh", "sigmoid", False),
    (5, 6, 9, 37, True, False, "relu", "hard_sigmoid", True),
    (4, 3, 5, 70, True, True, "linear", "sigmoid", False),
    (6, 5, 4, 33, True, True, "tanh", "sigmoid", True),
    (1, 1, 3, 16, False, False, "sigmoid", "tanh", False),
])
def test_forward_matches_keras_formulas(cell, B, T, C, U, masked, back, act, ract, zero):
    rng = np.random.default_rng(B * 100 + U)
    x, k, r, b, h0, c0, mask = _inputs(rng, cell, B, T, C, U, masked)
    y_w, last_w, h_w, c_w = np_rnn(cell, x, k, r, b, h0, c0, mask, back, act, ract, zero)
    for name, t in TABLES.items():
        for seq in (True, False):
            y, h, c, _ = t.rnn_forward(cell, x, k, r, b, h0, c0, mask, activation=act, recurrent_activation=ract,
                                       go_backwards=back, return_sequences=seq, zero_output_for_mask=zero)
            _close(y, y_w if seq else last_w, f"{name} {cell} y")
            _close(h, h_w, f"{name} {cell} h")
            if cell == "lstm":
                _close(c, c_w, f"{name} {cell} c")
            else:
                assert c is None


def _loss(cell, args, gy, gh, gc, back, act, ract, zero):
    y, _, h, c = np_rnn(cell, *args, go_backwards=back, activation=act, recurrent_activation=ract,
                        zero_output_for_mask=zero)
    total = (y * gy).sum() + (h * gh).sum()
    return total + ((c * gc).sum() if c is not None else 0.0)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("masked,back,act,zero", [(False, False, "tanh", False), (True, True, "tanh", False),
                                                  (True, False, "relu", False), (True, True, "sigmoid", True)])
def test_gradients_match_finite_differences(cell, masked, back, act, zero):
    rng = np.random.default_rng(7)
    B, T, C, U = 2, 4, 3, 3
    x, k, r, b, h0, c0, mask = _inputs(rng, cell, B, T, C, U, masked)
    if masked:
        mask[0] = [True, False, True, False]  # masked steps inside, and at the end
        mask[1] = [False, True, True, True]   # and at the start
    gy = rng.standard_normal((B, T, U))
    gh = rng.standard_normal((B, U))
    gc = rng.standard_normal((B, U)) if cell == "lstm" else None
    args = [x.astype(np.float64), k.astype(np.float64), r.astype(np.float64), b.astype(np.float64),
            h0.astype(np.float64), None if c0 is None else c0.astype(np.float64), mask]
    numeric = []
    for i in (0, 1, 2, 3, 4, 5):
        if args[i] is None:
            numeric.append(None)
            continue
        g = np.zeros_like(args[i])
        for idx in np.ndindex(*args[i].shape):
            old = args[i][idx]
            args[i][idx] = old + 1e-6
            plus = _loss(cell, args, gy, gh, gc, back, act, "sigmoid", zero)
            args[i][idx] = old - 1e-6
            minus = _loss(cell, args, gy, gh, gc, back, act, "sigmoid", zero)
            args[i][idx] = old
            g[idx] = (plus - minus) / 2e-6
        numeric.append(g)
    names = ("dx", "dkernel", "drecurrent", "dbias", "dh0", "dc0")
    for tname, t in TABLES.items():
        _, _, _, saved = t.rnn_forward(cell, x, k, r, b, h0, c0, mask, activation=act, go_backwards=back,
                                       zero_output_for_mask=zero)
        f32 = lambda a: None if a is None else a.astype(np.float32)  # noqa: E731
        grads = t.rnn_backward(cell, x, k, r, saved, dy=f32(gy), dh=f32(gh), dc=f32(gc), h0=h0, c0=c0, mask=mask,
                               activation=act, go_backwards=back, zero_output_for_mask=zero, dh0=True, dc0=True)
        for name, got, want in zip(names, grads, numeric):
            if want is None:
                assert got is None, (tname, name)
            else:
                _close(got, want, f"{tname} {cell} {name}", tol=2e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B,T,C,U,masked,back,seq", [
    (5, 7, 11, 37, True, False, True), (3, 4, 2, 70, False, True, False), (16, 3, 8, 64, True, True, True)])
def test_every_isa_matches_reference(cell, B, T, C, U, masked, back, seq):
    rng = np.random.default_rng(U)
    x, k, r, b, h0, c0, mask = _inputs(rng, cell, B, T, C, U, masked)
    gy = rng.standard_normal((B, T, U) if seq else (B, U)).astype(np.float32)
    gh = rng.standard_normal((B, U)).astype(np.float32)
    gc = rng.standard_normal((B, U)).astype(np.float32) if cell == "lstm" else None

    def run(t):
        out = t.rnn_forward(cell, x, k, r, b, h0, c0, mask, go_backwards=back, return_sequences=seq)
        grads = t.rnn_backward(cell, x, k, r, out[3], dy=gy if seq else None, dlast=None if seq else gy, dh=gh,
                               dc=gc, h0=h0, c0=c0, mask=mask, go_backwards=back, dh0=True, dc0=True)
        return list(out[:3]) + list(grads)

    want = run(backend.ref)
    for name, t in backend.tables().items():
        for i, (g, w) in enumerate(zip(run(t), want)):
            if w is None:
                assert g is None
            else:
                _close(g, w, f"{name} {cell} output {i}", tol=1e-4)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("B,U", [
    (32, 88),   # rows split: 4 chunks of 8 rows claimed by the two threads
    (37, 80),   # rows split, chunks of 8, 8, 8 and 13 rows (the last off the GEMM's 8-row tile grid)
    (6, 190),   # too few rows: units split (96 + 94), phase by phase
    (7, 170),   # units split, the second share the wider (80 + 90)
])
def test_one_and_two_threads_bit_identical(cell, B, U):
    rng = np.random.default_rng(3)
    T, C = 5, 13  # every step has enough flops (2*B*U*G*U >= 4e5) to run on two threads
    x, k, r, b, h0, c0, mask = _inputs(rng, cell, B, T, C, U, masked=True)
    gy = rng.standard_normal((B, T, U)).astype(np.float32)
    for name, t in backend.tables().items():
        results = []
        for n in (1, 2, 3, 8):  # 8 on fewer cores: shares taken over by threads that have a core
            with threads(n):
                out = t.rnn_forward(cell, x, k, r, b, h0, c0, mask)
                grads = t.rnn_backward(cell, x, k, r, out[3], dy=gy, h0=h0, c0=c0, mask=mask, dh0=True)
            results.append([a for a in list(out[:3]) + list(grads) if a is not None])
        for other in results[1:]:
            for a1, a2 in zip(results[0], other):
                assert np.array_equal(a1, a2), name


def test_fully_masked_rows_and_empty_sequences():
    rng = np.random.default_rng(0)
    x, k, r, b, h0, c0, _ = _inputs(rng, "lstm", 2, 3, 4, 5)
    mask = np.array([[0, 0, 0], [1, 1, 1]], bool)
    for t in TABLES.values():
        y, h, c, _ = t.rnn_forward("lstm", x, k, r, b, h0, c0, mask)
        assert np.all(y[0] == 0) and np.array_equal(h[0], h0[0]) and np.array_equal(c[0], c0[0])
        y, h, c, _ = t.rnn_forward("lstm", x[:, :0], k, r, b, h0, c0, return_sequences=False)
        assert np.all(y == 0) and np.array_equal(h, h0)


def test_bad_arguments_raise():
    t = backend.cpu
    x = np.zeros((2, 3, 4), np.float32)
    k, r, b = random_weights(np.random.default_rng(0), "lstm", 4, 5)
    with pytest.raises(ValueError, match="cell"):
        t.rnn_forward("nope", x, k, r)
    with pytest.raises(ValueError, match="kernel"):
        t.rnn_forward("lstm", x[:, :, :3], k, r)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        t.rnn_forward("gru", x, k, r)
    with pytest.raises(ValueError, match="bias"):
        t.rnn_forward("lstm", x, k, r, b[:-1])
    with pytest.raises(ValueError, match="mask"):
        t.rnn_forward("lstm", x, k, r, b, mask=np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="activation"):
        t.rnn_forward("lstm", x, k, r, b, activation="gelu")
    with pytest.raises(ValueError, match="3-D"):
        t.rnn_forward("lstm", x[0], k, r, b)
