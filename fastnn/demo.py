"""The main job: `python -m fastnn.demo` trains the Keras MNIST CNN on the bundled digits set.

Conv2D(32) - Conv2D(64) - MaxPooling2D - Dropout - Flatten - Dense(128) - Dropout - Dense(10), with a
progress bar, then prints the test accuracy and the time taken. Offline by default; `--dataset mnist`
uses MNIST when it is cached (~/.fastnn/datasets) or downloadable.
"""
import argparse
import time

import numpy as np


def build_model(input_shape, num_classes=10):
    from fastnn.layers import Conv2D, Dense, Dropout, Flatten, Input, MaxPooling2D
    from fastnn.models import Sequential
    return Sequential([
        Input(input_shape),
        Conv2D(32, (3, 3), activation="relu"),
        Conv2D(64, (3, 3), activation="relu"),
        MaxPooling2D((2, 2)),
        Dropout(0.25),
        Flatten(),
        Dense(128, activation="relu"),
        Dropout(0.5),
        Dense(num_classes, activation="softmax"),
    ], name="demo_cnn")


def load(dataset):
    """Images as float32 (N, H, W, 1) in [0, 1] and integer labels."""
    from fastnn.datasets import digits, mnist
    if dataset == "mnist":
        (x_train, y_train), (x_test, y_test) = mnist.load_data()
        scale = 255.0
    else:
        (x_train, y_train), (x_test, y_test) = digits.load_data()
        scale = 16.0
    prep = lambda x: (x[..., None] / np.float32(scale)).astype(np.float32)  # noqa: E731
    return (prep(x_train), y_train), (prep(x_test), y_test)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m fastnn.demo", description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    ap.add_argument("--epochs", type=int, default=None, help="default: 30 on digits, 3 on mnist")
    ap.add_argument("--batch-size", type=int, default=None, help="default: 32 on digits, 128 on mnist")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = ap.parse_args(argv)

    import fastnn
    fastnn.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load(args.dataset)
    epochs = args.epochs or (30 if args.dataset == "digits" else 3)
    batch_size = args.batch_size or (32 if args.dataset == "digits" else 128)
    info = fastnn.build_info()
    print(f"fastnn {fastnn.__version__} | SIMD {info['simd']} | {info['num_threads']} threads | "
          f"{args.dataset}: {len(x_train)} train / {len(x_test)} test images of {x_train.shape[1:]}")

    model = build_model(x_train.shape[1:])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.summary()
    t0 = time.perf_counter()
    model.fit(x_train, y_train, batch_size=batch_size, epochs=epochs, verbose=args.verbose)
    train_s = time.perf_counter() - t0
    loss, acc = model.evaluate(x_test, y_test, batch_size=256, verbose=0)
    print(f"test accuracy: {acc:.4f} (loss {loss:.4f})")
    print(f"training took {train_s:.1f} s ({epochs * len(x_train) / train_s:,.0f} samples/s)")
    return acc


def cli():
    """Console script `fastnn-demo` (its exit status is 0: main() returns the accuracy for callers)."""
    main()


if __name__ == "__main__":
    cli()
