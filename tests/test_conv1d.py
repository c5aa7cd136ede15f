"""Conv1D and the 1-D pooling layers on the 2-D kernels: every ISA against numpy/torch (float64) references,
causal padding (also at the kernel level against the reference table), gradients, configs and validation."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, layers
from fastnn._ops import conv as _conv

from _conv_util import assert_close, threads, tf_pads

# (B, L, C, OC, K, strides, padding, dilation)
CASES = [
    (2, 10, 3, 4, 3, 1, "valid", 1),
    (1, 7, 5, 8, 3, 1, "same", 1),
    (3, 13, 2, 16, 5, 2, "same", 1),
    (2, 11, 4, 3, 3, 1, "causal", 1),
    (1, 17, 3, 5, 3, 1, "causal", 3),     # dilated causal (WaveNet)
    (2, 9, 1, 1, 4, 3, "causal", 1),      # strided causal
    (1, 5, 7, 2, 5, 1, "valid", 1),       # window = whole sequence
    (2, 12, 6, 32, 2, 1, "same", 2),
    (1, 1, 3, 2, 1, 1, "valid", 1),
]


def _pads(L, K, s, d, padding):
    """(out, before, after) by Keras's rule, independent of the C++ resolver."""
    if padding == "causal":
        return -(-L // s), (K - 1) * d, 0
    return tf_pads(L, K, s, d, padding)


def _reference(x, k, b, s, padding, d):
    """float64 numpy Conv1D: x (B, L, C), k (K, C, OC)."""
    B, L, C = x.shape
    K = k.shape[0]
    out, before, after = _pads(L, K, s, d, padding)
    xp = np.pad(x.astype(np.float64), ((0, 0), (before, after + K * d), (0, 0)))
    y = np.zeros((B, out, k.shape[2]))
    for t in range(out):
        for j in range(K):
            y[:, t] += xp[:, t * s + j * d] @ k[j].astype(np.float64)
    return y + b


def _layer(case, activation=None):
    B, L, C, OC, K, s, padding, d = case
    fastnn.utils.set_random_seed(sum(case[:5]))
    layer = layers.Conv1D(OC, K, strides=s, padding=padding, dilation_rate=d, activation=activation,
                          bias_initializer="glorot_uniform")
    layer.build((None, L, C))
    x = np.random.default_rng(1).standard_normal((B, L, C)).astype(np.float32)
    return layer, x


@pytest.fixture(params=sorted(backend.tables()))
def isa(request, monkeypatch):
    """Run the layers on one CPU kernel table."""
    table = backend.tables()[request.param]
    monkeypatch.setattr(_conv, "of", lambda a: table)
    return request.param


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv1d_forward_backward_vs_reference(case, isa):
    layer, x = _layer(case)
    k, b = layer.kernel.numpy(), layer.bias.numpy()
    y, ctx = layer._forward(x, True)
    want = _reference(x, k, b, case[5], case[6], case[7])
    assert y.shape == want.shape == (case[0],) + layer.compute_output_shape(x.shape)[1:]
    n = case[2] * case[4]
    assert_close(y, want, n, f"{isa} forward")
    # gradients: the adjoint of the reference (float64 numpy autodiff by linearity)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    dx = layer._backward(ctx, dy)
    # <dx, probe> = <dy, conv(probe)>: the adjoint identity on random probes (float64 reference)
    probe = np.random.default_rng(3).standard_normal(x.shape)
    lin = _reference(probe, k, np.zeros_like(b), case[5], case[6], case[7])
    assert (dx.astype(np.float64) * probe).sum() == pytest.approx((dy * lin).sum(), rel=1e-4, abs=1e-4)
    kprobe = np.random.default_rng(4).standard_normal(k.shape)
    klin = _reference(x, kprobe, np.zeros_like(b), case[5], case[6], case[7])
    assert (layer.kernel.grad.astype(np.float64) * kprobe).sum() == pytest.approx((dy * klin).sum(), rel=1e-4,
                                                                                   abs=1e-4)
    np.testing.assert_allclose(layer.bias.grad, dy.sum(axis=(0, 1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_conv1d_vs_torch_float64_with_gradients(case):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    B, L, C, OC, K, s, padding, d = case
    layer, x = _layer(case, activation="relu")
    k, b = layer.kernel.numpy(), layer.bias.numpy()
    y, ctx = layer._forward(x, True)
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    dx = layer._backward(ctx, dy)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    tk = torch.tensor(k, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    _, before, after = _pads(L, K, s, d, padding)
    xp = F.pad(tx.transpose(1, 2), (before, after))
    ty = torch.relu(F.conv1d(xp, tk.permute(2, 1, 0), tb, stride=s, dilation=d)).transpose(1, 2)
    ty.backward(torch.tensor(dy, dtype=torch.float64))
    n = C * K
    assert_close(y, ty.detach().numpy(), n, "forward")
    assert_close(dx, tx.grad.numpy(), n, "dx")
    assert_close(layer.kernel.grad, tk.grad.numpy(), B * L, "dkernel")
    assert_close(layer.bias.grad, tb.grad.numpy(), B * L, "dbias")


@pytest.mark.parametrize("case", [c for c in CASES if c[6] == "causal"], ids=str)
def test_causal_kernel_matches_reference_every_isa(case):
    B, L, C, OC, K, s, padding, d = case
    rng = np.random.default_rng(6)
    x = rng.standard_normal((B, 1, L, C)).astype(np.float32)
    k = rng.standard_normal((1, K, C, OC)).astype(np.float32)
    geo = dict(strides=(1, s), padding="causal", dilation_rate=(1, d))
    want = _C.ref.conv2d_forward(x, k, None, **geo)
    g = rng.standard_normal(want.shape).astype(np.float32)
    rdx, rdk, _ = _C.ref.conv2d_backward(g, x, k, **geo)
    for name, t in backend.tables().items():
        assert_close(t.conv2d_forward(x, k, None, **geo), want, C * K, f"{name} forward")
        dx, dk, _ = t.conv2d_backward(g, x, k, **geo)
        assert_close(dx, rdx, OC * K, f"{name} dx")
        assert_close(dk, rdk, B * L, f"{name} dkernel")


def test_causal_output_does_not_see_the_future():
    layer, x = _layer((1, 12, 2, 3, 3, 1, "causal", 2))
    y = layer(x).numpy()
    x2 = x.copy()
    x2[:, 7:] += 5.0
    y2 = layer(x2).numpy()
    np.testing.assert_array_equal(y[:, :7], y2[:, :7])
    assert not np.allclose(y[:, 7:], y2[:, 7:])


def test_conv1d_one_and_two_threads_bit_identical():
    layer, x = _layer((4, 64, 16, 32, 5, 1, "causal", 2))
    dy = np.random.default_rng(7).standard_normal((4, 64, 32)).astype(np.float32)
    results = []
    for n in (1, 2):
        with threads(n):
            y, ctx = layer._forward(x, True)
            dx = layer._backward(ctx, dy)
            results.append((y, dx, layer.kernel.grad.copy()))
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


POOL_CASES = [(2, 10, 3, 2, None, "valid"), (1, 7, 4, 2, None, "same"), (2, 9, 5, 3, 2, "same"),
              (1, 11, 2, 3, 1, "valid"), (3, 5, 1, 5, None, "valid"), (1, 13, 6, 4, 3, "same")]


def _pool_reference(x, p, s, padding, kind):
    L = x.shape[1]
    out, before, _ = tf_pads(L, p, s, 1, padding)
    y = np.empty((x.shape[0], out, x.shape[2]))
    for t in range(out):
        lo, hi = max(t * s - before, 0), min(t * s - before + p, L)
        window = x[:, lo:hi].astype(np.float64)
        y[:, t] = window.max(axis=1) if kind == "max" else window.mean(axis=1)
    return y


@pytest.mark.parametrize("case", POOL_CASES, ids=str)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling1d_vs_reference(case, kind, isa):
    B, L, C, p, s, padding = case
    x = np.random.default_rng(8).standard_normal((B, L, C)).astype(np.float32)
    layer = (layers.MaxPooling1D if kind == "max" else layers.AveragePooling1D)(p, s, padding)
    y, ctx = layer._forward(x, True)
    want = _pool_reference(x, p, s or p, padding, kind)
    assert y.shape == want.shape == (B,) + layer.compute_output_shape((None, L, C))[1:]
    assert_close(y, want, p, f"{isa} forward")
    # the gradient against torch (float64)
    torch = pytest.importorskip("torch")
    dy = np.random.default_rng(9).standard_normal(y.shape).astype(np.float32)
    dx = layer._backward(ctx, dy)
    tx = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out, before, after = tf_pads(L, p, s or p, 1, padding)
    if kind == "max":
        xp = torch.nn.functional.pad(tx.transpose(1, 2), (before, after), value=-np.inf)
        ty = torch.nn.functional.max_pool1d(xp, p, s or p)
    else:  # Keras does not count padding cells: sum over the window / its cells inside the sequence
        xp = torch.nn.functional.pad(tx.transpose(1, 2), (before, after))
        ones = torch.nn.functional.pad(torch.ones(1, 1, L, dtype=torch.float64), (before, after))
        ty = torch.nn.functional.avg_pool1d(xp, p, s or p) / torch.nn.functional.avg_pool1d(ones, p, s or p)
    ty.transpose(1, 2).backward(torch.tensor(dy, dtype=torch.float64))
    assert_close(dx, tx.grad.numpy(), p, f"{isa} dx")


def test_global_pooling1d_values_and_gradients(isa):
    x = np.random.default_rng(10).standard_normal((3, 7, 5)).astype(np.float32)
    x[1, 4] = x[1].max(axis=0) + 1.0  # a clear maximum
    for cls, ref in ((layers.GlobalAveragePooling1D, x.mean(axis=1)), (layers.GlobalMaxPooling1D, x.max(axis=1))):
        for keepdims in (False, True):
            layer = cls(keepdims=keepdims)
            y, ctx = layer._forward(x, True)
            np.testing.assert_allclose(y.reshape(ref.shape), ref, rtol=1e-6, atol=1e-6)
            assert y.shape == (3,) + layer.compute_output_shape((None, 7, 5))[1:]
            dy = np.ones(y.shape, np.float32)
            dx = layer._backward(ctx, dy)
            if cls is layers.GlobalAveragePooling1D:
                np.testing.assert_allclose(dx, np.full(x.shape, 1 / 7), rtol=1e-6)
            else:
                np.testing.assert_array_equal(dx, (x == x.max(axis=1, keepdims=True)).astype(np.float32))


def test_conv1d_config_params_and_validation():
    layer = layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", name="c")
    layer(np.ones((1, 10, 3), np.float32))
    assert [w.shape for w in layer.weights] == [(3, 3, 4), (4,)] and layer.count_params() == 40
    config = layer.get_config()
    assert config["kernel_size"] == (3,) and config["strides"] == (1,) and config["dilation_rate"] == (2,)
    assert config["padding"] == "causal" and config["groups"] == 1 and config["data_format"] == "channels_last"
    clone = layers.Conv1D.from_config(config)
    assert clone.get_config() == config
    with pytest.raises(ValueError, match="dilation_rate"):
        layers.Conv1D(4, 3, strides=2, dilation_rate=2)
    with pytest.raises(ValueError, match="padding"):
        layers.Conv1D(4, 3, padding="full")
    with pytest.raises(ValueError, match="3-D"):
        layers.Conv1D(4, 3)(np.ones((2, 5), np.float32))
    with pytest.raises(ValueError, match="negative or zero"):
        layers.Conv1D(4, 6)(np.ones((2, 5, 1), np.float32))
    pool = layers.MaxPooling1D(3, padding="same")
    assert pool.get_config()["pool_size"] == (3,) and pool.get_config()["strides"] == (3,)
    assert layers.MaxPooling1D.from_config(pool.get_config()).get_config() == pool.get_config()
    with pytest.raises(ValueError, match="padding"):
        layers.AveragePooling1D(2, padding="causal")


def test_conv1d_text_classifier_trains():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((64, 20, 4)).astype(np.float32)
    y = (x[:, :, 0].mean(axis=1) > 0).astype(np.int64)
    fastnn.utils.set_random_seed(0)
    model = fastnn.Sequential([fastnn.Input((20, 4)), layers.Conv1D(8, 3, activation="relu", padding="causal"),
                               layers.MaxPooling1D(), layers.Conv1D(8, 3, activation="relu"),
                               layers.GlobalMaxPooling1D(), layers.Dense(2, activation="softmax")])
    model.compile(fastnn.optimizers.Adam(0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] * 0.5
    assert history.history["accuracy"][-1] > 0.9


def test_average_pooling1d_pool_size_is_required_like_keras():
    with pytest.raises(TypeError):
        layers.AveragePooling1D()
    assert layers.MaxPooling1D().pool_size == (2,)
    assert layers.AveragePooling1D(3).get_config()["pool_size"] == (3,)
