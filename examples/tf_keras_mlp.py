"""The TensorFlow beginner tutorial, with `import tensorflow as tf` replaced by fastnn."""
import _data

import fastnn as tf

args = _data.parse_args(epochs=5, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
x_train, x_test = x_train / scale, x_test / scale

model = tf.keras.models.Sequential([
    tf.keras.layers.Flatten(input_shape=x_train.shape[1:]),
    tf.keras.layers.Dense(128, activation="relu"),
    tf.keras.layers.Dropout(0.2),
    tf.keras.layers.Dense(10),
])
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
model.compile(optimizer="adam", loss=loss_fn, metrics=["accuracy"])
model.fit(x_train, y_train, epochs=args.epochs)
model.evaluate(x_test, y_test, verbose=2)
probability_model = tf.keras.Sequential([model, tf.keras.layers.Softmax()])
print(probability_model(x_test[:5]).numpy().round(3))
