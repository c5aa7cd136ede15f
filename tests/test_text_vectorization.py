"""TextVectorization vs a plain reference of Keras 3's rules (standardize, split, ngrams, vocabulary order,
lookup, output modes), plus outputs checked once against Keras 3.15.1 itself (written out below)."""
import collections
import math
import re

import numpy as np
import pytest

import fastnn
from fastnn.layers import TextVectorization

PUNCT = set("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~'")


def ref_standardize(s, mode):
    if mode in ("lower", "lower_and_strip_punctuation"):
        s = "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in s)  # ASCII only, like tf.strings.lower
    if mode in ("strip_punctuation", "lower_and_strip_punctuation"):
        s = "".join(c for c in s if c not in PUNCT)
    return s


def ref_tokens(s, standardize="lower_and_strip_punctuation", split="whitespace", ngrams=None):
    s = ref_standardize(s, standardize)
    words = re.findall(r"[^ \t\n\v\f\r]+", s) if split == "whitespace" else list(s)
    widths = range(1, ngrams + 1) if isinstance(ngrams, int) else (ngrams or (1,))
    return [" ".join(words[i:i + n]) for n in widths for i in range(len(words) - n + 1)]


def ref_vocab(corpus, max_tokens=None, specials=2, **kw):
    counts = collections.Counter(t for doc in corpus for t in ref_tokens(doc, **kw))
    counts.pop("", None)
    # Keras: np.lexsort((tokens, counts))[::-1]: count descending, ties by the token's bytes descending
    ranked = sorted(counts, key=lambda t: (counts[t], t.encode("utf-8")), reverse=True)
    return ranked[:max_tokens - specials] if max_tokens else ranked


def ref_int(corpus, vocab, length=None, **kw):
    rows = [[vocab.index(t) + 2 if t in vocab else 1 for t in ref_tokens(doc, **kw)] for doc in corpus]
    width = length if length is not None else max(map(len, rows))
    return np.array([(r + [0] * width)[:width] for r in rows], dtype=np.int64)


def words_corpus(seed, docs=12):
    rng = np.random.default_rng(seed)
    words = ["the", "The", "cat", "CAT!", "dog,", "a", "b", "é", "ÉLAN", "don't", "x-y", "Zz", "ünï", "a.b"]
    seps = [" ", "  ", "\t", "\n", " \u00a0", "\u2003"]
    return ["".join(w + seps[rng.integers(len(seps))] for w in rng.choice(words, rng.integers(0, 9)))
            for _ in range(docs)]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("standardize", ["lower_and_strip_punctuation", "lower", "strip_punctuation", None])
def test_int_mode_matches_reference(seed, standardize):
    corpus = words_corpus(seed)
    layer = TextVectorization(standardize=standardize)
    layer.adapt(corpus)
    vocab = ref_vocab(corpus, standardize=standardize)
    assert layer.get_vocabulary() == ["", "[UNK]"] + vocab
    assert layer.vocabulary_size() == len(vocab) + 2
    queries = words_corpus(seed + 100, docs=5)
    np.testing.assert_array_equal(layer(queries), ref_int(queries, vocab, standardize=standardize))


@pytest.mark.parametrize("max_tokens, length, ngrams, split", [(5, 3, None, "whitespace"), (None, 7, 2, "whitespace"),
                                                               (9, None, (2, 3), "whitespace"),
                                                               (6, 4, None, "character")])
def test_options_match_reference(max_tokens, length, ngrams, split):
    corpus = words_corpus(7)
    layer = TextVectorization(max_tokens=max_tokens, output_sequence_length=length, ngrams=ngrams, split=split)
    layer.adapt(corpus)
    kw = dict(ngrams=ngrams, split=split)
    vocab = ref_vocab(corpus, max_tokens, **kw)
    assert layer.get_vocabulary(include_special_tokens=False) == vocab
    queries = corpus[:3] + words_corpus(8, docs=3)
    out = layer(queries)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, ref_int(queries, vocab, length, **kw))


@pytest.mark.parametrize("mode", ["multi_hot", "count", "tf_idf"])
@pytest.mark.parametrize("pad", [False, True])
def test_vector_modes_match_reference(mode, pad):
    corpus = words_corpus(3)
    layer = TextVectorization(output_mode=mode, max_tokens=8, pad_to_max_tokens=pad)
    layer.adapt(corpus)
    vocab = ref_vocab(corpus, 8, specials=1)
    assert layer.get_vocabulary() == ["[UNK]"] + vocab
    depth = 8 if pad else len(vocab) + 1
    queries = corpus[:4] + ["qqq the the", ""]
    counts = np.zeros((len(queries), depth))
    for i, doc in enumerate(queries):
        for t in ref_tokens(doc):
            counts[i, vocab.index(t) + 1 if t in vocab else 0] += 1
    out = layer(queries)
    if mode == "multi_hot":
        np.testing.assert_array_equal(out, np.minimum(counts, 1))
        assert out.dtype == np.int64
    elif mode == "count":
        np.testing.assert_array_equal(out, counts)
    else:
        docs = [set(ref_tokens(doc)) for doc in corpus]
        idf = [math.log(1 + len(docs) / (1 + sum(t in d for d in docs))) for t in vocab]
        weights = np.array([np.mean(idf)] + idf + [0] * (depth - len(vocab) - 1))  # OOV: their mean
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, counts * weights, rtol=1e-6)


def test_outputs_checked_against_keras():
    """Printed by keras.layers.TextVectorization (Keras 3.15.1, TensorFlow backend) for the same calls."""
    layer = TextVectorization(max_tokens=5000, output_sequence_length=4)  # Keras's docstring example
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    np.testing.assert_array_equal(layer([["foo qux bar"], ["qux baz"]]), [[4, 1, 3, 0], [1, 2, 0, 0]])
    corpus = ["The cat sat on the mat.", "the dog ate my homework!", "Cat, DOG; bird?", "a b c a b a",
              "ÉCOLE école Ünï", "tab\tsep\nnew  line\u00a0nbsp\u2003em", "", "don't stop-believing"]
    layer = TextVectorization()
    layer.adapt(corpus)
    assert layer.get_vocabulary() == [
        "", "[UNK]", "the", "a", "dog", "cat", "b", "école", "Ünï", "École", "tab", "stopbelieving", "sep", "sat",
        "on", "new", "my", "mat", "line\xa0nbsp\u2003em", "homework", "dont", "c", "bird", "ate"]
    np.testing.assert_array_equal(layer(corpus[:3]), [[2, 5, 13, 14, 2, 17], [2, 4, 23, 16, 19, 0],
                                                      [5, 4, 22, 0, 0, 0]])
    np.testing.assert_array_equal(layer("the cat"), [2, 5])            # a scalar string: one row, no batch axis
    assert layer([["the cat"], ["dog"]]).shape == (2, 2)                # (N, 1) is squeezed
    layer = TextVectorization(ngrams=2)
    layer.adapt(["a b c", "b c d"])
    assert layer.get_vocabulary() == ["", "[UNK]", "c", "b c", "b", "d", "c d", "a b", "a"]
    np.testing.assert_array_equal(layer(["a b c d"]), [[8, 4, 2, 5, 7, 3, 6]])
    layer = TextVectorization(split=None)
    layer.adapt(["Hello World", "hello world", "x"])
    assert layer.get_vocabulary() == ["", "[UNK]", "hello world", "x"]
    np.testing.assert_array_equal(layer(["hello world", "x y", ""]), [2, 1, 0])
    layer = TextVectorization(output_mode="tf_idf")
    layer.adapt(corpus[:4])
    out = layer(["zzz the"])
    np.testing.assert_allclose(out[0, :2], [1.0406168, 0.84729785], rtol=1e-6)


def test_given_vocabulary():
    layer = TextVectorization(vocabulary=["earth", "wind", "and", "fire"])
    assert layer.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]
    assert layer.get_vocabulary(include_special_tokens=False) == ["earth", "wind", "and", "fire"]
    np.testing.assert_array_equal(layer(["earth and sky"]), [[2, 4, 1]])
    with pytest.raises(ValueError, match="Cannot adapt layer"):
        layer.adapt(["more text"])
    layer = TextVectorization(vocabulary=["", "[UNK]", "x", "y"])  # the special tokens may lead it
    assert layer.get_vocabulary() == ["", "[UNK]", "x", "y"]
    layer.set_vocabulary(np.array(["p", "q"]))
    np.testing.assert_array_equal(layer(["q p r"]), [[3, 2, 1]])
    with pytest.raises(ValueError, match="repeated"):
        layer.set_vocabulary(["a", "b", "a"])
    with pytest.raises(ValueError, match="mask token"):
        layer.set_vocabulary(["a", ""])
    with pytest.raises(ValueError, match="empty vocabulary"):
        layer.set_vocabulary([])
    with pytest.raises(ValueError, match="larger than the maximum"):
        TextVectorization(max_tokens=3, vocabulary=["a", "b"])
    with pytest.raises(ValueError, match="idf_weights"):
        TextVectorization(output_mode="tf_idf", vocabulary=["a"])
    layer = TextVectorization(output_mode="tf_idf", vocabulary=["a", "b"], idf_weights=[0.5, 1.5])
    np.testing.assert_allclose(layer(["a b b c"]), [[1.0, 0.5, 3.0]])  # OOV weight: the mean


def test_vocabulary_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("earth\nwind\nfire\n", encoding="utf-8")
    layer = TextVectorization(vocabulary=str(path))
    assert layer.get_vocabulary() == ["", "[UNK]", "earth", "wind", "fire"]
    assert layer.get_config()["vocabulary"] is None  # (Keras keeps file paths out of the config too)


def test_inputs_and_adapt_sources():
    layer = TextVectorization(max_tokens=4)
    batches = (["b b a", "c"] for _ in range(10))
    layer.adapt(batches, steps=2)
    assert layer.get_vocabulary() == ["", "[UNK]", "b", "c"]  # a and c tie (count 2 each): "c" > "a"
    for data in (["b c"], np.array(["b c"]), np.array([b"b c"], dtype=object), [b"b c"], np.array([["b c"]])):
        np.testing.assert_array_equal(layer(data), [[2, 3]])
    with pytest.raises(TypeError, match="expected strings"):
        layer([1, 2])
    with pytest.raises(ValueError, match="last shape dimension must be 1"):
        layer(np.array([["a", "b"]]))
    before = layer.get_vocabulary()
    layer.adapt([])  # nothing counted: the vocabulary stays (Keras)
    assert layer.get_vocabulary() == before


def test_callables():
    layer = TextVectorization(standardize=lambda x: np.char.upper(x), split=lambda x: [s.split("-") for s in x])
    layer.adapt(["a-b-b", "c"])
    assert layer.get_vocabulary() == ["", "[UNK]", "B", "C", "A"]
    np.testing.assert_array_equal(layer(["b-z"]), [[2, 1]])


def test_config_round_trip_and_errors():
    layer = TextVectorization(max_tokens=10, ngrams=(1, 2), output_sequence_length=5, name="tv")
    layer.adapt(["a b c"])
    config = layer.get_config()
    for key in ("max_tokens", "standardize", "split", "ngrams", "output_mode", "output_sequence_length",
                "pad_to_max_tokens", "sparse", "ragged", "vocabulary", "idf_weights", "encoding", "vocabulary_size"):
        assert key in config
    assert config["vocabulary_size"] == 7 and config["ngrams"] == (1, 2)
    clone = TextVectorization.from_config(dict(config, ngrams=[1, 2], name="tv2"))
    assert clone.get_config()["ngrams"] == (1, 2)
    for bad in (dict(standardize="upper"), dict(split="comma"), dict(output_mode="one_hot"), dict(ngrams=1.5),
                dict(output_mode="count", output_sequence_length=3), dict(sparse=True), dict(ragged=True)):
        with pytest.raises(ValueError):
            TextVectorization(**bad)
    with pytest.raises(RuntimeError, match="vocabulary before calling"):
        TextVectorization(output_mode="count")(["a"])
    assert hasattr(fastnn.layers, "TextVectorization")


def test_symbolic_call_gives_the_output_shape():
    layer = TextVectorization(output_sequence_length=6, vocabulary=["a"])
    out = layer(fastnn.layers.Input(shape=(1,)))
    assert tuple(out.shape) == (None, 6)
    layer = TextVectorization(output_mode="multi_hot", vocabulary=["a", "b"])
    assert tuple(layer(fastnn.layers.Input(shape=(1,))).shape) == (None, 3)


@pytest.mark.parametrize("mode", ["int", "tf_idf"])
def test_assets_and_variables_round_trip(tmp_path, mode):
    """Keras's .keras hooks: the adapted vocabulary goes to assets/vocabulary.txt, TF-IDF weights to a store."""
    corpus = words_corpus(11)
    layer = TextVectorization(output_mode=mode)
    layer.adapt(corpus)
    store = {}
    layer.save_assets(str(tmp_path))
    layer.save_own_variables(store)
    assert (tmp_path / "vocabulary.txt").read_text(encoding="utf-8").split("\n") == layer.get_vocabulary()
    clone = TextVectorization.from_config(dict(layer.get_config(), name="clone"))
    clone.load_own_variables(store)
    clone.load_assets(str(tmp_path))
    assert clone.get_vocabulary() == layer.get_vocabulary()
    np.testing.assert_array_equal(clone(corpus), layer(corpus))
