"""SimpleRNN / LSTM / GRU / Bidirectional layers: Keras 3's defaults, weight names and layouts, values against
a float64 implementation of Keras's formulas, masks (padded batches = unpadded sequences), the slower path
(custom activations, recurrent dropout), gradients against torch, and a learnable order-dependent task."""
import numpy as np
import pytest
from _rnn_util import np_rnn, random_weights

import fastnn
from fastnn.layers import GRU, LSTM, Bidirectional, Dense, Embedding, SimpleRNN

LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU, "gru_reset_before": GRU}


def _layer(cell, units, **kw):
    if cell == "gru_reset_before":
        kw["reset_after"] = False
    return LAYERS[cell](units, **kw)


def _set(layer, cell, C, U, seed=0):
    k, r, b = random_weights(np.random.default_rng(seed), cell, C, U)
    layer._maybe_build((None, None, C))
    layer.set_weights([k, r, b])
    return k, r, b


def _close(got, want, tol=2e-5):
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=tol, atol=tol)


def test_lstm_defaults_weights_and_config_match_keras():
    layer = LSTM(3)
    layer(np.zeros((2, 5, 4), np.float32))
    assert [(w.name, w.shape) for w in layer.weights] == [("kernel", (4, 12)), ("recurrent_kernel", (3, 12)),
                                                           ("bias", (12,))]
    assert [w.path for w in layer.weights] == [f"{layer.name}/lstm_cell/{n}" for n in ("kernel", "recurrent_kernel",
                                                                                       "bias")]
    k, r, b = layer.get_weights()
    assert np.array_equal(b, np.r_[np.zeros(3), np.ones(3), np.zeros(6)])  # unit_forget_bias
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-5)  # orthogonal
    limit = np.sqrt(6 / (4 + 12))
    assert np.abs(k).max() <= limit
    config = layer.get_config()
    keras_keys = {"name", "trainable", "dtype", "return_sequences", "return_state", "go_backwards", "stateful",
                  "unroll", "zero_output_for_mask", "units", "activation", "recurrent_activation", "use_bias",
                  "kernel_initializer", "recurrent_initializer", "bias_initializer", "unit_forget_bias",
                  "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
                  "recurrent_constraint", "bias_constraint", "dropout", "recurrent_dropout", "seed"}
    assert keras_keys <= set(config)
    assert config["activation"] == "tanh" and config["recurrent_activation"] == "sigmoid"
    clone = LSTM.from_config(config)
    assert clone.units == 3 and clone.cell.unit_forget_bias


def test_gru_and_simple_rnn_layouts():
    for layer, shapes in ((GRU(3), [(4, 9), (3, 9), (2, 9)]), (GRU(3, reset_after=False), [(4, 9), (3, 9), (9,)]),
                          (SimpleRNN(3), [(4, 3), (3, 3), (3,)])):
        layer(np.zeros((1, 2, 4), np.float32))
        assert [w.shape for w in layer.weights] == shapes
        cell = {"GRU": "gru_cell", "SimpleRNN": "simple_rnn_cell"}[type(layer).__name__]
        assert layer.weights[0].path == f"{layer.name}/{cell}/kernel"
    assert "recurrent_activation" not in SimpleRNN(2).get_config()
    assert GRU(2).get_config()["reset_after"] is True


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("seq,state,back", [(False, False, False), (True, True, False), (True, False, True),
                                            (False, True, True)])
def test_values_match_keras_formulas(cell, seq, state, back):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    layer = _layer(cell, 5, return_sequences=seq, return_state=state, go_backwards=back)
    k, r, b = _set(layer, cell, 4, 5)
    y_w, last_w, h_w, c_w = np_rnn(cell, x, k, r, b, go_backwards=back)
    out = layer(x)
    outs = out if state else [out]
    _close(outs[0].numpy(), y_w if seq else last_w)
    if state:
        _close(outs[1].numpy(), h_w)
        if cell == "lstm":
            _close(outs[2].numpy(), c_w)
        assert len(outs) == (3 if cell == "lstm" else 2)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_masked_padded_batch_equals_unpadded_sequences(cell):
    rng = np.random.default_rng(2)
    lengths = [6, 2, 4]
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    mask = np.arange(6)[None, :] < np.array(lengths)[:, None]
    for back in (False, True):
        layer = _layer(cell, 7, go_backwards=back, return_state=True)
        _set(layer, cell, 4, 7)
        padded = layer(x * mask[..., None], mask=mask)
        for i, n in enumerate(lengths):
            alone = layer(x[i:i + 1, :n])
            for a, b in zip(padded, alone):
                _close(a.numpy()[i:i + 1], b.numpy(), tol=1e-5)
        y_w, last_w, h_w, _ = np_rnn(cell, x, *[w for w in layer.get_weights()], mask=mask, go_backwards=back)
        _close(padded[0].numpy(), last_w)


def test_masked_sequence_output_repeats_previous_output_like_keras():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0], [0, 1, 1, 1, 1]], bool)
    layer = LSTM(4, return_sequences=True)
    k, r, b = _set(layer, "lstm", 3, 4)
    y = layer(x, mask=mask).numpy()
    assert np.all(y[1, 0] == 0) and np.array_equal(y[0, 2], y[0, 1]) and np.array_equal(y[0, 4], y[0, 3])
    _close(y, np_rnn("lstm", x, k, r, b, mask=mask)[0])
    assert np.array_equal(layer.compute_mask(x, mask), mask)
    assert LSTM(2).compute_mask(x, mask) is None


def test_custom_activation_takes_the_slower_path_with_the_same_values():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1], [0, 1, 1, 1]], bool)
    for cell in LAYERS:
        fused = _layer(cell, 5, return_sequences=True)
        custom = _layer(cell, 5, return_sequences=True, activation=lambda t: fastnn.activations.tanh(t))
        weights = _set(fused, cell, 3, 5)
        _set(custom, cell, 3, 5)
        assert not custom._fused(False) and fused._fused(False)
        _close(custom(x, mask=mask).numpy(), fused(x, mask=mask).numpy(), tol=1e-5)
        # gradients too
        grads = []
        for layer in (fused, custom):
            with fastnn.GradientTape() as tape:
                loss = (layer(x) ** 2).sum()
            grads.append([np.asarray(g) for g in tape.gradient(loss, layer.trainable_weights)])
        for g1, g2 in zip(*grads):
            _close(g1, g2, tol=1e-4)
        assert len(weights) == 3


def test_recurrent_dropout_trains_on_the_slower_path_and_dropout_is_identity_at_inference():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 5, 3)).astype(np.float32)
    layer = LSTM(6, dropout=0.3, recurrent_dropout=0.3, seed=1)
    plain = LSTM(6)
    _set(layer, "lstm", 3, 6)
    _set(plain, "lstm", 3, 6)
    assert np.array_equal(layer(x).numpy(), plain(x).numpy())  # inference: no dropout
    y1 = layer(x, training=True).numpy()
    assert not np.allclose(y1, plain(x).numpy())
    assert not layer._fused(True)


def test_stateful_carries_states_between_calls():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 6, 3)).astype(np.float32)
    whole = GRU(4)
    part = GRU(4, stateful=True)
    _set(whole, "gru", 3, 4)
    _set(part, "gru", 3, 4)
    part(x[:, :3])
    _close(part(x[:, 3:]).numpy(), whole(x).numpy(), tol=1e-5)
    part.reset_states()
    _close(part(x).numpy(), whole(x).numpy(), tol=1e-5)


def test_initial_state():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)
    h0, c0 = rng.standard_normal((2, 4)).astype(np.float32), rng.standard_normal((2, 4)).astype(np.float32)
    layer = LSTM(4)
    k, r, b = _set(layer, "lstm", 3, 4)
    _close(layer(x, initial_state=[h0, c0]).numpy(), np_rnn("lstm", x, k, r, b, h0, c0)[1])


@pytest.mark.parametrize("mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_merge_modes(mode):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    for seq in (False, True):
        bi = Bidirectional(LSTM(4, return_sequences=seq), merge_mode=mode)
        out = bi(x)
        kf, rf, bf = _set(bi.forward_layer, "lstm", 3, 4, seed=1)
        kb, rb, bb = _set(bi.backward_layer, "lstm", 3, 4, seed=2)
        yf = np_rnn("lstm", x, kf, rf, bf)[0 if seq else 1]
        yb = np_rnn("lstm", x, kb, rb, bb, go_backwards=True)[0 if seq else 1]
        if seq:
            yb = yb[:, ::-1]
        want = {"concat": lambda: np.concatenate([yf, yb], -1), "sum": lambda: yf + yb, "mul": lambda: yf * yb,
                "ave": lambda: (yf + yb) / 2, None: lambda: [yf, yb]}[mode]()
        out = bi(x)
        if mode is None:
            _close(out[0].numpy(), want[0])
            _close(out[1].numpy(), want[1])
        else:
            _close(out.numpy(), want)
    assert [w.path.split("/", 1)[1] for w in bi.weights][:1] == ["forward_" + bi.forward_layer.name[8:] +
                                                                  "/lstm_cell/kernel"]


def test_bidirectional_gradients_match_finite_differences():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    bi = Bidirectional(GRU(2, return_sequences=True), merge_mode="mul")
    bi(x)
    xt = fastnn.Tensor(x, requires_grad=True)
    with fastnn.GradientTape() as tape:
        tape.watch(xt)
        loss = bi(xt).sum()
    dx = np.asarray(tape.gradient(loss, xt))
    eps = 1e-2
    num = np.zeros_like(x, np.float64)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (bi(xp).numpy().astype(np.float64).sum() - bi(xm).numpy().astype(np.float64).sum()) / (2 * eps)
    np.testing.assert_allclose(dx, num, rtol=2e-2, atol=2e-3)


def test_gradients_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(10)
    B, T, C, U = 3, 5, 4, 6
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    gy = rng.standard_normal((B, T, U)).astype(np.float32)
    for cell in ("lstm", "gru"):
        layer = _layer(cell, U, return_sequences=True)
        k, r, b = _set(layer, cell, C, U)
        if cell == "lstm":
            net = torch.nn.LSTM(C, U, batch_first=True)
            order = slice(None)
            w_ih, w_hh, b_ih, b_hh = k.T, r.T, b, np.zeros_like(b)
        else:
            net = torch.nn.GRU(C, U, batch_first=True)
            perm = np.r_[np.arange(U, 2 * U), np.arange(U), np.arange(2 * U, 3 * U)]  # torch r,z,n <- keras z,r,h
            order = perm
            w_ih, w_hh, b_ih, b_hh = k[:, perm].T, r[:, perm].T, b[0][perm], b[1][perm]
        with torch.no_grad():
            for p, v in zip((net.weight_ih_l0, net.weight_hh_l0, net.bias_ih_l0, net.bias_hh_l0),
                            (w_ih, w_hh, b_ih, b_hh)):
                p.copy_(torch.tensor(np.ascontiguousarray(v)))
        xt = torch.tensor(x, requires_grad=True)
        yt, _ = net(xt)
        (yt * torch.tensor(gy)).sum().backward()
        xf = fastnn.Tensor(x, requires_grad=True)
        with fastnn.GradientTape() as tape:
            tape.watch(xf)
            loss = (layer(xf) * gy).sum()
        dx, dk, dr, db = tape.gradient(loss, [xf] + layer.trainable_weights)
        _close(layer(x).numpy(), yt.detach().numpy(), tol=1e-5)
        _close(np.asarray(dx), xt.grad.numpy(), tol=1e-4)
        _close(np.asarray(dk)[:, order].T, net.weight_ih_l0.grad.numpy(), tol=1e-4)
        _close(np.asarray(dr)[:, order].T, net.weight_hh_l0.grad.numpy(), tol=1e-4)
        db = np.asarray(db)
        if cell == "lstm":
            _close(db, net.bias_ih_l0.grad.numpy(), tol=1e-4)
        else:
            _close(db[0][order], net.bias_ih_l0.grad.numpy(), tol=1e-4)
            _close(db[1][order], net.bias_hh_l0.grad.numpy(), tol=1e-4)


def _order_task(n, T=8, seed=0):
    """Label 1 when token 1 appears before token 2 in the sequence (both appear once, among noise 3..9)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(3, 10, (n, T))
    y = np.zeros(n, np.float32)
    for i in range(n):
        a, b = rng.choice(T, 2, replace=False)
        x[i, a], x[i, b] = 1, 2
        y[i] = float(a < b)
    return x.astype(np.int32), y


@pytest.mark.parametrize("make", [lambda: LSTM(16), lambda: GRU(16), lambda: Bidirectional(LSTM(8))])
def test_order_dependent_task_is_learned(make):
    fastnn.utils.set_random_seed(0)
    x, y = _order_task(1200)
    xv, yv = _order_task(300, seed=1)
    model = fastnn.models.Sequential([fastnn.Input((8,), dtype="int32"), Embedding(10, 8), make(),
                                      Dense(1, activation="sigmoid")])
    model.compile(optimizer=fastnn.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=8, verbose=0)
    _, acc = model.evaluate(xv, yv, verbose=0)
    assert acc >= 0.9


def test_bidirectional_masked_sequences_output_zeros_at_masked_steps_like_keras():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 6, 4)).astype(np.float32)
    mask = np.array([[1, 1, 0, 1, 0, 1], [0, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], bool)
    bi = Bidirectional(GRU(5, return_sequences=True), merge_mode="ave")
    bi(x)
    kf, rf, bf = _set(bi.forward_layer, "gru", 4, 5, seed=1)
    kb, rb, bb = _set(bi.backward_layer, "gru", 4, 5, seed=2)
    yf = np_rnn("gru", x, kf, rf, bf, mask=mask, zero_output_for_mask=True)[0]
    yb = np_rnn("gru", x, kb, rb, bb, mask=mask, go_backwards=True, zero_output_for_mask=True)[0][:, ::-1]
    _close(bi(x, mask=mask).numpy(), (yf + yb) / 2)
    assert bi.forward_layer.zero_output_for_mask and not GRU(2).zero_output_for_mask


@pytest.mark.parametrize("cell", ["lstm", "gru_reset_before"])
def test_bidirectional_pair_kernel_equals_the_two_layers_run_apart(cell):
    rng = np.random.default_rng(12)
    x = rng.standard_normal((4, 7, 3)).astype(np.float32)
    mask = rng.random((4, 7)) > 0.3
    results = []
    for pair in (True, False):
        bi = Bidirectional(_layer(cell, 5, return_sequences=True, return_state=True))
        bi(x)
        _set(bi.forward_layer, cell, 3, 5, seed=1)
        _set(bi.backward_layer, cell, 3, 5, seed=2)
        assert bi._pair_ok(False)
        if not pair:
            bi._pair_ok = lambda training: False
        with fastnn.GradientTape() as tape:
            outs = bi(x, mask=mask)
            loss = sum((o * o).sum() for o in outs)
        results.append([o.numpy() for o in outs] + [np.asarray(g) for g in tape.gradient(loss, bi.trainable_weights)])
    for a, b in zip(*results):
        assert np.array_equal(a, b)


def test_sequence_bench_worker_runs_tiny():
    import json
    import os
    import subprocess
    import sys

    import fastnn.bench.sequence as seq
    root = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env = dict(os.environ, PYTHONPATH=root, OMP_NUM_THREADS="1")
    p = subprocess.run([sys.executable, seq.WORKER, "fastnn", "gru", "--n", "64", "--epochs", "1"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    rows = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
    train = next(r for r in rows if r["kind"] == "train")
    assert train["model"] == "gru" and train["sps"] > 0 and np.isfinite(train["final_loss"])
    assert seq.flops_per_sample(4) == 3 * 100 * 2 * 256 * 512  # ~79 MFLOP for the LSTM, as issue #14 counts


def test_bidirectional_config_round_trip_in_keras_format():
    bi = Bidirectional(GRU(3, return_sequences=True), merge_mode="sum")
    x = np.random.default_rng(13).standard_normal((2, 4, 3)).astype(np.float32)
    y = bi(x).numpy()
    config = bi.get_config()
    assert config["layer"]["module"] == "keras.layers" and config["layer"]["class_name"] == "GRU"
    assert config["layer"]["config"]["name"] == "forward_" + bi.forward_layer.name[len("forward_"):]
    assert config["backward_layer"]["config"]["go_backwards"] is True and config["merge_mode"] == "sum"
    clone = Bidirectional.from_config(config)
    assert clone.forward_layer.name == bi.forward_layer.name and clone.backward_layer.name == bi.backward_layer.name
    clone(x)
    clone.set_weights(bi.get_weights())
    np.testing.assert_array_equal(clone(x).numpy(), y)


@pytest.mark.parametrize("make", [lambda: LSTM(4), lambda: GRU(4, go_backwards=True),
                                  lambda: Bidirectional(SimpleRNN(3))])
def test_mask_zero_flows_from_embedding_through_models_and_eager_calls(make):
    fastnn.utils.set_random_seed(1)
    emb, rnn = Embedding(9, 5, mask_zero=True), make()
    model = fastnn.models.Sequential([fastnn.Input((None,)), emb, rnn])
    ids = np.array([[3, 1, 4, 1, 5, 0], [2, 6, 0, 0, 0, 0], [8, 0, 7, 0, 0, 0]])
    padded = model.predict(ids, verbose=0)
    for i, row in enumerate(ids):
        alone = model.predict(row[row != 0][None], verbose=0)  # the valid ids only, no padding
        np.testing.assert_allclose(padded[i], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rnn(emb(ids)).numpy(), padded, rtol=1e-5, atol=1e-6)  # mask attached eagerly
