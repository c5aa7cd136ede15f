"""A Dense MLP trained with integer labels and sparse_categorical_crossentropy (Keras's mnist_mlp)."""
import _data

from fastnn.layers import Dense, Dropout
from fastnn.models import Sequential

args = _data.parse_args(epochs=20, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
pixels = x_train.shape[1] * x_train.shape[2]
x_train = x_train.reshape(-1, pixels).astype("float32") / scale
x_test = x_test.reshape(-1, pixels).astype("float32") / scale

model = Sequential()
model.add(Dense(512, activation="relu", input_shape=(pixels,)))
model.add(Dropout(0.2))
model.add(Dense(512, activation="relu"))
model.add(Dropout(0.2))
model.add(Dense(10, activation="softmax"))
model.summary()
model.compile(loss="sparse_categorical_crossentropy", optimizer="rmsprop", metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=128, epochs=args.epochs, verbose=1, validation_data=(x_test, y_test))
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
