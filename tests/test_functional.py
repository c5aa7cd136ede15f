"""The Functional API on the bundled digits: the patterns of the keras.io guides "The Functional API" and
"Transfer learning" (multi-input/multi-output models, shared layers, nested models, feature extraction,
freezing), the plan's gradients through merges, fan-out and shared layers, summaries and error messages.
Expected tables and orders marked "Keras 3.15" were printed by keras 3.15 (TensorFlow backend) for the same
model code with COLUMNS=80."""
import numpy as np
import pytest

import fastnn
from fastnn import layers
from fastnn._naming import clear_session
from fastnn.models import Sequential

from _functional_util import assert_plan_gradients


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    clear_session()
    fastnn.utils.set_random_seed(0)
    monkeypatch.setenv("COLUMNS", "80")  # summary width = min(108, terminal - 4), as Keras's


@pytest.fixture(scope="module")
def digits():
    (x, y), (xt, yt) = fastnn.datasets.digits.load_data()
    return x.reshape(len(x), 64) / 16.0, y, xt.reshape(len(xt), 64) / 16.0, yt


def _side_features(x):
    """A small numeric side input: the ink of the top half and of the left half of each 8x8 image."""
    img = x.reshape(-1, 8, 8)
    return np.stack([img[:, :4].mean(axis=(1, 2)), img[:, :, :4].mean(axis=(1, 2))], axis=1).astype(np.float32)


def _mean_pixel(x):
    """A regression target: each image's mean pixel value, (N, 1)."""
    return x.mean(axis=1, keepdims=True).astype(np.float32)


# ---- Sequential vs functional ---------------------------------------------------------------------

def _mlp(kind):
    """The same MLP as a Sequential and as a functional model; layers are created in the same order, so the
    same seed gives the same initial weights."""
    if kind == "sequential":
        return Sequential([fastnn.Input((64,)), layers.Dense(32, activation="relu"),
                           layers.Dense(10, activation="softmax")])
    inputs = fastnn.Input((64,))
    hidden = layers.Dense(32, activation="relu")(inputs)
    return fastnn.Model(inputs, layers.Dense(10, activation="softmax")(hidden))


def test_functional_mlp_trains_bit_identically_to_the_sequential_one(digits):
    x, y, xt, yt = digits
    runs = {}
    for kind in ("sequential", "functional"):
        clear_session()
        fastnn.utils.set_random_seed(0)
        model = _mlp(kind)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, y, epochs=10, batch_size=32, verbose=0)
        runs[kind] = history.history, model.get_weights(), model.evaluate(xt, yt, verbose=0)
    (h_seq, w_seq, e_seq), (h_fn, w_fn, e_fn) = runs["sequential"], runs["functional"]
    # both run one plan over the same chain of steps: same seed, same arithmetic, same bits
    assert h_seq == h_fn
    assert all(np.array_equal(a, b) for a, b in zip(w_seq, w_fn)) and len(w_seq) == len(w_fn) == 4
    assert e_seq == e_fn
    assert e_fn[1] > 0.9, e_fn  # and it learned: 10 epochs of Adam on digits


# ---- multi-input, multi-output ---------------------------------------------------------------------

def _two_in_two_out(structure="dict"):
    """Image pixels + side features -> (class softmax, mean-pixel regression), Keras guide style."""
    pixels = fastnn.Input((64,), name="pixels")
    side = fastnn.Input((2,), name="side")
    hidden = layers.Dense(32, activation="relu", name="hidden")(pixels)
    merged = layers.Concatenate(name="concat")([hidden, side])
    cls = layers.Dense(10, activation="softmax", name="cls")(merged)
    reg = layers.Dense(1, name="reg")(merged)
    if structure == "dict":
        return fastnn.Model({"pixels": pixels, "side": side}, {"cls": cls, "reg": reg})
    return fastnn.Model([pixels, side], [cls, reg])


def _mimo_data(x, y):
    return {"pixels": x, "side": _side_features(x)}, {"cls": y, "reg": _mean_pixel(x)}


def test_dict_inputs_outputs_losses_weights_and_metrics(digits):
    x, y, xt, yt = digits
    model = _two_in_two_out("dict")
    assert model.input_names == ["pixels", "side"] and model.output_names == ["cls", "reg"]
    weights = {"cls": 1.0, "reg": 0.25}
    model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                  loss_weights=weights, metrics={"cls": ["accuracy"], "reg": ["mae"]})
    xd, yd = _mimo_data(x, y)
    history = model.fit(xd, yd, epochs=3, batch_size=32, verbose=0, validation_split=0.2).history
    # Keras 3.15's keys for the same compile arguments
    assert sorted(history) == ["cls_accuracy", "cls_loss", "loss", "reg_loss", "reg_mae", "val_cls_accuracy",
                               "val_cls_loss", "val_loss", "val_reg_loss", "val_reg_mae"]
    for prefix in ("", "val_"):  # per-epoch means are linear: the total is the weighted sum every epoch
        np.testing.assert_allclose(history[prefix + "loss"],
                                   np.add(history[prefix + "cls_loss"], 0.25 * np.array(history[prefix + "reg_loss"])),
                                   rtol=1e-6)
    assert history["cls_loss"][-1] < history["cls_loss"][0] and history["reg_loss"][-1] < history["reg_loss"][0]

    xtd, ytd = _mimo_data(xt, yt)
    result = model.evaluate(xtd, ytd, verbose=0)
    as_dict = model.evaluate(xtd, ytd, verbose=0, return_dict=True)
    order = ["loss", "cls_loss", "reg_loss", "cls_accuracy", "reg_mae"]  # Keras 3's evaluate list order
    assert sorted(as_dict) == sorted(order)
    assert result == pytest.approx([as_dict[k] for k in order], rel=1e-12)
    assert result[0] == pytest.approx(weights["cls"] * result[1] + weights["reg"] * result[2], rel=1e-6)

    pred = model.predict(xtd, verbose=0)
    assert isinstance(pred, dict) and list(pred) == ["cls", "reg"]
    assert pred["cls"].shape == (len(xt), 10) and pred["reg"].shape == (len(xt), 1)
    # the metrics and losses are those of the predictions
    assert as_dict["cls_accuracy"] == pytest.approx(np.mean(pred["cls"].argmax(1) == yt), abs=1e-6)
    assert as_dict["reg_mae"] == pytest.approx(np.abs(pred["reg"] - ytd["reg"]).mean(), rel=1e-4)
    assert as_dict["reg_loss"] == pytest.approx(np.square(pred["reg"] - ytd["reg"]).mean(), rel=1e-4)
    assert as_dict["cls_accuracy"] > 0.7


def test_list_form_trains_exactly_like_the_dict_form(digits):
    x, y, _, _ = digits
    histories = []
    for structure in ("dict", "list"):
        clear_session()
        fastnn.utils.set_random_seed(0)
        model = _two_in_two_out(structure)
        xd, yd = _mimo_data(x, y)
        if structure == "dict":
            model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"},
                          loss_weights={"cls": 1.0, "reg": 0.25}, metrics={"cls": ["accuracy"], "reg": ["mae"]})
            histories.append(model.fit(xd, yd, epochs=2, verbose=0).history)
        else:
            model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"], loss_weights=[1.0, 0.25],
                          metrics=[["accuracy"], ["mae"]])
            histories.append(model.fit([xd["pixels"], xd["side"]], [yd["cls"], yd["reg"]], epochs=2,
                                       verbose=0).history)
            pred = model.predict([xd["pixels"], xd["side"]], verbose=0)
            assert isinstance(pred, list) and [p.shape for p in pred] == [(len(x), 10), (len(x), 1)]
    # the structure is only how data is passed: same names, same numbers
    assert histories[0] == histories[1]


def test_one_loss_for_every_output(digits):
    x, y, xt, yt = digits
    model = _two_in_two_out("list")
    model.compile(optimizer="adam", loss="mse")
    onehot = fastnn.utils.to_categorical(y, 10)
    history = model.fit([x, _side_features(x)], [onehot, _mean_pixel(x)], epochs=2, verbose=0).history
    assert sorted(history) == ["cls_loss", "loss", "reg_loss"]  # Keras 3.15's keys
    xs, ys = [xt, _side_features(xt)], [fastnn.utils.to_categorical(yt, 10), _mean_pixel(xt)]
    loss, cls_loss, reg_loss = model.evaluate(xs, ys, verbose=0)
    cls, reg = model.predict(xs, verbose=0)
    # mse applied to each output, the total their unweighted sum
    assert cls_loss == pytest.approx(np.square(cls - ys[0]).mean(), rel=1e-4)
    assert reg_loss == pytest.approx(np.square(reg - ys[1]).mean(), rel=1e-4)
    assert loss == pytest.approx(cls_loss + reg_loss, rel=1e-6)


# ---- gradients through the plan: merges, fan-out, shared layers, nesting -------------------------------

_RNG = np.random.default_rng(6)  # data for which Maximum/Minimum's inputs are far from ties
_X = _RNG.normal(size=(5, 3)).astype(np.float32)
_Y = _RNG.normal(size=(5, 2)).astype(np.float32)


def _sgd_mse(model, loss_weights=None):
    model.compile(optimizer=fastnn.optimizers.SGD(learning_rate=1.0), loss="mse", loss_weights=loss_weights)
    return model


MERGES = {
    "add": lambda: layers.Add(), "subtract": lambda: layers.Subtract(), "multiply": lambda: layers.Multiply(),
    "average": lambda: layers.Average(), "maximum": lambda: layers.Maximum(), "minimum": lambda: layers.Minimum(),
    "concatenate": lambda: layers.Concatenate(), "dot": lambda: layers.Dot(axes=1),
    "dot_normalize": lambda: layers.Dot(axes=1, normalize=True),
}


@pytest.mark.parametrize("merge", sorted(MERGES))
def test_merge_and_fan_out_gradients_match_finite_differences(merge):
    """``first``'s output is read by two layers (fan-out: its gradient is the sum of both paths) whose outputs
    a merge layer combines (its backward returns one gradient per input)."""
    inputs = fastnn.Input((3,))
    first = layers.Dense(4, activation="tanh", name="first")(inputs)
    a = layers.Dense(4, activation="tanh", name="a")(first)
    b = layers.Dense(4, activation="tanh", name="b")(first)
    merged = MERGES[merge]()([a, b])
    model = _sgd_mse(fastnn.Model(inputs, layers.Dense(2, name="out")(merged)))
    if merge in ("maximum", "minimum"):
        # finite differences are meaningless across a tie: a and b must stay apart under the weight steps
        va, vb = fastnn.Model(inputs, [a, b]).predict(_X, verbose=0)
        # (a weight step of eps moves a and b by a few eps * |input| at most)
        assert np.abs(va - vb).min() > 10 * 1e-3 * max(1.0, np.abs(_X).max())
    assert_plan_gradients(model, _X, _Y, ["first", "a", "b", "out"])


def test_fan_out_into_two_weighted_losses():
    """One tensor read by two output heads: its producer's gradient is the loss-weighted sum of both."""
    inputs = fastnn.Input((3,))
    trunk = layers.Dense(4, activation="tanh", name="trunk")(inputs)
    heads = [layers.Dense(2, name="head_a")(trunk), layers.Dense(1, name="head_b")(trunk)]
    model = _sgd_mse(fastnn.Model(inputs, heads), loss_weights=[1.0, 0.3])
    assert_plan_gradients(model, _X, [_Y, _Y[:, :1]], ["trunk", "head_a", "head_b"])


def test_residual_block_with_a_shared_layer():
    inputs = fastnn.Input((3,))
    h = layers.Dense(3, activation="tanh", name="proj")(inputs)
    shared = layers.Dense(3, activation="tanh", name="shared")
    r = layers.Add(name="residual")([h, shared(h)])
    model = _sgd_mse(fastnn.Model(inputs, layers.Dense(2, name="out")(shared(r))))
    # one layer, one set of weights, called at two nodes
    assert [layer.name for layer in model.layers].count("shared") == 1
    assert len(shared._inbound_nodes) == 2 and len(shared.weights) == 2
    assert len(model.trainable_weights) == 6
    assert model.count_params() == (3 * 3 + 3) * 2 + 3 * 2 + 2
    # its gradient is the sum over both call sites (a single call's would not match the differences)
    assert_plan_gradients(model, _X, _Y, ["shared", "proj", "out"])


@pytest.mark.parametrize("inner_kind", ["functional", "sequential"])
def test_nested_model_gradients(inner_kind):
    """A model used as a layer: gradients reach its weights and pass through it to the layer before it."""
    if inner_kind == "functional":
        i = fastnn.Input((3,))
        inner = fastnn.Model(i, layers.Dense(3, activation="tanh", name="inner_dense")(i), name="inner")
    else:
        inner = Sequential([fastnn.Input((3,)), layers.Dense(3, activation="tanh", name="inner_dense")], name="inner")
    inputs = fastnn.Input((3,))
    h = layers.Dense(3, activation="tanh", name="before")(inputs)
    model = _sgd_mse(fastnn.Model(inputs, layers.Dense(2, name="out")(inner(h))))
    assert [layer.name for layer in model.layers] == [model.layers[0].name, "before", "inner", "out"]
    assert_plan_gradients(model, _X, _Y, ["before", "out"])
    # the nested model's own layer, stepped by the outer model's train_on_batch
    assert_plan_gradients(model, _X, _Y, [inner.get_layer("inner_dense")])


def test_nested_multi_output_model_gradients():
    """A nested model with two outputs: the outer graph reads both (a node with several outputs)."""
    i = fastnn.Input((3,))
    inner = fastnn.Model(i, [layers.Dense(2, activation="tanh", name="p")(i),
                             layers.Dense(3, activation="tanh", name="q")(i)], name="inner")
    inputs = fastnn.Input((3,))
    h = layers.Dense(3, activation="tanh", name="before")(inputs)
    p, q = inner(h)
    model = _sgd_mse(fastnn.Model(inputs, layers.Dense(2, name="out")(layers.Concatenate()([q, p]))))
    assert_plan_gradients(model, _X, _Y, ["before", "out", inner.get_layer("p"), inner.get_layer("q")])


# ---- nesting, freezing, feature extraction, transfer learning ------------------------------------------

def test_nested_functional_and_sequential_models_train(digits):
    x, y, xt, yt = digits
    i = fastnn.Input((64,))
    encoder = fastnn.Model(i, layers.Dense(32, activation="relu")(i), name="encoder")
    head = Sequential([fastnn.Input((32,)), layers.Dense(10, activation="softmax")], name="head")
    inputs = fastnn.Input((64,))
    model = fastnn.Model(inputs, head(encoder(inputs)))
    assert [layer.name for layer in model.layers][1:] == ["encoder", "head"]
    assert model.count_params() == encoder.count_params() + head.count_params() == 64 * 32 + 32 + 33 * 10
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=10, verbose=0)
    assert model.evaluate(xt, yt, verbose=0)[1] > 0.9
    # the nested models share their weights with the outer one: they predict what the outer model does
    np.testing.assert_array_equal(head.predict(encoder.predict(xt, verbose=0), verbose=0),
                                  model.predict(xt, verbose=0))
    # freezing the nested Sequential: the outer fit leaves it alone and still trains the nested functional
    head.trainable = False
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 2
    head_before, encoder_before = head.get_weights(), encoder.get_weights()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(head_before, head.get_weights()))
    assert not any(np.array_equal(a, b) for a, b in zip(encoder_before, encoder.get_weights()))


def _pretrained_base(digits):
    """The "pretrained" model of the transfer-learning guide: a Sequential trained on the digits 0-4."""
    x, y, _, _ = digits
    base = Sequential([fastnn.Input((64,)), layers.Dense(32, activation="relu", name="feat"),
                       layers.BatchNormalization(name="bn"), layers.Dense(5, activation="softmax", name="old_head")],
                      name="base")
    base.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    low = y < 5
    base.fit(x[low], y[low], epochs=5, verbose=0)
    return base


TRANSFER_SUMMARY = """\
Model: "transfer"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ pixels (InputLayer)             │ (None, 64)             │             0 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ features (Functional)           │ (None, 32)             │         2,208 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ new_head (Dense)                │ (None, 5)              │           165 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 2,373 (9.27 KB)
 Trainable params: 165 (660.00 B)
 Non-trainable params: 2,208 (8.62 KB)
"""  # Keras 3.15, for the same model code (base's old head: 10 units there, not part of `features`)


def test_feature_extractor_frozen_base_and_new_head(digits, capsys):
    x, y, xt, yt = digits
    base = _pretrained_base(digits)
    # a feature extractor from another model's tensors (Sequential's layers were called on its Input)
    features = fastnn.Model(base.inputs, base.get_layer("bn").output, name="features")
    assert [layer.name for layer in features.layers] == [features.layers[0].name, "feat", "bn"]
    np.testing.assert_allclose(features.predict(x[:8], verbose=0),
                               fastnn.Model(base.inputs, base.get_layer("old_head").input).predict(x[:8], verbose=0))
    features.trainable = False
    inputs = fastnn.Input((64,), name="pixels")
    outputs = layers.Dense(5, activation="softmax", name="new_head")(features(inputs))
    model = fastnn.Model(inputs, outputs, name="transfer")
    model.summary()
    assert capsys.readouterr().out == TRANSFER_SUMMARY
    assert len(model.trainable_weights) == 2 and len(model.non_trainable_weights) == 6

    frozen = [w.copy() for w in base.get_weights()]
    high = y >= 5
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[high], y[high] - 5, epochs=30, verbose=0)
    # frozen through nesting: kernels AND BatchNormalization's moving statistics (a frozen BN runs in
    # inference mode, Keras 3) are untouched; the head learned the new classes
    assert all(np.array_equal(a, b) for a, b in zip(frozen, base.get_weights()))
    test_high = yt >= 5
    assert model.evaluate(xt[test_high], yt[test_high] - 5, verbose=0)[1] > 0.8

    # fine-tuning: unfreeze, recompile with a low learning rate, the base's weights move now
    features.trainable = True
    assert len(model.trainable_weights) == 6
    model.compile(optimizer=fastnn.optimizers.Adam(1e-4), loss="sparse_categorical_crossentropy")
    model.fit(x[high], y[high] - 5, epochs=1, verbose=0)
    assert not np.array_equal(frozen[0], base.get_layer("feat").get_weights()[0])


# ---- structure: layers, get_layer, layer.output, summary -------------------------------------------

SIAMESE_SUMMARY = """\
Model: "siamese"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ image_a             │ (None, 64)        │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ image_b             │ (None, 64)        │          0 │ -                 │
│ (InputLayer)        │                   │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ encoder (Dense)     │ (None, 16)        │      1,040 │ image_a[0][0],    │
│                     │                   │            │ image_b[0][0]     │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ diff (Subtract)     │ (None, 16)        │          0 │ encoder[0][0],    │
│                     │                   │            │ encoder[1][0]     │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ concat              │ (None, 32)        │          0 │ encoder[0][0],    │
│ (Concatenate)       │                   │            │ diff[0][0]        │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ cls (Dense)         │ (None, 10)        │        330 │ concat[0][0]      │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ reg (Dense)         │ (None, 1)         │         33 │ concat[0][0]      │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 1,403 (5.48 KB)
 Trainable params: 1,403 (5.48 KB)
 Non-trainable params: 0 (0.00 B)
"""  # Keras 3.15


def _siamese():
    a, b = fastnn.Input((64,), name="image_a"), fastnn.Input((64,), name="image_b")
    encoder = layers.Dense(16, activation="relu", name="encoder")
    ea, eb = encoder(a), encoder(b)
    diff = layers.Subtract(name="diff")([ea, eb])
    cat = layers.Concatenate(name="concat")([ea, diff])
    heads = [layers.Dense(10, activation="softmax", name="cls")(cat), layers.Dense(1, name="reg")(cat)]
    return fastnn.Model([a, b], heads, name="siamese"), ea, eb


def test_layers_get_layer_and_layer_outputs():
    model, ea, eb = _siamese()
    names = ["image_a", "image_b", "encoder", "diff", "concat", "cls", "reg"]  # Keras 3.15's order
    assert [layer.name for layer in model.layers] == names
    assert [type(layer).__name__ for layer in model.layers[:2]] == ["InputLayer", "InputLayer"]
    assert model.get_layer("diff") is model.layers[3] and model.get_layer(index=-1) is model.layers[-1]
    encoder = model.get_layer("encoder")
    # a shared layer's output/input are those of its first call
    assert encoder.output is ea and encoder.output is not eb and encoder.input is model.inputs[0]
    assert model.get_layer("concat").input == [ea, model.get_layer("diff").output]
    assert model.outputs == [model.get_layer("cls").output, model.get_layer("reg").output]
    with pytest.raises(ValueError, match="No such layer: nope"):
        model.get_layer("nope")
    with pytest.raises(ValueError, match="index 7 but model only has 7 layers"):
        model.get_layer(index=7)


def test_summary_connected_to_matches_keras(capsys):
    model, _, _ = _siamese()
    model.summary()
    assert capsys.readouterr().out == SIAMESE_SUMMARY


# Keras 3 orders `layers` by depth in the graph (deepest first; ties in the order a walk from the outputs
# meets them), so an input that joins late comes after the layers of the longer branch.
RESIDUAL_LAYERS = ["pixels", "hidden", "shared", "residual", "side", "concat", "cls", "reg"]  # Keras 3.15


def test_layers_order_follows_graph_depth_as_keras():
    pixels, side = fastnn.Input((64,), name="pixels"), fastnn.Input((2,), name="side")
    h = layers.Dense(16, activation="relu", name="hidden")(pixels)
    shared = layers.Dense(16, name="shared")
    r = layers.Add(name="residual")([h, shared(h)])
    c = layers.Concatenate(name="concat")([shared(r), side])
    model = fastnn.Model([pixels, side], [layers.Dense(10, name="cls")(c), layers.Dense(1, name="reg")(c)])
    assert [layer.name for layer in model.layers] == RESIDUAL_LAYERS


NESTED_MULTI_OUTPUT_SUMMARY = """\
Model: "outer"
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)        ┃ Output Shape      ┃    Param # ┃ Connected to      ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━┩
│ pixels (InputLayer) │ (None, 8)         │          0 │ -                 │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ inner (Functional)  │ [(None, 1),       │         27 │ pixels[0][0]      │
│                     │ (None, 2)]        │            │                   │
├─────────────────────┼───────────────────┼────────────┼───────────────────┤
│ cat (Concatenate)   │ (None, 3)         │          0 │ inner[0][0],      │
│                     │                   │            │ inner[0][1]       │
└─────────────────────┴───────────────────┴────────────┴───────────────────┘
 Total params: 27 (108.00 B)
 Trainable params: 27 (108.00 B)
 Non-trainable params: 0 (0.00 B)
"""  # Keras 3.15


def test_summary_of_a_nested_multi_output_model_matches_keras(capsys):
    a = fastnn.Input((8,), name="pix")
    inner = fastnn.Model(a, [layers.Dense(1, name="d1")(a), layers.Dense(2, name="d2")(a)], name="inner")
    b = fastnn.Input((8,), name="pixels")
    fastnn.Model(b, layers.Concatenate(name="cat")(inner(b)), name="outer").summary()
    assert capsys.readouterr().out == NESTED_MULTI_OUTPUT_SUMMARY


# ---- errors -----------------------------------------------------------------------------------------

def test_shape_mismatch_at_graph_build_time_names_layer_and_shapes():
    a, b = fastnn.Input((3,), name="a"), fastnn.Input((5,), name="b")
    with pytest.raises(ValueError, match=r"Add 'plus'.*incompatible shapes.*\(3,\) and \(4,\)"):
        layers.Add(name="plus")([layers.Dense(3)(a), layers.Dense(4)(b)])


def test_disconnected_graph():
    p, q = fastnn.Input((3,), name="p"), fastnn.Input((3,), name="q")
    out = layers.Add(name="plus")([p, q])
    with pytest.raises(ValueError, match=r"Graph disconnected: cannot find parent for .*name=q.* at layer \"q\""):
        fastnn.Model(p, out)


def test_bad_data_names_the_inputs(digits):
    x, y, _, _ = digits
    model = _two_in_two_out("dict")
    model.compile(optimizer="adam", loss={"cls": "sparse_categorical_crossentropy", "reg": "mse"})
    xd, yd = _mimo_data(x[:16], y[:16])
    with pytest.raises(ValueError, match=r"fit: x: missing data for \['side'\].*\['pixels', 'side'\]"):
        model.fit({"pixels": xd["pixels"]}, yd, verbose=0)
    with pytest.raises(ValueError, match=r"fit: y: missing data for \['reg'\]"):
        model.fit(xd, {"cls": yd["cls"]}, verbose=0)
    with pytest.raises(ValueError, match=r"2 of them \(\['pixels', 'side'\]\) but got a list of 1"):
        model.predict([xd["pixels"]], verbose=0)
    with pytest.raises(ValueError, match=r"input 1 \('side'\).*expected shape=\(None, 2\), found shape=\(None, 3\)"):
        model.predict({"pixels": xd["pixels"], "side": np.zeros((16, 3))}, verbose=0)


def test_keras_tensor_given_to_predict_is_a_value_error_naming_the_input():
    inputs = fastnn.Input((4,), name="pixels")
    model = fastnn.Model(inputs, layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"pixels.*\(None, 4\)"):
        model.predict(inputs, verbose=0)


def test_symbolic_operators_and_ops_record_layers():
    """Keras 3 records arithmetic and keras.ops calls on KerasTensors as graph operations."""
    from fastnn import ops
    a, b = fastnn.Input((3,), name="a"), fastnn.Input((2,), name="b")
    dense = layers.Dense(3)
    h = dense(a)
    y = 2.0 * (a + h) - 1.0
    z = ops.concatenate([ops.relu(y), b], axis=-1)
    assert ops.shape(z) == (None, 5)
    model = fastnn.Model([a, b], ops.sum(z, axis=-1, keepdims=True) / 4.0)
    xa = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    xb = np.random.default_rng(1).standard_normal((4, 2)).astype(np.float32)
    w, bias = dense.get_weights()
    want = np.concatenate([np.maximum(2 * (xa + xa @ w + bias) - 1, 0), xb], axis=-1).sum(-1, keepdims=True) / 4
    np.testing.assert_allclose(model.predict([xa, xb], verbose=0), want, rtol=1e-5, atol=1e-6)
    model.compile("sgd", "mse")
    before = dense.get_weights()[0].copy()
    model.fit([xa, xb], np.zeros((4, 1)), verbose=0)
    assert not np.array_equal(before, dense.get_weights()[0])  # gradients flow through the recorded ops
