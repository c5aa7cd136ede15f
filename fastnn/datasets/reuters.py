"""Reuters newswires: 11,228 newswires labelled over 46 topics, each a list of word indices (words ranked by
frequency). Derived from the Reuters-21578 collection; Keras's preprocessed copy.

Read without unpickling anything (see `fastnn.datasets.imdb`).
"""
import numpy as np

from fastnn.datasets import _sequences

FNAME = "reuters.npz"
SHA256 = "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"  # Keras's hash of that file
WORD_INDEX_FNAME = "reuters_word_index.json"
WORD_INDEX_MD5 = "4d44cc38712099c9e383dc6e5f11a921"  # Keras pins this file by md5

__all__ = ["load_data", "get_word_index", "get_label_names"]

_LABEL_NAMES = (
    "cocoa", "grain", "veg-oil", "earn", "acq", "wheat", "copper", "housing", "money-supply", "coffee", "sugar",
    "trade", "reserves", "ship", "cotton", "carcass", "crude", "nat-gas", "cpi", "money-fx", "interest", "gnp",
    "meal-feed", "alum", "oilseed", "gold", "tin", "strategic-metal", "livestock", "retail", "ipi", "iron-steel",
    "rubber", "heat", "jobs", "lei", "bop", "zinc", "orange", "pet-chem", "dlr", "gas", "silver", "wpi", "hog",
    "lead")


def load_data(path="reuters.npz", num_words=None, skip_top=0, maxlen=None, test_split=0.2, seed=113, start_char=1,
              oov_char=2, index_from=3):
    """Load Reuters (Keras's `keras.datasets.reuters.load_data`, same arguments and results).

    The arguments are those of `fastnn.datasets.imdb.load_data`, plus `test_split`: the fraction of the
    (shuffled, filtered) newswires that forms the test set: the first `int(N * (1 - test_split))` train.
    Returns `((x_train, y_train), (x_test, y_test))`: object arrays of lists of ints, and int topic labels.
    """
    _, (xs, labels) = _sequences.load_arrays(FNAME, SHA256, ("x", "y"), path)
    xs, labels = _sequences.shuffle(np.random.RandomState(seed), xs, labels)
    xs = _sequences.shift(xs, start_char, index_from)
    if maxlen:
        xs, labels = _sequences.remove_long(maxlen, xs, labels)
    xs = _sequences.limit_words(xs, num_words, skip_top, oov_char)
    idx = int(len(xs) * (1 - test_split))
    return ((_sequences.object_array(xs[:idx]), np.array(labels[:idx])),
            (_sequences.object_array(xs[idx:]), np.array(labels[idx:])))


def get_word_index(path="reuters_word_index.json"):
    """The dict {word: index} of the Reuters word indices (Keras's `keras.datasets.reuters.get_word_index`)."""
    return _sequences.word_index(WORD_INDEX_FNAME, WORD_INDEX_MD5, path)


def get_label_names():
    """The 46 topic names, indexed by label (Keras's `keras.datasets.reuters.get_label_names`)."""
    return _LABEL_NAMES
