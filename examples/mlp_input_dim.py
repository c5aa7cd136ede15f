"""The Keras guide's MLP: `input_dim=`, one-hot labels, categorical_crossentropy, SGD with momentum."""
import _data

from fastnn.layers import Dense, Dropout
from fastnn.models import Sequential
from fastnn.optimizers import SGD
from fastnn.utils import to_categorical

args = _data.parse_args(epochs=20, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
pixels = x_train.shape[1] * x_train.shape[2]
x_train = x_train.reshape(-1, pixels).astype("float32") / scale
x_test = x_test.reshape(-1, pixels).astype("float32") / scale
y_train = to_categorical(y_train, num_classes=10)
y_test = to_categorical(y_test, num_classes=10)

model = Sequential()
model.add(Dense(64, activation="relu", input_dim=pixels))
model.add(Dropout(0.5))
model.add(Dense(64, activation="relu"))
model.add(Dropout(0.5))
model.add(Dense(10, activation="softmax"))
sgd = SGD(learning_rate=0.01, momentum=0.9, nesterov=True)
model.compile(loss="categorical_crossentropy", optimizer=sgd, metrics=["accuracy"])
model.fit(x_train, y_train, epochs=args.epochs, batch_size=128)
score = model.evaluate(x_test, y_test, batch_size=128)
print("Test loss, accuracy:", score)
