"""Keras's mnist_cnn.py: two convolutions, max-pooling, dropout, Adadelta, validation_data.

NOTE: Keras 3's Adadelta defaults to learning_rate=0.001 (Keras 2 used 1.0), so with the defaults
this script under-trains in 12 epochs exactly as it does on Keras 3; pass learning_rate=1.0 for the
Keras 2 behaviour (as below).
"""
import _data

import fastnn as keras
from fastnn.layers import Conv2D, Dense, Dropout, Flatten, MaxPooling2D
from fastnn.models import Sequential

args = _data.parse_args(epochs=12, description=__doc__)
batch_size, num_classes = 128, 10
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
x_train = x_train.reshape(x_train.shape + (1,)).astype("float32") / scale
x_test = x_test.reshape(x_test.shape + (1,)).astype("float32") / scale
input_shape = x_train.shape[1:]
print("x_train shape:", x_train.shape)
y_train = keras.utils.to_categorical(y_train, num_classes)
y_test = keras.utils.to_categorical(y_test, num_classes)

model = Sequential()
model.add(Conv2D(32, kernel_size=(3, 3), activation="relu", input_shape=input_shape))
model.add(Conv2D(64, (3, 3), activation="relu"))
model.add(MaxPooling2D(pool_size=(2, 2)))
model.add(Dropout(0.25))
model.add(Flatten())
model.add(Dense(128, activation="relu"))
model.add(Dropout(0.5))
model.add(Dense(num_classes, activation="softmax"))
model.compile(loss=keras.losses.categorical_crossentropy, optimizer=keras.optimizers.Adadelta(learning_rate=1.0),
              metrics=["accuracy"])
model.fit(x_train, y_train, batch_size=batch_size, epochs=args.epochs, verbose=1, validation_data=(x_test, y_test))
score = model.evaluate(x_test, y_test, verbose=0)
print("Test loss:", score[0])
print("Test accuracy:", score[1])
