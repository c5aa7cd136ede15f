"""Custom classes in `.keras` files (Keras 3's registry): register_keras_serializable and its lookups, custom layers
in functional and Sequential models, registered subclassed models (resumed training bit-identical),
custom_objects, and the errors for classes that cannot be saved or found."""
import json
import os
import zipfile

import numpy as np
import pytest

from _resume import assert_resumes_identically
import fastnn
from _saving_util import weight_keys
from fastnn import saving
from fastnn.layers import Dense, Input, Layer
from fastnn.models import Model, Sequential, load_model


@saving.register_keras_serializable(package="Test")
class Scale(Layer):
    """A custom layer with an add_weight weight and a constructor argument."""

    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1],), initializer="random_normal", name="w")

    def call(self, x):
        return x * self.w * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@saving.register_keras_serializable(package="Test")
class Block(Layer):
    """A custom layer whose weights are a sublayer's and its own."""

    def __init__(self, units=3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = Dense(units, activation="relu")

    def build(self, input_shape):
        self.offset = self.add_weight(shape=(self.units,), initializer="random_normal")

    def call(self, x):
        return self.dense(x) + self.offset

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@saving.register_keras_serializable(package="Test")
class TwoDense(Model):
    def __init__(self, units=8, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense1 = Dense(units, activation="relu")
        self.dense2 = Dense(3, activation="softmax")

    def call(self, x):
        return self.dense2(self.dense1(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@saving.register_keras_serializable(package="Test")
def my_function(x):
    return x


class Unregistered(Scale):
    pass


class NoConfig(Layer):
    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


class NoArguments(Layer):
    def call(self, x):
        return x * 2


def data(n=64, d=4):
    rng = np.random.default_rng(0)
    return rng.random((n, d), dtype=np.float32), rng.integers(0, 3, n)


def config_of(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))



def assert_same_predictions(a, b, x):
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))


# ---- the registry ------------------------------------------------------------------------------
def test_registered_names_and_lookups():
    assert saving.get_registered_name(Scale) == "Test>Scale"
    assert saving.get_registered_object("Test>Scale") is Scale
    assert saving.get_registered_object("Scale") is None  # registered objects are found by "package>name" only
    assert saving.get_registered_name(Unregistered) == "Unregistered"  # Keras: the class name
    assert saving.get_registered_object("Unregistered", custom_objects={"Unregistered": Unregistered}) is Unregistered
    assert saving.get_custom_objects()["Test>Block"] is Block

    @saving.register_keras_serializable()
    def my_activation(x):
        return x

    assert saving.get_registered_name(my_activation) == "Custom>my_activation"  # functions too; default package

    @saving.register_keras_serializable(package="Test", name="Renamed")
    class Named(Layer):
        pass

    assert saving.get_registered_name(Named) == "Test>Renamed" and saving.get_registered_object("Test>Renamed") is Named


def test_registering_again_replaces_as_keras_3_does():
    """Keras 3.15 overwrites the key (a re-run notebook cell redefines the class); it does not raise."""
    first = saving.register_keras_serializable(package="Again")(type("Layer1", (Layer,), {}))
    second = saving.register_keras_serializable(package="Again", name="Layer1")(type("Layer1", (Layer,), {}))
    assert saving.get_registered_object("Again>Layer1") is second is not first


def test_a_class_without_get_config_cannot_be_registered():
    with pytest.raises(ValueError, match=r"Cannot register a class that does not have a get_config\(\) method"):
        saving.register_keras_serializable()(type("Plain", (), {}))


def test_custom_object_scope_comes_first_and_nests():
    with saving.custom_object_scope({"Test>Scale": Block}):
        assert saving.get_registered_object("Test>Scale") is Block
        with saving.CustomObjectScope({"Test>Scale": Unregistered}):
            assert saving.get_registered_object("Test>Scale") is Unregistered
        assert saving.get_registered_object("Test>Scale") is Block
    assert saving.get_registered_object("Test>Scale") is Scale


# ---- custom layers in functional and Sequential models -----------------------------------------------
def functional_with_custom_layers():
    inputs = Input((4,))
    hidden = Block(5)(Scale(3.0)(inputs))
    return Model(inputs, Dense(3, activation="softmax")(hidden))


def sequential_with_custom_layers():
    return Sequential([Input((4,)), Scale(3.0), Block(5), Dense(3, activation="softmax")])


@pytest.mark.parametrize("make", [functional_with_custom_layers, sequential_with_custom_layers])
def test_custom_layers_round_trip(tmp_path, make):
    x, y = data()
    fastnn.utils.set_random_seed(0)
    model = make()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)

    entries = {e["class_name"]: e for e in config_of(path)["config"]["layers"]}
    assert entries["Scale"]["registered_name"] == "Test>Scale" and entries["Scale"]["module"] == Scale.__module__
    assert entries["Scale"]["config"]["factor"] == 3.0
    assert entries["Scale"]["build_config"] == {"input_shape": [None, 4]}
    assert entries["Dense"]["registered_name"] is None and entries["Dense"]["module"] == "keras.layers"
    # Keras's paths: a custom layer's own weights, then its sublayers' under their attribute names
    assert {"layers/scale/vars/0", "layers/block/vars/0", "layers/block/dense/vars/0",
            "layers/block/dense/vars/1"} <= set(weight_keys(path))

    restored = load_model(path)
    scale = next(layer for layer in restored.layers if isinstance(layer, Scale))
    assert scale.factor == 3.0
    assert_same_predictions(model, restored, x)
    assert restored.optimizer.iterations == model.optimizer.iterations


# ---- subclassed models ---------------------------------------------------------------------------
def test_subclassed_model_round_trip_resumes_training_exactly(tmp_path):
    x, y = data()
    fastnn.utils.set_random_seed(0)
    model = TwoDense(8)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, shuffle=False)
    path = tmp_path / "m.keras"
    model.save(path)

    config = config_of(path)
    assert config["class_name"] == "TwoDense" and config["registered_name"] == "Test>TwoDense"
    assert config["module"] == TwoDense.__module__
    assert config["config"] == model.get_config() and config["config"]["units"] == 8
    assert config["build_config"] == {"input_shape": [None, 4]}
    assert config["compile_config"]["optimizer"]["class_name"] == "Adam"
    # Keras 3 saves a subclassed model's sublayers under their attribute names
    assert [k for k in weight_keys(path) if not k.startswith("optimizer/")] == [
        "dense1/vars/0", "dense1/vars/1", "dense2/vars/0", "dense2/vars/1"]

    restored = load_model(path)
    assert type(restored) is TwoDense and restored.units == 8
    assert_same_predictions(model, restored, x)
    assert restored.optimizer.iterations == model.optimizer.iterations

    assert_resumes_identically(model, restored, x, y, batch_size=16, epochs=2)


def test_subclassed_model_weights_files(tmp_path):
    x, _ = data()
    model, other = TwoDense(), TwoDense()
    model(x), other(x)
    model.save_weights(tmp_path / "w.weights.npz")
    other.load_weights(tmp_path / "w.weights.npz")
    assert_same_predictions(model, other, x)


def test_subclassed_model_whose_config_misses_an_argument(tmp_path):
    class Forgetful(TwoDense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)

        def get_config(self):
            return Model.get_config(self)

    model = Forgetful(4)
    model(data()[0])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="Unable to revive model from config"):
        load_model(tmp_path / "m.keras", custom_objects={"Forgetful": Forgetful})


# ---- custom_objects and unknown classes ------------------------------------------------------------
def saved_unregistered(tmp_path):
    inputs = Input((4,))
    model = Model(inputs, Unregistered(5.0)(inputs))
    model.save(tmp_path / "m.keras")
    return model, tmp_path / "m.keras"


def test_custom_objects_instead_of_registration(tmp_path):
    model, path = saved_unregistered(tmp_path)
    assert config_of(path)["config"]["layers"][1]["registered_name"] == "Unregistered"
    x, _ = data()
    assert_same_predictions(model, load_model(path, custom_objects={"Unregistered": Unregistered}), x)
    with saving.custom_object_scope({"Unregistered": Unregistered}):
        assert_same_predictions(model, load_model(path), x)


def test_an_unknown_custom_class_names_the_class_and_the_fixes(tmp_path):
    _, path = saved_unregistered(tmp_path)
    with pytest.raises(ValueError, match=r"Unknown layer class in config: 'Unregistered'.*"
                                         r"register_keras_serializable.*custom_objects"):
        load_model(path)


def test_an_unknown_subclassed_model(tmp_path):
    class Unlisted(TwoDense):
        pass

    model = Unlisted()
    model(data()[0])
    model.save(tmp_path / "m.keras")
    assert config_of(tmp_path / "m.keras")["registered_name"] == "Unlisted"
    with pytest.raises(ValueError, match=r"unsupported model class 'Unlisted'.*register_keras_serializable"):
        load_model(tmp_path / "m.keras")
    assert type(load_model(tmp_path / "m.keras", custom_objects={"Unlisted": Unlisted})) is Unlisted


def test_a_layer_is_not_a_model(tmp_path):
    _, path = saved_unregistered(tmp_path)
    config = config_of(path)
    config.update(class_name="Scale", registered_name="Test>Scale")
    edited = rewrite(path, tmp_path / "edited.keras", config)
    with pytest.raises(ValueError, match="unsupported model class 'Scale': a layer, not a model"):
        load_model(edited)


def rewrite(src, dst, config):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, json.dumps(config) if name == "config.json" else zin.read(name))
    return dst


@pytest.mark.parametrize("class_name, registered_name", [
    ("__builtins__", None), ("system", "os.system"), ("os.system", "os.system"), ("eval", "builtins>eval"),
    ("Scale", "__builtins__"), ("Unregistered", "Test>my_function")])
def test_hostile_names_are_refused(tmp_path, class_name, registered_name):
    _, path = saved_unregistered(tmp_path)
    config = config_of(path)
    config["config"]["layers"][1].update(class_name=class_name, registered_name=registered_name)
    edited = rewrite(path, tmp_path / "edited.keras", config)
    with pytest.raises(ValueError, match="Unknown layer class in config"):
        load_model(edited)


def test_custom_objects_must_be_layer_classes(tmp_path):
    import os
    _, path = saved_unregistered(tmp_path)
    with pytest.raises(ValueError, match="Unknown layer class in config: 'Unregistered'"):
        load_model(path, custom_objects={"Unregistered": os.system})


# ---- what cannot be saved ----------------------------------------------------------------------------
def test_a_custom_layer_with_arguments_needs_get_config(tmp_path):
    inputs = Input((4,))
    model = Model(inputs, NoConfig(3.0)(inputs))
    with pytest.raises(NotImplementedError, match=r"Object NoConfig was created by passing argument values "
                                                  r"\(factor\).*must override `get_config\(\)`"):
        model.save(tmp_path / "m.keras")
    assert not list(tmp_path.iterdir())

    inputs = Input((4,))
    model = Model(inputs, NoArguments()(inputs))  # nothing to lose: saves, and loads with custom_objects
    model.save(tmp_path / "m.keras")
    assert load_model(tmp_path / "m.keras", custom_objects={"NoArguments": NoArguments}).count_params() == 0


def test_a_subclassed_model_with_arguments_needs_get_config():
    class NoConfigModel(Model):
        def __init__(self, units):
            super().__init__()
            self.dense = Dense(units)

        def call(self, x):
            return self.dense(x)

    with pytest.raises(NotImplementedError, match="Object NoConfigModel .* must override `get_config\\(\\)`"):
        NoConfigModel(3).get_config()


@saving.register_keras_serializable(package="Test")
class Vocabulary(fastnn.layers.Layer):
    """A layer with Keras's saving hooks (as TextVectorization): its own arrays and an asset file."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.tokens, self.idf, self.idf_when_assets_loaded = [], None, None

    def call(self, x):
        return x

    def save_own_variables(self, store):
        store["idf_weights"] = self.idf

    def load_own_variables(self, store):
        self.idf = store["idf_weights"]

    def save_assets(self, folder):
        with open(os.path.join(folder, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(self.tokens))

    def load_assets(self, folder):
        self.idf_when_assets_loaded = self.idf  # Keras's order: own variables, then assets
        with open(os.path.join(folder, "vocabulary.txt"), encoding="utf-8") as f:
            self.tokens = f.read().split("\n")


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5", ".weights.npz"])
def test_keras_saving_hooks(tmp_path, suffix):
    model = Sequential([Input((3,)), Vocabulary(name="vocab"), Dense(2)])
    vocab = model.layers[0]
    vocab.tokens, vocab.idf = ["[UNK]", "the", "ünïcode"], np.array([0.5, 1.5, 2.5], np.float32)
    path = tmp_path / ("m" + suffix)
    if suffix == ".keras":
        model.save(path)
        with zipfile.ZipFile(path) as z:
            assert z.read("assets/layers/vocabulary/vocabulary.txt").decode() == "[UNK]\nthe\nünïcode"
        assert "layers/vocabulary/vars/idf_weights" in weight_keys(path)
        restored = load_model(path).layers[0]
        assert restored.tokens == vocab.tokens
        np.testing.assert_array_equal(restored.idf_when_assets_loaded, vocab.idf)
    else:
        model.save_weights(path)
        other = Sequential([Input((3,)), Vocabulary(name="vocab2"), Dense(2)])
        other.load_weights(path)
        restored = other.layers[0]
    np.testing.assert_array_equal(restored.idf, vocab.idf)
