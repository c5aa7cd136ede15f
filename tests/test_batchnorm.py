"""Batch normalization kernels: every ISA against the reference, against a float64 numpy formula and torch
(float64, with gradients), Keras's moving averages (momentum 0.99, epsilon 1e-3, biased variance), the
fused relu/relu6, 1 vs 2 threads bit-identical, validation; the layer's training/inference/frozen modes."""
import numpy as np
import pytest

import fastnn
from fastnn import _C, backend, layers
from fastnn.models.plan import Plan

from _conv_util import threads

SHAPES = [(4, 3), (2, 5, 5, 7), (1, 1, 1, 1), (3, 17, 13, 33), (64, 130)]


def _data(shape, seed=0):
    rng = np.random.default_rng(seed)
    C = shape[-1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(np.float32)
    gamma, beta = rng.standard_normal(C).astype(np.float32), rng.standard_normal(C).astype(np.float32)
    mm, mv = rng.standard_normal(C).astype(np.float32), (rng.random(C) + 0.5).astype(np.float32)
    return x, gamma, beta, mm, mv


def _numpy_bn(x, gamma, beta, mm, mv, eps, momentum, training, act):
    x2 = x.reshape(-1, x.shape[-1]).astype(np.float64)
    if training:
        mean, var = x2.mean(0), x2.var(0)
        new_mm, new_mv = mm * momentum + mean * (1 - momentum), mv * momentum + var * (1 - momentum)
    else:
        mean, var, new_mm, new_mv = mm.astype(np.float64), mv.astype(np.float64), mm, mv
    y = (x2 - mean) / np.sqrt(var + eps) * gamma + beta
    y = {None: y, "relu": np.maximum(y, 0), "relu6": np.clip(y, 0, 6)}[act]
    return y.reshape(x.shape), new_mm, new_mv


@pytest.mark.parametrize("act", [None, "relu", "relu6"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_forward_every_isa_matches_reference_and_formula(shape, training, act):
    x, gamma, beta, mm, mv = _data(shape)
    want, want_mm, want_mv = _numpy_bn(x, gamma, beta, mm, mv, 1e-3, 0.99, training, act)
    for name, t in [("ref", _C.ref)] + sorted(backend.tables().items()):
        m, v = mm.copy(), mv.copy()
        y, mean, inv = t.batchnorm_forward(x, gamma, beta, m, v, epsilon=1e-3, momentum=0.99, training=training,
                                           activation=act)
        np.testing.assert_allclose(y, want, rtol=2e-5, atol=2e-5, err_msg=name)
        np.testing.assert_allclose(m, want_mm, rtol=1e-6, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(v, want_mv, rtol=1e-6, atol=1e-6, err_msg=name)
        assert mean.shape == inv.shape == (shape[-1],)


@pytest.mark.parametrize("act", [None, "relu6"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_backward_every_isa_matches_reference(shape, training, act):
    x, gamma, beta, mm, mv = _data(shape)
    y, mean, inv = _C.ref.batchnorm_forward(x, gamma, beta, mm.copy(), mv.copy(), training=training, activation=act)
    g = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    want = _C.ref.batchnorm_backward(g, x, y, gamma, mean, inv, training=training, activation=act)
    n = x.size // shape[-1]
    for name, t in sorted(backend.tables().items()):
        got = t.batchnorm_backward(g, x, y, gamma, mean, inv, training=training, activation=act)
        for a, b, what in zip(got, want, ("dx", "dgamma", "dbeta")):
            tol = 1e-5 * (1 + np.abs(b).max()) * (np.sqrt(n) if what != "dx" else 4)
            assert np.abs(a - b).max() <= tol, (name, what)


@pytest.mark.parametrize("act", [None, "relu"])
@pytest.mark.parametrize("training", [True, False])
def test_matches_torch_float64_with_gradients(training, act):
    torch = pytest.importorskip("torch")
    x, gamma, beta, mm, mv = _data((3, 6, 5, 8), seed=2)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    gt = torch.tensor(gamma.astype(np.float64), requires_grad=True)
    bt = torch.tensor(beta.astype(np.float64), requires_grad=True)
    rm, rv = torch.tensor(mm.astype(np.float64)), torch.tensor(mv.astype(np.float64))
    # torch: channels second, momentum = 1 - Keras's, unbiased running variance (so compared in inference only)
    yt = torch.nn.functional.batch_norm(xt.permute(0, 3, 1, 2), rm, rv, gt, bt, training=training, momentum=0.01,
                                        eps=1e-3).permute(0, 2, 3, 1)
    if act == "relu":
        yt = torch.relu(yt)
    g = np.random.default_rng(3).standard_normal(x.shape)
    yt.backward(torch.tensor(g))
    m, v = mm.copy(), mv.copy()
    y, mean, inv = _C.cpu.batchnorm_forward(x, gamma, beta, m, v, training=training, activation=act)
    dx, dgamma, dbeta = _C.cpu.batchnorm_backward(g.astype(np.float32), x, y, gamma, mean, inv, training=training,
                                                  activation=act)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dgamma, gt.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbeta, bt.grad.numpy(), rtol=1e-4, atol=1e-4)
    if training:
        np.testing.assert_allclose(m, rm.numpy(), rtol=1e-6, atol=1e-6)  # same mean update


def test_gradient_matches_finite_differences_training_mode():
    x, gamma, beta, mm, mv = _data((2, 3, 3, 4), seed=4)
    g = np.random.default_rng(5).standard_normal(x.shape)

    def loss(xx, gg, bb):
        y = _C.ref.batchnorm_forward(xx, gg, bb, mm.copy(), mv.copy(), training=True, activation="relu6")[0]
        return float((y.astype(np.float64) * g).sum())

    y, mean, inv = _C.ref.batchnorm_forward(x, gamma, beta, mm.copy(), mv.copy(), training=True, activation="relu6")
    grads = _C.cpu.batchnorm_backward(g.astype(np.float32), x, y, gamma, mean, inv, training=True,
                                      activation="relu6")
    for which, arr in enumerate((x, gamma, beta)):
        for i in range(0, arr.size, max(arr.size // 5, 1)):
            args = [x.copy(), gamma.copy(), beta.copy()]
            args[which].reshape(-1)[i] += 1e-2
            up = loss(*args)
            args[which].reshape(-1)[i] -= 2e-2
            down = loss(*args)
            want = (up - down) / 2e-2
            assert abs(want - grads[which].reshape(-1)[i]) < 2e-2 * (1 + abs(want)), (which, i)


def test_one_and_two_threads_bit_identical():
    x, gamma, beta, mm, mv = _data((16, 33, 31, 24))
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    runs = []
    for n in (1, 2):
        with threads(n):
            m, v = mm.copy(), mv.copy()
            y, mean, inv = _C.cpu.batchnorm_forward(x, gamma, beta, m, v, training=True, activation="relu6")
            runs.append((y, mean, inv, m, v) + _C.cpu.batchnorm_backward(g, x, y, gamma, mean, inv, training=True,
                                                                        activation="relu6"))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_validation():
    x, gamma, beta, mm, mv = _data((2, 3))
    with pytest.raises(ValueError, match="gamma"):
        _C.cpu.batchnorm_forward(x, gamma[:2], beta, mm, mv)
    with pytest.raises(ValueError, match="activation"):
        _C.cpu.batchnorm_forward(x, gamma, beta, mm, mv, activation="tanh")
    with pytest.raises(ValueError, match="moving_mean"):
        _C.cpu.batchnorm_forward(x, gamma, beta, mm.astype(np.float64), mv)
    with pytest.raises(ValueError, match="moving_variance"):
        _C.cpu.batchnorm_forward(x, gamma, beta, mm, x)  # overlaps / wrong shape
    with pytest.raises(ValueError, match="beta"):  # (y None: the mask is recomputed with beta)
        _C.cpu.batchnorm_backward(x, x, None, gamma, mm, mv, beta=np.ones(x.shape[-1] + 1, np.float32),
                                  activation="relu")
    with pytest.raises(ValueError, match="y"):
        _C.cpu.batchnorm_backward(x, x, x[:1], gamma, mm, mv, activation="relu")
    with pytest.raises(ValueError, match="dy"):
        _C.cpu.batchnorm_backward(x[:1], x, None, gamma, mm, mv)


def test_layer_modes_follow_keras():
    """training=True uses batch statistics and moves the averages; training=False and frozen layers use the
    moving statistics and leave them alone."""
    x, *_ = _data((8, 5))
    bn = layers.BatchNormalization()
    bn(x)  # build (inference: no update)
    np.testing.assert_array_equal(bn.moving_mean.numpy(), np.zeros(5))
    y = bn(x, training=True).numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.numpy(), 0.01 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), 0.99 + 0.01 * x.var(0), rtol=1e-5)
    before = bn.moving_mean.numpy()
    bn.trainable = False
    y = bn(x, training=True).numpy()  # frozen: inference mode
    np.testing.assert_array_equal(bn.moving_mean.numpy(), before)
    want = (x - before) / np.sqrt(bn.moving_variance.numpy() + 1e-3)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)


def test_layer_trains_in_a_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 6, 6, 3)).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0).astype(np.float32)
    model = fastnn.Sequential([fastnn.Input((6, 6, 3)), layers.Conv2D(4, 3), layers.BatchNormalization(),
                               layers.ReLU(6.0), layers.GlobalAveragePooling2D(), layers.Dense(1, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    hist = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert np.isfinite(hist.history["loss"]).all()
    assert not np.allclose(model.layers[1].moving_mean.numpy(), 0)


@pytest.mark.parametrize("training", [True, False])
def test_layer_fused_relu6_equals_bn_then_relu_layer(training):
    """The fusion hook a plan can use: BatchNormalization._forward(..., activation=ReLU(6)._bn_fusable) gives the
    same values, gradients and moving statistics as the two layers in turn."""
    x, *_ = _data((4, 5, 5, 6), seed=6)
    x = x - 3
    g = np.random.default_rng(7).standard_normal(x.shape).astype(np.float32)
    relu = layers.ReLU(6.0)
    assert relu._bn_fusable == "relu6" and layers.ReLU(6.0, threshold=1.0)._bn_fusable is None
    results = []
    for fused in (False, True):
        bn = layers.BatchNormalization(name=f"bn_{fused}_{training}")
        bn(x)
        bn.gamma.value[...] = 3.0
        if fused:
            y, ctx = bn._forward(x, training, activation=relu._bn_fusable)
            dx = bn._backward(ctx, g)
        else:
            z, ctx = bn._forward(x, training)
            y, rctx = relu._forward(z, training)
            dx = bn._backward(ctx, relu._backward(rctx, g))
        results.append((y, dx, bn.gamma.grad, bn.beta.grad, bn.moving_mean.numpy(), bn.moving_variance.numpy()))
    assert (results[0][0] == 6).any() and (results[0][0] == 0).any()
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)


def _bn_relu_model(shared_output=False):
    """Conv -> BN -> ReLU6 -> ZeroPadding2D((0, 1), (0, 1)) -> stride-2 'valid' depthwise (= 'same': fusable) -> BN
    -> ReLU (Activation) -> ZeroPadding2D(1) -> stride-2 'valid' depthwise ('same' would pad (0, 1): not fusable)
    -> BN -> ReLU(threshold: not fusable) -> pooling -> Dense; ``shared_output``: the first BN's output is also
    added to the first ReLU's (two readers)."""
    inp = fastnn.Input((8, 8, 3))
    z = layers.BatchNormalization(name="bn1")(layers.Conv2D(6, 3, padding="same", name="c1")(inp))
    h = layers.ReLU(6.0, name="r1")(z)
    if shared_output:
        h = layers.Add()([h, z])
    h = layers.DepthwiseConv2D(3, strides=2, name="dw1")(layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad1")(h))
    h = layers.Activation("relu", name="r2")(layers.BatchNormalization(name="bn2")(h))
    h = layers.DepthwiseConv2D(3, strides=2, name="dw2")(layers.ZeroPadding2D(1, name="pad2")(h))
    h = layers.ReLU(threshold=0.5, name="r3")(layers.BatchNormalization(name="bn3")(h))
    out = layers.Dense(4, activation="softmax")(layers.GlobalAveragePooling2D()(h))
    return fastnn.Model(inp, out)


@pytest.mark.parametrize("shared_output", [False, True])
def test_plan_fuses_bn_relu_bit_identical_to_separate_layers(shared_output, monkeypatch):
    """The training plan runs BatchNormalization + a following ReLU/ReLU6 as one kernel where the ReLU is the
    BN output's only reader, and ZeroPadding2D + a 'valid' DepthwiseConv2D as a 'same' one where the padding is
    the same: the same predictions, losses and weights (bit for bit) as the layers run apart."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((16, 8, 8, 3)) * 3).astype(np.float32)
    y = rng.integers(0, 4, 16)
    plan_fuse = Plan._fuse
    runs = []
    for fuse in (True, False):
        fastnn.utils.set_random_seed(5)
        model = _bn_relu_model(shared_output)
        model.compile("adam", "sparse_categorical_crossentropy")
        names = {model._plan().layers[k].name for k in model._plan().passed}
        assert names == ({"r2", "pad1"} if shared_output else {"r1", "r2", "pad1"})
        if not fuse:  # every plan of this run without the fusion
            def unfused(plan, readers):
                plan_fuse(plan, readers)
                plan.fused_kwargs, plan.passed = [None] * len(plan.steps), set()
            monkeypatch.setattr(Plan, "_fuse", unfused)
            model._cached_plan = None
        losses = [model.train_on_batch(x, y) for _ in range(3)]
        runs.append((losses, [w.numpy() for w in model.weights], model.predict(x, verbose=0),
                     model.evaluate(x, y, verbose=0)))
        assert bool(model._plan().passed) == fuse
    fused, apart = runs
    assert fused[0] == apart[0] and fused[3] == apart[3]
    for a, b in zip(fused[1], apart[1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(fused[2], apart[2])


@pytest.mark.parametrize("act", ["relu", "relu6"])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(2, 5, 5, 7), (3, 17, 13, 33)], ids=str)
def test_backward_mask_recomputed_from_x_equals_mask_at_y(shape, training, act):
    """y=None: the fused activation's mask is recomputed from x, gamma and beta; the same gradients, bit for bit,
    on every table (the reference too) as with the forward's y; beta None is an offset of 0."""
    x, gamma, beta, mm, mv = _data(shape, seed=8)
    x, gamma = (x - 3) * 2, gamma * 8  # many values clipped at 0 and at 6
    g = np.random.default_rng(9).standard_normal(shape).astype(np.float32)
    for name, t in [("ref", _C.ref)] + sorted(backend.tables().items()):
        for b in (beta, None):
            y, mean, inv = t.batchnorm_forward(x, gamma, b, mm.copy(), mv.copy(), training=training, activation=act)
            assert (y == 0).any() and (act == "relu" or (y == 6).any())
            at_y = t.batchnorm_backward(g, x, y, gamma, mean, inv, training=training, activation=act)
            recomputed = t.batchnorm_backward(g, x, None, gamma, mean, inv, beta=b, training=training,
                                              activation=act)
            for u, v in zip(at_y, recomputed):
                np.testing.assert_array_equal(u, v, err_msg=name)


@pytest.mark.parametrize("shared_output", [False, True])
def test_predict_folds_bn_into_the_conv_before_it(shared_output):
    """predict runs Conv2D/DepthwiseConv2D + BatchNormalization as one conv with the BN folded into its kernel
    and bias (with the BN's fused ReLU after it): the same predictions, to float32 rounding, as the layers run
    one by one in inference mode, before and after training steps changed the weights and moving statistics."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((16, 8, 8, 3)) * 3).astype(np.float32)
    y = rng.integers(0, 4, 16)
    fastnn.utils.set_random_seed(6)
    model = _bn_relu_model(shared_output)
    for layer in model.layers:  # statistics and affine parameters away from their initial 0/1
        if isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, c), rng.normal(0, 1, c), rng.normal(0, 1, c), rng.uniform(0.2, 3, c)])
    model.compile("adam", "sparse_categorical_crossentropy")
    plan = model._plan()
    assert sorted(plan.layers[k].name for k in plan.folds) == ["c1", "dw1", "dw2"]

    many = np.concatenate([x] * (model._plan().rows // len(x) + 2))  # more rows than a chunk: folded once per call
    for _ in range(2):
        folded, folded_many = model.predict(x, verbose=0), model.predict(many, verbose=0)
        plan = model._plan()
        folds, plan.folds = plan.folds, {}
        try:  # the same plan with every step run as itself (its BN + ReLU fusion is bit-identical: test above)
            apart, apart_many = model.predict(x, verbose=0), model.predict(many, verbose=0)
        finally:
            plan.folds = folds
        assert not np.array_equal(folded, apart)  # (the folded path did run)
        np.testing.assert_allclose(folded, apart, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(folded_many, apart_many, rtol=2e-5, atol=1e-6)
        np.testing.assert_array_equal(folded_many[:len(x)], folded)
        model.fit(x, y, epochs=1, verbose=0)
