"""Model files written by Keras 3 itself (tests/data/keras, made by tools/gen_keras_fixtures.py with Keras 3.15):
fastnn loads them, predicts what Keras predicted, and training resumes from Keras's optimizer state; and Keras 3
loads the files fastnn writes (when a Python with Keras is at hand: FASTNN_KERAS_PYTHON or /work/kvenv)."""
import json
import os
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn.models import load_model

pytest.importorskip("h5py")
DATA = os.path.join(os.path.dirname(__file__), "data", "keras")
EXPECTED = dict(np.load(os.path.join(DATA, "expected.npz")))
ATOL = 2e-5


def inputs(name):
    xs = [EXPECTED[f"{name}/x{i}"] for i in range(3) if f"{name}/x{i}" in EXPECTED]
    return xs if len(xs) > 1 else xs[0]


@pytest.mark.parametrize("name", ["seq_cnn", "functional_merge", "recurrent"])
@pytest.mark.parametrize("suffix", [".keras", "_legacy.h5"])
def test_predictions_equal_keras(name, suffix):
    model = load_model(os.path.join(DATA, name + suffix))
    np.testing.assert_allclose(model.predict(inputs(name), verbose=0), EXPECTED[f"{name}/predict"], atol=ATOL,
                               rtol=0)
    assert model.compiled and model.optimizer.iterations == 8  # 2 epochs of 4 batches in Keras


@pytest.mark.parametrize("name", ["functional_merge", "recurrent"])
@pytest.mark.parametrize("suffix", [".keras", "_legacy.h5"])
def test_training_resumes_from_keras_optimizer_state(name, suffix):
    """One more step from the loaded optimizer state (SGD momentum, Adam moments and step count) gives the weights
    Keras had after the same step."""
    model = load_model(os.path.join(DATA, name + suffix))
    x, y = inputs(name), EXPECTED[f"{name}/y"]
    model.train_on_batch([xi[:8] for xi in x] if isinstance(x, list) else x[:8], y[:8])
    after = [EXPECTED[f"{name}/after_step/{i}"] for i in range(len(model.get_weights()))]
    for i, (got, want) in enumerate(zip(model.get_weights(), after)):
        # NOTE: Keras's TensorFlow backend updates an Embedding from sparse gradients, squaring each occurrence of a
        # repeated token separately in Adam's second moment (dense Adam squares their sum): ~1e-4 apart
        atol = 5e-4 if name == "recurrent" and i == 0 else ATOL
        np.testing.assert_allclose(got, want, atol=atol, rtol=1e-4)


def test_cnn_with_batchnorm_and_dropout_trains_on():
    model = load_model(os.path.join(DATA, "seq_cnn.keras"))
    x, y = inputs("seq_cnn"), EXPECTED["seq_cnn/y"]
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert model.optimizer.iterations == 8 + 12
    after = model.evaluate(x, y, verbose=0)
    assert np.isfinite(after[0]) and after[0] < before[0]


def test_weights_h5_written_by_keras():
    model = load_model(os.path.join(DATA, "seq_cnn.keras"))
    x = inputs("seq_cnn")
    assert not np.allclose(model.predict(x, verbose=0), EXPECTED["seq_cnn/predict_weights_h5"], atol=ATOL)
    model.load_weights(os.path.join(DATA, "seq_cnn.weights.h5"))
    np.testing.assert_allclose(model.predict(x, verbose=0), EXPECTED["seq_cnn/predict_weights_h5"], atol=ATOL, rtol=0)


def test_legacy_h5_weights_by_name_and_skip_mismatch():
    from fastnn.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    path = os.path.join(DATA, "seq_cnn_legacy.h5")
    reference = load_model(path)
    # same layer names, a different head: by_name fills the conv layer, skip_mismatch skips the head with a warning
    other = fastnn.models.Sequential([Input((8, 8, 1)), Conv2D(4, 3, activation="relu", padding="same", name="conv2d"),
                                      MaxPooling2D(), Flatten(), Dense(5, name="dense")])
    with pytest.raises(ValueError, match="dense"):
        other.load_weights(path, by_name=True)
    with pytest.warns(UserWarning, match="dense"):
        other.load_weights(path, by_name=True, skip_mismatch=True)
    np.testing.assert_array_equal(other.get_layer("conv2d").get_weights()[0],
                                  reference.get_layer("conv2d").get_weights()[0])
    with pytest.raises(ValueError, match="by_name"):
        other.load_weights(os.path.join(DATA, "seq_cnn.weights.h5"), by_name=True)


def test_fastnn_reads_keras_config_names():
    """The objects a Keras config names come back as fastnn's: initializers, optimizer hyper-parameters, loss."""
    model = load_model(os.path.join(DATA, "functional_merge.keras"))
    assert type(model.optimizer).__name__ == "SGD" and model.optimizer.momentum == pytest.approx(0.9)
    assert model.optimizer.learning_rate == pytest.approx(0.05)
    assert [layer.name for layer in model.layers if layer.weights] == ["ha", "hb", "out"]
    assert type(model.get_layer("ha").kernel_initializer).__name__ == "GlorotUniform"


OBJECTS = json.load(open(os.path.join(DATA, "objects.json")))


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        return a == pytest.approx(b, rel=1e-6)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("kind", sorted(OBJECTS))
def test_keras_serialized_objects_map_to_fastnn(kind):
    """Optimizers, schedules, losses, metrics, initializers and regularizers as Keras 3 serializes them become
    fastnn's classes with the same hyper-parameters, and serialize back to Keras's form."""
    from fastnn.saving import deserialize, serialize
    for entry in OBJECTS[kind]:
        obj = deserialize(entry, kind, "objects.json")
        assert type(obj).__name__ == entry["class_name"]
        mine = obj.get_config()
        for key, value in entry["config"].items():
            if key in mine and not isinstance(value, dict) and key != "name" and value is not None:
                assert _same(mine[key], value), (entry["class_name"], key, mine[key], value)
        back = serialize(obj, kind)
        assert {k: back[k] for k in ("module", "class_name", "registered_name")} == {
            k: entry[k] for k in ("module", "class_name", "registered_name")}
    schedule = deserialize(OBJECTS["optimizer"][-1], "optimizer", "objects.json")._learning_rate
    assert type(schedule).__name__ == "ExponentialDecay"


# ---- fastnn's files in Keras ----------------------------------------------------------------------------------
def keras_python():
    path = os.environ.get("FASTNN_KERAS_PYTHON") or "/work/kvenv/bin/python"
    return path if os.path.exists(path) else None


KERAS_CHECK = textwrap.dedent("""
    import os, sys, warnings
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, keras
    folder = sys.argv[1]
    data = dict(np.load(os.path.join(folder, "data.npz")))
    x = [data["xa"], data["xb"]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a skipped optimizer state or unused weights warn
        model = keras.models.load_model(os.path.join(folder, "m.keras"))
    np.testing.assert_allclose(model.predict(x, verbose=0), data["predict"], atol=2e-5, rtol=0)
    assert int(model.optimizer.iterations) == int(data["iterations"]), int(model.optimizer.iterations)
    model.train_on_batch([xi[:8] for xi in x], data["y"][:8])
    for got, want in zip(model.get_weights(), [data[f"after_{i}"] for i in range(len(model.get_weights()))]):
        np.testing.assert_allclose(got, want, atol=2e-5, rtol=1e-4)
    legacy = keras.models.load_model(os.path.join(folder, "m.h5"))
    np.testing.assert_allclose(legacy.predict(x, verbose=0), data["predict"], atol=2e-5, rtol=0)
    fresh = keras.models.load_model(os.path.join(folder, "m.keras"))
    fresh.set_weights([np.zeros_like(w) for w in fresh.get_weights()])
    fresh.load_weights(os.path.join(folder, "m.weights.h5"))
    np.testing.assert_allclose(fresh.predict(x, verbose=0), data["predict"], atol=2e-5, rtol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnn = keras.models.load_model(os.path.join(folder, "cnn.keras"))
    np.testing.assert_allclose(cnn.predict(data["cnn_x"], verbose=0), data["cnn_predict"], atol=2e-5, rtol=0)
    assert [type(l).__name__ for l in cnn.layers] == ["Conv2D", "BatchNormalization", "MaxPooling2D", "Dropout",
                                                      "Flatten", "Dense"]
    cnn.fit(data["cnn_x"], data["cnn_y"], epochs=1, verbose=0)
    import json
    for kind, entries in json.load(open(os.path.join(folder, "objects.json"))).items():
        for entry in entries:  # fastnn's serialized objects, as Keras reads them
            obj = keras.saving.deserialize_keras_object(entry)
            assert type(obj).__name__ == entry["class_name"], (type(obj), entry)
    print("KERAS OK")
""")


def test_keras_loads_fastnn_files(tmp_path):
    python = keras_python()
    if python is None:
        pytest.skip("no Python with Keras 3 (set FASTNN_KERAS_PYTHON)")
    from fastnn.layers import Add, Concatenate, Dense, Input
    fastnn.utils.set_random_seed(1)
    a, b = Input((6,), name="a"), Input((4,), name="b")
    ha, hb = Dense(5, activation="relu", name="ha")(a), Dense(5, activation="tanh", name="hb")(b)
    model = fastnn.Model([a, b], Dense(2, name="out")(Concatenate()([ha, hb, Add()([ha, hb])])))
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    rng = np.random.default_rng(3)
    x = [rng.standard_normal((16, 6), dtype=np.float32), rng.standard_normal((16, 4), dtype=np.float32)]
    y = rng.standard_normal((16, 2), dtype=np.float32)
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    model.save_weights(tmp_path / "m.weights.h5")
    data = {"xa": x[0], "xb": x[1], "y": y, "predict": model.predict(x, verbose=0),
            "iterations": np.array(model.optimizer.iterations)}
    model.train_on_batch([xi[:8] for xi in x], y[:8])
    data.update({f"after_{i}": w for i, w in enumerate(model.get_weights())})
    from fastnn.layers import BatchNormalization, Conv2D, Dropout, Flatten, MaxPooling2D
    cnn = fastnn.models.Sequential([Input((8, 8, 1)), Conv2D(4, 3, activation="relu", padding="same"),
                                    BatchNormalization(), MaxPooling2D(), Dropout(0.25), Flatten(),
                                    Dense(3, activation="softmax")])
    cnn.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    data["cnn_x"], data["cnn_y"] = rng.random((16, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 16)
    cnn.fit(data["cnn_x"], data["cnn_y"], batch_size=8, epochs=2, verbose=0)
    cnn.save(tmp_path / "cnn.keras")
    data["cnn_predict"] = cnn.predict(data["cnn_x"], verbose=0)
    np.savez(tmp_path / "data.npz", **data)
    from fastnn.saving import deserialize, serialize
    mine = {kind: [serialize(deserialize(entry, kind, "objects.json"), kind) for entry in entries]
            for kind, entries in OBJECTS.items()}
    (tmp_path / "objects.json").write_text(json.dumps(mine))
    run = subprocess.run([python, "-c", KERAS_CHECK, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert "KERAS OK" in run.stdout, run.stdout[-3000:] + run.stderr[-5000:]


def test_saved_layout_is_keras_3s(tmp_path):
    from fastnn.layers import Dense, Input
    model = fastnn.models.Sequential([Input((4,)), Dense(3)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 4), np.float32), np.ones((4, 3), np.float32), verbose=0)
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        assert set(z.namelist()) == {"metadata.json", "config.json", "model.weights.h5"}
        config = json.loads(z.read("config.json"))
        weights = z.read("model.weights.h5")
    assert config["module"] == "keras" and config["class_name"] == "Sequential"
    assert [e["class_name"] for e in config["config"]["layers"]] == ["InputLayer", "Dense"]
    assert config["compile_config"]["optimizer"]["module"] == "keras.optimizers"
    import io

    import h5py
    with h5py.File(io.BytesIO(weights)) as h5:
        assert h5["layers/dense/vars/0"].shape == (4, 3)
        assert h5["optimizer/vars/0"][()] == 1 and h5["optimizer/vars/1"][()] == np.float32(0.001)
        assert h5["optimizer/vars/2"].shape == (4, 3)  # Adam: m, v of the kernel, then of the bias
        assert len(h5["optimizer/vars"]) == 2 + 4


def test_without_h5py_an_import_error_names_the_extra(tmp_path, monkeypatch):
    from fastnn.layers import Dense, Input
    model = fastnn.models.Sequential([Input((4,)), Dense(3)])
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"fastnn\[h5\]"):
        model.save(tmp_path / "m.keras")
    with pytest.raises(ImportError, match=r"fastnn\[h5\]"):
        model.save_weights(tmp_path / "m.weights.h5")
    model.save_weights(tmp_path / "m.weights.npz")  # numpy only
    model.load_weights(tmp_path / "m.weights.npz")


def test_integer_inputs_keep_their_dtype_in_configs(tmp_path):
    from fastnn.layers import Dense, Input
    inputs = Input((3,), dtype="int32", name="ids")
    model = fastnn.Model(inputs, Dense(2, name="out")(inputs))
    config = model.get_config()
    assert config["layers"][0]["config"]["dtype"] == "int32"
    assert config["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["dtype"] == "int32"
    model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras").layers[0].get_config()["dtype"] == "int32"


def _stand_in(class_name, shapes, out):
    """A layer class named like Keras's recurrent layers, with their weight shapes (the math is not needed to check
    where each weight is read from)."""
    class StandIn(fastnn.layers.Layer):
        def build(self, input_shape):
            for i, shape in enumerate(shapes):
                self.add_weight(shape, name=f"w{i}")

        def compute_output_shape(self, input_shape):
            return tuple(input_shape[:1]) + out
    StandIn.__name__ = StandIn.__qualname__ = class_name
    return StandIn(name=class_name.lower())


def test_recurrent_weights_are_read_from_keras_cell_paths():
    """Keras 3 keeps an LSTM's/GRU's weights under "layers/lstm/cell/vars/<i>": they land in the layer's own weights,
    in order (checked with stand-ins until fastnn's recurrent layers are merged)."""
    import io

    import h5py
    model = fastnn.models.Sequential([
        fastnn.layers.Input((7,)), _stand_in("Embedding", [(20, 4)], (7, 4)),
        _stand_in("LSTM", [(4, 20), (5, 20), (20,)], (7, 5)), _stand_in("GRU", [(5, 9), (3, 9), (2, 9)], (3,)),
        fastnn.layers.Dense(2)])
    path = os.path.join(DATA, "recurrent.keras")
    model.load_weights(path)
    with zipfile.ZipFile(path) as z, h5py.File(io.BytesIO(z.read("model.weights.h5"))) as h5:
        want = [h5[p][()] for p in ("layers/embedding/vars/0", "layers/lstm/cell/vars/0", "layers/lstm/cell/vars/1",
                                    "layers/lstm/cell/vars/2", "layers/gru/cell/vars/0", "layers/gru/cell/vars/1",
                                    "layers/gru/cell/vars/2", "layers/dense/vars/0", "layers/dense/vars/1")]
    for got, expected in zip(model.get_weights(), want):
        np.testing.assert_array_equal(got, expected)
    # the legacy layout names them "lstm/lstm_cell/kernel": read in the layer's weight order
    model.set_weights([np.zeros_like(w) for w in want])
    model.load_weights(os.path.join(DATA, "recurrent_legacy.h5"))
    for got, expected in zip(model.get_weights(), want):
        np.testing.assert_array_equal(got, expected)


def _tf2_dense(name, units, activation, first_shape=None):
    config = {"name": name, "trainable": True, "dtype": "float32", "units": units, "activation": activation,
              "use_bias": True, "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
              "bias_initializer": {"class_name": "Zeros", "config": {}}, "kernel_regularizer": None,
              "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
              "bias_constraint": None}
    if first_shape:
        config["batch_input_shape"] = first_shape
    return {"class_name": "Dense", "config": config}


@pytest.mark.parametrize("kind", ["Sequential", "Functional"])
def test_tf_keras_2_legacy_h5(tmp_path, kind):
    """A legacy .h5 in tf.keras 2's own dialect (no modules, "float32" dtypes, batch_input_shape, calls as
    [[layer, node, tensor, kwargs]], weights named "dense/kernel:0", its optimizer's own variable layout)."""
    import h5py
    rng = np.random.default_rng(0)
    w = [rng.standard_normal(s).astype(np.float32) for s in ((4, 3), (3,), (4, 2), (2,), (5, 2), (2,))]
    inp = {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "dtype": "float32", "sparse": False,
                                                  "ragged": False, "name": "input_1"}}
    if kind == "Sequential":
        layers = [inp, _tf2_dense("dense", 3, "relu", [None, 4]), _tf2_dense("dense_1", 2, "softmax")]
        names, weights = ["dense", "dense_1"], [w[:2], [w[4][:3], w[5]]]
    else:
        def node(*refs):
            return [[[ref, 0, 0, {}] for ref in refs]]
        layers = [{**inp, "name": "input_1", "inbound_nodes": []},
                  {**_tf2_dense("dense", 3, "relu"), "name": "dense", "inbound_nodes": node("input_1")},
                  {**_tf2_dense("dense_1", 2, "tanh"), "name": "dense_1", "inbound_nodes": node("input_1")},
                  {"class_name": "Concatenate", "config": {"name": "concatenate", "trainable": True, "dtype": "float32",
                                                           "axis": -1},
                   "name": "concatenate", "inbound_nodes": node("dense", "dense_1")},
                  {**_tf2_dense("dense_2", 2, "softmax"), "name": "dense_2", "inbound_nodes": node("concatenate")}]
        names, weights = ["dense", "dense_1", "dense_2"], [w[:2], w[2:4], w[4:]]
    config = {"class_name": kind, "config": {"name": "model", "layers": layers}}
    if kind == "Functional":
        config["config"].update(input_layers=[["input_1", 0, 0]], output_layers=[["dense_2", 0, 0]])
    path = tmp_path / "tf2.h5"
    with h5py.File(path, "w") as h5:
        h5.attrs["keras_version"], h5.attrs["backend"] = "2.15.0", "tensorflow"
        h5.attrs["model_config"] = json.dumps(config)
        h5.attrs["training_config"] = json.dumps({
            "loss": "sparse_categorical_crossentropy", "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
                "name": "accuracy", "dtype": "float32", "fn": "sparse_categorical_accuracy"}}]],
            "loss_weights": None, "optimizer_config": {"class_name": "Custom>Adam", "config": {
                "name": "Adam", "learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07,
                "amsgrad": False, "jit_compile": False, "is_legacy_optimizer": False}}})
        group = h5.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode() for n in ["input_1"] + names]
        group.create_group("input_1").attrs["weight_names"] = np.zeros(0)
        for name, (kernel, bias) in zip(names, weights):
            g = group.create_group(name)
            g.attrs["weight_names"] = [f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()]
            g[f"{name}/kernel:0"], g[f"{name}/bias:0"] = kernel, bias
        opt = h5.create_group("optimizer_weights")
        opt.attrs["weight_names"] = [b"Adam/iteration:0"] + [f"Adam/m/{i}:0".encode() for i in range(2 * len(w))]
        opt["Adam/iteration:0"] = np.int64(12)
        for i in range(2 * len(w)):
            opt[f"Adam/m/{i}:0"] = np.zeros_like(w[i % len(w)])
    x = rng.standard_normal((5, 4)).astype(np.float32)
    with pytest.warns(UserWarning, match="optimizer"):  # another optimizer layout: it starts afresh, as in Keras 3
        model = load_model(path)

    def dense(x, kernel, bias):
        return x @ kernel + bias
    if kind == "Sequential":
        logits = dense(np.maximum(dense(x, *w[:2]), 0), w[4][:3], w[5])
    else:
        logits = dense(np.concatenate([np.maximum(dense(x, *w[:2]), 0), np.tanh(dense(x, *w[2:4]))], -1), *w[4:])
    expected = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected / expected.sum(-1, keepdims=True), atol=1e-5)
    model.fit(x, np.array([0, 1, 0, 1, 1]), epochs=1, verbose=0)  # compiled from its training_config


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_compiled_but_untrained_optimizer(tmp_path, suffix):
    """An optimizer not built yet is saved as Keras saves it (iteration count and learning rate) and loads without a
    warning, keeping its learning rate."""
    import warnings

    from fastnn.layers import Dense, Input
    model = fastnn.models.Sequential([Input((3,)), Dense(2)])
    model.compile(optimizer=fastnn.optimizers.Adam(0.02), loss="mse")
    model.save(tmp_path / ("m" + suffix))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        restored = load_model(tmp_path / ("m" + suffix))
    assert restored.optimizer.learning_rate == pytest.approx(0.02) and restored.optimizer.iterations == 0
    restored.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0)


def test_weights_h5_skip_mismatch():
    from fastnn.layers import BatchNormalization, Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
    reference = load_model(os.path.join(DATA, "seq_cnn.keras"))
    reference.load_weights(os.path.join(DATA, "seq_cnn.weights.h5"))
    other = fastnn.models.Sequential([Input((8, 8, 1)), Conv2D(4, 3, activation="relu", padding="same"),
                                      BatchNormalization(), MaxPooling2D(), Dropout(0.25), Flatten(), Dense(7)])
    with pytest.raises(ValueError, match="layers/dense/vars/0"):
        other.load_weights(os.path.join(DATA, "seq_cnn.weights.h5"))
    with pytest.warns(UserWarning, match="layers/dense/vars/[01]"):
        other.load_weights(os.path.join(DATA, "seq_cnn.weights.h5"), skip_mismatch=True)
    for mine, theirs in zip(other.layers[:2], reference.layers[:2]):  # Conv2D, BatchNormalization
        for got, want in zip(mine.get_weights(), theirs.get_weights()):
            np.testing.assert_array_equal(got, want)
