"""Sequential: structure, summary, compile/fit/evaluate/predict arguments, errors, learning, determinism."""
import re

import numpy as np
import pytest

import fastnn
from fastnn import layers, losses, optimizers
from fastnn.callbacks import Callback
from fastnn._naming import clear_session
from fastnn.models import Sequential


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    clear_session()
    fastnn.utils.set_random_seed(0)
    monkeypatch.setenv("COLUMNS", "80")  # summary width = min(88, terminal - 4)


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = fastnn.datasets.digits.load_data()
    return x.reshape(len(x), 64) / 16.0, y, xt.reshape(len(xt), 64) / 16.0, yt


def _mlp(hidden=32, out_activation="softmax", **kwargs):
    return Sequential([layers.Dense(hidden, activation="relu", input_shape=(64,), **kwargs),
                       layers.Dense(10, activation=out_activation)])


class _Recorder(Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_batch_end(self, batch, logs=None):
        self.events.append(("batch", batch))

    def on_epoch_begin(self, epoch, logs=None):
        self.events.append(("epoch", epoch))


# ---- structure and summary ----------------------------------------------------------------------

MLP_SUMMARY = """\
Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ flatten (Flatten)               │ (None, 784)            │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense (Dense)                   │ (None, 128)            │       100,480 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 101,770 (397.54 KB)
 Trainable params: 101,770 (397.54 KB)
 Non-trainable params: 0 (0.00 B)
"""


def test_summary_keras3_table(capsys):
    model = Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(128, activation="relu"),
                        layers.Dense(10)])
    model.summary()
    assert capsys.readouterr().out == MLP_SUMMARY
    assert model.count_params() == 101770


def test_summary_optimizer_params_and_frozen_and_unbuilt(capsys):
    model = Sequential([layers.Flatten(input_shape=(28, 28)), layers.Dense(128, activation="relu"),
                        layers.Dense(10)])
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.zeros((2, 28, 28)), np.zeros(2, int), verbose=0)
    model.layers[2].trainable = False
    lines = []
    model.summary(print_fn=lines.append)
    assert lines[-4:] == [" Total params: 101,770 (397.54 KB)", " Trainable params: 100,480 (392.50 KB)",
                          " Non-trainable params: 1,290 (5.04 KB)", " Optimizer params: 203,542 (795.09 KB)"]
    unbuilt = Sequential([layers.Dense(4)], name="lazy")
    unbuilt.summary(line_length=88)
    out = capsys.readouterr().out
    assert 'Model: "lazy"' in out and "│ dense_2 (Dense)" in out and "│ ?" in out and "0 (unbuilt) │" in out
    assert len(out.splitlines()[1]) == 88


def test_add_pop_layers_and_input():
    model = Sequential(name="m")
    model.add(layers.Input((8,)))
    model.add(layers.Dense(4))
    assert model.built and model.layers[0].output_shape == (None, 4)
    model.add(layers.Dense(2))
    assert model.count_params() == 36 + 10
    popped = model.pop()
    assert popped.name == "dense_1" and len(model.layers) == 1
    with pytest.raises(TypeError, match="instance of class Layer"):
        model.add("dense")
    with pytest.raises(ValueError, match="unique names"):
        model.add(layers.Dense(3, name="dense"))


def test_shape_error_at_add_names_layer_and_shapes():
    model = Sequential([layers.Dense(16, input_shape=(10,))])
    with pytest.raises(ValueError, match=r"Conv2D 'conv2d'.*4-D.*\(None, 16\)"):
        model.add(layers.Conv2D(8, 3))
    assert len(model.layers) == 1  # the failed layer was not added
    model.add(layers.Reshape((4, 4, 1)))
    with pytest.raises(ValueError, match=r"max_pooling2d.*\(None, 4, 4, 1\).*pool_size=\(5, 5\)"):
        model.add(layers.MaxPooling2D(5))


def test_weights_round_trip_and_errors():
    a, b = _mlp(), _mlp()
    b.set_weights(a.get_weights())
    x = np.random.default_rng(0).random((5, 64))
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    with pytest.raises(ValueError, match="length 3.*expecting 4"):
        a.set_weights(a.get_weights()[:3])
    bad = a.get_weights()
    bad[2] = np.zeros((5, 10))
    with pytest.raises(ValueError, match=r"'dense_1' weight shape \(32, 10\).*\(5, 10\)"):
        a.set_weights(bad)


# ---- learning ----------------------------------------------------------------------------------

def test_mlp_learns_digits_sparse_labels(digits):
    x, y, xt, yt = digits
    model = _mlp(64)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=8, batch_size=32, verbose=0)
    assert sorted(history.history) == ["accuracy", "loss"] and len(history.history["loss"]) == 8
    assert history.history["loss"][-1] < history.history["loss"][0]
    loss, acc = model.evaluate(xt, yt, verbose=0)
    assert acc > 0.9 and loss < 0.5
    pred = model.predict(xt, verbose=0)
    assert pred.shape == (len(xt), 10) and pred.dtype == np.float32
    np.testing.assert_allclose(pred.sum(1), 1.0, rtol=1e-5)
    assert (pred.argmax(1) == yt).mean() == pytest.approx(acc)


def test_uint8_float64_and_float32_inputs_train_identically(digits):
    (x8, y), _ = fastnn.datasets.digits.load_data()
    x8 = x8[:200].reshape(200, 64)
    runs = []
    for x in (x8, x8.astype(np.float64), x8.astype(np.float32), x8.tolist()):
        clear_session()
        fastnn.utils.set_random_seed(5)
        model = _mlp()
        model.compile("adam", "sparse_categorical_crossentropy")
        runs.append(model.fit(x, y[:200], epochs=2, verbose=0).history["loss"])
    assert runs[0] == runs[1] == runs[2] == runs[3]


def test_input_dim_one_hot_categorical_and_raw_uint8(digits):
    (x8, y), (xt8, yt) = fastnn.datasets.digits.load_data()
    model = Sequential([layers.Flatten(input_shape=(8, 8)), layers.Dense(64, activation="relu"),
                        layers.Dropout(0.1), layers.Dense(10, activation="softmax")])
    model.compile(optimizers.RMSprop(), "categorical_crossentropy", metrics=["acc"])
    history = model.fit(x8, fastnn.utils.to_categorical(y, 10), epochs=6, verbose=0)  # raw uint8 0..16
    assert "acc" in history.history
    assert model.evaluate(xt8, fastnn.utils.to_categorical(yt, 10), verbose=0)[1] > 0.9
    dense_input = Sequential([layers.Dense(8, activation="relu", input_dim=64), layers.Dense(10, activation="softmax")])
    assert dense_input.layers[0].input_shape == (None, 64)


def test_small_batchnorm_model_trains(digits):
    x, y, xt, yt = digits
    model = Sequential([layers.Input((64,)), layers.Dense(32), layers.BatchNormalization(),
                        layers.Activation("relu"), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=6, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.9


def test_fused_softmax_loss_matches_probability_formula(digits):
    x, y, _, _ = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    fused = model.evaluate(x[:100], y[:100], verbose=0)
    probs = model.predict(x[:100], verbose=0)
    assert fused == pytest.approx(float(losses.SparseCategoricalCrossentropy()(y[:100], probs)), rel=1e-5)
    logits_model = _mlp(out_activation=None)
    logits_model.set_weights(model.get_weights())
    logits_model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    assert logits_model.evaluate(x[:100], y[:100], verbose=0) == pytest.approx(fused, rel=1e-6)


def test_regression_mse_and_regularized_loss():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((256, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3
    model = Sequential([layers.Dense(1, input_shape=(3,), kernel_regularizer=fastnn.regularizers.L2(1e-3))])
    model.compile(optimizers.SGD(0.1), "mse", metrics=["mae"])
    history = model.fit(x, y, epochs=20, verbose=0)
    assert history.history["loss"][-1] < 0.05
    loss, mae = model.evaluate(x, y, verbose=0)
    pure = float(np.mean((model.predict(x, verbose=0) - y) ** 2))
    penalty = 1e-3 * float(np.square(model.layers[0].kernel.value).sum())
    assert loss == pytest.approx(pure + penalty, rel=1e-4) and mae < 0.2


def test_binary_crossentropy_with_binary_accuracy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 2)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    model = Sequential([layers.Dense(8, activation="tanh", input_shape=(2,)), layers.Dense(1, activation="sigmoid")])
    model.compile(optimizers.Adam(0.05), "binary_crossentropy", metrics=["accuracy", "precision", "recall"])
    model.fit(x, y, epochs=10, verbose=0)
    assert type(model.metrics[0]).__name__ == "BinaryAccuracy"
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert list(logs) == ["accuracy", "loss", "precision", "recall"] and logs["accuracy"] > 0.95


def test_train_on_batch_and_predict_on_batch(digits):
    x, y, _, _ = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    first = model.train_on_batch(x[:32], y[:32])
    for _ in range(20):
        last = model.train_on_batch(x[:32], y[:32])
    assert last[0] < first[0] and model.predict_on_batch(x[:4]).shape == (4, 10)
    assert model.test_on_batch(x[:32], y[:32]) == pytest.approx(model.evaluate(x[:32], y[:32], verbose=0))


# ---- fit arguments ------------------------------------------------------------------------------

def test_validation_split_takes_last_fraction_before_shuffling(digits):
    x, y, _, _ = digits
    x, y = x[:200], y[:200]
    model = _mlp()
    model.compile(optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, validation_split=0.25, epochs=1, batch_size=16, verbose=0)
    val_loss, val_acc = model.evaluate(x[150:], y[150:], verbose=0)
    assert history.history["val_loss"][0] == pytest.approx(val_loss, rel=1e-6)
    assert history.history["val_accuracy"][0] == pytest.approx(val_acc)
    assert history.history["loss"][0] == pytest.approx(model.evaluate(x[:150], y[:150], verbose=0)[0], rel=1e-5)
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    with pytest.raises(ValueError, match="not sufficient to split"):
        model.fit(x[:1], y[:1], validation_split=0.5, verbose=0)


def test_validation_data_and_batch_size_steps(digits):
    x, y, xt, yt = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    rec = _Recorder()
    history = model.fit(x[:100], y[:100], batch_size=30, epochs=2, validation_data=(xt, yt), callbacks=[rec], verbose=0)
    assert [e for e in rec.events if e[0] == "batch"] == [("batch", i) for i in range(4)] * 2  # ceil(100/30)
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(xt, yt, verbose=0), rel=1e-6)
    assert history.epoch == [0, 1] and model.history is history


def test_initial_epoch_and_epoch_header(digits, capsys):
    x, y, _, _ = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(x[:64], y[:64], epochs=4, initial_epoch=2, verbose=2)
    out = capsys.readouterr().out
    assert history.epoch == [2, 3] and len(history.history["loss"]) == 2
    assert out.startswith("Epoch 3/4\n") and "Epoch 4/4\n" in out and "Epoch 1/4" not in out


def test_shuffle_and_seed_reproducibility(digits):
    x, y, _, _ = digits

    def run(shuffle, seed=0):
        clear_session()
        fastnn.utils.set_random_seed(seed)
        model = _mlp()
        model.compile("adam", "sparse_categorical_crossentropy")
        return model.fit(x[:256], y[:256], epochs=2, shuffle=shuffle, verbose=0).history["loss"], model.get_weights()

    (l1, w1), (l2, w2), (l3, _) = run(True), run(True), run(False)
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert l1 != l3
    assert run(False)[0] == l3 and run(True, seed=1)[0] != l1


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_same_seed_bit_identical_for_1_and_2_threads(digits, kind):
    x, y, xt, _ = digits
    if kind == "cnn":
        x, xt = x.reshape(-1, 8, 8, 1), xt.reshape(-1, 8, 8, 1)
    saved = fastnn.get_num_threads()
    results = []
    try:
        for threads in (1, 2, 1):
            fastnn.set_num_threads(threads)
            clear_session()
            fastnn.utils.set_random_seed(123)
            if kind == "mlp":
                body = [layers.Dense(48, activation="relu", input_shape=(64,)), layers.Dropout(0.2)]
            else:
                # the second convolution runs forward, dx and dkernel as Winograd (3x3, 16 -> 16 channels)
                body = [layers.Conv2D(16, 3, activation="relu", input_shape=(8, 8, 1)),
                        layers.Conv2D(16, 3, padding="same", activation="relu"), layers.BatchNormalization(),
                        layers.MaxPooling2D(), layers.Dropout(0.25), layers.Flatten()]
            model = Sequential(body + [layers.Dense(10, activation="softmax")])
            model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
            h = model.fit(x[:512], y[:512], epochs=2, batch_size=64, verbose=0)
            results.append((h.history, model.get_weights(), model.predict(xt, verbose=0)))
    finally:
        fastnn.set_num_threads(saved)
    (h1, w1, p1), (h2, w2, p2), (h3, _, _) = results
    assert h1 == h2 == h3
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2)) and np.array_equal(p1, p2)


def test_evaluate_return_forms(digits):
    x, y, _, _ = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy")
    assert isinstance(model.evaluate(x[:50], y[:50], verbose=0), float)
    model.compile("adam", "sparse_categorical_crossentropy",
                  metrics=["accuracy", fastnn.metrics.F1Score(average="macro")])
    result = model.evaluate(x[:50], y[:50], verbose=0)
    assert isinstance(result, list) and len(result) == 3
    assert model.metrics_names == ["loss", "accuracy", "f1_score"]
    # the batch size of evaluate does not change the result
    assert model.evaluate(x[:50], y[:50], batch_size=7, verbose=0) == pytest.approx(result, rel=1e-6)


# ---- verbose output -------------------------------------------------------------------------------

def test_verbose_outputs(digits, capsys):
    x, y, _, _ = digits
    model = _mlp()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:100], y[:100], batch_size=25, epochs=2, verbose=0)
    model.evaluate(x[:100], y[:100], verbose=0)
    model.predict(x[:10], verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x[:100], y[:100], batch_size=25, epochs=2, verbose=2, validation_data=(x[:20], y[:20]))
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    assert re.fullmatch(r"4/4 - \d+s - \d+(us|ms|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4} - "
                        r"val_accuracy: \d\.\d{4} - val_loss: \d\.\d{4}", lines[1]), lines[1]
    model.fit(x[:100], y[:100], batch_size=25, epochs=1, verbose=1)  # not a TTY: one line per epoch
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and not out.startswith("Epoch")
    assert re.fullmatch(r"\x1b\[1m4/4\x1b\[0m \x1b\[32m━{20}\x1b\[0m\x1b\[37m\x1b\[0m \x1b\[1m\d+s\x1b\[0m "
                        r"\d+(us|ms|s)/step - accuracy: \d\.\d{4} - loss: \d\.\d{4}\n", out), repr(out)
    model.fit(x[:100], y[:100], batch_size=25, epochs=1, verbose="auto")
    assert capsys.readouterr().out.count("━") == 20
    model.evaluate(x[:100], y[:100], batch_size=10, verbose=1)
    assert re.fullmatch(r"\x1b\[1m10/10\x1b\[0m .* - accuracy: \d\.\d{4} - loss: \d\.\d{4}\n", capsys.readouterr().out)
    model.predict(x[:100], batch_size=50, verbose=1)
    assert re.fullmatch(r"\x1b\[1m2/2\x1b\[0m .*/step\n", capsys.readouterr().out)


# ---- bad input --------------------------------------------------------------------------------------

def test_bad_inputs_raise_clear_errors(digits):
    x, y, _, _ = digits
    model = _mlp()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"expected shape=\(None, 64\), found shape=\(None, 65\)"):
        model.fit(np.zeros((10, 65)), np.zeros(10), verbose=0)
    with pytest.raises(ValueError, match=r"x has 10 samples.*y has 9 samples"):
        model.fit(x[:10], y[:9], verbose=0)
    with pytest.raises(ValueError, match=r"label 10 is out of range for 10 classes"):
        model.fit(x[:3], np.array([0, 10, 2]), verbose=0)
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        model.evaluate(x[:3], np.array([0, -1, 2]), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(x[:3], np.array([0, np.nan, 2]), verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.fit(x, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        model.predict(x, batch_size=-3, verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.fit(np.zeros((0, 64)), np.zeros(0), verbose=0)
    with pytest.raises(ValueError, match="empty"):
        model.predict(np.zeros((0, 64)), verbose=0)
    with pytest.raises(ValueError, match="verbose"):
        model.fit(x, y, verbose=3)
    with pytest.raises(ValueError, match=r"targets of shape \(10, 3\) do not match predictions of shape \(10, 10\)"):
        model.compile("adam", "categorical_crossentropy")
        model.fit(x[:10], np.zeros((10, 3)), verbose=0)
    with pytest.raises(ValueError, match="Could not interpret optimizer"):
        model.compile("yogi", "mse")
    with pytest.raises(ValueError, match="Unknown loss"):
        model.compile("adam", "hinge_loss")
    with pytest.raises(ValueError, match="Unknown metric"):
        model.compile("adam", "mse", metrics=["accuracy", "auc_roc"])
    with pytest.raises(TypeError, match="numeric"):
        model.predict(np.array([["a"] * 64]), verbose=0)


def test_tiny_cnn_learns_digits(digits):
    (x8, y), (xt8, yt) = fastnn.datasets.digits.load_data()
    x, xt = (x8[..., None] / 16.0).astype(np.float32), (xt8[..., None] / 16.0).astype(np.float32)
    model = Sequential([layers.Input((8, 8, 1)), layers.Conv2D(16, 3, activation="relu"),
                        layers.MaxPooling2D(), layers.Flatten(), layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=6, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > history.history["accuracy"][0]
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.85


def test_nested_sequential_and_softmax_layer(digits):
    x, y, xt, _ = digits
    model = _mlp(out_activation=None)
    model.compile("adam", losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[:64], y[:64], verbose=0)
    probability_model = Sequential([model, layers.Softmax()])
    probs = probability_model(xt[:5]).numpy()
    logits = model.predict(xt[:5], verbose=0)
    np.testing.assert_allclose(probs, np.exp(logits) / np.exp(logits).sum(1, keepdims=True), rtol=1e-5)
    assert probability_model.output_shape == (None, 10) and probability_model.count_params() == model.count_params()


def test_summary_design_doc_cnn_matches_keras3(capsys):
    model = Sequential([layers.Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 1)),
                        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D(pool_size=(2, 2)),
                        layers.Dropout(0.25), layers.Flatten(), layers.Dense(128, activation="relu"),
                        layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
    model.summary()
    lines = capsys.readouterr().out.splitlines()
    assert lines[4] == "│ conv2d (Conv2D)                 │ (None, 26, 26, 32)     │           320 │"
    assert lines[6] == "│ conv2d_1 (Conv2D)               │ (None, 24, 24, 64)     │        18,496 │"
    assert lines[8] == "│ max_pooling2d (MaxPooling2D)    │ (None, 12, 12, 64)     │             0 │"
    assert lines[14] == "│ dense (Dense)                   │ (None, 128)            │     1,179,776 │"
    assert lines[18] == "│ dense_1 (Dense)                 │ (None, 10)             │         1,290 │"
    assert lines[-3:] == [" Total params: 1,199,882 (4.58 MB)", " Trainable params: 1,199,882 (4.58 MB)",
                          " Non-trainable params: 0 (0.00 B)"]


def test_sample_weight_and_class_weight(digits):
    x, y, _, _ = digits
    x, y = x[:200], y[:200]
    w = np.random.default_rng(3).uniform(0.5, 2.0, 200).astype(np.float32)
    model = _mlp()
    model.compile(optimizers.SGD(learning_rate=0.0), "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, sample_weight=w, validation_split=0.25, epochs=1, batch_size=16, verbose=0)
    per = losses.sparse_categorical_crossentropy(y, model.predict(x, verbose=0))
    assert history.history["loss"][0] == pytest.approx(float((per[:150] * w[:150]).mean()), rel=1e-5)
    assert history.history["val_loss"][0] == pytest.approx(float((per[150:] * w[150:]).mean()), rel=1e-5)
    assert model.evaluate(x, y, sample_weight=w, verbose=0)[0] == pytest.approx(float((per * w).mean()), rel=1e-5)
    # class_weight == the equivalent sample weights, also while training
    class_weight = {c: 1.0 + c / 10 for c in range(10)}

    def train(**kwargs):
        clear_session()
        fastnn.utils.set_random_seed(4)
        m = _mlp()
        m.compile("adam", "sparse_categorical_crossentropy")
        return m.fit(x, y, epochs=2, verbose=0, **kwargs).history["loss"]
    by_class = train(class_weight=class_weight)
    assert by_class == train(sample_weight=np.array([class_weight[int(c)] for c in y]))
    assert by_class != train()
    onehot = Sequential([layers.Dense(8, activation="relu", input_shape=(64,)), layers.Dense(10, activation="softmax")])
    onehot.compile("adam", "categorical_crossentropy")
    onehot.fit(x, fastnn.utils.to_categorical(y, 10), class_weight=class_weight, verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(200,\)"):
        model.fit(x, y, sample_weight=w[:10], verbose=0)
    with pytest.raises(ValueError, match="class_weight must be a dict"):
        model.fit(x, y, class_weight=[1.0, 2.0], verbose=0)


def test_custom_loss_metric_and_activation_functions():
    rng = np.random.default_rng(6)
    x = rng.random((128, 3)).astype(np.float32)
    y = x.sum(1, keepdims=True)

    def my_loss(y_true, y_pred):  # written with Tensor ops: differentiated by the autograd
        return ((y_true - y_pred) ** 2).mean(axis=-1)

    def max_error(y_true, y_pred):
        return np.abs(y_true - y_pred).max(axis=-1)

    model = Sequential([layers.Dense(8, activation=lambda t: t.tanh() * 2, input_shape=(3,)), layers.Dense(1)])
    model.compile(optimizers.Adam(0.05), my_loss, metrics=[max_error, "mae"])
    history = model.fit(x, y, epochs=15, validation_split=0.25, verbose=0)
    assert sorted(history.history) == ["loss", "mae", "max_error", "val_loss", "val_mae", "val_max_error"]
    assert history.history["loss"][-1] < 0.1 * history.history["loss"][0]
    loss, err, mae = model.evaluate(x, y, verbose=0)
    assert loss == pytest.approx(float(np.mean((model.predict(x, verbose=0) - y) ** 2)), rel=1e-5)
    assert err == pytest.approx(mae, rel=1e-6)


@pytest.mark.parametrize("act", [None, "relu", "softmax", "sigmoid", "tanh", lambda t: t * 2.0])
@pytest.mark.parametrize("rows", [1, 3, 2000])
def test_predict_fast_path_equals_forward(act, rows):
    """predict (the plan's forward under no_grad: each op's no-record branch) gives the recording forward's outputs."""
    from fastnn.layers import Dense, Flatten, Input
    from fastnn.models import Sequential
    model = Sequential([Input((4, 5)), Flatten(), Dense(7, activation="relu"), Dense(3, activation=act)])
    x = np.random.default_rng(0).standard_normal((rows, 4, 5)).astype(np.float32)
    expected = model._plan().forward([x], False)[0][0]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [1, 300])
def test_predict_fast_path_equals_forward_cnn(rows):
    """predict's no-record path (pooling without argmax bookkeeping) gives the recording forward's outputs."""
    from fastnn.layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
    from fastnn.models import Sequential
    model = Sequential([Input((9, 9, 2)), Conv2D(4, 3, activation="relu"), MaxPooling2D(), Dropout(0.5),
                        AveragePooling2D(pool_size=(2, 1), padding="same"), Flatten(), Dense(3, activation="softmax")])
    x = np.random.default_rng(1).standard_normal((rows, 9, 9, 2)).astype(np.float32)
    expected = model._plan().forward([x], False)[0][0]
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
