"""Depthwise and transposed convolution: every ISA against the reference, against torch in float64
(depthwise = grouped conv2d, transposed = conv_transpose2d with mapped weights) with gradients,
determinism across thread counts, validation; DepthwiseConv2D / SeparableConv2D / Conv2DTranspose /
Conv2D(groups) layers' shapes, weights and gradients."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, layers

from _conv_util import assert_close, pair, tf_pads, threads

# (B, H, W, C, DM, kernel, strides, padding, dilation)
DW_CASES = [
    (2, 8, 8, 16, 1, 3, 1, "same", 1),     # MobileNet's stride-1 block
    (2, 9, 9, 24, 1, 3, 2, "valid", 1),    # stride-2 block after ZeroPadding2D
    (1, 7, 6, 5, 1, 3, 2, "same", 1),      # odd sizes, extra pad cell at bottom/right
    (2, 6, 7, 3, 2, 3, 1, "valid", 1),     # depth multiplier
    (1, 5, 5, 1, 3, (2, 3), (1, 2), "same", 1),
    (1, 9, 8, 67, 1, 3, 1, "same", 2),     # dilation, channels past a vector/block edge
    (3, 4, 4, 130, 1, 1, 1, "valid", 1),   # 1x1, channels past the accumulator block
    (1, 3, 3, 2, 1, 5, 1, "same", 1),      # window larger than the image
]


def _dw_data(case, seed=0):
    B, H, W, C, DM, k, s, pad, d = case
    rng = np.random.default_rng(seed)
    kh, kw = pair(k)
    x = rng.standard_normal((B, H, W, C)).astype(np.float32)
    kern = rng.standard_normal((kh, kw, C, DM)).astype(np.float32)
    bias = rng.standard_normal(C * DM).astype(np.float32)
    geo = dict(strides=pair(s), padding=pad, dilation_rate=pair(d))
    return x, kern, bias, geo


def _dw_out_shape(case):
    B, H, W, C, DM, k, s, pad, d = case
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(s), pair(d)
    return (B, tf_pads(H, kh, sh, dh, pad)[0], tf_pads(W, kw, sw, dw, pad)[0], C * DM)


@pytest.mark.parametrize("case", DW_CASES, ids=str)
def test_depthwise_matches_reference_every_isa(case):
    x, kern, bias, geo = _dw_data(case)
    want = _C.ref.depthwise_conv2d_forward(x, kern, bias, **geo)
    assert want.shape == _dw_out_shape(case)
    g = np.random.default_rng(1).standard_normal(want.shape).astype(np.float32)
    rdx, rdk, rdb = _C.ref.depthwise_conv2d_backward(g, x, kern, **geo)
    taps = kern.shape[0] * kern.shape[1]
    rows = want.shape[0] * want.shape[1] * want.shape[2]
    for name, t in backend.tables().items():
        assert_close(t.depthwise_conv2d_forward(x, kern, bias, **geo), want, taps, f"{name} forward")
        dx, dk, db = t.depthwise_conv2d_backward(g, x, kern, **geo)
        assert_close(dx, rdx, taps, f"{name} dx")
        assert_close(dk, rdk, rows, f"{name} dkernel")
        assert_close(db, rdb, rows, f"{name} dbias")
        # flags: only what is asked for
        none_dx = t.depthwise_conv2d_backward(g, x, kern, dx=False, dbias=False, **geo)
        assert none_dx[0] is None and none_dx[2] is None
        np.testing.assert_array_equal(none_dx[1], dk)


def _torch_depthwise(x, kern, bias, g, strides, padding, dilation_rate):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    kh, kw, C, DM = kern.shape
    _, pt, pb = tf_pads(x.shape[1], kh, strides[0], dilation_rate[0], padding)
    _, pl, pr = tf_pads(x.shape[2], kw, strides[1], dilation_rate[1], padding)
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    # kernel[kh, kw, c, m] -> weight[c*DM + m, 0, kh, kw]
    wt = torch.tensor(kern.transpose(2, 3, 0, 1).reshape(C * DM, 1, kh, kw).astype(np.float64), requires_grad=True)
    bt = torch.tensor(bias.astype(np.float64), requires_grad=True)
    y = F.conv2d(F.pad(xt, (pl, pr, pt, pb)), wt, bt, stride=strides, dilation=dilation_rate, groups=C)
    y.backward(torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    dk = wt.grad.numpy().reshape(C, DM, kh, kw).transpose(2, 3, 0, 1)
    return y.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1), dk, bt.grad.numpy()


@pytest.mark.parametrize("case", DW_CASES, ids=str)
def test_depthwise_matches_torch_float64(case):
    x, kern, bias, geo = _dw_data(case)
    y = _C.cpu.depthwise_conv2d_forward(x, kern, bias, **geo)
    g = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
    ty, tdx, tdk, tdb = _torch_depthwise(x, kern, bias, g, **geo)
    dx, dk, db = _C.cpu.depthwise_conv2d_backward(g, x, kern, **geo)
    taps, rows = kern.shape[0] * kern.shape[1], y.shape[0] * y.shape[1] * y.shape[2]
    assert_close(y, ty, taps, "forward")
    assert_close(dx, tdx, taps, "dx")
    assert_close(dk, tdk, rows, "dkernel")
    assert_close(db, tdb, rows, "dbias")


def test_depthwise_gradients_match_finite_differences():
    """The reference's gradients against central differences of its own forward (float64 sums)."""
    x, kern, bias, geo = _dw_data((1, 5, 4, 3, 2, 3, 2, "same", 1), seed=3)
    g = np.random.default_rng(4).standard_normal(_C.ref.depthwise_conv2d_forward(x, kern, bias, **geo).shape)

    def loss(xx, kk, bb):
        return float((_C.ref.depthwise_conv2d_forward(xx, kk, bb, **geo).astype(np.float64) * g).sum())

    dx, dk, db = _C.ref.depthwise_conv2d_backward(g.astype(np.float32), x, kern, **geo)
    for arr, grad, which in ((x, dx, 0), (kern, dk, 1), (bias, db, 2)):
        flat = arr.reshape(-1)
        for i in np.random.default_rng(5).choice(flat.size, size=min(flat.size, 6), replace=False):
            args = [x.copy(), kern.copy(), bias.copy()]
            eps = 1e-2
            args[which].reshape(-1)[i] += eps
            up = loss(*args)
            args[which].reshape(-1)[i] -= 2 * eps
            down = loss(*args)
            assert abs((up - down) / (2 * eps) - grad.reshape(-1)[i]) < 1e-2 * (1 + abs(grad.reshape(-1)[i]))


@pytest.mark.parametrize("case", [DW_CASES[0], DW_CASES[3], DW_CASES[5]], ids=str)
def test_depthwise_one_and_two_threads_bit_identical(case):
    x, kern, bias, geo = _dw_data(case)
    g = np.random.default_rng(1).standard_normal(_dw_out_shape(case)).astype(np.float32)
    runs = []
    for n in (1, 2):
        with threads(n):
            runs.append((_C.cpu.depthwise_conv2d_forward(x, kern, bias, **geo),)
                        + _C.cpu.depthwise_conv2d_backward(g, x, kern, **geo))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_depthwise_validation():
    x = np.zeros((1, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match="expects 3 channels|channels but x"):
        _C.cpu.depthwise_conv2d_forward(x, np.zeros((3, 3, 2, 1), np.float32))
    with pytest.raises(ValueError, match="4-D"):
        _C.cpu.depthwise_conv2d_forward(x, np.zeros((3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="larger than the input"):
        _C.cpu.depthwise_conv2d_forward(x, np.zeros((5, 5, 3, 1), np.float32))
    with pytest.raises(ValueError, match="bias"):
        _C.cpu.depthwise_conv2d_forward(x, np.zeros((3, 3, 3, 2), np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="strides"):
        _C.cpu.depthwise_conv2d_forward(x, np.zeros((3, 3, 3, 1), np.float32), strides=(0, 1))
    with pytest.raises(ValueError, match="dout"):
        _C.cpu.depthwise_conv2d_backward(np.zeros((1, 2, 2, 4), np.float32), x, np.zeros((3, 3, 3, 1), np.float32))


# ---- transposed convolution ------------------------------------------------------------------
# (B, H, W, C, OC, kernel, strides, padding, dilation, output_padding)
TR_CASES = [
    (2, 4, 4, 3, 5, 3, 2, "same", 1, None),
    (1, 3, 5, 2, 4, 3, 2, "valid", 1, None),
    (1, 4, 3, 3, 2, 2, 3, "valid", 1, None),     # stride > kernel: Keras's extra cells (bias only)
    (1, 3, 3, 4, 3, (3, 2), (1, 2), "same", 1, None),
    (2, 5, 4, 2, 3, 4, 2, "same", 1, None),      # even kernel: asymmetric crop
    (1, 4, 4, 2, 2, 3, 1, "valid", 2, None),
    (1, 4, 5, 3, 2, 3, 2, "valid", 1, 1),        # output_padding
    (1, 4, 5, 3, 2, 3, 2, "same", 1, 1),
    (2, 4, 5, 3, 2, 4, 2, "same", 1, (1, 1)),
    (1, 4, 5, 3, 2, 2, 3, "valid", 1, (1, 0)),
]


def _torch_transpose(x, kern, bias, g, out_hw, strides, padding, dilation_rate):
    """torch conv_transpose2d (weight (C, OC, KH, KW) = kernel.transpose(3, 2, 0, 1)) on the full output (plus
    torch's output_padding where Keras's output is longer), cropped to Keras's window of out_hw cells."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    kh, kw, OC, C = kern.shape
    xt = torch.tensor(x.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    wt = torch.tensor(kern.transpose(3, 2, 0, 1).astype(np.float64), requires_grad=True)
    bt = torch.tensor(bias.astype(np.float64), requires_grad=True)
    full = [(n - 1) * s + (k - 1) * d + 1 for n, k, s, d in zip(x.shape[1:3], (kh, kw), strides, dilation_rate)]
    # TF's rule for the conv from out_hw back to x: the cells cropped before the window
    before = [max(f - o, 0) // 2 if padding == "same" else 0 for f, o in zip(full, out_hw)]
    extra = [max(b + o - f, 0) for b, o, f in zip(before, out_hw, full)]
    y = F.conv_transpose2d(xt, wt, bt, stride=strides, dilation=dilation_rate, output_padding=tuple(extra))
    y = y[:, :, before[0]:before[0] + out_hw[0], before[1]:before[1] + out_hw[1]]
    y.backward(torch.tensor(g.transpose(0, 3, 1, 2).astype(np.float64)))
    return (y.detach().numpy().transpose(0, 2, 3, 1), xt.grad.numpy().transpose(0, 2, 3, 1),
            wt.grad.numpy().transpose(2, 3, 1, 0), bt.grad.numpy())


@pytest.mark.parametrize("case", TR_CASES, ids=str)
def test_conv_transpose_matches_torch_float64(case):
    from fastnn._ops.conv import Conv2DTranspose
    B, H, W, C, OC, k, s, pad, d, op = case
    rng = np.random.default_rng(0)
    kh, kw = pair(k)
    x = rng.standard_normal((B, H, W, C)).astype(np.float32)
    kern = rng.standard_normal((kh, kw, OC, C)).astype(np.float32)
    bias = rng.standard_normal(OC).astype(np.float32)
    geo = dict(strides=pair(s), padding=pad, dilation_rate=pair(d))
    fn = Conv2DTranspose((True, True, True))
    y = fn.forward(x, kern, bias, None, output_padding=None if op is None else pair(op), **geo)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx, dk, db = fn.backward(g)
    ty, tdx, tdk, tdb = _torch_transpose(x, kern, bias, g, y.shape[1:3], **geo)
    n = kh * kw * max(C, OC)
    assert_close(y, ty, n, "forward")
    assert_close(dx, tdx, n, "dx")
    assert_close(dk, tdk, y.size, "dkernel")
    assert_close(db, tdb, y.size, "dbias")
    layer = layers.Conv2DTranspose(OC, k, strides=s, padding=pad, dilation_rate=d, output_padding=op)
    assert layer.compute_output_shape((None, H, W, C)) == (None,) + y.shape[1:]


def test_conv_transpose_output_shapes_follow_keras():
    """Keras 3.15's shapes for input (1, 4, 5, 3) (printed by keras.layers.Conv2DTranspose(2, k, ...))."""
    for pad, op, k, s, want in [("valid", 1, 3, 2, (10, 12)), ("same", 1, 3, 2, (8, 10)), ("same", 1, 4, 2, (7, 9)),
                                ("valid", (1, 0), 2, 3, (12, 14)), ("same", 0, 3, 2, (7, 9)),
                                ("valid", None, 2, 3, (12, 15)), ("same", None, 3, 2, (8, 10))]:
        layer = layers.Conv2DTranspose(2, k, strides=s, padding=pad, output_padding=op)
        assert layer(np.zeros((1, 4, 5, 3), np.float32)).shape == (1,) + want + (2,), (pad, op, k, s)
    with pytest.raises(ValueError, match="output_padding"):
        layers.Conv2DTranspose(2, 3, strides=2, output_padding=2)


# ---- layers ----------------------------------------------------------------------------------
def test_depthwise_layer_weights_shapes_and_config():
    layer = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="relu")
    y = layer(np.random.default_rng(0).standard_normal((2, 9, 9, 4)).astype(np.float32))
    assert y.shape == (2, 5, 5, 8)
    assert [(v.name, v.shape) for v in layer.weights] == [("kernel", (3, 3, 4, 2)), ("bias", (8,))]
    assert layer.count_params() == 3 * 3 * 4 * 2 + 8
    assert (y.numpy() >= 0).all()
    config = layer.get_config()
    assert config["depth_multiplier"] == 2 and "depthwise_initializer" in config and "filters" not in config
    assert layers.DepthwiseConv2D.from_config(config).depth_multiplier == 2


def test_separable_and_grouped_layers_match_their_definitions():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    sep = layers.SeparableConv2D(5, 3, padding="same", depth_multiplier=2)
    y = sep(x).numpy()
    assert [(v.name, v.shape) for v in sep.weights] == [("depthwise_kernel", (3, 3, 4, 2)),
                                                        ("pointwise_kernel", (1, 1, 8, 5)), ("bias", (5,))]
    sep.bias.value[...] = rng.standard_normal(5)
    y = sep(x).numpy()
    z = _C.ref.depthwise_conv2d_forward(x, sep.depthwise_kernel.numpy(), strides=(1, 1), padding="same")
    want = _C.ref.conv2d_forward(z, sep.pointwise_kernel.numpy(), sep.bias.numpy())
    assert_close(y, want, 9 * 8, "separable")
    grouped = layers.Conv2D(6, 3, groups=2)
    y = grouped(x).numpy()
    assert grouped.kernel.shape == (3, 3, 2, 6)
    k = grouped.kernel.numpy()
    want = np.concatenate([_C.ref.conv2d_forward(np.ascontiguousarray(x[..., 2 * g:2 * g + 2]),
                                                 np.ascontiguousarray(k[..., 3 * g:3 * g + 3])) for g in range(2)], -1)
    assert_close(y, want, 18, "grouped")
    with pytest.raises(ValueError, match="divisible"):
        layers.Conv2D(5, 3, groups=2)


def check_layer_gradients(layer, x, step=1e-2, samples=5):
    """dx and every trainable weight's gradient of sum(layer(x) * g), through the Tensor graph (GradientTape),
    against central differences of the layer's float32 forward at a few sampled entries."""
    g = np.random.default_rng(9).standard_normal(layer.compute_output_shape(x.shape))

    def loss():
        return float((layer(x, training=True).numpy().astype(np.float64) * g).sum())

    xt = fastnn.Tensor(x, requires_grad=True)
    with fastnn.GradientTape() as tape:
        total = (layer(xt, training=True) * fastnn.Tensor(g.astype(np.float32))).sum()
    grads = tape.gradient(total, [xt] + layer.trainable_weights)
    for var, grad in zip([None] + layer.trainable_weights, grads):
        arr = x if var is None else var.value
        grad = np.asarray(grad.numpy() if hasattr(grad, "numpy") else grad)
        for i in np.random.default_rng(3).choice(arr.size, size=min(arr.size, samples), replace=False):
            old = arr.reshape(-1)[i]
            arr.reshape(-1)[i] = old + step
            up = loss()
            arr.reshape(-1)[i] = old - step
            down = loss()
            arr.reshape(-1)[i] = old
            want = (up - down) / (2 * step)
            assert abs(want - grad.reshape(-1)[i]) < 2e-2 * (1 + abs(want)), (var, i, want, grad.reshape(-1)[i])


@pytest.mark.parametrize("make", [
    lambda: layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2),
    lambda: layers.SeparableConv2D(3, 3, padding="same", activation="elu"),  # (relu: kinks; see the torch test)
    lambda: layers.Conv2D(4, 3, groups=2, padding="same"),
    lambda: layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
], ids=["depthwise", "separable", "grouped", "transpose"])
def test_layer_gradients_match_finite_differences(make):
    layer = make()
    x = np.random.default_rng(1).standard_normal((2, 5, 5, 4)).astype(np.float32)
    layer(x)
    for v in layer.trainable_weights:  # non-zero biases
        v.value[...] = np.random.default_rng(2).standard_normal(v.shape) * 0.5
    check_layer_gradients(layer, x)


def test_separable_relu_gradients_match_torch_float64():
    """SeparableConv2D with the relu fused into its pointwise convolution: values and every gradient."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layer = layers.SeparableConv2D(3, 3, strides=2, padding="same", activation="relu", depth_multiplier=2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 6, 4)).astype(np.float32)
    layer(x)
    layer.bias.value[...] = rng.standard_normal(3)
    y, ctx = layer._forward(x, True)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer._backward(ctx, g)
    t = {v.name: torch.tensor(v.numpy().astype(np.float64), requires_grad=True) for v in layer.weights}
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    _, pt, pb = tf_pads(7, 3, 2, 1, "same")
    _, pl, pr = tf_pads(6, 3, 2, 1, "same")
    w = t["depthwise_kernel"].permute(2, 3, 0, 1).reshape(8, 1, 3, 3)
    z = F.conv2d(F.pad(xt.permute(0, 3, 1, 2), (pl, pr, pt, pb)), w, stride=2, groups=4)
    out = torch.relu(F.conv2d(z, t["pointwise_kernel"].permute(3, 2, 0, 1), t["bias"])).permute(0, 2, 3, 1)
    out.backward(torch.tensor(g.astype(np.float64)))
    assert_close(y, out.detach().numpy(), 72, "forward")
    assert_close(dx, xt.grad.numpy(), 72, "dx")
    for v in layer.trainable_weights:
        assert_close(v.grad, t[v.name].grad.numpy(), y.size, v.name)
