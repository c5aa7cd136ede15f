"""The 8x8 handwritten digits shipped inside fastnn (works offline): 1,797 images, 10 classes.

Source: the test portion of "Optical Recognition of Handwritten Digits", UCI Machine Learning
Repository, E. Alpaydin and C. Kaynak, 1998, https://doi.org/10.24432/C50P49, licensed
CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/); the same array scikit-learn ships as
`load_digits`. Stored unchanged in `fastnn/datasets/data/digits.npz` (see README.md there).
"""
import os

import numpy as np

__all__ = ["load_data", "DATA_PATH"]

DATA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")
_TEST_EVERY = 5  # within each class, every 5th image goes to the test set: an 80/20 stratified split


def load_data():
    """Load the bundled 8x8 digits, split train/test deterministically.

    The split is stratified and involves no random numbers: within each class (in the file's
    order), images 4, 9, 14, ... form the test set. Both sets keep the file's order.

    Returns `((x_train, y_train), (x_test, y_test))` like `mnist.load_data()`: uint8 images
    (1442, 8, 8) and (355, 8, 8), uint8 labels 0-9. NOTE: pixel values are the source's counts
    0-16 (not 0-255): scale with `x / 16.0`.
    """
    with np.load(DATA_PATH, allow_pickle=False) as f:
        x, y = f["images"], f["labels"]
    rank_in_class = np.empty(len(y), dtype=np.int64)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        rank_in_class[members] = np.arange(len(members))
    test = rank_in_class % _TEST_EVERY == _TEST_EVERY - 1
    return (x[~test], y[~test]), (x[test], y[test])
