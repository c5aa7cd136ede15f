"""Regression tests for what public Keras/TF programs hit when run with only the import changed (issue #21):
each test is the smallest form of a failure seen in one of them (the program is named)."""
import sys

import numpy as np
import pytest

import fastnn as keras
import fastnn as tf
from fastnn import ops


def test_fastnn_keras_import_paths():
    # `from tensorflow.keras import layers` with the package name changed (TF tutorials)
    from fastnn.keras import layers
    from fastnn.keras.models import Sequential
    import fastnn.layers
    import fastnn.models
    assert layers is fastnn.layers and Sequential is fastnn.models.Sequential
    import fastnn.keras.optimizers
    assert sys.modules["fastnn.keras.optimizers"] is sys.modules["fastnn.optimizers"]  # one module, not a copy


@pytest.mark.parametrize("name", ["binary_crossentropy", "categorical_crossentropy",
                                  "sparse_categorical_crossentropy", "mean_squared_error", "mean_absolute_error",
                                  "huber", "kl_divergence"])
def test_loss_functions_are_differentiable_on_tensors(name):
    # keras.io VAE: ops.sum(keras.losses.binary_crossentropy(data, reconstruction)) inside a GradientTape
    rng = np.random.default_rng(0)
    p_np = (rng.random((3, 4)) * 0.8 + 0.1).astype(np.float32)
    p_np /= p_np.sum(-1, keepdims=True)
    y = np.array([0, 3, 1]) if name.startswith("sparse") else (rng.random((3, 4)) > 0.5).astype(np.float32)
    fn = getattr(keras.losses, name)
    p = keras.tensor(p_np, requires_grad=True)
    with keras.GradientTape() as tape:
        tape.watch(p)
        per = fn(y, p)
        total = ops.sum(per)
    np.testing.assert_allclose(per.numpy(), fn(y, p_np), rtol=1e-5, atol=1e-6)  # same values as numpy's
    grad = tape.gradient(total, p).numpy()
    num = np.zeros_like(p_np, dtype=np.float64)
    eps = 1e-3
    for idx in np.ndindex(*p_np.shape):
        q = p_np.astype(np.float64)
        q[idx] += eps
        hi = fn(y, q.astype(np.float32)).astype(np.float64).sum()
        q[idx] -= 2 * eps
        lo = fn(y, q.astype(np.float32)).astype(np.float64).sum()
        num[idx] = (hi - lo) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=2e-2, atol=2e-3)


def test_weighted_loss_object_on_a_tensor_is_differentiable():
    # customizing fit: self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight) in a train_step
    y = np.array([[1.0], [0.0], [2.0]], np.float32)
    w = np.array([1.0, 0.0, 3.0], np.float32)
    p = keras.tensor(np.array([[0.5], [1.0], [1.0]], np.float32), requires_grad=True)
    loss = keras.losses.MeanSquaredError()
    with keras.GradientTape() as tape:
        tape.watch(p)
        value = loss(y, p, sample_weight=w)
    # Keras: sum(w * (p - y)^2) / 3, gradient 2 w (p - y) / 3
    assert abs(float(value.numpy()) - (0.25 + 0 + 3.0) / 3) < 1e-6
    np.testing.assert_allclose(tape.gradient(value, p).numpy()[:, 0], 2 * w * (p.numpy()[:, 0] - y[:, 0]) / 3,
                               rtol=1e-6)


def test_crossentropy_metrics():
    # overfit_and_underfit tutorial: metrics=[tf.keras.metrics.BinaryCrossentropy(from_logits=True, name=...)]
    m = keras.metrics.BinaryCrossentropy(from_logits=True, name="binary_crossentropy")
    m.update_state([[1.0], [0.0]], [[2.0], [-1.0]])
    expected = np.mean([np.log1p(np.exp(-2.0)), np.log1p(np.exp(-1.0))])
    assert m.name == "binary_crossentropy" and abs(float(m.result()) - expected) < 1e-6
    c = keras.metrics.SparseCategoricalCrossentropy()
    c.update_state([1], [[0.25, 0.75]])
    assert abs(float(c.result()) + np.log(0.75)) < 1e-6
    assert isinstance(keras.metrics.get("categorical_crossentropy"), keras.metrics.CategoricalCrossentropy)


def _xy(n=64, d=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, d)).astype(np.float32), rng.random((n, 1)).astype(np.float32)


def test_custom_train_step_without_compiled_loss():
    # customizing fit, part 2: compile(optimizer="adam") and a train_step with its own loss and trackers
    class M(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.loss_fn = keras.losses.MeanSquaredError()

        def train_step(self, data):
            x, y = data
            with tf.GradientTape() as tape:
                loss = self.loss_fn(y, self(x, training=True))
            self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
            self.loss_tracker.update_state(loss)
            return {"loss": self.loss_tracker.result()}

        @property
        def metrics(self):
            return [self.loss_tracker]

    x, y = _xy()
    inputs = keras.Input((8,))
    model = M(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    h = model.fit(x, y, epochs=4, verbose=0, batch_size=16)
    assert h.history["loss"][-1] < h.history["loss"][0]  # y reached train_step as given (not zeros)


def test_custom_train_step_gets_sample_weight():
    seen = []

    class M(keras.Model):
        def train_step(self, data):
            seen.append(len(data))
            x, y, sw = data
            with tf.GradientTape() as tape:
                loss = self.compute_loss(y=y, y_pred=self(x, training=True), sample_weight=sw)
            self.optimizer.apply(tape.gradient(loss, self.trainable_variables), self.trainable_variables)
            return {"loss": loss}

    x, y = _xy()
    inputs = keras.Input((8,))
    model = M(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, y, sample_weight=np.ones(len(x)), epochs=1, verbose=0, batch_size=32)
    assert seen == [3, 3]


def test_fit_x_alone_with_custom_train_step_on_a_model_without_call():
    # keras.io VAE: a Model subclass with no call(), fit(mnist_digits) without targets
    class AE(keras.Model):
        def __init__(self, encoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.tracker = keras.metrics.Mean(name="loss")

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z = self.encoder(data)
                loss = ops.mean(ops.square(z_mean - 1.0)) + ops.mean(ops.square(z))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.tracker.update_state(loss)
            return {"loss": self.tracker.result()}

    inputs = keras.Input((8,))
    hidden = keras.layers.Dense(4, activation="relu")(inputs)
    encoder = keras.Model(inputs, [keras.layers.Dense(2)(hidden), keras.layers.Dense(2)(hidden)])
    model = AE(encoder)
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    h = model.fit(_xy()[0], epochs=5, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]


def test_multi_output_model_under_a_tape_matches_separate_gradients():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((5,))
    h = keras.layers.Dense(3, activation="tanh")(inputs)
    a, b = keras.layers.Dense(2, name="a")(h), keras.layers.Dense(1, name="b")(h)
    model = keras.Model(inputs, [a, b])
    x = np.random.default_rng(2).random((4, 5)).astype(np.float32)
    with tf.GradientTape() as tape:
        out_a, out_b = model(x)
        loss = ops.sum(ops.square(out_a)) + 3.0 * ops.sum(out_b)
    grads = tape.gradient(loss, model.trainable_weights)
    np.testing.assert_allclose(out_a.numpy(), model.predict(x, verbose=0)[0], rtol=1e-5, atol=1e-6)
    # finite differences on the first kernel
    kernel = model.trainable_weights[0]
    base = kernel.numpy().copy()

    def value(k):
        kernel.assign(k)
        pa, pb = model.predict(x, verbose=0)
        return float(np.sum(pa.astype(np.float64) ** 2) + 3.0 * np.sum(pb))
    num = np.zeros_like(base, dtype=np.float64)
    for idx in np.ndindex(*base.shape):
        k = base.astype(np.float64)
        k[idx] += 1e-3
        hi = value(k.astype(np.float32))
        k[idx] -= 2e-3
        num[idx] = (hi - value(k.astype(np.float32))) / 2e-3
    kernel.assign(base)
    np.testing.assert_allclose(grads[0].numpy(), num, rtol=2e-2, atol=2e-3)


def test_activity_regularization_in_a_custom_loop():
    # writing a training loop from scratch: add_loss in call(), then loss_value += sum(model.losses)
    class ActivityRegularizationLayer(keras.layers.Layer):
        def call(self, inputs):
            self.add_loss(1e-2 * tf.reduce_sum(inputs))
            return inputs

    keras.utils.set_random_seed(3)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, activation="relu")(inputs)
    x = ActivityRegularizationLayer()(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    data = np.random.default_rng(0).random((6, 4)).astype(np.float32)
    for _ in range(2):  # twice: the second step must not reach a freed graph
        with tf.GradientTape() as tape:
            out = model(data, training=True)
            loss = ops.sum(out) + sum(model.losses)
        grads = tape.gradient(loss, model.trainable_weights)
    # d/d(bias of the first Dense) of sum(out) + 0.01 * sum(relu(h)), the regularizer counted once
    k1, b1, k2 = (w.numpy() for w in model.trainable_weights[:3])
    h = data @ k1 + b1
    expected = ((h > 0) * (k2.sum(axis=1) + 1e-2)).sum(axis=0)
    np.testing.assert_allclose(grads[1].numpy(), expected, rtol=1e-4, atol=1e-6)
    assert abs(float(sum(model.losses).numpy()) - 1e-2 * np.maximum(h, 0).sum()) < 1e-5


def test_model_input_output_and_from_config_custom_objects():
    # functional API guide: keras.Model(inputs=vgg19.input, outputs=[layer.output ...]),
    # keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    inputs = keras.Input((3,))
    outputs = keras.layers.Dense(2)(inputs)
    model = keras.Model(inputs, outputs)
    assert model.input is inputs and model.output is outputs

    class CustomDense(keras.layers.Layer):
        def __init__(self, units=2, **kwargs):
            super().__init__(**kwargs)
            self.units = units

        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")

        def call(self, x):
            return ops.matmul(x, self.w)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    x = keras.Input((4,))
    m = keras.Model(x, CustomDense(5)(x))
    new = keras.Model.from_config(m.get_config(), custom_objects={"CustomDense": CustomDense})
    assert new.predict(np.ones((2, 4), np.float32), verbose=0).shape == (2, 5)


def test_seed_generator_advances_and_is_reproducible():
    # keras.io VAE's Sampling layer: keras.random.normal(shape=..., seed=self.seed_generator)
    def draws():
        gen = keras.random.SeedGenerator(1337)
        return [keras.random.normal(shape=(2, 3), seed=gen).numpy() for _ in range(2)]
    a, b = draws(), draws()
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], a[1])


def test_tf_names_the_tutorials_use():
    assert tf.function(lambda v: v + 1)(1) == 2 and tf.function(jit_compile=True)(abs)(-2) == 2
    np.testing.assert_allclose(tf.add_n([np.ones(2), 2 * np.ones(2)]).numpy(), [3.0, 3.0])
    assert int(tf.math.ceil(31.25)) == 32 and tf.math.equal([1, 2], [1, 3]).numpy().tolist() == [True, False]
    # string standardization as TextVectorization callables write it
    text = np.array(["A <br />Movie!", "OK."])
    out = tf.strings.regex_replace(tf.strings.lower(text), "<br />", " ")
    assert out.numpy().tolist() == ["a  movie!", "ok."]
    # text classification tutorial: examples = tf.constant(["The movie was great!", ...])
    examples = tf.constant(["The movie was great!", "ok"])
    assert examples.shape == (2,) and examples.numpy().tolist() == ["The movie was great!", "ok"]
    assert tf.convert_to_tensor(["a"]).numpy().tolist() == ["a"]
    assert isinstance(tf.constant([1.0, 2.0]), keras.Tensor)
    # host inputs stay on the host with their dtype (strings too); Tensors stay differentiable
    assert tf.expand_dims(text, -1).shape == (2, 1)
    stacked = tf.stack([np.arange(3), np.arange(3)], axis=-1)
    assert stacked.dtype.kind == "i" and stacked.shape == (3, 2)
    stacked.set_shape([None, 2])
    with pytest.raises(ValueError):
        stacked.set_shape([None, 3])
    t = keras.tensor(np.ones((2, 2), np.float32), requires_grad=True)
    assert isinstance(tf.stack([t, t]), keras.Tensor)
    np.testing.assert_array_equal(tf.where(np.array([True, False, True])), [[0], [2]])
    # tf.nn on numpy values gives a host array numpy's reductions accept (image classification tutorial)
    score = tf.nn.softmax(np.array([1.0, 2.0, 3.0], np.float32))
    assert abs(float(np.max(score)) - np.exp(3) / np.exp([1, 2, 3]).sum()) < 1e-6


def test_compiled_metrics_in_a_custom_train_step_ignore_sample_weight():
    # customizing fit, part 3: metric.update_state(y, y_pred, sample_weight=sample_weight) over self.metrics;
    # Keras weights only weighted_metrics, so the compiled "mae" is the plain mean (checked against Keras 3.15)
    class M(keras.Model):
        def train_step(self, data):
            x, y, sw = data
            y_pred = self(x, training=False)
            loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sw)
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sw)
            return {m.name: m.result() for m in self.metrics}

    x, y = _xy(8, 2)
    w = np.linspace(0.0, 1.0, 8).astype(np.float32)
    inputs = keras.Input((2,))
    model = M(inputs, keras.layers.Dense(1)(inputs))
    model.compile(optimizer="sgd", loss="mse", metrics=["mae"])
    h = model.fit(x, y, sample_weight=w, batch_size=8, epochs=1, shuffle=False, verbose=0)
    p = model.predict(x, verbose=0)
    assert abs(h.history["mae"][0] - np.abs(p - y).mean()) < 1e-6
    assert abs(h.history["loss"][0] - float((w * (p - y)[:, 0] ** 2).sum() / 8)) < 1e-6


def test_variable_keras_and_tf_spellings():
    # keras.Variable(initializer, shape=...) (keras.io layer guides) and tf.Variable(initial_value) (TF basics)
    v = tf.Variable([1.0, 2.0])
    w = keras.Variable(initializer="ones", shape=(2, 3), name="w")
    assert w.name == "w" and w.shape == (2, 3) and float(w.numpy().sum()) == 6.0
    with tf.GradientTape() as tape:
        loss = ops.sum(v * v)
    grad, = tape.gradient(loss, [v])
    keras.optimizers.SGD(0.25).apply_gradients([(grad, v)])
    np.testing.assert_allclose(v.numpy(), [0.5, 1.0])
    with pytest.raises(ValueError, match="shape"):
        keras.Variable(initializer="zeros")


def test_normalization_stats_and_axis_none_in_a_sequential():
    # TF regression tutorial: normalizer.mean.numpy(); Normalization(input_shape=[1], axis=None) adapted on a
    # 1-D column, then the first layer of a Sequential fed (N, 1)
    rng = np.random.default_rng(3)
    feats = rng.normal(5.0, 2.0, (40, 3)).astype(np.float32)
    norm = keras.layers.Normalization(axis=-1)
    norm.adapt(feats)
    assert norm.mean.numpy().shape == (1, 3) and norm.variance.numpy().shape == (1, 3)
    np.testing.assert_allclose(norm.mean.numpy()[0], feats.astype(np.float64).mean(0), rtol=1e-5)
    np.testing.assert_allclose(norm.variance.numpy()[0], feats.astype(np.float64).var(0), rtol=1e-5)
    hp = rng.normal(100.0, 30.0, 50).astype(np.float32)
    hnorm = keras.layers.Normalization(axis=None)
    hnorm.adapt(hp)
    model = keras.Sequential([keras.Input((1,)), hnorm])
    out = model.predict(hp[:7, None], verbose=0)
    np.testing.assert_allclose(out[:, 0], (hp[:7] - hp.mean()) / hp.std(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="Normalization"):
        norm(np.zeros((2, 4), np.float32))  # the kept axis still has to match


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_preprocess_input_inside_a_model(mode):
    # transfer-learning tutorial: x = preprocess_input(inputs) on the symbolic Input, then the base model
    from fastnn.applications.imagenet_utils import preprocess_input
    x = np.random.default_rng(4).uniform(0, 255, (2, 4, 4, 3)).astype(np.float32)
    inputs = keras.Input((4, 4, 3))
    model = keras.Model(inputs, preprocess_input(inputs, mode=mode))
    np.testing.assert_allclose(model.predict(x, verbose=0), preprocess_input(x.copy(), mode=mode), rtol=1e-5, atol=1e-4)


def test_input_rank_adjusted_as_keras_functional():
    # TF regression tutorial: a model on Input((1,)) fed a 1-D column (N,); Keras adds the trailing axis
    # (Functional._adjust_input_rank), and drops a trailing axis of 1 the Input does not have
    x = np.linspace(-1.0, 1.0, 12).astype(np.float32)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x[:, None], verbose=0))
    model.fit(x, 2 * x, epochs=1, verbose=0)
    assert np.isfinite(model.evaluate(x, 2 * x, verbose=0))
    inputs = keras.Input((3,))
    wide = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    x3 = np.random.default_rng(5).normal(size=(4, 3)).astype(np.float32)
    np.testing.assert_array_equal(wide.predict(x3[..., None], verbose=0), wide.predict(x3, verbose=0))
    with pytest.raises(ValueError):
        wide.predict(x3[:, :2], verbose=0)  # a real mismatch still fails
