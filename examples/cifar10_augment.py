"""CIFAR-10-shaped training with data augmentation layers in front of a small convnet (the Keras 3 way:
RandomFlip, RandomRotation and RandomZoom augment while fit trains and pass images through in evaluate and
predict), fed by a fastnn.utils.PyDataset that loads the next batch while the step computes.

Uses CIFAR-10 when it is cached (or downloadable); otherwise (or with `--dataset synthetic`) generated
32x32 colour images of 10 classes (a coloured square per class at a random place, on noise), so it runs
offline.
"""
import argparse

import numpy as np

import fastnn
from fastnn import layers


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", choices=["auto", "cifar10", "synthetic"], default="auto")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training/test samples")
    ap.add_argument("--batch-size", type=int, default=64)
    return ap.parse_args()


def synthetic(n, seed):
    """n images (uint8, 32x32x3) whose class k is an 8x8 square of colour k placed anywhere, on noise."""
    rng = np.random.default_rng(seed)
    colours = (np.array([[r, g, b] for r in (40, 215) for g in (40, 215) for b in (40, 130, 215)])[:10])
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 90, (n, 32, 32, 3)).astype(np.uint8)
    for i, (top, left) in enumerate(rng.integers(0, 24, (n, 2))):
        x[i, top:top + 8, left:left + 8] = colours[y[i]]
    return (x, y)


def load(args):
    if args.dataset in ("auto", "cifar10"):
        try:
            (x_train, y_train), (x_test, y_test) = fastnn.datasets.cifar10.load_data()
            return (x_train, y_train.reshape(-1)), (x_test, y_test.reshape(-1))
        except (OSError, ValueError) as e:
            if args.dataset == "cifar10":
                raise
            print(f"CIFAR-10 not available ({str(e).splitlines()[0]}); using generated CIFAR-shaped data")
    return synthetic(5000, 0), synthetic(1000, 1)


class Batches(fastnn.utils.PyDataset):
    """Shuffled batches of uint8 images (cast to float32 here, on a loader thread) and int labels."""

    def __init__(self, x, y, batch_size, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(x))

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, i):
        idx = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx].astype(np.float32), self.y[idx].astype(np.int32)

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.x))


args = parse_args()
fastnn.utils.set_random_seed(0)
(x_train, y_train), (x_test, y_test) = load(args)
if args.limit:
    x_train, y_train, x_test, y_test = x_train[:args.limit], y_train[:args.limit], x_test[:args.limit], y_test[:args.limit]

model = fastnn.models.Sequential([
    fastnn.Input((32, 32, 3)),
    layers.Rescaling(1 / 255),
    layers.RandomFlip("horizontal"),
    layers.RandomRotation(0.05),
    layers.RandomZoom(0.1),
    layers.Conv2D(32, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Conv2D(64, 3, padding="same", activation="relu"),
    layers.MaxPooling2D(),
    layers.Flatten(),
    layers.Dropout(0.3),
    layers.Dense(10, activation="softmax"),
])
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(Batches(x_train, y_train, args.batch_size), epochs=args.epochs, validation_data=(x_test, y_test))
test_loss, test_acc = model.evaluate(x_test, y_test, verbose=0)
print(f"Test accuracy: {test_acc:.4f}")
