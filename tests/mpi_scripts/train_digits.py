"""A Keras-style training script run by tests/test_distribution_mpi.py, under `mpiexec -n 2` and as one
process: trains on the bundled digits and writes, per rank, its final weights, history, evaluate and
predict results to OUT/rank<r>.npz.

    python train_digits.py OUT [--model mlp|cnn|bn] [--batch N] [--epochs N] [--callbacks] [--save PATH]
"""
import argparse
import os

import numpy as np

import fastnn
from fastnn import layers
from fastnn.distribution import DataParallel, rank, set_distribution, world_size

p = argparse.ArgumentParser()
p.add_argument("out")
p.add_argument("--model", default="mlp")
p.add_argument("--batch", type=int, default=64)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--samples", type=int, default=0)
p.add_argument("--callbacks", action="store_true")
p.add_argument("--save", default=None)
p.add_argument("--verbose", type=int, default=2)
p.add_argument("--unseeded", action="store_true")
p.add_argument("--class-weight", action="store_true")  # every rank draws other initial weights: rank 0's are used
a = p.parse_args()

fastnn.set_num_threads(1)
set_distribution(DataParallel(bucket_bytes=4096))  # small buckets: several of them in flight
if not a.unseeded:
    fastnn.utils.set_random_seed(7)
(x, y), (xt, yt) = fastnn.datasets.digits.load_data()
x, xt = (x / 16.0).astype("float32"), (xt / 16.0).astype("float32")
if a.samples:
    x, y = x[:a.samples], y[:a.samples]
if a.model == "mlp":
    model = fastnn.Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(32, activation="relu"),
                               layers.Dense(10, activation="softmax")])
elif a.model == "cnn":
    model = fastnn.Sequential([layers.Input((8, 8, 1)), layers.Conv2D(8, 3, activation="relu"), layers.Flatten(),
                               layers.Dropout(0.3), layers.Dense(10, activation="softmax")])
    x, xt = x[..., None], xt[..., None]
else:  # batch statistics
    model = fastnn.Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(32, use_bias=False),
                               layers.BatchNormalization(), layers.Activation("relu"),
                               layers.Dense(10, activation="softmax")])
model.compile(optimizer=fastnn.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
cbs = []
if a.callbacks:
    cbs = [fastnn.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0, verbose=1),
           fastnn.callbacks.CSVLogger(os.path.join(a.out, "log.csv"))]
model.summary()
hist = model.fit(x, y, batch_size=a.batch, epochs=a.epochs, verbose=a.verbose, validation_data=(xt, yt),
                 callbacks=cbs, class_weight={k: 1.0 + 0.1 * k for k in range(10)} if a.class_weight else None)
ev = model.evaluate(xt, yt, verbose=0)
pred = model.predict(xt, batch_size=50, verbose=0)
if a.save:
    model.save(a.save)
np.savez(os.path.join(a.out, f"rank{rank()}.npz"), *[w.numpy() for w in model.weights],
         loss=np.array(hist.history["loss"]), val_loss=np.array(hist.history["val_loss"]),
         accuracy=np.array(hist.history["accuracy"]), evaluate=np.array(ev), predict=pred,
         world=np.array(world_size()))
