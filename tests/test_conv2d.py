"""conv2d forward/backward: every ISA against the naive reference and torch (float64), Keras padding,
determinism across thread counts, boundary validation, autograd."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

from _conv_util import assert_close, pair, tf_pads, threads

# (B, H, W, C, OC, KH, KW, strides, dilation, padding): edge cases first, then a sampled grid.
CASES = [
    (2, 8, 8, 1, 4, 3, 3, 1, 1, "valid"),
    (1, 9, 7, 3, 5, 3, 3, 2, 1, "same"),
    (2, 7, 9, 8, 6, 5, 5, 1, 1, "same"),
    (1, 10, 10, 17, 3, 3, 3, 1, 2, "valid"),
    (2, 6, 5, 33, 7, 1, 1, 1, 1, "valid"),      # pointwise: GEMM on x, no im2col
    (2, 6, 5, 8, 4, 1, 1, 1, 1, "same"),        # pointwise with "same" (no padding needed)
    (1, 7, 7, 8, 4, 1, 1, 2, 1, "same"),        # 1x1 stride 2
    (3, 11, 6, 3, 8, 5, 3, 2, 2, "same"),
    (1, 5, 5, 17, 9, 5, 5, 2, 1, "same"),       # kernel as large as the input
    (2, 8, 9, 33, 5, 3, 1, (2, 1), (1, 2), "valid"),
    (1, 4, 4, 1, 2, 3, 3, 1, 2, "same"),        # dilated window larger than the input
    (1, 6, 6, 3, 3, 2, 2, 1, 1, "same"),        # even kernel: the extra pad cell at bottom/right
    (1, 1, 1, 3, 2, 1, 1, 1, 1, "valid"),
    (2, 9, 9, 3, 32, 3, 3, 1, 1, "same"),       # few taps: the register-tiled small path
    (1, 8, 8, 2, 48, 2, 2, 2, 2, "valid"),
    (1, 6, 7, 32, 16, 1, 1, 2, 1, "valid"),
    # 3x3 stride 1 with >= 8 in and >= 16 out channels: Winograd F(2x2, 3x3) (forward and dx)
    (2, 9, 7, 8, 16, 3, 3, 1, 1, "valid"),      # odd output (7x5): partial edge tiles
    (1, 6, 11, 17, 33, 3, 3, 1, 1, "same"),     # ragged channel vectors, padded output panels
    (3, 5, 4, 33, 40, 3, 3, 1, 1, "same"),
    (1, 3, 3, 16, 16, 3, 3, 1, 1, "valid"),     # a single output pixel
    (1, 3, 3, 16, 17, 3, 3, 1, 1, "same"),
    (2, 4, 4, 40, 8, 3, 3, 1, 1, "same"),       # forward by GEMM (8 outputs), dx by Winograd
]


def _grid(n=16, seed=1):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        B = int(rng.choice([1, 2, 3]))
        H, W = (int(v) for v in rng.integers(3, 13, size=2))
        C, OC = int(rng.choice([1, 3, 8, 17, 33])), int(rng.choice([1, 4, 16, 33]))
        K = int(rng.choice([1, 3, 5]))
        s, d, pad = int(rng.choice([1, 2])), int(rng.choice([1, 2])), str(rng.choice(["valid", "same"]))
        if pad == "valid" and (K - 1) * d + 1 > min(H, W):
            continue
        out.append((B, H, W, C, OC, K, K, s, d, pad))
    return out


ALL = CASES + _grid()


def _data(case, seed=0):
    B, H, W, C, OC, KH, KW, s, d, pad = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, H, W, C)).astype(np.float32)
    k = rng.standard_normal((KH, KW, C, OC)).astype(np.float32)
    b = rng.standard_normal(OC).astype(np.float32)
    return x, k, b, dict(strides=s, padding=pad, dilation_rate=d)


def _out_shape(case):
    B, H, W, C, OC, KH, KW, s, d, pad = case
    (sh, sw), (dh, dw) = pair(s), pair(d)
    return (B, tf_pads(H, KH, sh, dh, pad)[0], tf_pads(W, KW, sw, dw, pad)[0], OC)


@pytest.mark.parametrize("case", ALL, ids=str)
def test_matches_reference_every_isa(case):
    x, k, b, geo = _data(case)
    want = _C.ref.conv2d_forward(x, k, b, **geo)
    assert want.shape == _out_shape(case)
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    rdx, rdk, rdb = _C.ref.conv2d_backward(g, x, k, **geo)
    B, H, W, C, OC, KH, KW = case[:7]
    for name, t in backend.tables().items():
        assert_close(t.conv2d_forward(x, k, b, **geo), want, KH * KW * C, f"{name} forward")
        dx, dk, db = t.conv2d_backward(g, x, k, **geo)
        assert_close(dx, rdx, KH * KW * OC, f"{name} dx")
        assert_close(dk, rdk, want.size // OC, f"{name} dkernel")
        assert_close(db, rdb, want.size // OC, f"{name} dbias")


def _torch_conv(x, k, b, g, strides, padding, dilation_rate):
    """torch float64 NCHW with explicit (asymmetric) TF padding: y, dx, dk, db in Keras layouts."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (sh, sw), (dh, dw) = pair(strides), pair(dilation_rate)
    _, pt, pb = tf_pads(x.shape[1], k.shape[0], sh, dh, padding)
    _, pl, pr = tf_pads(x.shape[2], k.shape[1], sw, dw, padding)
    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
    kt = torch.tensor(np.ascontiguousarray(k.transpose(3, 2, 0, 1)), dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    y = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), kt, bt, stride=(sh, sw), dilation=(dh, dw))
    y.backward(torch.tensor(np.ascontiguousarray(g.transpose(0, 3, 1, 2)), dtype=torch.float64))
    return (y.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1),
            kt.grad.numpy().transpose(2, 3, 1, 0), bt.grad.numpy())


@pytest.mark.parametrize("case", ALL, ids=str)
def test_matches_torch_float64(case):
    pytest.importorskip("torch")
    x, k, b, geo = _data(case, seed=2)
    g = np.random.default_rng(3).standard_normal(_out_shape(case)).astype(np.float32)
    y, dx, dk, db = _torch_conv(x, k, b, g, **geo)
    B, H, W, C, OC, KH, KW = case[:7]
    assert_close(fastnn.kernels.conv2d(x, k, b, **geo), y, KH * KW * C, "forward")
    gx, gk, gb = _C.cpu.conv2d_backward(g, x, k, **geo)
    assert_close(gx, dx, KH * KW * OC, "dx")
    assert_close(gk, dk, g.size // OC, "dkernel")
    assert_close(gb, db, g.size // OC, "dbias")


# Several row blocks, several dkernel chunks and several images, so both threads get work.
BIG = [(3, 12, 12, 33, 16, 5, 5, 1, 1, "same"), (8, 16, 16, 16, 16, 3, 3, 1, 1, "same"),  # the latter: Winograd
       (4, 40, 40, 1, 32, 3, 3, 1, 1, "same"), (4, 9, 9, 16, 8, 1, 1, 1, 1, "valid")]


@pytest.mark.parametrize("case", BIG, ids=str)
def test_bit_identical_1_vs_2_threads(case):
    x, k, b, geo = _data(case)
    g = np.random.default_rng(1).standard_normal(_out_shape(case)).astype(np.float32)
    for name, t in backend.tables().items():
        res = []
        for n in (1, 2):
            with threads(n):
                res.append([t.conv2d_forward(x, k, b, **geo), *t.conv2d_backward(g, x, k, **geo)])
        for a, c, what in zip(*res, ("forward", "dx", "dkernel", "dbias")):
            assert np.array_equal(a, c), f"{name} {what} differs between 1 and 2 threads"


def test_backward_flags_and_accumulation_free_outputs():
    x, k, b, geo = _data(CASES[1])
    g = np.ones(_out_shape(CASES[1]), np.float32)
    full = _C.cpu.conv2d_backward(g, x, k, **geo)
    assert _C.cpu.conv2d_backward(g, x, k, dx=False, dbias=False, **geo)[0::2] == (None, None)
    only_dk = _C.cpu.conv2d_backward(g, x, k, dx=False, dbias=False, **geo)[1]
    np.testing.assert_array_equal(only_dk, full[1])
    np.testing.assert_allclose(full[2], np.full(k.shape[3], g[..., 0].size), rtol=1e-6)


def test_out_argument_and_no_bias():
    x, k, b, geo = _data(CASES[0])
    out = np.empty(_out_shape(CASES[0]), np.float32)
    r = fastnn.kernels.conv2d(x, k, None, out=out, **geo)
    assert r is out or np.shares_memory(r, out)
    assert_close(out, _C.ref.conv2d_forward(x, k, **geo), k[..., 0].size)
    with pytest.raises(ValueError, match="out has shape"):
        fastnn.kernels.conv2d(x, k, out=np.empty((1, 2, 3, 4), np.float32), **geo)


def test_keras_same_output_sizes():
    x = np.zeros((1, 7, 8, 2), np.float32)
    assert fastnn.kernels.conv2d(x, np.zeros((3, 3, 2, 4)), strides=2, padding="same").shape == (1, 4, 4, 4)
    assert fastnn.kernels.conv2d(x, np.zeros((3, 3, 2, 4)), strides=(1, 3), padding="SAME").shape == (1, 7, 3, 4)
    assert fastnn.kernels.conv2d(x, np.zeros((3, 2, 2, 4)), strides=2).shape == (1, 3, 4, 4)
    assert fastnn.kernels.conv2d(x, np.zeros((3, 3, 2, 4)), strides=np.int64(2),
                                 dilation_rate=(np.int32(1), 2)).shape == (1, 3, 2, 4)
    with pytest.raises(TypeError, match="strides must be an int or a pair"):
        fastnn.kernels.conv2d(x, np.zeros((3, 3, 2, 4)), strides=True)


@pytest.mark.parametrize("x_shape,k_shape,kw,msg", [
    ((5, 5, 3), (3, 3, 3, 2), {}, r"x must be 4-D.*\(5, 5, 3\)"),
    ((1, 5, 5, 3), (3, 3, 2), {}, r"kernel must be 4-D.*\(3, 3, 2\)"),
    ((1, 5, 5, 3), (3, 3, 4, 2), {}, r"kernel \(3, 3, 4, 2\) expects 4 input channels but x \(1, 5, 5, 3\) has 3"),
    ((1, 5, 5, 3), (6, 3, 3, 2), {}, r"larger than the input \(1, 5, 5, 3\)"),
    ((1, 5, 5, 3), (3, 3, 3, 2), {"dilation_rate": 3}, r"larger than the input"),
    ((1, 5, 5, 3), (3, 3, 3, 2), {"padding": "full"}, "padding must be 'valid' or 'same'"),
    ((1, 5, 5, 3), (3, 3, 3, 2), {"strides": 0}, "strides must be >= 1"),
    ((1, 5, 5, 3), (3, 3, 3, 2), {"bias": np.zeros(3)}, r"bias has shape \(3,\), expected \(2,\)"),
    ((0, 5, 5, 3), (3, 3, 3, 2), {}, "must not be empty"),
])
def test_validation_errors(x_shape, k_shape, kw, msg):
    with pytest.raises(ValueError, match=msg):
        fastnn.kernels.conv2d(np.zeros(x_shape), np.zeros(k_shape), **kw)


def test_backward_validates_dout():
    x, k = np.zeros((1, 5, 5, 3), np.float32), np.zeros((3, 3, 3, 2), np.float32)
    with pytest.raises(ValueError, match=r"dout has shape \(1, 5, 5, 2\), expected \(1, 3, 3, 2\)"):
        _C.cpu.conv2d_backward(np.zeros((1, 5, 5, 2)), x, k)
    with pytest.raises(TypeError, match="strides must be an int or a pair"):
        _C.cpu.conv2d_backward(np.zeros((1, 3, 3, 2)), x, k, strides=(1, 2, 3))


# ---- autograd (needs fastnn.tensor from the autograd issue) ----

@pytest.mark.parametrize("case", [CASES[1], CASES[4], (1, 5, 4, 2, 3, 3, 2, (1, 2), (2, 1), "same")], ids=str)
def test_autograd_conv2d(case):
    tensor = pytest.importorskip("fastnn.tensor")
    from fastnn.autograd import gradcheck
    from fastnn._ops.conv import conv2d
    x, k, b, geo = _data(case)
    tx, tk, tb = (tensor.Tensor(a, requires_grad=True) for a in (x, k, b))
    y = conv2d(tx, tk, tb, **geo)
    assert isinstance(y, tensor.Tensor) and y.shape == _out_shape(case)
    assert gradcheck(lambda *a: conv2d(*a, **geo), [tx, tk, tb], eps=1e-2, atol=1e-3, rtol=1e-2)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[4], CASES[13], CASES[17]], ids=str)
def test_fused_relu(case):
    x, k, b, geo = _data(case)
    z = _C.ref.conv2d_forward(x, k, b, **geo)
    np.testing.assert_array_equal(_C.ref.conv2d_forward(x, k, b, activation="relu", **geo), np.maximum(z, 0))
    n = case[5] * case[6] * case[3]
    for name, t in backend.tables().items():
        y = t.conv2d_forward(x, k, b, activation="relu", **geo)
        assert_close(y, np.maximum(z, 0), n, f"{name} relu forward")
        assert (y >= 0).all()
        assert_close(t.conv2d_forward(x, k, b, activation="linear", **geo), z, n, f"{name} linear")
    tensor = pytest.importorskip("fastnn.tensor")
    from fastnn._ops.conv import conv2d
    tx, tk, tb = (tensor.Tensor(a, requires_grad=True) for a in (x, k, b))
    w = np.random.default_rng(7).standard_normal(z.shape).astype(np.float32)
    conv2d(tx, tk, tb, activation="relu", **geo).backward(w)
    want = _C.ref.conv2d_backward(w * (z > 0), x, k, **geo)
    for got, ref, m in zip((tx.grad, tk.grad, tb.grad), want, (case[5] * case[6] * case[4], z.size, z.size)):
        assert_close(got.data, ref, m, "relu backward")
    with pytest.raises(ValueError, match="activation must be None, 'linear' or 'relu', got 'tanh'"):
        fastnn.kernels.conv2d(x, k, activation="tanh", **geo)
