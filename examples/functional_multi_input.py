"""The Functional API guide's multi-input, multi-output model: image pixels plus a small numeric side input
(the ink of each image's top and left halves) in; the digit class and a regression target (the mean pixel
value) out. Losses, loss weights and metrics are given per output by name."""
import _data
import numpy as np

import fastnn as keras
from fastnn import layers

args = _data.parse_args(epochs=20, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)


def features(images):
    """(pixels (N, H*W), side features (N, 2), mean pixel (N, 1)) from uint8 images (N, H, W)."""
    images = images.astype("float32") / scale
    half_h, half_w = images.shape[1] // 2, images.shape[2] // 2
    side = np.stack([images[:, :half_h].mean(axis=(1, 2)), images[:, :, :half_w].mean(axis=(1, 2))], axis=1)
    return images.reshape(len(images), -1), side, images.mean(axis=(1, 2))[:, None]


pixels_train, side_train, mean_train = features(x_train)
pixels_test, side_test, mean_test = features(x_test)

pixels = keras.Input(shape=pixels_train.shape[1:], name="pixels")
side = keras.Input(shape=(2,), name="side")
x = layers.Dense(64, activation="relu", name="hidden")(pixels)
x = layers.Concatenate(name="merge")([x, layers.Dense(8, activation="relu", name="side_features")(side)])
digit = layers.Dense(10, activation="softmax", name="digit")(x)
mean_pixel = layers.Dense(1, name="mean_pixel")(x)
model = keras.Model(inputs={"pixels": pixels, "side": side}, outputs={"digit": digit, "mean_pixel": mean_pixel})
model.summary()

model.compile(optimizer="adam",
              loss={"digit": "sparse_categorical_crossentropy", "mean_pixel": "mse"},
              loss_weights={"digit": 1.0, "mean_pixel": 10.0},
              metrics={"digit": ["accuracy"], "mean_pixel": ["mae"]})
model.fit({"pixels": pixels_train, "side": side_train}, {"digit": y_train, "mean_pixel": mean_train},
          epochs=args.epochs, batch_size=32, validation_split=0.1, verbose=2)
scores = model.evaluate({"pixels": pixels_test, "side": side_test}, {"digit": y_test, "mean_pixel": mean_test},
                        verbose=0, return_dict=True)
for name, value in scores.items():
    print(f"Test {name}: {value:.4f}")
predictions = model.predict({"pixels": pixels_test[:5], "side": side_test[:5]}, verbose=0)
print("First test digits:   ", y_test[:5].tolist(), "predicted", predictions["digit"].argmax(axis=1).tolist())
print("First mean pixels:   ", [f"{v:.3f}" for v in mean_test[:5, 0]], "predicted",
      [f"{v:.3f}" for v in predictions["mean_pixel"][:5, 0]])
