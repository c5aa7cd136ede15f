"""MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28 grayscale.

Yann LeCun and Corinna Cortes hold the copyright of MNIST, a derivative of the NIST data; it is
available under the Creative Commons Attribution-Share Alike 3.0 license.
"""
import numpy as np

from fastnn.datasets._download import get_file

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"  # Keras's hash of that file

__all__ = ["load_data"]


def load_data(path="mnist.npz"):
    """Load MNIST (Keras's `keras.datasets.mnist.load_data`).

    `path`: where the file is cached, relative to `~/.fastnn/datasets` (`$FASTNN_HOME/datasets`);
    an absolute path is used as is. The file is Keras's `mnist.npz`, downloaded from its bucket
    on first use and checked against its sha256.

    Returns `((x_train, y_train), (x_test, y_test))`: uint8 images (60000, 28, 28) and
    (10000, 28, 28) with pixel values 0-255, and uint8 labels 0-9 of shapes (60000,), (10000,).
    """
    path = get_file(path, ORIGIN, SHA256)
    with np.load(path, allow_pickle=False) as f:
        missing = {"x_train", "y_train", "x_test", "y_test"} - set(f.files)
        if missing:
            raise ValueError(f"{path} is not an MNIST file: it lacks {sorted(missing)}")
        return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
