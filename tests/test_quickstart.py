"""The TensorFlow 2 beginner quickstart (tensorflow.org/tutorials/quickstart/beginner), line for line with
``import fastnn as tf``, on the bundled 8x8 digits instead of the MNIST download. Its last step used to
crash: predict cached a plan into ``Sequential._infer``, shadowing the method a nested model needed."""
import numpy as np
import pytest

import fastnn as tf


def test_tensorflow_beginner_quickstart_runs_to_its_end():
    tf.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = tf.keras.datasets.digits.load_data()
    x_train, x_test = x_train / 16.0, x_test / 16.0  # the tutorial: / 255.0 (MNIST's pixel range)

    model = tf.keras.models.Sequential([
        tf.keras.layers.Flatten(input_shape=(8, 8)),
        tf.keras.layers.Dense(128, activation="relu"),
        tf.keras.layers.Dropout(0.2),
        tf.keras.layers.Dense(10),
    ])
    predictions = model(x_train[:1]).numpy()
    assert predictions.shape == (1, 10)
    probs = tf.nn.softmax(predictions).numpy()
    np.testing.assert_allclose(probs.sum(), 1.0, rtol=1e-6)

    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    first = loss_fn(y_train[:1], predictions).numpy()
    np.testing.assert_allclose(first, -np.log(probs[0, y_train[0]]), rtol=1e-5)  # ~2.3 untrained

    model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=5, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=2)
    assert accuracy > 0.9 and loss < 0.4

    probability_model = tf.keras.Sequential([model, tf.keras.layers.Softmax()])
    p = probability_model(x_test[:5])
    np.testing.assert_allclose(p.numpy().sum(axis=1), 1.0, rtol=1e-5)
    # the step that crashed (TypeError: '_Plan' object is not callable), and predict again after it
    p2 = probability_model.predict(x_test, verbose=0)
    np.testing.assert_allclose(p2[:5], p.numpy(), rtol=1e-5, atol=1e-7)
    assert (p2.argmax(axis=1) == y_test).mean() == pytest.approx(accuracy, rel=1e-6)
    np.testing.assert_allclose(model.predict(x_test[:5], verbose=0), model(x_test[:5]).numpy(), rtol=1e-5)
