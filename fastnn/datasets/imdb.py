"""IMDB movie reviews: 25,000 training and 25,000 test reviews labelled by sentiment (1 positive, 0 negative),
each a list of word indices (words ranked by frequency). Andrew L. Maas et al., "Learning Word Vectors for
Sentiment Analysis", ACL 2011 (https://ai.stanford.edu/~amaas/data/sentiment/); Keras's preprocessed copy.

The .npz stores ragged sequences as numpy object arrays, which numpy pickles; fastnn reads them with its
own data-only reader (`fastnn.datasets._safe_npz`): nothing in the file is unpickled by Python or run.
"""
import numpy as np

from fastnn.datasets import _sequences

FNAME = "imdb.npz"
SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"  # Keras's hash of that file
WORD_INDEX_FNAME = "imdb_word_index.json"
WORD_INDEX_MD5 = "bfafd718b763782e994055a2d397834f"  # Keras pins this file by md5

__all__ = ["load_data", "get_word_index"]


def load_data(path="imdb.npz", num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
              index_from=3):
    """Load IMDB (Keras's `keras.datasets.imdb.load_data`, same arguments and results).

    `path`: where the file is cached, relative to `~/.fastnn/datasets` (`$FASTNN_HOME/datasets`); Keras's
    `imdb.npz` is downloaded from its bucket on first use and checked against its sha256.
    `num_words`: keep the `num_words` most frequent words (indices >= num_words become `oov_char`);
    None keeps all (as in Keras, the very largest index then becomes `oov_char` too).
    `skip_top`: indices below it become `oov_char`. `maxlen`: drop the reviews whose length (with the start
    mark) is `maxlen` or more. `seed`: the shuffle. `start_char`: prefixed to each review (None: none).
    `oov_char`: the index of dropped words (None: remove them). `index_from`: added to every word index.

    Returns `((x_train, y_train), (x_test, y_test))`: object arrays of lists of ints, and int labels.
    """
    _, (x_train, labels_train, x_test, labels_test) = _sequences.load_arrays(
        FNAME, SHA256, ("x_train", "y_train", "x_test", "y_test"), path)
    rng = np.random.RandomState(seed)
    x_train, labels_train = _sequences.shuffle(rng, x_train, labels_train)
    x_test, labels_test = _sequences.shuffle(rng, x_test, labels_test)
    x_train = _sequences.shift(x_train, start_char, index_from)
    x_test = _sequences.shift(x_test, start_char, index_from)
    if maxlen:
        x_train, labels_train = _sequences.remove_long(maxlen, x_train, labels_train)
        x_test, labels_test = _sequences.remove_long(maxlen, x_test, labels_test)
        if not x_train or not x_test:
            raise ValueError(f"After filtering for sequences shorter than maxlen={maxlen}, no sequence was kept. "
                             "Increase maxlen.")
    xs = _sequences.limit_words(x_train + x_test, num_words, skip_top, oov_char)
    labels = np.concatenate([labels_train, labels_test])
    idx = len(x_train)
    return (_sequences.object_array(xs[:idx]), labels[:idx]), (_sequences.object_array(xs[idx:]), labels[idx:])


def get_word_index(path="imdb_word_index.json"):
    """The dict {word: index} of the IMDB word indices (Keras's `keras.datasets.imdb.get_word_index`); in
    `load_data`'s sequences a word appears as `index + index_from`."""
    return _sequences.word_index(WORD_INDEX_FNAME, WORD_INDEX_MD5, path)
