"""pad_sequences vs a plain-Python reference of Keras's rules (keras/src/utils/sequence_utils.py), plus the
cases checked once against Keras 3.15 itself (results written out below), and the module-path aliases."""
import numpy as np
import pytest

from fastnn.utils import pad_sequences


def reference(seqs, maxlen=None, padding="pre", truncating="pre", value=0):
    """Keras's rule on lists of numbers, one element at a time: keep the last (pre) or first (post) maxlen
    items, then put them at the end (pre) or start (post) of a row of `value`."""
    if maxlen is None:
        maxlen = max(len(s) for s in seqs)
    rows = []
    for s in seqs:
        s = list(s)
        kept = s[len(s) - min(len(s), maxlen):] if truncating == "pre" else s[:maxlen]
        pad = [value] * (maxlen - len(kept))
        rows.append(pad + kept if padding == "pre" else kept + pad)
    return rows


@pytest.mark.parametrize("padding", ["pre", "post"])
@pytest.mark.parametrize("truncating", ["pre", "post"])
@pytest.mark.parametrize("maxlen", [None, 0, 1, 3, 7])
def test_matches_reference(padding, truncating, maxlen):
    rng = np.random.default_rng(7)
    seqs = [list(rng.integers(1, 100, size=n)) for n in [0, 1, 2, 5, 3, 9, 0, 4]]
    got = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating, value=-3)
    want = reference(seqs, maxlen, padding, truncating, value=-3)
    assert got.dtype == np.int32
    assert got.shape == (len(seqs), maxlen if maxlen is not None else 9)
    np.testing.assert_array_equal(got, np.array(want, dtype=np.int32).reshape(got.shape))


def test_keras_docstring_and_checked_cases():
    seq = [[1], [2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(pad_sequences(seq), [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seq, value=-1), [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seq, padding="post"), [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(pad_sequences(seq, maxlen=2), [[0, 1], [2, 3], [5, 6]])
    np.testing.assert_array_equal(pad_sequences(seq, maxlen=2, truncating="post", padding="post"),
                                  [[1, 0], [2, 3], [4, 5]])
    # the following results were printed by keras.utils.pad_sequences (Keras 3.15.1)
    out = pad_sequences([[], []])
    assert out.shape == (2, 0) and out.dtype == np.int32
    out = pad_sequences([[1.5, 2.7]], maxlen=3, dtype="float32", value=-1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[-1, 1.5, 2.7]], np.float32))
    np.testing.assert_array_equal(pad_sequences([[1.5, 2.7]], maxlen=3), [[0, 1, 2]])  # int32 truncates
    np.testing.assert_array_equal(pad_sequences([[1, 2], [3]], value=0.7), [[1, 2], [0, 3]])
    np.testing.assert_array_equal(pad_sequences(np.array([[1, 2, 3], [4, 5, 6]]), maxlen=2), [[2, 3], [5, 6]])


def test_strings():
    out = pad_sequences([["a", "bb"], ["c"]], dtype=object, value="")
    assert out.dtype == object and out.tolist() == [["a", "bb"], ["", "c"]]
    out = pad_sequences([["a", "bb"], ["c"]], dtype="<U3", value="x")
    assert out.dtype == np.dtype("<U3") and out.tolist() == [["a", "bb"], ["x", "c"]]
    out = pad_sequences([["a", "bb"], ["c"]], dtype=str, value="x")  # Keras: dtype str is '<U1' (cuts "bb")
    assert out.dtype == np.dtype("<U1") and out.tolist() == [["a", "b"], ["x", "c"]]
    with pytest.raises(ValueError, match="dtype=object"):
        pad_sequences([["a"]], value="x")


def test_item_shape_from_first_nonempty_sequence():
    out = pad_sequences([[], [[1, 2], [3, 4]], [[5, 6]]])
    assert out.shape == (3, 2, 2)
    np.testing.assert_array_equal(out, [[[0, 0], [0, 0]], [[1, 2], [3, 4]], [[0, 0], [5, 6]]])
    with pytest.raises(ValueError, match="position 1"):
        pad_sequences([[1, 2], [[3]]])


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="must be iterable"):
        pad_sequences(5)
    with pytest.raises(ValueError, match="non-iterable: 1"):
        pad_sequences([1, 2])
    with pytest.raises(ValueError, match='Padding type "mid"'):
        pad_sequences([[]], padding="mid")  # Keras only notices with a non-empty sequence
    with pytest.raises(ValueError, match='Truncating type "x"'):
        pad_sequences([[1]], truncating="x")
    with pytest.raises(ValueError, match="empty list"):
        pad_sequences([])
    assert pad_sequences([], maxlen=4).shape == (0, 4)
    for bad in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="maxlen"):
            pad_sequences([[1, 2]], maxlen=bad)


def test_module_paths():
    import fastnn.preprocessing
    from fastnn.preprocessing.sequence import pad_sequences as from_preprocessing
    assert from_preprocessing is pad_sequences is fastnn.utils.pad_sequences
    assert fastnn.preprocessing.sequence.pad_sequences is pad_sequences
    assert "pad_sequences" in fastnn.utils.__all__
    import fastnn.preprocessing.image as image
    with pytest.raises(AttributeError, match="no_such_name_here"):
        image.no_such_name_here  # noqa: B018
    if not hasattr(fastnn.utils, "load_img"):
        with pytest.raises(AttributeError, match="fastnn.utils.load_img"):
            image.load_img  # noqa: B018
    else:
        assert image.load_img is fastnn.utils.load_img
