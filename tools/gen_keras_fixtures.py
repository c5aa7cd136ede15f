"""Write the Keras 3 model files that tests/test_keras_files.py loads, with the predictions Keras made on them.

Run where Keras 3 is installed (not a fastnn dependency), from the repository root:
    /work/kvenv/bin/python tools/gen_keras_fixtures.py [tests/data/keras]

Files (each a small model, a few tens of KB):
  seq_cnn.keras          Sequential: Conv2D, BatchNormalization, MaxPooling2D, Dropout, Flatten, Dense; Adam
  seq_cnn.weights.h5     the same model's weights after one more epoch (save_weights)
  seq_cnn_legacy.h5      the same model in the legacy tf.keras HDF5 layout (model.save("x.h5"))
  functional_merge.keras two inputs, Concatenate, Add, Multiply; SGD with momentum
  functional_merge_legacy.h5  the same, legacy HDF5 layout
  recurrent.keras        Embedding, LSTM(return_sequences), GRU, Dense; Adam
  recurrent_legacy.h5    the same, legacy HDF5 layout
  objects.json           Keras's serialized optimizers, schedules, losses, metrics, initializers and regularizers
                         ({kind: [entry, ...]}), some with hyper-parameters off their defaults
  expected.npz           inputs, Keras's predictions for each file, and for the .keras files the weights after
                         one more train_on_batch (x_step, y_step), so tests check that the optimizer state resumes
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras import layers  # noqa: E402


def seq_cnn():
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        layers.Conv2D(4, 3, activation="relu", padding="same"),
        layers.BatchNormalization(),
        layers.MaxPooling2D(),
        layers.Dropout(0.25),
        layers.Flatten(),
        layers.Dense(3, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def functional_merge():
    a, b = keras.Input((6,), name="a"), keras.Input((4,), name="b")
    ha = layers.Dense(5, activation="relu", name="ha")(a)
    hb = layers.Dense(5, activation="tanh", name="hb")(b)
    joined = layers.Concatenate()([ha, hb, layers.Add()([ha, hb]), layers.Multiply()([ha, hb])])
    out = layers.Dense(2, name="out")(joined)
    model = keras.Model([a, b], out)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse", metrics=["mae"])
    return model


def recurrent():
    model = keras.Sequential([
        keras.Input((7,), dtype="int32"),
        layers.Embedding(20, 4),
        layers.LSTM(5, return_sequences=True),
        layers.GRU(3),
        layers.Dense(2, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def serialized_objects():
    """{kind: [Keras 3's serialized object]} of the classes fastnn implements."""
    ser = keras.saving.serialize_keras_object
    sched = keras.optimizers.schedules
    return {
        "optimizer": [ser(o) for o in (
            keras.optimizers.Adam(0.01, beta_1=0.8, clipnorm=1.0), keras.optimizers.AdamW(weight_decay=0.01),
            keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True), keras.optimizers.RMSprop(rho=0.8, centered=True),
            keras.optimizers.Adagrad(initial_accumulator_value=0.2), keras.optimizers.Adadelta(1.0, rho=0.9),
            keras.optimizers.Adam(sched.ExponentialDecay(0.1, 100, 0.9)))],
        "schedule": [ser(o) for o in (
            sched.ExponentialDecay(0.1, 100, 0.9, staircase=True), sched.InverseTimeDecay(0.1, 100, 0.5),
            sched.PiecewiseConstantDecay([10, 20], [0.1, 0.01, 0.001]), sched.CosineDecay(0.1, 100, alpha=0.1))],
        "loss": [ser(o) for o in (
            keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
            keras.losses.SparseCategoricalCrossentropy(), keras.losses.BinaryCrossentropy(label_smoothing=0.2),
            keras.losses.MeanSquaredError(), keras.losses.MeanAbsoluteError(), keras.losses.Huber(delta=2.0),
            keras.losses.Hinge(), keras.losses.KLDivergence(), keras.losses.LogCosh(), keras.losses.Poisson(),
            keras.losses.CosineSimilarity(axis=-1), keras.losses.MeanSquaredLogarithmicError())],
        "metric": [ser(o) for o in (
            keras.metrics.SparseCategoricalAccuracy(), keras.metrics.CategoricalAccuracy(),
            keras.metrics.BinaryAccuracy(threshold=0.3), keras.metrics.Precision(), keras.metrics.Recall(),
            keras.metrics.MeanSquaredError(), keras.metrics.MeanAbsoluteError(), keras.metrics.RootMeanSquaredError(),
            keras.metrics.TopKCategoricalAccuracy(k=3), keras.metrics.Mean())],
        "initializer": [ser(o) for o in (
            keras.initializers.GlorotUniform(seed=1), keras.initializers.HeNormal(), keras.initializers.Orthogonal(),
            keras.initializers.Constant(0.5), keras.initializers.RandomNormal(stddev=0.1),
            keras.initializers.TruncatedNormal(), keras.initializers.VarianceScaling(2.0, "fan_out", "uniform"),
            keras.initializers.LecunNormal(), keras.initializers.Zeros(), keras.initializers.Ones())],
        "regularizer": [ser(o) for o in (keras.regularizers.L2(0.01), keras.regularizers.L1(0.02),
                                         keras.regularizers.L1L2(0.01, 0.02))],
    }


def main(out):
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    expected = {}
    data = {
        "seq_cnn": (rng.random((32, 8, 8, 1), dtype=np.float32), rng.integers(0, 3, 32)),
        "functional_merge": ([rng.standard_normal((32, 6), dtype=np.float32),
                              rng.standard_normal((32, 4), dtype=np.float32)],
                             rng.standard_normal((32, 2), dtype=np.float32)),
        "recurrent": (rng.integers(0, 20, (32, 7)).astype(np.int32), rng.integers(0, 2, 32)),
    }
    for name, make in (("seq_cnn", seq_cnn), ("functional_merge", functional_merge), ("recurrent", recurrent)):
        x, y = data[name]
        model = make()
        model.fit(x, y, batch_size=8, epochs=2, verbose=0)
        model.save(os.path.join(out, f"{name}.keras"))
        model.save(os.path.join(out, f"{name}_legacy.h5"))
        xs = x if isinstance(x, list) else [x]
        for i, xi in enumerate(xs):
            expected[f"{name}/x{i}"] = xi
        expected[f"{name}/y"] = y
        expected[f"{name}/predict"] = model.predict(x, verbose=0)
        # one more step from the saved state (no dropout in these two: the step is deterministic)
        if name != "seq_cnn":
            xb = [xi[:8] for xi in xs] if isinstance(x, list) else x[:8]
            model.train_on_batch(xb, y[:8])
            for i, w in enumerate(model.get_weights()):
                expected[f"{name}/after_step/{i}"] = w
        else:
            model.fit(x, y, batch_size=8, epochs=1, verbose=0)
            model.save_weights(os.path.join(out, "seq_cnn.weights.h5"))
            expected["seq_cnn/predict_weights_h5"] = model.predict(x, verbose=0)
    np.savez_compressed(os.path.join(out, "expected.npz"), **expected)
    with open(os.path.join(out, "objects.json"), "w") as f:
        json.dump(serialized_objects(), f, indent=0)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print(f"wrote {sorted(os.listdir(out))} ({total / 1024:.0f} KB) with Keras {keras.__version__}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("tests", "data", "keras"))
