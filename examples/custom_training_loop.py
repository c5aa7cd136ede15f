"""The keras.io guide "Writing a training loop from scratch" with fastnn: GradientTape, an optimizer's
apply_gradients, a loss object and accuracy metrics, validation at the end of each epoch."""
import time

import _data
import numpy as np

import fastnn as tf

args = _data.parse_args(epochs=5, description=__doc__)
(x_train, y_train), (x_test, y_test), scale = _data.load(args)
x_train = x_train.reshape(len(x_train), -1) / scale
x_test = x_test.reshape(len(x_test), -1) / scale
# the last 20% of the training set for validation
split = len(x_train) - max(1, len(x_train) // 5)
x_train, x_val, y_train, y_val = x_train[:split], x_train[split:], y_train[:split], y_train[split:]

inputs = tf.keras.Input(shape=x_train.shape[1:], name="digits")
x1 = tf.keras.layers.Dense(64, activation="relu")(inputs)
x2 = tf.keras.layers.Dense(64, activation="relu")(x1)
outputs = tf.keras.layers.Dense(10, name="predictions")(x2)
model = tf.keras.Model(inputs=inputs, outputs=outputs)

optimizer = tf.keras.optimizers.Adam(learning_rate=1e-3)
loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
train_acc_metric = tf.keras.metrics.SparseCategoricalAccuracy()
val_acc_metric = tf.keras.metrics.SparseCategoricalAccuracy()
batch_size = 32
rng = np.random.default_rng(0)


def batches(x, y, shuffle):
    order = rng.permutation(len(x)) if shuffle else np.arange(len(x))
    for lo in range(0, len(x), batch_size):
        idx = order[lo:lo + batch_size]
        yield x[idx], y[idx]


def train_step(x, y):
    with tf.GradientTape() as tape:
        logits = model(x, training=True)
        loss_value = loss_fn(y, logits)
    grads = tape.gradient(loss_value, model.trainable_weights)
    optimizer.apply_gradients(zip(grads, model.trainable_weights))
    train_acc_metric.update_state(y, logits)
    return loss_value


def test_step(x, y):
    val_acc_metric.update_state(y, model(x, training=False))


for epoch in range(args.epochs):
    print(f"\nStart of epoch {epoch}")
    start_time = time.time()
    for step, (x_batch, y_batch) in enumerate(batches(x_train, y_train, shuffle=True)):
        loss_value = train_step(x_batch, y_batch)
        if step % 20 == 0:
            print(f"Training loss (for 1 batch) at step {step}: {float(loss_value.item()):.4f}")
    print(f"Training accuracy over epoch: {float(train_acc_metric.result()):.4f}")
    train_acc_metric.reset_state()
    for x_batch, y_batch in batches(x_val, y_val, shuffle=False):
        test_step(x_batch, y_batch)
    print(f"Validation accuracy: {float(val_acc_metric.result()):.4f}")
    val_acc_metric.reset_state()
    print(f"Time taken: {time.time() - start_time:.2f}s")

for x_batch, y_batch in batches(x_test, y_test, shuffle=False):
    test_step(x_batch, y_batch)
print(f"\ntest accuracy: {float(val_acc_metric.result()):.4f}")
