"""Masks (Keras 3): Masking makes one, layers that support masking pass it on, consumers get it (mask=), other
layers drop it; the same masks on the plan path (fit/evaluate/predict, Sequential and functional) and the eager
path (layer(tensor), _keras_mask); an output's mask restricts its loss and metrics to the unmasked steps."""
import numpy as np
import pytest

import fastnn
from fastnn import layers


def _data(seed=0, B=5, T=6, F=3):
    rs = np.random.RandomState(seed)
    x = rs.randn(B, T, F).astype(np.float32)
    x[0, 4:] = 0.0   # padded tails
    x[1, 1:] = 0.0
    x[3, 2] = 0.0    # a masked step in the middle
    return x, np.any(x != 0, axis=-1)


class Recorder(layers.Layer):
    """A built-in-style mask consumer: records the mask of each call, multiplies x by it."""
    _uses_mask = True
    supports_masking = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def _forward(self, x, training, need_dx=True, mask=None):
        self.seen.append(None if mask is None else np.array(mask))
        keep = np.ones(x.shape[:2], bool) if mask is None else mask
        return x * keep[..., None], keep

    def _backward(self, ctx, dy):
        return dy * ctx[..., None]


class CallRecorder(layers.Layer):
    """A user layer written with call(inputs, mask=None)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen = []

    def call(self, inputs, mask=None):
        self.seen.append(None if mask is None else np.array(mask))
        return inputs * 2.0


def test_masking_layer_values_and_mask():
    x, mask = _data()
    x[2, 3] = 7.0  # a step equal to a non-default mask value
    y = layers.Masking()(x)
    np.testing.assert_array_equal(y._keras_mask, mask)
    np.testing.assert_array_equal(y.numpy(), np.where(mask[..., None], x, 0))
    y7 = layers.Masking(mask_value=7.0)(x)
    assert not y7._keras_mask[2, 3] and y7._keras_mask[2, 2]
    np.testing.assert_array_equal(y7.numpy()[2, 3], 0)


def test_masking_gradient_skips_masked_steps():
    x, _ = _data()
    x[2, 1] = 0.0
    mask = np.any(x != 0, axis=-1)
    layer = layers.Masking()
    t = fastnn.Tensor(x, requires_grad=True)
    (layer(t) * 3.0).sum().backward()
    np.testing.assert_array_equal(t.grad.numpy(), 3.0 * np.broadcast_to(mask[..., None], x.shape))


def test_global_average_pooling1d_honours_mask():
    x, mask = _data()
    want = np.stack([x[i][mask[i]].mean(axis=0) for i in range(len(x))])
    got = layers.GlobalAveragePooling1D()(layers.Masking()(x))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-6)
    assert getattr(got, "_keras_mask", None) is None  # it consumes the mask
    kept = layers.GlobalAveragePooling1D(keepdims=True)(layers.Masking()(x))
    np.testing.assert_allclose(kept.numpy(), want[:, None, :], rtol=1e-6, atol=1e-6)


def test_global_average_pooling1d_masked_gradient():
    x, mask = _data()
    t = fastnn.Tensor(x, requires_grad=True)
    w = np.random.RandomState(1).randn(x.shape[0], x.shape[2]).astype(np.float32)
    (layers.GlobalAveragePooling1D()(t, mask=mask) * w).sum().backward()
    want = mask[..., None] * (w / mask.sum(axis=1, keepdims=True))[:, None, :]
    np.testing.assert_allclose(t.grad.numpy(), want, rtol=1e-6, atol=1e-7)


def test_global_max_pooling1d_drops_the_mask_like_keras3():
    x, _ = _data()
    np.testing.assert_array_equal(layers.GlobalMaxPooling1D()(layers.Masking()(x)).numpy(),
                                  np.where(np.any(x != 0, -1, keepdims=True), x, 0).max(axis=1))


def _sequential(consumer):
    return fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), layers.Dense(4), consumer,
                              layers.GlobalAveragePooling1D(), layers.Dense(2)])


def test_plan_passes_masks_to_consumers_and_matches_a_reference():
    x, mask = _data()
    rec = Recorder()
    model = _sequential(rec)
    out = model.predict(x, verbose=0)
    np.testing.assert_array_equal(rec.seen[-1], mask)
    d1, d2 = model.layers[1], model.layers[4]
    h = np.where(mask[..., None], x, 0) @ d1.kernel.numpy() + d1.bias.numpy()
    pooled = np.stack([h[i][mask[i]].mean(axis=0) for i in range(len(x))])
    np.testing.assert_allclose(out, pooled @ d2.kernel.numpy() + d2.bias.numpy(), rtol=1e-5, atol=1e-5)


def test_functional_and_sequential_get_the_same_masks():
    x, mask = _data()
    seq = _sequential(Recorder())
    inp = fastnn.Input((6, 3))
    h = layers.Masking()(inp)
    assert h._keras_mask is not None and h._keras_mask.shape == (None, 6)
    h = layers.Dense(4)(h)
    assert h._keras_mask is not None  # Dense passes it on
    rec = Recorder()
    h = rec(h)
    pooled = layers.GlobalAveragePooling1D()(h)
    assert pooled._keras_mask is None
    fun = fastnn.Model(inp, layers.Dense(2)(pooled))
    fun.set_weights(seq.get_weights())
    np.testing.assert_array_equal(fun.predict(x, verbose=0), seq.predict(x, verbose=0))
    np.testing.assert_array_equal(rec.seen[-1], mask)


def test_layers_without_masking_support_drop_the_mask():
    x, _ = _data()
    rec = Recorder()
    model = fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), layers.Conv1D(3, 1), rec])
    model.predict(x, verbose=0)
    assert rec.seen[-1] is None
    inp = fastnn.Input((6, 3))
    assert layers.Conv1D(3, 1)(layers.Masking()(inp))._keras_mask is None


def test_user_call_layer_gets_the_mask_on_every_path():
    x, mask = _data()
    user = CallRecorder()
    model = fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), user, layers.GlobalAveragePooling1D()])
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(user.seen[-1], mask)
    user.seen.clear()
    user(layers.Masking()(x))  # eager: the input's _keras_mask
    np.testing.assert_array_equal(user.seen[-1], mask)
    user(x, mask=mask[::-1])   # an explicit mask wins
    np.testing.assert_array_equal(user.seen[-1], mask[::-1])


def test_eager_mask_flows_through_supporting_layers():
    x, mask = _data()
    h = layers.Dense(4)(layers.Masking()(x))
    np.testing.assert_array_equal(h._keras_mask, mask)
    assert getattr(layers.Flatten()(h), "_keras_mask", None) is None


def test_fit_with_a_consumer_trains_and_gets_masks():
    x, mask = _data()
    rec = Recorder()
    model = _sequential(rec)
    model.compile("sgd", "mse")
    y = np.random.RandomState(2).randn(len(x), 2).astype(np.float32)
    model.fit(x, y, batch_size=5, epochs=2, verbose=0, shuffle=False)
    np.testing.assert_array_equal(rec.seen[-1], mask)


def _seq_model():
    fastnn.utils.set_random_seed(3)
    return fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), layers.TimeDistributed(layers.Dense(4))])


def test_an_output_mask_restricts_loss_and_metrics():
    x, mask = _data()
    y = np.random.RandomState(4).randn(5, 6, 4).astype(np.float32)
    model = _seq_model()
    model.compile("sgd", "mse", metrics=["mae"])
    p = model.predict(x, verbose=0)
    per = ((p - y) ** 2).mean(-1)
    want = (per * mask).sum() / mask.sum()
    mae = (np.abs(p - y).mean(-1) * mask).sum() / mask.sum()
    loss, got_mae = model.evaluate(x, y, batch_size=5, verbose=0)
    assert loss == pytest.approx(want, rel=1e-5) and got_mae == pytest.approx(mae, rel=1e-5)
    # evaluate is batch-weighted, as Keras: the mean of each batch's masked mean, weighted by batch size
    parts = [(per[s] * mask[s]).sum() / mask[s].sum() * len(per[s]) for s in (slice(0, 2), slice(2, 4), slice(4, 5))]
    assert model.evaluate(x, y, batch_size=2, verbose=0)[0] == pytest.approx(sum(parts) / 5, rel=1e-5)
    # the training loss too, and the targets of masked steps change nothing
    y2 = np.where(mask[..., None], y, 100.0).astype(np.float32)
    a, b = _seq_model(), _seq_model()
    a.compile("sgd", "mse")
    b.compile("sgd", "mse")
    la, lb = a.train_on_batch(x, y), b.train_on_batch(x, y2)
    assert la == pytest.approx(want, rel=1e-5) and la == pytest.approx(lb, rel=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_masked_sparse_crossentropy_with_fused_softmax():
    x, mask = _data()
    labels = np.random.RandomState(5).randint(0, 3, (5, 6))
    fastnn.utils.set_random_seed(6)
    model = fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(),
                               layers.TimeDistributed(layers.Dense(3, activation="softmax"))])
    model.compile("sgd", "sparse_categorical_crossentropy", metrics=["accuracy"])
    p = model.predict(x, verbose=0)
    ce = -np.log(np.take_along_axis(p, labels[..., None], -1)[..., 0])
    loss, acc = model.evaluate(x, labels, batch_size=5, verbose=0)
    assert loss == pytest.approx((ce * mask).sum() / mask.sum(), rel=1e-5)
    assert acc == pytest.approx(((p.argmax(-1) == labels) * mask).sum() / mask.sum(), rel=1e-6)
    assert model.train_on_batch(x, labels)[0] == pytest.approx(loss, rel=1e-5)


def test_plans_without_a_mask_producer_keep_their_fast_paths():
    model = fastnn.Sequential([fastnn.Input((6, 3)), layers.Dense(4), layers.GlobalAveragePooling1D()])
    model.predict(np.zeros((2, 6, 3), np.float32), verbose=0)
    plan = model._plan()
    assert not plan.masked and plan.chain and "forward" not in plan.__dict__
    masked = _seq_model()
    masked.predict(np.zeros((2, 6, 3), np.float32), verbose=0)
    assert masked._plan().masked and not masked._plan().chain


@pytest.mark.parametrize("loss", ["mse", "sparse_categorical_crossentropy"])
def test_every_step_masked_gives_zero_loss_and_no_update(loss):
    x = np.zeros((2, 4, 3), np.float32)
    y = np.ones((2, 4, 2), np.float32) if loss == "mse" else np.zeros((2, 4), np.int64)
    model = fastnn.Sequential([fastnn.Input((4, 3)), layers.Masking(),
                               layers.TimeDistributed(layers.Dense(2, activation="softmax"))])
    model.compile("sgd", loss)
    before = model.get_weights()
    assert model.train_on_batch(x, y) == 0.0 and model.evaluate(x, y, verbose=0) == 0.0
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


class PositiveSteps(layers.Layer):
    """A user layer that makes a mask (compute_mask overridden): the steps whose first feature is > 0."""

    def call(self, inputs):
        return inputs * 1.0

    def compute_mask(self, inputs, previous_mask=None):
        return np.asarray(getattr(inputs, "data", inputs))[..., 0] > 0


def test_a_user_layer_overriding_compute_mask_makes_masks():
    x, _ = _data()
    mask = x[..., 0] > 0
    want = np.stack([x[i][mask[i]].mean(axis=0) for i in range(len(x))])
    eager = layers.GlobalAveragePooling1D()(PositiveSteps()(x))
    np.testing.assert_allclose(eager.numpy(), want, rtol=1e-6, atol=1e-6)
    model = fastnn.Sequential([fastnn.Input((6, 3)), PositiveSteps(), layers.GlobalAveragePooling1D()])
    np.testing.assert_allclose(model.predict(x, verbose=0), want, rtol=1e-6, atol=1e-6)
    assert model._plan().masked


def test_merge_layers_combine_masks_like_keras3():
    x1, m1 = _data(0)
    x2, m2 = _data(1)
    x2[2, 5] = 0.0
    m2 = np.any(x2 != 0, axis=-1)
    for merge, want in ((layers.Add(), m1 | m2), (layers.Concatenate(), m1 | m2)):
        a, b = fastnn.Input((6, 3)), fastnn.Input((6, 3))
        rec = Recorder()
        merged = merge([layers.Masking()(a), layers.Masking()(b)])
        assert merged._keras_mask is not None
        model = fastnn.Model([a, b], layers.GlobalAveragePooling1D()(rec(merged)))
        model.predict([x1, x2], verbose=0)
        np.testing.assert_array_equal(rec.seen[-1], want)
        eager = merge([layers.Masking()(x1), layers.Masking()(x2)])
        np.testing.assert_array_equal(eager._keras_mask, want)
    # one input without a mask: Add's output has none (Keras 3), Concatenate counts it as all kept
    a, b = fastnn.Input((6, 3)), fastnn.Input((6, 3))
    rec_add, rec_cat = Recorder(), Recorder()
    masked = layers.Masking()(a)
    outs = [layers.GlobalAveragePooling1D()(rec_add(layers.Add()([masked, b]))),
            layers.GlobalAveragePooling1D()(rec_cat(layers.Concatenate()([masked, b])))]
    fastnn.Model([a, b], outs).predict([x1, x2], verbose=0)
    assert rec_add.seen[-1] is None
    np.testing.assert_array_equal(rec_cat.seen[-1], np.ones_like(m1))


def test_a_nested_model_passes_its_output_masks_on():
    x, mask = _data()
    encoder = fastnn.Sequential([fastnn.Input((6, 3)), layers.Masking(), layers.Dense(4)])
    inp = fastnn.Input((6, 3))
    h = encoder(inp)
    assert h._keras_mask is not None
    rec = Recorder()
    model = fastnn.Model(inp, layers.GlobalAveragePooling1D()(rec(h)))
    model.predict(x, verbose=0)
    np.testing.assert_array_equal(rec.seen[-1], mask)
    np.testing.assert_array_equal(encoder(x)._keras_mask, mask)  # eager
    plain = fastnn.Sequential([fastnn.Input((6, 3)), layers.Dense(4)])
    assert not plain._makes_mask() and getattr(plain(x), "_keras_mask", None) is None


def test_a_nested_model_takes_its_input_masks():
    x, mask = _data()
    rec = Recorder()
    inner = fastnn.Sequential([fastnn.Input((6, 3)), layers.Dense(4), rec])  # makes no mask of its own
    inp = fastnn.Input((6, 3))
    out = layers.GlobalAveragePooling1D()(inner(layers.Masking()(inp)))
    model = fastnn.Model(inp, out)
    p = model.predict(x, verbose=0)
    np.testing.assert_array_equal(rec.seen[-1], mask)
    d = inner.layers[0]
    h = np.where(mask[..., None], x, 0) @ d.kernel.numpy() + d.bias.numpy()
    np.testing.assert_allclose(p, np.stack([h[i][mask[i]].mean(axis=0) for i in range(len(x))]), rtol=1e-5,
                               atol=1e-6)
    rec.seen.clear()
    inner(layers.Masking()(x))  # eager
    np.testing.assert_array_equal(rec.seen[-1], mask)
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((5, 4), np.float32), epochs=1, verbose=0, shuffle=False)
    np.testing.assert_array_equal(rec.seen[-1], mask)
