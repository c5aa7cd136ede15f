"""The patterns of the keras.io guide "Making new layers and models via subclassing", on the bundled digits:
layers written with ``call`` and ``add_weight``, non-trainable state, lazy ``build``, nested layer tracking,
``add_loss``, the ``training`` argument, a subclassed Model trained with fit, and custom layers inside
Sequential and functional models. Keras behaviours asserted here were checked against keras 3.15."""
import numpy as np
import pytest

import fastnn
from fastnn import layers, ops


@pytest.fixture(scope="module")
def digits():
    (x_train, y_train), (x_test, y_test) = fastnn.datasets.digits.load_data()
    flat = lambda x: (x.reshape(len(x), -1) / 16.0).astype(np.float32)  # noqa: E731
    return (flat(x_train), y_train.astype(np.int64)), (flat(x_test), y_test.astype(np.int64))


class Linear(layers.Layer):
    """The guide's Linear layer: y = x w + b, weights created lazily in build."""

    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal", name="w")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros", name="b")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


class RunningSum(layers.Layer):
    """The guide's ComputeSum: a non-trainable weight updated by call, passing its inputs through."""

    def build(self, input_shape):
        self.total = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False, name="total")

    def call(self, inputs):
        self.total.assign(self.total + ops.sum(inputs, axis=0))
        return inputs


class ActivityRegularization(layers.Layer):
    def __init__(self, rate=1e-2, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(inputs))
        return inputs


class HalfDropout(layers.Layer):
    """Dropout-like: in training, zero the odd features and scale the rest by 2; identity in inference."""

    def call(self, inputs, training=None):
        if not training:
            return inputs
        mask = np.zeros(inputs.shape[-1], np.float32)
        mask[::2] = 2.0
        return inputs * mask


class MLP(fastnn.Model):
    def __init__(self, hidden=64, classes=10, **kwargs):
        super().__init__(**kwargs)
        self.hidden = Linear(hidden)
        self.drop = HalfDropout()
        self.out = Linear(classes)

    def call(self, inputs, training=None):
        h = ops.relu(self.hidden(inputs))
        return self.out(self.drop(h, training=training))


def _sgd_model(model, lr=0.0, loss="mse"):
    model.compile(optimizer=fastnn.optimizers.SGD(lr), loss=loss)
    return model


# ---- a layer with add_weight ----------------------------------------------------------------------------
def test_linear_builds_lazily_on_its_first_call():
    layer = Linear(4)
    assert not layer.built and layer.weights == []
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    y = layer(x)
    assert layer.built
    assert layer.w.shape == (3, 4) and layer.b.shape == (4,)
    assert layer.trainable_weights == [layer.w, layer.b] and layer.non_trainable_weights == []
    np.testing.assert_allclose(np.asarray(y), x @ layer.w.numpy() + layer.b.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="incompatible"):  # built for 3 features
        layer(np.ones((2, 5), np.float32))
    clone = Linear.from_config(layer.get_config())
    assert clone.units == 4 and clone.name == layer.name and not clone.built


def test_linear_gradient_through_fit_matches_central_differences(digits):
    """SGD(lr=1): one train_on_batch step moves the weights by minus the gradient of the loss evaluate reports."""
    (x_train, y_train), _ = digits
    x, y = x_train[:24, 20:26], np.eye(3, dtype=np.float32)[y_train[:24] % 3]
    fastnn.random.set_random_seed(3)
    model = _sgd_model(fastnn.Sequential([fastnn.Input((6,)), Linear(4), layers.Activation("tanh"), Linear(3)]), 1.0)
    w0 = model.get_weights()
    numeric, eps = [], 1e-2
    for var in model.trainable_weights:
        g = np.zeros(var.shape, np.float64)
        for idx in np.ndindex(var.shape):
            old = var.value[idx]
            var.value[idx] = old + eps
            up = model.evaluate(x, y, batch_size=24, verbose=0)
            var.value[idx] = old - eps
            down = model.evaluate(x, y, batch_size=24, verbose=0)
            var.value[idx] = old
            g[idx] = (up - down) / (2 * eps)
        numeric.append(g)
    model.train_on_batch(x, y)
    analytic = [a - b for a, b in zip(w0, model.get_weights())]
    assert len(analytic) == 4
    for a, n in zip(analytic, numeric):
        assert np.abs(n).max() > 1e-3  # every weight matters to this loss
        np.testing.assert_allclose(a, n, rtol=3e-3, atol=1e-4)


# ---- non-trainable state --------------------------------------------------------------------------------
def test_non_trainable_running_sum_is_updated_by_call_not_by_the_optimizer():
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    layer = RunningSum()
    layer(x)
    layer(x)
    assert layer.trainable_weights == [] and layer.non_trainable_weights == [layer.total]
    np.testing.assert_allclose(layer.total.numpy(), 2 * x.sum(axis=0))

    summed = RunningSum()
    model = _sgd_model(fastnn.Sequential([fastnn.Input((3,)), Linear(3), summed]), lr=0.1)
    before = summed.total.numpy()
    model.fit(x, x, batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert summed.total not in model.trainable_weights and summed.total in model.non_trainable_weights
    assert len(model.trainable_weights) == 2
    assert not np.allclose(summed.total.numpy(), before)  # call's assign ran in the training steps


def test_shape_inference_does_not_run_the_state_updates_of_call():
    class Counter(layers.Layer):
        def build(self, input_shape):
            self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

        def call(self, inputs):
            self.calls.assign(self.calls + 1.0)
            return inputs

    counter = Counter()
    fastnn.Sequential([fastnn.Input((3,)), counter])
    assert float(counter.calls.numpy()) == 0.0  # Keras: 0 (its symbolic shape inference is stateless)
    inputs = fastnn.Input((3,))
    counter2 = Counter()
    fastnn.Model(inputs, counter2(inputs))
    assert float(counter2.calls.numpy()) == 0.0
    counter3 = Counter()
    counter3(np.ones((2, 3), np.float32))
    counter3(np.ones((2, 3), np.float32))
    assert float(counter3.calls.numpy()) == 2.0  # one run of call per eager call


def test_variable_assign_add():
    layer = RunningSum()
    layer.build((None, 2))
    layer.total.assign_add(np.array([1.0, 2.0], np.float32))
    layer.total.assign_sub(np.array([0.5, 0.5], np.float32))
    np.testing.assert_allclose(layer.total.numpy(), [0.5, 1.5])


# ---- nested layers ----------------------------------------------------------------------------------------
class Block(layers.Layer):
    """Sublayers in an attribute, a list and a dict; ``shared`` is reached three ways."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.shared = Linear(5)
        self.stack = [Linear(5), self.shared]
        self.heads = {"a": Linear(2), "b": self.shared}

    def call(self, inputs):
        h = ops.tanh(self.stack[0](inputs))
        h = ops.tanh(self.shared(h))
        return self.heads["a"](h)


def test_nested_layers_in_attributes_lists_and_dicts_are_tracked_once():
    block = Block()
    assert block.weights == []  # lazy: nothing until the first call
    block(np.ones((2, 5), np.float32))
    assert len(block.trainable_weights) == 6  # 3 Linear layers, the shared one counted once
    assert len({id(v) for v in block.weights}) == 6
    assert set(map(id, block.trainable_weights)) == {id(v) for layer in (block.stack[0], block.shared, block.heads["a"])
                                                     for v in layer.weights}
    model = _sgd_model(fastnn.Sequential([fastnn.Input((5,)), block]), lr=0.5)
    assert model.count_params() == 5 * 5 + 5 + 5 * 5 + 5 + 5 * 2 + 2
    before = model.get_weights()
    rs = np.random.RandomState(0)
    model.fit(rs.rand(8, 5).astype(np.float32), rs.rand(8, 2).astype(np.float32), batch_size=8, verbose=0)
    moved = [not np.allclose(a, b) for a, b in zip(before, model.get_weights())]
    assert sum(moved) >= 5  # every kernel (and the biases the loss reaches) trained; none twice-listed


# ---- add_loss ------------------------------------------------------------------------------------------------
class Outer(layers.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.reg = ActivityRegularization(rate)

    def call(self, inputs):
        return self.reg(inputs)


class RegularizedMLP(fastnn.Model):
    def __init__(self, rate=0.5, **kwargs):
        super().__init__(**kwargs)
        self.dense = layers.Dense(3)
        self.reg = ActivityRegularization(rate)

    def call(self, inputs):
        return self.reg(self.dense(inputs))


def test_add_loss_appears_in_layer_and_model_losses(digits):
    layer = Outer(1e-2)
    x = np.full((2, 3), 4.0, np.float32)
    layer(x)
    assert layer.losses and layer.losses[-1] == pytest.approx(1e-2 * 4.0)
    (x_train, _), _ = digits
    model = RegularizedMLP(0.5)
    out = model(x_train[:8, :4])
    assert model.losses and float(model.losses[-1]) == pytest.approx(0.5 * float(np.mean(np.asarray(out))), rel=1e-5)


def test_add_loss_terms_are_reset_at_each_call():
    layer = Outer(1e-2)
    layer(np.zeros((1, 1), np.float32))
    assert len(layer.losses) == 1  # Keras: 1
    layer(np.ones((1, 1), np.float32))
    assert len(layer.losses) == 1 and float(layer.losses[0]) == pytest.approx(1e-2)


def test_add_loss_is_part_of_the_fit_and_evaluate_loss(digits):
    (x_train, y_train), _ = digits
    x, y = x_train[:32, :4], y_train[:32] % 3
    model = RegularizedMLP(10.0)
    model.compile(optimizer=fastnn.optimizers.SGD(0.0),
                  loss=fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    logits = model.predict(x, verbose=0)
    pure = float(fastnn.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits))
    expected = pure + 10.0 * float(logits.mean())  # keras 3.15: evaluate == fit loss == this
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.fit(x, y, batch_size=32, verbose=0).history["loss"][0] == pytest.approx(expected, rel=1e-5)


def test_weight_regularizer_of_a_nested_layer_is_in_losses_and_in_the_fit_loss(digits):
    (x_train, y_train), _ = digits
    x, y = x_train[:32, :6], y_train[:32] % 3

    class WithRegularizedDense(fastnn.Model):
        def __init__(self):
            super().__init__()
            self.dense = layers.Dense(3, kernel_regularizer=fastnn.regularizers.l2(0.1))

        def call(self, inputs):
            return self.dense(inputs)

    model = WithRegularizedDense()
    model.compile(optimizer=fastnn.optimizers.SGD(0.0),
                  loss=fastnn.losses.SparseCategoricalCrossentropy(from_logits=True))
    logits = model.predict(x, verbose=0)
    penalty = 0.1 * float(np.sum(model.dense.kernel.numpy() ** 2))
    assert len(model.losses) == 1 and float(model.losses[0]) == pytest.approx(penalty, rel=1e-5)
    expected = float(fastnn.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)) + penalty
    assert model.evaluate(x, y, batch_size=32, verbose=0) == pytest.approx(expected, rel=1e-5)
    assert model.fit(x, y, batch_size=32, verbose=0).history["loss"][0] == pytest.approx(expected, rel=1e-5)


# ---- training= ----------------------------------------------------------------------------------------------
def test_training_argument_reaches_call():
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    drop = HalfDropout()
    np.testing.assert_array_equal(np.asarray(drop(x)), x)
    np.testing.assert_array_equal(np.asarray(drop(x, training=True)), x * [2, 0, 2, 0])

    model = MLP(hidden=4, classes=2)
    inference = np.asarray(model(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), inference, rtol=1e-6)
    assert not np.allclose(np.asarray(model(x, training=True)), inference)


def test_fit_runs_call_in_training_mode_and_evaluate_in_inference_mode():
    rs = np.random.RandomState(1)
    x, y = rs.rand(16, 4).astype(np.float32), rs.rand(16, 2).astype(np.float32)
    fastnn.random.set_random_seed(0)
    model = _sgd_model(MLP(hidden=4, classes=2), lr=0.0)
    model(x)
    model.set_weights([rs.randn(*w.shape).astype(np.float32) for w in model.get_weights()])
    mse = lambda p: float(np.mean((np.asarray(p) - y) ** 2))  # noqa: E731
    in_training, in_inference = mse(model(x, training=True)), mse(model(x))
    assert abs(in_training - in_inference) > 0.1
    assert model.evaluate(x, y, batch_size=16, verbose=0) == pytest.approx(in_inference, rel=1e-5)
    assert model.fit(x, y, batch_size=16, verbose=0).history["loss"][0] == pytest.approx(in_training, rel=1e-5)


# ---- a subclassed Model -----------------------------------------------------------------------------------
def test_subclassed_mlp_trains_on_digits_and_round_trips_its_weights(digits, tmp_path):
    (x_train, y_train), (x_test, y_test) = digits
    fastnn.random.set_random_seed(0)
    model = MLP()
    assert not model.built
    model.compile(optimizer=fastnn.optimizers.Adam(3e-3),
                  loss=fastnn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=32, epochs=8, verbose=0)
    assert model.built and len(model.trainable_weights) == 4 and model.trainable_variables == model.trainable_weights
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > 0.9, accuracy
    preds = model.predict(x_test, verbose=0)
    assert preds.shape == (len(x_test), 10)
    assert np.mean(preds.argmax(1) == y_test) == pytest.approx(accuracy)

    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert model.name in text and f"{64 * 64 + 64 + 64 * 10 + 10:,}" in text

    path = str(tmp_path / "mlp.weights.npz")
    model.save_weights(path)
    fresh = MLP()
    fresh(x_test[:1])  # build it
    assert not np.allclose(fresh.predict(x_test, verbose=0), preds)
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh.predict(x_test, verbose=0), preds)


def test_subclassed_model_inside_a_functional_model(digits):
    (x_train, y_train), (x_test, y_test) = digits
    fastnn.random.set_random_seed(1)
    mlp = MLP(hidden=32)
    mlp(x_train[:1])
    inputs = fastnn.Input((64,))
    outputs = layers.Softmax()(mlp(inputs))
    model = fastnn.Model(inputs, outputs)
    assert outputs.shape == (None, 10)
    assert set(map(id, model.trainable_weights)) == set(map(id, mlp.trainable_weights))
    logits = mlp.predict(x_test[:5], verbose=0)
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict(x_test[:5], verbose=0), expected / expected.sum(1, keepdims=True),
                               rtol=1e-5, atol=1e-6)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = mlp.get_weights()
    model.fit(x_train[:256], y_train[:256], epochs=2, verbose=0)
    assert all(not np.allclose(a, b) for a, b in zip(before, mlp.get_weights()))  # trained through the graph


def test_custom_layer_in_sequential_and_functional_models(digits):
    (x_train, y_train), (x_test, y_test) = digits
    fastnn.random.set_random_seed(2)
    seq = fastnn.Sequential([fastnn.Input((64,)), Linear(32), layers.Activation("relu"), Linear(10)])
    assert seq.output_shape == (None, 10) and seq.layers[0].output_shape == (None, 32)  # found by running call
    assert seq.count_params() == 64 * 32 + 32 + 32 * 10 + 10

    inputs = fastnn.Input((64,))
    hidden = Linear(32)(inputs)
    assert hidden.shape == (None, 32)
    outputs = Linear(10)(layers.Activation("relu")(hidden))
    func = fastnn.Model(inputs, outputs)
    assert func.output_shape == (None, 10)
    for model in (seq, func):
        model.compile(optimizer=fastnn.optimizers.Adam(3e-3),
                      loss=fastnn.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        model.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)
        assert model.evaluate(x_test, y_test, verbose=0)[1] > 0.85


# ---- error messages ---------------------------------------------------------------------------------------
def test_a_layer_without_call_says_call_is_missing():
    class NoCall(layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],))

    class NoCallModel(fastnn.Model):
        pass

    x = np.ones((2, 3), np.float32)
    model = fastnn.Sequential([fastnn.Input((3,)), NoCall()])
    for run in (lambda: model.predict(x, verbose=0), lambda: NoCall()(x)):
        with pytest.raises(NotImplementedError, match=r"call\(\)") as info:
            run()
        assert "NoCall" in str(info.value) and "_forward" not in str(info.value) and "_backward" not in str(info.value)
    empty = NoCallModel()
    empty.compile(optimizer="sgd", loss="mse")
    with pytest.raises(NotImplementedError, match=r"NoCallModel.*call\(\)") as info:
        empty.fit(x, x, verbose=0)
    assert "_forward" not in str(info.value)
