"""A small convnet: one Conv2D, one MaxPooling2D, a softmax classifier (Adam, sparse labels)."""
import _data

from fastnn.layers import Conv2D, Dense, Flatten, MaxPooling2D
from fastnn.models import Sequential

args = _data.parse_args(epochs=5, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
x_train = x_train[..., None].astype("float32") / scale   # (N, H, W, 1): channels last
x_test = x_test[..., None].astype("float32") / scale

model = Sequential([
    Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=x_train.shape[1:]),
    MaxPooling2D(pool_size=(2, 2)),
    Flatten(),
    Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=64, epochs=args.epochs, validation_split=0.1)
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
print(f"Test accuracy: {test_acc:.4f}")
