"""TextVectorization: strings -> token indices (or multi-hot / count / TF-IDF vectors), Keras 3's layer and
rules, in plain Python and numpy (Keras runs TensorFlow's string ops; fastnn needs none).

The steps for each string, as in Keras: standardize (ASCII lowercasing and/or removing ASCII punctuation,
as TensorFlow's `strings.lower`/`regex_replace` do), split (on runs of ASCII whitespace, or into Unicode
characters), ngrams (joined with " ", all n-grams of the first width, then the next...), lookup.

Indices in "int" mode: 0 is the padding/mask token "" and 1 is "[UNK]" (out of vocabulary); in the other
modes 0 is "[UNK]". `adapt` orders the vocabulary by decreasing count, ties by decreasing token (UTF-8
byte order, which is code-point order), then keeps the first `max_tokens` - (2 or 1).
"""
import collections
import math
import os
import re

import numpy as np

from fastnn._graph import is_symbolic, symbolic_call
from fastnn.layers.base import Layer

__all__ = ["TextVectorization"]

_MASK, _OOV = "", "[UNK]"
_MODES = ("int", "multi_hot", "count", "tf_idf")
_STANDARDIZE = ("lower_and_strip_punctuation", "lower", "strip_punctuation")
_SPLIT = ("whitespace", "character")
# TensorFlow's strings.lower without an encoding, and Keras's punctuation regex: ASCII only
_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_NO_PUNCTUATION = str.maketrans("", "", "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'")
_WHITESPACE = re.compile(r"[ \t\n\v\f\r]+")  # tf.strings.split's whitespace (not Unicode spaces such as U+00A0)


class TextVectorization(Layer):
    """Map strings to sequences of token indices, or to multi-hot/count/TF-IDF vectors (Keras 3).

    Args: max_tokens (vocabulary size cap, special tokens included); standardize
    ("lower_and_strip_punctuation", "lower", "strip_punctuation", None, or a callable taking and returning a
    numpy array of str); split ("whitespace", "character", None, or a callable taking a 1-D numpy array of
    str and returning one list of tokens per string); ngrams (None, n for 1..n, or a tuple of widths);
    output_mode ("int", "multi_hot", "count", "tf_idf"); output_sequence_length ("int" mode: pad with 0 or
    cut every row to this length); pad_to_max_tokens (other modes: vectors of max_tokens entries);
    vocabulary (list of tokens or a text file with one per line); idf_weights ("tf_idf" with a vocabulary).

    Called on a string, a list/tuple or a numpy array of strings (str or UTF-8 bytes; shape (N,) or (N, 1)),
    it returns a numpy int64 array (N, T) in "int" mode (T: the longest row, or output_sequence_length),
    else (N, depth) int64 counts/flags or float32 TF-IDF values.

    >>> import fastnn
    >>> layer = fastnn.layers.TextVectorization(output_sequence_length=4)
    >>> layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    >>> layer([["foo qux bar"], ["qux baz"]])
    array([[4, 1, 3, 0],
           [1, 2, 0, 0]])
    """

    _string_input = True  # a Sequential starting with it is fed strings (models/sequential.py)

    def __init__(self, max_tokens=None, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None,
                 output_mode="int", output_sequence_length=None, pad_to_max_tokens=False, vocabulary=None,
                 idf_weights=None, sparse=False, ragged=False, encoding="utf-8", name=None, **kwargs):
        has_input_vocabulary = kwargs.pop("has_input_vocabulary", vocabulary is not None)
        kwargs.pop("vocabulary_size", None)  # (in Keras's config; it follows from the vocabulary)
        super().__init__(name=name, **kwargs)
        me = f"TextVectorization '{self.name}'"
        if sparse or ragged:
            raise ValueError(f"{me}: `sparse=True` and `ragged=True` need TensorFlow tensors; fastnn returns dense "
                             f"numpy arrays (Keras also refuses them on backends other than TensorFlow)")
        for arg, value, allowed in (("standardize", standardize, _STANDARDIZE), ("split", split, _SPLIT)):
            if not (value is None or callable(value) or (isinstance(value, str) and value in allowed)):
                raise ValueError(f"{me}: `{arg}` must be one of {allowed}, None or a callable. Received: "
                                 f"{arg}={value!r}")
        output_mode = {"binary": "multi_hot", "tf-idf": "tf_idf"}.get(output_mode, output_mode)
        if output_mode not in _MODES:
            raise ValueError(f"{me}: `output_mode` must be one of {_MODES}. Received: output_mode={output_mode!r}")
        if not (ngrams is None or _is_int(ngrams) or (isinstance(ngrams, tuple) and all(_is_int(n) for n in ngrams))):
            raise ValueError(f"{me}: `ngrams` must be None, an integer, or a tuple of integers. Received: "
                             f"ngrams={ngrams!r}")
        if output_sequence_length is not None:
            if output_mode != "int":
                raise ValueError(f"{me}: `output_sequence_length` must not be set if `output_mode` is not 'int'. "
                                 f"Received output_sequence_length={output_sequence_length!r}.")
            if not _is_int(output_sequence_length) or output_sequence_length < 0:
                raise ValueError(f"{me}: `output_sequence_length` must be either None or an integer >= 0. "
                                 f"Received: output_sequence_length={output_sequence_length!r}")
        if max_tokens is not None and (not _is_int(max_tokens) or max_tokens < 2 + (output_mode == "int") - 1):
            raise ValueError(f"{me}: `max_tokens` must be None or an integer > {int(output_mode == 'int')} (the "
                             f"special tokens count). Received: max_tokens={max_tokens!r}")
        if pad_to_max_tokens and max_tokens is None and output_mode != "int":
            raise ValueError(f"{me}: `pad_to_max_tokens=True` needs `max_tokens`")
        if idf_weights is not None and output_mode != "tf_idf":
            raise ValueError(f"{me}: `idf_weights` should only be set if `output_mode` is 'tf_idf'. "
                             f"Received: output_mode={output_mode!r}")
        if output_mode == "tf_idf" and has_input_vocabulary and idf_weights is None:
            raise ValueError(f"{me}: when specifying the `vocabulary` argument in TF-IDF output mode, the "
                             f"`idf_weights` argument must also be provided.")
        if split is None and ngrams is not None:
            raise ValueError(f"{me}: `ngrams` with `split=None` is not supported by fastnn")
        self.max_tokens = None if max_tokens is None else int(max_tokens)
        self._standardize = standardize
        self._split = split
        self._ngrams_arg = ngrams
        self._ngrams = tuple(range(1, ngrams + 1)) if _is_int(ngrams) else ngrams
        self._output_mode = output_mode
        self._output_sequence_length = output_sequence_length
        self.pad_to_max_tokens = bool(pad_to_max_tokens)
        self._encoding = encoding
        self._has_input_vocabulary = bool(has_input_vocabulary)
        self._input_vocabulary = _listify(vocabulary) if not isinstance(vocabulary, str) else None
        self._input_idf_weights = _listify(idf_weights)
        self._tokens = []            # the learned or given vocabulary, special tokens excluded
        self._index = {}             # token -> its output index
        self._idf = None             # "tf_idf": float32 weights, one per output index
        self._frozen_vocab_size = None
        self.reset_state()
        self.built = True
        if vocabulary is not None:
            self.set_vocabulary(vocabulary, idf_weights)

    # ---- vocabulary -----------------------------------------------------------------------------
    def _token_start(self):
        """Index of the first real token: after "" and "[UNK]" in "int" mode, after "[UNK]" otherwise."""
        return 2 if self._output_mode == "int" else 1

    def _specials(self):
        return [_MASK, _OOV] if self._output_mode == "int" else [_OOV]

    def get_vocabulary(self, include_special_tokens=True):
        """The vocabulary; with the special tokens a term's position is its output index."""
        return (self._specials() if include_special_tokens else []) + list(self._tokens)

    def vocabulary_size(self):
        """The vocabulary's size, special tokens included."""
        return len(self._tokens) + self._token_start()

    def _install(self, tokens):
        self._tokens = list(tokens)
        start = self._token_start()
        self._index = {t: start + i for i, t in enumerate(self._tokens)}
        self._frozen_vocab_size = self.vocabulary_size()

    def set_vocabulary(self, vocabulary, idf_weights=None):
        """Use `vocabulary` (a list/tuple/1-D array of str, or the path of a text file with one token per line;
        the special tokens may lead it in their order) and, in "tf_idf" mode, its `idf_weights`."""
        me = f"TextVectorization '{self.name}'"
        if self._output_mode == "tf_idf" and idf_weights is None:
            raise ValueError(f"{me}: `idf_weights` must be set if output_mode is 'tf_idf'.")
        if self._output_mode != "tf_idf" and idf_weights is not None:
            raise ValueError(f"{me}: `idf_weights` should only be set if output_mode is 'tf_idf'. Received: "
                             f"output_mode={self._output_mode!r}")
        if isinstance(vocabulary, str):
            if self._output_mode == "tf_idf":
                raise ValueError(f"{me}: output_mode 'tf_idf' does not support loading a vocabulary from file.")
            try:
                with open(vocabulary, encoding=self._encoding) as f:
                    vocabulary = f.read().splitlines()
            except OSError as e:
                raise ValueError(f"{me}: Vocabulary file {vocabulary} cannot be read: {e}") from None
        vocabulary = [_text(v, self._encoding, me) for v in np.asarray(vocabulary, dtype=object).reshape(-1)]
        if not vocabulary:
            raise ValueError(f"{me}: Cannot set an empty vocabulary.")
        start = self._token_start()
        found_specials = vocabulary[:start] == self._specials()
        tokens = vocabulary[start:] if found_specials else vocabulary
        repeated = [t for t, c in collections.Counter(tokens).items() if c > 1]
        if repeated:
            raise ValueError(f"{me}: The passed vocabulary has at least one repeated term. Please uniquify your "
                             f"dataset. The repeated terms are: {repeated}")
        if _MASK in tokens:
            raise ValueError(f"{me}: Found reserved mask token '' at unexpected location in `vocabulary`. Either "
                             f"remove all mask and OOV tokens, or include them only at the start of the vocabulary "
                             f"in precisely this order: {self._specials()}.")
        if self.max_tokens is not None and start + len(tokens) > self.max_tokens:
            raise ValueError(f"{me}: Attempted to set a vocabulary larger than the maximum vocab size. Received "
                             f"vocabulary size is {start + len(tokens)}; `max_tokens` is {self.max_tokens}.")
        if idf_weights is not None:
            weights = np.asarray(idf_weights, dtype=np.float64)
            if weights.ndim != 1 or len(weights) != len(vocabulary):
                raise ValueError(f"{me}: `idf_weights` must be a 1-D array of the vocabulary's length "
                                 f"{len(vocabulary)}; got shape {weights.shape}")
            front = [] if found_specials else [np.mean(weights)] * start  # the OOV weight: their mean
            self._set_idf(np.concatenate([front, weights]))
        self._install(tokens)

    def _set_idf(self, weights):
        if self.pad_to_max_tokens and self.max_tokens is not None:
            weights = np.concatenate([weights, np.zeros(self.max_tokens - len(weights))])
        self._idf = np.asarray(weights, dtype=np.float32)

    # ---- adapt ----------------------------------------------------------------------------------
    def reset_state(self):
        self._counts = collections.Counter()
        self._doc_counts = collections.Counter()
        self._num_documents = 0

    def update_state(self, data):
        """Count the tokens of one batch of strings."""
        if self._has_input_vocabulary:
            raise ValueError(f"Cannot adapt layer '{self.name}' after setting a static vocabulary via "
                             f"`vocabulary` argument or `set_vocabulary()` method.")
        strings = self._strings(data)
        if strings.ndim == 1:  # (Keras adapts on (N, 1): one document per string)
            strings = strings[:, None]
        rows = self._token_rows(strings)[0]
        for row in rows:
            self._counts.update(row)
        if self._output_mode == "tf_idf":
            for row in rows:
                self._doc_counts.update(set(row))
            self._num_documents += len(rows)

    def finalize_state(self):
        """Build the vocabulary from the counts (unchanged when nothing was counted)."""
        counts = self._counts
        counts.pop(_MASK, None)
        counts.pop(_OOV, None)
        if self._has_input_vocabulary or not counts:
            return
        ranked = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)  # count, then token, both desc
        if self.max_tokens:
            ranked = ranked[:self.max_tokens - self._token_start()]
        tokens = [t for t, _ in ranked]
        if self._output_mode == "tf_idf":
            idf = np.array([math.log(1 + self._num_documents / (1 + self._doc_counts[t])) for t in tokens],
                           dtype=np.float32)
            self._set_idf(np.concatenate([[np.mean(idf)], idf]))
        self._install(tokens)
        self.reset_state()

    def adapt(self, data, batch_size=None, steps=None):
        """Learn the vocabulary (and IDF weights) from `data`: a string, list, tuple or numpy array of strings
        (one batch), or an iterable of such batches (a generator; `steps` caps how many are read).
        `batch_size` is accepted for Keras's signature (Keras ignores it too)."""
        self.reset_state()
        if isinstance(data, (str, bytes, list, tuple, np.ndarray)) or not hasattr(data, "__iter__"):
            self.update_state(data)
        else:
            for i, batch in enumerate(data):
                if steps is not None and i >= steps:
                    break
                self.update_state(batch)
        self.finalize_state()

    # ---- calling --------------------------------------------------------------------------------
    def _strings(self, data):
        """`data` as a numpy array of Python str (bytes decoded), or a TypeError naming the layer."""
        arr = np.asarray(data, dtype=object) if not isinstance(data, np.ndarray) or data.dtype.kind != "U" else data
        me = f"TextVectorization '{self.name}'"
        if arr.dtype.kind != "U":
            flat = [_text(v, self._encoding, me) for v in arr.reshape(-1)]
            arr = np.array(flat, dtype=object).reshape(arr.shape)
        return arr.astype(object)

    def _standardized(self, strings):
        mode = self._standardize
        if callable(mode):
            out = np.asarray(mode(strings.astype(str)))
            if out.shape != strings.shape:
                raise ValueError(f"TextVectorization '{self.name}': the standardize callable returned shape "
                                 f"{out.shape} for inputs of shape {strings.shape}")
            return self._strings(out)
        if mode is None:
            return strings
        flat = strings.reshape(-1).tolist()
        if mode in ("lower", "lower_and_strip_punctuation"):
            flat = [s.translate(_LOWER) for s in flat]
        if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
            flat = [s.translate(_NO_PUNCTUATION) for s in flat]
        return np.array(flat, dtype=object).reshape(strings.shape)

    def _token_rows(self, strings):
        """(rows, scalar): one list of tokens per string (after standardize, split and ngrams); `scalar` when
        the input was one string (then there is one row and the output drops the batch axis)."""
        strings = self._standardized(strings)
        if self._split is None:  # every string is one token; a row holds the strings along the last axis
            if strings.ndim < 2:
                return [[s] for s in strings.reshape(-1).tolist()], strings.ndim == 0
            return strings.reshape(-1, strings.shape[-1]).tolist(), False
        if strings.ndim > 1:
            if strings.shape[-1] != 1:
                raise ValueError(f"When using `TextVectorization` to tokenize strings, the input rank must be 1 or "
                                 f"the last shape dimension must be 1. Received: inputs.shape={strings.shape} with "
                                 f"rank={strings.ndim}")
            strings = strings[..., 0]
        scalar = strings.ndim == 0
        flat = strings.reshape(-1).tolist()
        if self._split == "whitespace":
            rows = [[t for t in _WHITESPACE.split(s) if t] for s in flat]
        elif self._split == "character":
            rows = [list(s) for s in flat]
        else:
            rows = [[_text(t, self._encoding, self.name) for t in row]
                    for row in self._split(np.array(flat, dtype=str))]
            if len(rows) != len(flat):
                raise ValueError(f"TextVectorization '{self.name}': the split callable returned {len(rows)} rows for "
                                 f"{len(flat)} strings")
        if self._ngrams:
            rows = [[" ".join(row[i:i + n]) for n in self._ngrams for i in range(len(row) - n + 1)] for row in rows]
        return rows, scalar

    def _lookup(self, row, oov):
        index = self._index
        return [0 if t == _MASK else index.get(t, oov) for t in row]  # "" is the mask: index 0

    def _vectorize(self, data):
        strings = self._strings(data)
        rows, scalar = self._token_rows(strings)
        if self._output_mode == "int":
            ids = [self._lookup(row, 1) for row in rows]
            if self._split is None:  # one index per string: the input's shape
                out = np.array(ids, dtype=np.int64).reshape(strings.shape)
                return out if self._output_sequence_length is None else _fit_last_axis(out, self._output_sequence_length)
            width = self._output_sequence_length
            if width is None:
                width = max((len(r) for r in ids), default=0)
            out = np.zeros((len(ids), width), dtype=np.int64)
            for i, r in enumerate(ids):
                r = r[:width]
                out[i, :len(r)] = r
            return out[0] if scalar else out
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        if depth is None:
            raise RuntimeError(f"When using `output_mode={self._output_mode}` and `pad_to_max_tokens=False`, you "
                               f"must set the layer's vocabulary before calling it. Either pass a `vocabulary` "
                               f"argument to the layer, or call `adapt` with some sample data.")
        out = np.zeros((len(rows), depth), dtype=np.int64)
        for i, row in enumerate(rows):  # the mask token "" counts nowhere; OOV counts at 0
            ids = [self._index.get(t, 0) for t in row if t != _MASK]
            np.add.at(out[i], [j for j in ids if j < depth], 1)
        if self._output_mode == "multi_hot":
            out = np.minimum(out, 1)
        elif self._output_mode == "tf_idf":
            out = out.astype(np.float32) * self._idf[:depth]
        return out[0] if scalar else out

    def __call__(self, inputs, training=False, **kwargs):
        if kwargs:
            raise TypeError(f"Layer '{self.name}': unexpected call arguments {sorted(kwargs)}")
        if is_symbolic(inputs):
            return symbolic_call(self, inputs)
        return self._vectorize(inputs)

    def _forward(self, x, training, need_dx=True):
        """In a model: the strings of `x` -> indices (or vectors); nothing flows back to strings."""
        return self._vectorize(x), None

    def _backward(self, ctx, dy):
        return None

    def _maybe_build(self, input_shape):
        """Built from the start (no weights); records the first graph call's shapes like a build would."""
        out = super()._maybe_build(input_shape)
        if self._output_shape is None:
            self._input_shape, self._output_shape = tuple(input_shape), out
        return out

    def _check_input_shape(self, input_shape):
        """Any batch of strings is accepted (the layer holds no weights tied to a shape)."""

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if self._output_mode == "int":
            if self._split is None:
                return input_shape[:-1] + (self._output_sequence_length,) if self._output_sequence_length is not None \
                    and len(input_shape) > 1 else input_shape
            return (input_shape[0], self._output_sequence_length)
        depth = self.max_tokens if self.pad_to_max_tokens else self._frozen_vocab_size
        return (input_shape[0], depth)

    def get_config(self):
        config = super().get_config()
        config.update(max_tokens=self.max_tokens, standardize=self._standardize, split=self._split,
                      ngrams=self._ngrams_arg, output_mode=self._output_mode,
                      output_sequence_length=self._output_sequence_length, pad_to_max_tokens=self.pad_to_max_tokens,
                      sparse=False, ragged=False, vocabulary=self._input_vocabulary,
                      idf_weights=self._input_idf_weights, encoding=self._encoding,
                      vocabulary_size=self.vocabulary_size())
        return config

    # ---- Keras's .keras file hooks: the adapted vocabulary is an asset, TF-IDF weights a variable ----------
    def save_assets(self, dir_path):
        """Write the vocabulary (special tokens included) to `dir_path`/vocabulary.txt, one token a line,
        unless it came from the constructor (then it is in the config)."""
        if self._input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, "vocabulary.txt"), "w", encoding="utf-8") as f:
            f.write("\n".join(self.get_vocabulary(include_special_tokens=True)))

    def load_assets(self, dir_path):
        if self._input_vocabulary is not None:
            return
        with open(os.path.join(dir_path, "vocabulary.txt"), encoding="utf-8") as f:
            lines = f.read().split("\n")
        while lines and lines[-1] == "":
            lines.pop()
        if lines:
            self.set_vocabulary(lines, idf_weights=self._idf if self._output_mode == "tf_idf" else None)

    def save_own_variables(self, store):
        if self._output_mode == "tf_idf" and self._idf is not None:
            store["idf_weights"] = self._idf

    def load_own_variables(self, store):
        if self._output_mode == "tf_idf" and "idf_weights" in store:
            self._idf = np.asarray(store["idf_weights"], dtype=np.float32)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for arg in ("standardize", "split"):
            if not (config.get(arg) is None or isinstance(config[arg], str) or callable(config[arg])):
                raise ValueError(f"TextVectorization.from_config: a serialized `{arg}` callable "
                                 f"({config[arg]!r}) cannot be restored by fastnn; pass it in the config")
        if isinstance(config.get("ngrams"), list):
            config["ngrams"] = tuple(config["ngrams"])
        return cls(**config)


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _text(value, encoding, where):
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode(encoding, errors="replace")
    raise TypeError(f"{where}: expected strings, got {type(value).__name__} {value!r}")


def _listify(x):
    if x is None:
        return None
    return np.asarray(x).tolist() if isinstance(x, np.ndarray) else list(x)


def _fit_last_axis(arr, width):
    """Cut or zero-pad the last axis of `arr` to `width`."""
    arr = arr[..., :width]
    pad = width - arr.shape[-1]
    return np.pad(arr, [(0, 0)] * (arr.ndim - 1) + [(0, pad)]) if pad else arr
