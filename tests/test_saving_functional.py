"""Functional models in `.keras` files (Keras 3's functional config layout): round trips that resume training bit
for bit, shared layers and nested models, weights-only files, and configs that name things fastnn must refuse."""
import json
import zipfile

import numpy as np
import pytest

import fastnn
from _saving_util import weight_keys
from fastnn.layers import Add, BatchNormalization, Concatenate, Dense, Dropout, Input
from fastnn.models import Model, Sequential, load_model

RNG = np.random.default_rng(0)
X4 = RNG.random((96, 4), dtype=np.float32)
XA, XB = RNG.random((96, 3), dtype=np.float32), RNG.random((96, 2), dtype=np.float32)
Y_REG, Y_CLS = RNG.random((96, 1), dtype=np.float32), RNG.integers(0, 3, 96)


def mlp():
    inputs = Input((4,), name="x")
    hidden = Dropout(0.25)(Dense(8, activation="relu")(inputs))
    return Model(inputs, Dense(3, activation="softmax")(hidden))


def dict_model():
    a, b = Input((3,), name="a"), Input((2,), name="b")
    hidden = Dense(6, activation="relu")(Concatenate()([a, b]))
    return Model({"a": a, "b": b}, {"reg": Dense(1, name="reg")(hidden),
                                    "cls": Dense(3, activation="softmax", name="cls")(hidden)})


def residual_model():
    inputs = Input((4,))
    shared = Dense(4, activation="relu", name="shared")
    twice = shared(BatchNormalization()(shared(inputs)))
    return Model(inputs, Dense(3, activation="softmax")(Add()([inputs, twice])))


def nested_model():
    inner_in = Input((4,))
    inner = Model(inner_in, Dense(5, activation="relu")(Dense(6, activation="relu")(inner_in)), name="inner")
    head = Sequential([Input((5,)), Dense(3, activation="softmax")], name="head")
    inputs = Input((4,))
    return Model(inputs, head(Add()([inner(inputs), Dense(5)(inputs)])))


SINGLE = dict(x=X4, y=Y_CLS, compile=dict(optimizer="adam", loss="sparse_categorical_crossentropy",
                                          metrics=["accuracy"]))
CASES = {
    "mlp": (mlp, SINGLE),
    "dict": (dict_model, dict(x={"a": XA, "b": XB}, y={"reg": Y_REG, "cls": Y_CLS},
                              compile=dict(optimizer="rmsprop",
                                           loss={"reg": "mse", "cls": "sparse_categorical_crossentropy"},
                                           loss_weights={"reg": 0.5, "cls": 2.0},
                                           metrics={"cls": ["accuracy"], "reg": ["mae"]}))),
    "residual": (residual_model, SINGLE),
    "nested": (nested_model, SINGLE),
}


def fit_epoch(model, data, seed):
    fastnn.utils.set_random_seed(seed)
    return model.fit(data["x"], data["y"], batch_size=16, epochs=1, verbose=0, shuffle=False).history


def predictions(model, x):
    out = model.predict(x, verbose=0)
    return list(out.values()) if isinstance(out, dict) else [out]


def json_config(model):
    return json.loads(json.dumps(model.get_config()))


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_resumes_training_exactly(tmp_path, case):
    make, data = CASES[case]
    fastnn.utils.set_random_seed(0)
    model = make()
    model.compile(**data["compile"])
    fit_epoch(model, data, 0)
    model.save(tmp_path / "m.keras")
    restored = load_model(tmp_path / "m.keras")

    assert type(restored) is Model and restored.name == model.name
    assert json_config(restored) == json_config(model)
    for a, b in zip(predictions(model, data["x"]), predictions(restored, data["x"])):
        np.testing.assert_array_equal(a, b)
    assert restored.optimizer.iterations == model.optimizer.iterations
    # the next epoch (dropout masks, optimizer moments, BN statistics, loss weights, metrics) is the same in both
    assert fit_epoch(model, data, 1) == fit_epoch(restored, data, 1)
    for a, b in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_config_layout_is_keras_3s():
    config = json_config(dict_model())
    assert set(config) == {"name", "trainable", "layers", "input_layers", "output_layers"}
    assert config["input_layers"] == {"a": ["a", 0, 0], "b": ["b", 0, 0]}
    assert config["output_layers"] == {"reg": ["reg", 0, 0], "cls": ["cls", 0, 0]}
    entries = {entry["name"]: entry for entry in config["layers"]}
    assert entries["a"]["inbound_nodes"] == [] and "build_config" not in entries["a"]
    concat = next(entry for entry in config["layers"] if entry["class_name"] == "Concatenate")
    assert {k: concat[k] for k in ("module", "registered_name", "build_config")} == {
        "module": "keras.layers", "registered_name": None, "build_config": {"input_shape": [[None, 3], [None, 2]]}}
    tensors = [{"class_name": "__keras_tensor__",
                "config": {"shape": [None, n], "dtype": "float32", "keras_history": [name, 0, 0]}}
               for name, n in (("a", 3), ("b", 2))]
    assert concat["inbound_nodes"] == [{"args": [tensors], "kwargs": {}}]

    inputs = Input((4,), name="single")
    single = json_config(Model(inputs, Dense(2, name="out")(inputs)))
    assert (single["input_layers"], single["output_layers"]) == (["single", 0, 0], ["out", 0, 0])
    listed = json_config(Model([inputs], [Dense(2, name="out2")(inputs)]))
    assert (listed["input_layers"], listed["output_layers"]) == ([["single", 0, 0]], [["out2", 0, 0]])


def test_node_indices_count_the_calls_inside_the_model():
    shared = Dense(4, name="shared_twice")
    shared(Input((4,)))  # a call outside the model: Keras leaves it out and renumbers
    inputs = Input((4,), name="inp")
    once = shared(inputs)
    config = json_config(Model(inputs, Add()([shared(once), once])))
    entry = next(e for e in config["layers"] if e["name"] == "shared_twice")
    assert [node["args"][0]["config"]["keras_history"] for node in entry["inbound_nodes"]] == [
        ["inp", 0, 0], ["shared_twice", 0, 0]]
    add = next(e for e in config["layers"] if e["class_name"] == "Add")
    assert [t["config"]["keras_history"] for t in add["inbound_nodes"][0]["args"][0]] == [
        ["shared_twice", 1, 0], ["shared_twice", 0, 0]]


def test_file_layout(tmp_path):
    model = nested_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as z:
        config = json.loads(z.read("config.json"))
    keys = set(weight_keys(tmp_path / "m.keras"))
    assert {k: config[k] for k in ("module", "class_name", "registered_name")} == {
        "module": "keras.src.models.functional", "class_name": "Functional", "registered_name": "Functional"}
    nested = {entry["name"]: entry for entry in config["config"]["layers"]}
    assert (nested["inner"]["class_name"], nested["head"]["class_name"]) == ("Functional", "Sequential")
    assert nested["inner"]["config"]["output_layers"] == [nested["inner"]["config"]["layers"][-1]["name"], 0, 0]
    # Keras 3's object paths: a nested model's layers under its own path, counted inside it
    assert {"layers/functional/layers/dense/vars/0", "layers/functional/layers/dense_1/vars/1",
            "layers/sequential/layers/dense/vars/0", "layers/dense/vars/0"} <= keys
    assert not any(k.startswith(("layers/add", "layers/input_layer")) for k in keys)  # (no weights: groups only)


@pytest.mark.parametrize("suffix", [".weights.npz", ".weights.h5"])
def test_save_weights_load_weights(tmp_path, suffix):
    if suffix == ".weights.h5":
        pytest.importorskip("h5py")
    model, other = nested_model(), nested_model()
    model.save_weights(tmp_path / ("w" + suffix))
    assert not np.array_equal(model.predict(X4, verbose=0), other.predict(X4, verbose=0))
    other.load_weights(tmp_path / ("w" + suffix))
    np.testing.assert_array_equal(model.predict(X4, verbose=0), other.predict(X4, verbose=0))


def test_sequential_nested_in_sequential_uses_the_nested_paths(tmp_path):
    model = Sequential([Input((4,)), Sequential([Dense(3)]), Dense(2)])
    model.save(tmp_path / "m.keras")
    assert "layers/sequential/layers/dense/vars/0" in weight_keys(tmp_path / "m.keras")
    np.testing.assert_array_equal(load_model(tmp_path / "m.keras").predict(X4, verbose=0), model.predict(X4, verbose=0))


# ---- configs fastnn refuses --------------------------------------------------------------------------------
def saved_config(tmp_path):
    model = residual_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.save(tmp_path / "good.keras")
    with zipfile.ZipFile(tmp_path / "good.keras") as z:
        return json.loads(z.read("config.json"))


def load_edited(tmp_path, config):
    """load_model of good.keras with its config.json replaced by ``config``."""
    path = tmp_path / "edited.keras"
    with zipfile.ZipFile(tmp_path / "good.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, json.dumps(config) if name == "config.json" else zin.read(name))
    return load_model(path)


def entry_named(config, name):
    return next(entry for entry in config["config"]["layers"] if entry["name"] == name)


@pytest.mark.parametrize("class_name", ["NoSuchLayer", "__builtins__", "os", "np", "Variable", "Input", "dense"])
def test_unknown_layer_class(tmp_path, class_name):
    config = saved_config(tmp_path)
    entry_named(config, "shared")["class_name"] = class_name
    with pytest.raises(ValueError, match=f"Unknown layer class in config: '{class_name}'"):
        load_edited(tmp_path, config)


@pytest.mark.parametrize("class_name", ["os", ["Functional"]])
def test_unknown_top_level_class(tmp_path, class_name):
    config = saved_config(tmp_path)
    config["class_name"] = class_name
    with pytest.raises(ValueError, match=f"unsupported model class {class_name!r}".replace("[", r"\[")):
        load_edited(tmp_path, config)


def test_call_keywords_keras_writes_load(tmp_path):
    config = saved_config(tmp_path)
    entry_named(config, "shared")["inbound_nodes"][0]["kwargs"] = {"mask": None}  # Keras's, for nested models
    assert load_edited(tmp_path, config).count_params() == residual_model().count_params()
    entry_named(config, "shared")["inbound_nodes"][0]["kwargs"] = {"mask": "x"}
    with pytest.raises(ValueError, match="a call that fastnn cannot make"):
        load_edited(tmp_path, config)


def edit_history(node, position, value):
    """An edit of config.json: item ``position`` of the keras_history of call ``node`` of layer 'shared'."""
    def edit(config):
        entry_named(config, "shared")["inbound_nodes"][node]["args"][0]["config"]["keras_history"][position] = value
    return edit


def edit_output_node(config):
    config["config"]["output_layers"][1] = 2


def edit_call_argument(config):
    entry_named(config, "shared")["inbound_nodes"][0]["args"] = ["print('hi')"]


@pytest.mark.parametrize("edit, message", [
    (edit_history(0, 0, "ghost"), "names layer 'ghost', which is not in the model"),
    (edit_history(1, slice(0, 2), ["shared", 7]), r"names node 7 of layer 'shared', which has 2 node"),
    (edit_output_node, r"names node 2 of layer '\w+', which has 1 node"),
    (edit_history(0, 2, 3), "names output 3 of layer"),
    (edit_history(0, 1, "0"), "is not a keras_history"),
    (edit_call_argument, "not a __keras_tensor__"),
    (edit_history(0, slice(0, 2), ["shared", 1]), r"'shared'\] wait on each other"),  # its 1st call reads its 2nd
], ids=["missing layer", "node index", "output node index", "tensor index", "bad history", "not a tensor", "cycle"])
def test_bad_graph_references(tmp_path, edit, message):
    config = saved_config(tmp_path)
    edit(config)
    with pytest.raises(ValueError, match=message):
        load_edited(tmp_path, config)
