"""Datasets with Keras's loaders: `mnist`, `fashion_mnist`, `cifar10` (downloaded once, cached under
`~/.fastnn/datasets` or `$FASTNN_HOME/datasets`, sha256-checked) and `digits` (bundled, offline)."""
from fastnn.datasets import cifar10, digits, fashion_mnist, mnist
from fastnn.datasets._download import DatasetUnavailableError, cache_dir

__all__ = ["mnist", "fashion_mnist", "cifar10", "digits", "DatasetUnavailableError", "cache_dir"]

# text data (issue #14)
from fastnn.datasets import imdb, reuters  # noqa: E402

__all__ += ["imdb", "reuters"]
