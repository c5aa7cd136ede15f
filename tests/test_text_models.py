"""Strings inside models: Input(dtype="string") -> TextVectorization -> ... (keras.io's end-to-end text model):
predict / evaluate / fit / direct calls on numpy str or object arrays and Python lists of strings, no float cast
of text, and TypeErrors naming the input or layer when text meets a numeric input or layer."""
import numpy as np
import pytest

import fastnn
from fastnn import layers

TEXTS = np.array(["a great movie", "a terrible movie", "great acting and a great plot", "terrible plot",
                  "what a great film", "boring and terrible", "great great great", "awful terrible bad"] * 4)
LABELS = np.array([1, 0, 1, 0, 1, 0, 1, 0] * 4, np.float32)


def _vectorizer():
    vec = layers.TextVectorization(max_tokens=30, output_mode="int", output_sequence_length=5)
    vec.adapt(TEXTS)
    return vec


def _id_model():
    fastnn.utils.set_random_seed(1)
    ids = fastnn.Input(shape=(None,), dtype="int64")
    x = layers.GlobalAveragePooling1D()(layers.Embedding(30, 4)(ids))
    return fastnn.Model(ids, layers.Dense(1, activation="sigmoid")(x))


def test_end_to_end_string_model_matches_the_id_model():
    vec, model = _vectorizer(), _id_model()
    text = fastnn.Input(shape=(1,), dtype="string")
    assert text.dtype == "string"
    e2e = fastnn.Model(text, model(vec(text)))
    queries = ["a great movie", "terrible plot", "unknown words here"]
    want = model.predict(np.asarray(vec(np.array(queries))), verbose=0)
    for given in (np.array([[q] for q in queries]), np.array(queries), np.array(queries, dtype=object),
                  queries, [[q] for q in queries]):
        got = e2e.predict(given, verbose=0)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(e2e(np.array([[queries[0]]]))), want[:1], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(e2e.predict_on_batch(np.array([[q] for q in queries])), want, rtol=1e-6, atol=1e-7)


def test_fit_and_evaluate_on_strings():
    vec = _vectorizer()
    fastnn.utils.set_random_seed(0)
    model = fastnn.Sequential([vec, layers.Embedding(30, 8), layers.GlobalAveragePooling1D(),
                               layers.Dense(1, activation="sigmoid")])  # no Input: the first layer takes text
    model.compile(loss="binary_crossentropy", optimizer=fastnn.optimizers.Adam(0.05), metrics=["accuracy"])
    hist = model.fit(TEXTS.astype(object), LABELS, epochs=25, batch_size=8, validation_split=0.25, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0] and "val_loss" in hist.history
    loss, acc = model.evaluate(list(TEXTS), LABELS, verbose=0)
    assert acc > 0.9
    assert model.train_on_batch(TEXTS[:4], LABELS[:4]) is not None


def test_text_meeting_numbers_raises_naming_the_input_or_layer():
    vec = _vectorizer()
    numeric = fastnn.Sequential([fastnn.Input((1,)), layers.Dense(1)])
    with pytest.raises(TypeError, match="strings.*numeric"):
        numeric.predict(np.array([["a great movie"]]), verbose=0)
    text = fastnn.Input(shape=(1,), dtype="string")
    with pytest.raises(TypeError, match="string input"):
        fastnn.Model(text, vec(text)).predict(np.zeros((2, 1)), verbose=0)
    text = fastnn.Input(shape=(1,), dtype="string")
    dense = layers.Dense(1, name="reads_text")
    with pytest.raises(TypeError, match="'reads_text'.*TextVectorization"):
        fastnn.Model(text, dense(text)).predict(np.array([["a great movie"]]), verbose=0)
    with pytest.raises(TypeError, match="received strings"):
        layers.Dense(2)(np.array([["abc"]]))


def test_string_input_config_round_trip():
    layer = layers.InputLayer(shape=(1,), dtype="string")
    assert layer.get_config()["dtype"] == "string"
    assert layers.InputLayer.from_config(layer.get_config()).dtype == "string"
    with pytest.raises(ValueError, match="dtype"):
        fastnn.Input((1,), dtype="complex64")
