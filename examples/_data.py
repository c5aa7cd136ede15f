"""Data for the examples: MNIST when it is cached or downloadable, else the digits set fastnn ships.

Every example takes `--dataset auto|mnist|digits`, `--epochs N` and `--limit N` (train on the first
N samples only: the test suite runs each example on a tiny slice).
"""
import argparse

import numpy as np


def parse_args(epochs, description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--dataset", choices=["auto", "mnist", "digits"], default="auto")
    ap.add_argument("--epochs", type=int, default=epochs)
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training/test samples")
    return ap.parse_args()


def load(args):
    """(x_train, y_train), (x_test, y_test), scale: uint8 images (N, S, S), uint8 labels, and the
    divisor that maps pixels to [0, 1] (255 for MNIST, 16 for digits)."""
    from fastnn.datasets import digits, mnist
    data, scale = None, 255.0
    if args.dataset in ("auto", "mnist"):
        try:
            data = mnist.load_data()
        except (OSError, ValueError) as e:
            if args.dataset == "mnist":
                raise
            print(f"MNIST not available ({str(e).splitlines()[0]}); using the bundled digits set")
    if data is None:
        data, scale = digits.load_data(), 16.0
    (x_train, y_train), (x_test, y_test) = data
    if args.limit:
        x_train, y_train = x_train[:args.limit], y_train[:args.limit]
        x_test, y_test = x_test[:args.limit], y_test[:args.limit]
    return (x_train, y_train), (x_test, y_test), np.float32(scale)
