"""Pre-sharded data (DataParallel(auto_shard_dataset=False)) for tests/test_distribution_mpi.py: each rank is
given only its own rows (rank r: every P-th sample from r, an uneven split). Writes OUT/rank<r>.npz with the
final weights, the distributed evaluate (over every rank's own test rows) and the one-process evaluate of
the whole test set with the same weights, and the shape of predict's result."""
import sys

import numpy as np

import fastnn
from fastnn import layers
from fastnn.distribution import DataParallel, rank, set_distribution, world_size

out = sys.argv[1]
fastnn.set_num_threads(1)
dist = DataParallel(auto_shard_dataset=False)
set_distribution(dist)
fastnn.utils.set_random_seed(5)
(x, y), (xt, yt) = fastnn.datasets.digits.load_data()
x, xt = (x / 16.0).astype("float32"), (xt / 16.0).astype("float32")
r, p = rank(), world_size()
model = fastnn.Sequential([layers.Input((8, 8)), layers.Flatten(), layers.Dense(24, activation="relu"),
                           layers.Dropout(0.2), layers.Dense(10, activation="softmax")])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
hist = model.fit(x[r::p], y[r::p], batch_size=50, epochs=2, verbose=0, validation_data=(xt[r::p], yt[r::p]))
ev = model.evaluate(xt[r::p], yt[r::p], verbose=0)
pred = model.predict(xt[r::p], batch_size=40, verbose=0)
set_distribution(None)
whole = model.evaluate(xt, yt, verbose=0)
np.savez(f"{out}/rank{r}.npz", *[w.numpy() for w in model.weights], evaluate=np.array(ev), whole=np.array(whole),
         rows=np.array(len(pred)), loss=np.array(hist.history["loss"]), val_loss=np.array(hist.history["val_loss"]))
