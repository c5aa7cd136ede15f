"""Max / average / global-average pooling: every ISA against the reference and torch (float64),
Keras padding and counting rules, first-max ties, determinism, validation, autograd."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend

from _conv_util import assert_close, pair, tf_pads, threads

# (B, H, W, C, pool_size, strides, padding)
CASES = [
    (2, 24, 24, 8, 2, None, "valid"),
    (1, 7, 7, 3, 2, None, "valid"),       # floor: the last row/column is dropped
    (1, 7, 7, 3, 2, None, "same"),        # extra pad cell at bottom/right, not counted
    (2, 9, 8, 17, 3, 2, "same"),          # overlapping windows
    (1, 8, 9, 33, 3, 1, "valid"),
    (3, 5, 6, 1, (2, 3), (1, 2), "same"),
    (1, 4, 4, 5, 1, 1, "valid"),
    (1, 5, 5, 2, 5, None, "valid"),       # window = whole image
    (2, 6, 6, 4, 4, 3, "same"),
    (2, 11, 10, 3, 2, 3, "valid"),        # gaps between windows: their dx cells are zero
    (1, 5, 5, 4, 4, 4, "same"),           # leading pad row/column
]


def _data(case, seed=0):
    B, H, W, C, k, s, pad = case
    x = np.random.default_rng(seed).standard_normal((B, H, W, C)).astype(np.float32)
    return x, dict(pool_size=k, strides=s, padding=pad)


def _out_shape(case):
    B, H, W, C, k, s, pad = case
    (kh, kw) = pair(k)
    (sh, sw) = pair(s if s is not None else k)
    return (B, tf_pads(H, kh, sh, 1, pad)[0], tf_pads(W, kw, sw, 1, pad)[0], C)


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_reference_every_isa(kind, case):
    x, geo = _data(case)
    want = getattr(_C.ref, kind + "_forward")(x, **geo)
    assert want.shape == _out_shape(case)
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    rdx = getattr(_C.ref, kind + "_backward")(g, x, **geo)
    n = int(np.prod(pair(case[4])))
    for name, t in backend.tables().items():
        assert_close(getattr(t, kind + "_forward")(x, **geo), want, n, f"{name} forward")
        assert_close(getattr(t, kind + "_backward")(g, x, **geo), rdx, n, f"{name} dx")
    if kind == "maxpool2d":  # the saved window cell numbers: same as the reference's, same dx
        _, rarg = _C.ref.maxpool2d_forward(x, return_argmax=True, **geo)
        for name, t in backend.tables().items():
            out, arg = t.maxpool2d_forward(x, return_argmax=True, **geo)
            np.testing.assert_array_equal(out, want, err_msg=name)
            np.testing.assert_array_equal(arg, rarg, err_msg=name)
            np.testing.assert_array_equal(t.maxpool2d_backward(g, x, argmax=arg, **geo), rdx, err_msg=name)


def _torch_pool(kind, x, g, pool_size, strides, padding):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    (kh, kw) = pair(pool_size)
    (sh, sw) = pair(strides if strides is not None else pool_size)
    _, pt, pb = tf_pads(x.shape[1], kh, sh, 1, padding)
    _, pl, pr = tf_pads(x.shape[2], kw, sw, 1, padding)
    xt = torch.tensor(np.ascontiguousarray(x.transpose(0, 3, 1, 2)), dtype=torch.float64, requires_grad=True)
    pads = (pl, pr, pt, pb)
    if kind == "maxpool2d":
        y = F.max_pool2d(F.pad(xt, pads, value=-np.inf), (kh, kw), (sh, sw))
    else:  # Keras: divide by the number of cells inside the image
        ones = F.pad(torch.ones_like(xt[:1, :1]), pads)
        y = F.avg_pool2d(F.pad(xt, pads), (kh, kw), (sh, sw)) / F.avg_pool2d(ones, (kh, kw), (sh, sw))
    y.backward(torch.tensor(np.ascontiguousarray(g.transpose(0, 3, 1, 2)), dtype=torch.float64))
    return y.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch_float64(kind, case):
    pytest.importorskip("torch")
    x, geo = _data(case, seed=2)
    g = np.random.default_rng(3).standard_normal(_out_shape(case)).astype(np.float32)
    y, dx = _torch_pool(kind, x, g, **geo)
    n = int(np.prod(pair(case[4])))
    assert_close(getattr(_C.cpu, kind + "_forward")(x, **geo), y, n, "forward")
    assert_close(getattr(_C.cpu, kind + "_backward")(g, x, **geo), dx, n, "dx")


def test_kernels_wrappers_and_out():
    x, geo = _data(CASES[0])
    out = np.empty(_out_shape(CASES[0]), np.float32)
    fastnn.kernels.max_pool2d(x, out=out)
    np.testing.assert_array_equal(out, x.reshape(2, 12, 2, 12, 2, 8).max(axis=(2, 4)))
    np.testing.assert_allclose(fastnn.kernels.avg_pool2d(x), x.reshape(2, 12, 2, 12, 2, 8).mean(axis=(2, 4)),
                               rtol=1e-6, atol=1e-6)


def test_max_ties_go_to_first_cell():
    x = np.zeros((1, 4, 4, 3), np.float32)
    g = np.arange(1, 13, dtype=np.float32).reshape(1, 2, 2, 3)
    for name, t in {"ref": _C.ref, **backend.tables()}.items():
        dx = t.maxpool2d_backward(g, x)
        want = np.zeros_like(x)
        want[0, ::2, ::2] = g[0]  # top-left cell of each window
        np.testing.assert_array_equal(dx, want, err_msg=name)


def test_argmax_validation_and_out_of_window_values():
    x = np.random.default_rng(0).standard_normal((1, 4, 4, 2)).astype(np.float32)
    g = np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(ValueError, match="argmax must be the uint8 array"):
        _C.cpu.maxpool2d_backward(g, x, argmax=np.zeros((1, 2, 2, 2), np.int64))
    with pytest.raises(ValueError, match=r"argmax has shape \(1, 2, 2\)"):
        _C.cpu.maxpool2d_backward(g, x, argmax=np.zeros((1, 2, 2), np.uint8))
    for t in (_C.ref, *backend.tables().values()):  # cell numbers past the window route nowhere
        dx = t.maxpool2d_backward(g, x, argmax=np.full((1, 2, 2, 2), 200, np.uint8))
        np.testing.assert_array_equal(dx, np.zeros_like(x))
    assert _C.cpu.maxpool2d_forward(np.zeros((1, 16, 16, 1)), pool_size=16, return_argmax=True)[1] is None


def test_same_padding_never_wins_max():
    x = -np.ones((1, 3, 3, 1), np.float32)  # all negative: a zero pad cell would win if counted
    np.testing.assert_array_equal(fastnn.kernels.max_pool2d(x, padding="same"), -np.ones((1, 2, 2, 1)))
    np.testing.assert_allclose(fastnn.kernels.avg_pool2d(x, padding="same"), -np.ones((1, 2, 2, 1)))


@pytest.mark.parametrize("kind", ["maxpool2d", "avgpool2d"])
def test_bit_identical_1_vs_2_threads(kind):
    for case in ((4, 24, 24, 64, 2, None, "valid"), (3, 17, 13, 33, 3, 2, "same")):
        x, geo = _data(case)
        g = np.random.default_rng(1).standard_normal(_out_shape(case)).astype(np.float32)
        for name, t in backend.tables().items():
            res = []
            for n in (1, 2):
                with threads(n):
                    res.append((getattr(t, kind + "_forward")(x, **geo), getattr(t, kind + "_backward")(g, x, **geo)))
            assert np.array_equal(res[0][0], res[1][0]) and np.array_equal(res[0][1], res[1][1]), name


@pytest.mark.parametrize("call,msg", [
    (lambda: fastnn.kernels.max_pool2d(np.zeros((4, 4, 3))), r"x must be 4-D.*\(4, 4, 3\)"),
    (lambda: fastnn.kernels.max_pool2d(np.zeros((1, 2, 2, 3)), 3), r"pool_size \(3, 3\) is larger than the input \(1, 2, 2, 3\)"),
    (lambda: fastnn.kernels.avg_pool2d(np.zeros((1, 4, 4, 3)), 0), "pool_size must be >= 1"),
    (lambda: fastnn.kernels.avg_pool2d(np.zeros((1, 4, 4, 3)), padding="causal"), "padding must be"),
    (lambda: _C.cpu.maxpool2d_backward(np.zeros((1, 3, 3, 3)), np.zeros((1, 4, 4, 3))),
     r"dout has shape \(1, 3, 3, 3\), expected \(1, 2, 2, 3\)"),
])
def test_validation_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


# ---- autograd (needs fastnn.tensor from the autograd issue) ----

@pytest.mark.parametrize("fn,ref", [
    ("max_pool2d", lambda x: x.reshape(2, 3, 2, 3, 2, 4).max(axis=(2, 4))),
    ("avg_pool2d", lambda x: x.reshape(2, 3, 2, 3, 2, 4).mean(axis=(2, 4))),
    ("global_avg_pool2d", lambda x: x.mean(axis=(1, 2))),
])
def test_autograd_pooling(fn, ref):
    tensor = pytest.importorskip("fastnn.tensor")
    from fastnn._ops import conv
    x = np.random.default_rng(0).standard_normal((2, 6, 6, 4)).astype(np.float32)
    tx = tensor.Tensor(x, requires_grad=True)
    y = getattr(conv, fn)(tx)
    np.testing.assert_allclose(y.data, ref(x), rtol=1e-6, atol=1e-6)
    from fastnn.autograd import gradcheck  # random data: no ties, no kinks
    assert gradcheck(getattr(conv, fn), [tx], eps=1e-3, atol=1e-3, rtol=1e-2)


def test_global_avg_pool2d_rank_error():
    pytest.importorskip("fastnn.tensor")
    from fastnn._ops.conv import global_avg_pool2d
    with pytest.raises(ValueError, match=r"must be 4-D.*\(3, 4\)"):
        global_avg_pool2d(np.zeros((3, 4), np.float32))
