"""Transfer learning with a frozen MobileNetV2 base and a new classification head (the Keras guide's recipe):

1. the base (``include_top=False``) is frozen (``trainable = False``) and called with ``training=False``, so its
   BatchNormalization layers keep their statistics; only the new head (pooling, dropout, Dense) trains;
2. optionally (``--fine-tune-epochs``) the last layers of the base are unfrozen and trained on with a small
   learning rate.

Weights: ``--weights PATH`` loads a Keras applications file (e.g. Keras's
mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5 for ``--alpha 0.35 --size 96``), ``--weights
imagenet`` fetches that file into the cache (or says where to put it when offline); without the option the base
is random (its BatchNormalization statistics set from the data: the script still runs and learns, less well). Data: generated colour images of 5 classes (a shape of
the class's colour at a random place, on noise), so it runs offline.
"""
import argparse

import numpy as np

import fastnn
from fastnn import applications, layers


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="a Keras applications .h5 file, or 'imagenet' (default: random)")
    ap.add_argument("--alpha", type=float, default=0.35, help="width multiplier (must match the weights file)")
    ap.add_argument("--size", type=int, default=96, help="image height = width (must match the weights file)")
    ap.add_argument("--epochs", type=int, default=5, help="epochs of training the head")
    ap.add_argument("--fine-tune-epochs", type=int, default=0, help="then epochs with the last layers unfrozen")
    ap.add_argument("--limit", type=int, default=1000, help="training images (a quarter as many test images)")
    ap.add_argument("--batch-size", type=int, default=32)
    return ap.parse_args()


CLASSES = 5
COLOURS = np.array([[230, 40, 40], [40, 200, 40], [40, 60, 230], [230, 220, 40], [200, 40, 220]], np.float32)


def generated(n, size, seed):
    """n images (float32 pixels in [0, 255], size x size x 3) and labels: class k is a square of colour k
    (half the side, at a random place) on dark noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, n)
    x = rng.uniform(0, 100, (n, size, size, 3)).astype(np.float32)
    side = max(size // 2, 2)
    for i, (top, left) in enumerate(rng.integers(0, size - side + 1, (n, 2))):
        x[i, top:top + side, left:left + side] = COLOURS[y[i]]
    return x, y


def calibrate_batchnorm(base, images):
    """A random base's BatchNormalization layers normalize with statistics of nothing (mean 0, variance 1), and
    its features fade to ~0 within a few blocks; set them once from ``images`` instead (one forward pass in
    training mode with momentum 0), a stand-in for the statistics a pretrained file brings."""
    bns = [layer for layer in base.layers if isinstance(layer, layers.BatchNormalization)]
    momenta = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 0.0
    base(images, training=True)
    for bn, momentum in zip(bns, momenta):
        bn.momentum = momentum


def build(args, images):
    base = applications.MobileNetV2(input_shape=(args.size, args.size, 3), alpha=args.alpha, include_top=False,
                                    weights=args.weights)
    if args.weights is None:
        calibrate_batchnorm(base, images[:256] / np.float32(127.5) - 1)
    base.trainable = False
    inputs = fastnn.Input((args.size, args.size, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1)(inputs)  # mobilenet_v2.preprocess_input: pixels to [-1, 1]
    x = base(x, training=False)  # inference mode: the frozen BatchNormalization statistics stay as loaded
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(CLASSES, activation="softmax")(x)
    return base, fastnn.Model(inputs, outputs)


def main():
    args = parse_args()
    fastnn.utils.set_random_seed(0)
    x_train, y_train = generated(args.limit, args.size, 0)
    x_test, y_test = generated(max(args.limit // 4, 1), args.size, 1)
    base, model = build(args, x_train)
    print(f"base: {base.name}, {len(base.layers)} layers, {base.count_params():,} parameters (frozen); head: "
          f"{sum(int(np.prod(w.shape)) for w in model.trainable_weights):,} trainable parameters")
    model.compile(optimizer=fastnn.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, validation_data=(x_test, y_test),
              verbose=2)
    if args.fine_tune_epochs:
        base.trainable = True
        for layer in base.layers[:-20]:  # unfreeze only the last layers (the final block and Conv_1)
            layer.trainable = False
        model.compile(optimizer=fastnn.optimizers.Adam(1e-5), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])  # (recompile after changing trainable flags, as in Keras)
        model.fit(x_train, y_train, batch_size=args.batch_size, epochs=args.fine_tune_epochs,
                  validation_data=(x_test, y_test), verbose=2)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    print(f"Test accuracy: {acc:.4f} (chance {1 / CLASSES:.2f})")


if __name__ == "__main__":
    main()
