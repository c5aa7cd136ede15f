"""IMDB and Reuters loaders on small fake files with Keras's structure (numpy .npz of object arrays of int
lists + integer labels; JSON word indices) in a temporary FASTNN_HOME; no network. Results are compared with
`keras_reference` below: Keras's load_data logic (keras/src/datasets/imdb.py, reuters.py) written out plainly
(the same fake files gave identical results under Keras 3.15.1 itself). Hostile files are refused."""
import hashlib
import io
import json
import os
import pickle
import urllib.error
import zipfile

import numpy as np
import pytest

from fastnn.datasets import DatasetUnavailableError, _download, _safe_npz, _safe_pickle, imdb, reuters


class DeadNetwork:
    def __init__(self):
        self.requests = []

    def __call__(self, url):
        self.requests.append(url)
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(_download, "_urlopen", DeadNetwork())
    folder = tmp_path / "home" / "datasets"
    folder.mkdir(parents=True)
    return folder


def ragged(rng, n, vocab, lo=1, hi=30):
    a = np.empty(n, dtype=object)
    for i in range(n):
        a[i] = [int(v) for v in rng.integers(1, vocab, size=rng.integers(lo, hi))]
    return a


def put(cache, monkeypatch, module, fname, **arrays):
    """Write `fname` into the cache as Keras's file would be (np.savez of object arrays) and pin its hash."""
    np.savez(cache / fname, **arrays)
    monkeypatch.setattr(module, "SHA256", hashlib.sha256((cache / fname).read_bytes()).hexdigest())


def fake_imdb(cache, monkeypatch, seed=5):
    rng = np.random.default_rng(seed)
    arrays = dict(x_train=ragged(rng, 40, 60), y_train=rng.integers(0, 2, 40), x_test=ragged(rng, 30, 70),
                  y_test=rng.integers(0, 2, 30))
    put(cache, monkeypatch, imdb, "imdb.npz", **arrays)
    return arrays


def fake_reuters(cache, monkeypatch, seed=6):
    rng = np.random.default_rng(seed)
    arrays = dict(x=ragged(rng, 57, 80), y=rng.integers(0, 46, 57))
    put(cache, monkeypatch, reuters, "reuters.npz", **arrays)
    return arrays


def keras_reference(parts, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=1, oov_char=2,
                    index_from=3):
    """Keras's steps on [(x, labels), ...] (IMDB: train then test; Reuters: one part, split afterwards):
    shuffle each part with one RandomState, shift, drop sequences of length >= maxlen, limit the indices."""
    rng = np.random.RandomState(seed)
    done = []
    for x, y in parts:
        order = np.arange(len(x))
        rng.shuffle(order)
        seqs = [([start_char] if start_char is not None else []) + [w + index_from for w in x[i]] for i in order]
        labels = [y[i] for i in order]
        if maxlen:
            keep = [i for i, s in enumerate(seqs) if len(s) < maxlen]
            seqs, labels = [seqs[i] for i in keep], [labels[i] for i in keep]
        done.append((seqs, labels))
    everything = [s for seqs, _ in done for s in seqs]
    top = num_words or max(max(s) for s in everything)  # num_words=None: the largest index is out of range
    out = []
    for seqs, labels in done:
        if oov_char is not None:
            seqs = [[w if skip_top <= w < top else oov_char for w in s] for s in seqs]
        else:
            seqs = [[w for w in s if skip_top <= w < top] for s in seqs]
        out.append((seqs, labels))
    return out


GRID = [dict(), dict(num_words=20), dict(skip_top=5, num_words=30), dict(maxlen=10), dict(maxlen=15, seed=7),
        dict(start_char=None), dict(start_char=None, index_from=0), dict(oov_char=None, num_words=25, skip_top=4),
        dict(index_from=10, num_words=40)]


@pytest.mark.parametrize("kw", GRID)
def test_imdb_matches_keras(cache, monkeypatch, kw):
    arrays = fake_imdb(cache, monkeypatch)
    (xtr, ytr), (xte, yte) = imdb.load_data(**kw)
    (rtr, ltr), (rte, lte) = keras_reference([(arrays["x_train"], arrays["y_train"]),
                                              (arrays["x_test"], arrays["y_test"])], **kw)
    assert xtr.dtype == object and xte.dtype == object and xtr.ndim == 1
    assert xtr.tolist() == rtr and xte.tolist() == rte
    assert ytr.tolist() == ltr and yte.tolist() == lte and ytr.dtype == np.int64


@pytest.mark.parametrize("kw", GRID + [dict(test_split=0.5), dict(test_split=0.3, maxlen=12)])
def test_reuters_matches_keras(cache, monkeypatch, kw):
    arrays = fake_reuters(cache, monkeypatch)
    kw = dict(kw)
    split = kw.pop("test_split", 0.2)
    (xtr, ytr), (xte, yte) = reuters.load_data(test_split=split, **kw)
    [(seqs, labels)] = keras_reference([(arrays["x"], arrays["y"])], **kw)
    idx = int(len(seqs) * (1 - split))
    assert xtr.tolist() == seqs[:idx] and xte.tolist() == seqs[idx:]
    assert ytr.tolist() == labels[:idx] and yte.tolist() == labels[idx:]


def test_semantics_by_hand(cache, monkeypatch):
    """Two reviews, no randomness to follow: lengths, start marks, OOV and maxlen as documented."""
    x = np.empty(2, dtype=object)
    x[0], x[1] = [1, 2, 3, 4], [5, 1]
    put(cache, monkeypatch, imdb, "imdb.npz", x_train=x, y_train=np.array([0, 1]), x_test=x[1:].copy(),
        y_test=np.array([1]))
    (xtr, ytr), (xte, _) = imdb.load_data(num_words=6, skip_top=4)
    rows = sorted(map(tuple, xtr.tolist()))
    # indices + 3: [4, 5, 6, 7] and [8, 4]; start mark 1 (< skip_top=4: OOV too); >= 6 or < 4 -> 2
    assert rows == [(2, 2, 4), (2, 4, 5, 2, 2)]
    assert xte.tolist() == [[2, 2, 4]]
    (xtr, _), _ = imdb.load_data(maxlen=5)  # [1, 4, 5, 6, 7] has length 5: dropped (kept only if < maxlen)
    assert xtr.tolist() == [[1, 2, 4]]  # num_words=None: the largest index (8) is out of range, as in Keras
    with pytest.raises(ValueError, match="Increase maxlen"):
        imdb.load_data(maxlen=2)


def test_word_index_and_labels(cache, monkeypatch):
    index = {"the": 1, "and": 2, "film": 19}
    (cache / "imdb_word_index.json").write_text(json.dumps(index))
    monkeypatch.setattr(imdb, "WORD_INDEX_MD5", hashlib.md5((cache / "imdb_word_index.json").read_bytes()).hexdigest())
    assert imdb.get_word_index() == index
    (cache / "reuters_word_index.json").write_text("[1, 2]")
    monkeypatch.setattr(reuters, "WORD_INDEX_MD5",
                        hashlib.md5((cache / "reuters_word_index.json").read_bytes()).hexdigest())
    with pytest.raises(ValueError, match="not a word index"):
        reuters.get_word_index()
    names = reuters.get_label_names()
    assert len(names) == 46 and names[:4] == ("cocoa", "grain", "veg-oil", "earn") and names[-1] == "lead"


def test_keras_urls_and_hashes():
    assert imdb.SHA256 == "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    assert reuters.SHA256 == "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    assert (imdb.WORD_INDEX_MD5, reuters.WORD_INDEX_MD5) == ("bfafd718b763782e994055a2d397834f",
                                                            "4d44cc38712099c9e383dc6e5f11a921")


@pytest.mark.parametrize("load, fname", [(imdb.load_data, "imdb.npz"), (reuters.load_data, "reuters.npz"),
                                         (imdb.get_word_index, "imdb_word_index.json"),
                                         (reuters.get_word_index, "reuters_word_index.json")])
def test_offline_error_names_url_and_path(cache, load, fname):
    with pytest.raises(DatasetUnavailableError) as e:
        load()
    msg = str(e.value)
    assert "https://storage.googleapis.com/tensorflow/tf-keras-datasets/" + fname in msg
    assert os.path.join(str(cache), fname) in msg and "FASTNN_HOME" in msg
    assert ("md5" if fname.endswith(".json") else "sha256") in msg


def test_wrong_hash_in_cache_is_not_trusted(cache, monkeypatch):
    fake_imdb(cache, monkeypatch)
    monkeypatch.setattr(imdb, "SHA256", "0" * 64)
    with pytest.raises(DatasetUnavailableError, match="corrupted or a different file"):
        imdb.load_data()


# ---------------------------------------------------------------- hostile files

class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def npy_with_pickle(payload, descr="|O", shape=(1,)):
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode("latin1")
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + payload


def write_npz(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_hostile_object_member_is_refused(tmp_path, protocol):
    marker = tmp_path / "pwned"
    inner = np.empty(2, dtype=object)
    inner[0], inner[1] = [1, 2], RunsCode(marker)
    path = tmp_path / "bad.npz"
    write_npz(path, {"x.npy": npy_with_pickle(pickle.dumps(inner, protocol=protocol), shape=(2,))})
    with pytest.raises(_safe_pickle.UnsafePickleError, match="refusing to load global|protocol 5"):
        _safe_npz.load_npz(path)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_object_arrays_of_every_protocol_are_read(tmp_path, protocol):
    """numpy's np.save pickles object arrays (Python 2 era files use protocol 2): read them all, nested ints
    of every size (BININT1, BININT2, BININT, LONG1) and long lists (numpy batches APPENDS by 1000)."""
    x = np.empty(4, dtype=object)
    x[0], x[1], x[2], x[3] = [1, 255, 256, 65535, 65536, -1, 2**31 - 1, -2**31, 2**40], [], list(range(2500)), [7]
    path = tmp_path / "ok.npz"
    write_npz(path, {"x.npy": npy_with_pickle(pickle.dumps(x, protocol=protocol), shape=(4,)),
                     "y.npy": _npy(np.arange(4))})
    got = _safe_npz.load_npz(path)
    assert got["x"].dtype == object and [list(s) for s in got["x"]] == [list(s) for s in x]
    assert got["y"].tolist() == [0, 1, 2, 3]


def _npy(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_other_hostile_npz_files(tmp_path, monkeypatch):
    path = tmp_path / "bad.npz"
    inner = np.empty(2, dtype=object)
    inner[0], inner[1] = [1], np.dtype  # an allowed global left as data, not called: refused too
    write_npz(path, {"x.npy": npy_with_pickle(pickle.dumps(inner, protocol=4), shape=(2,))})
    with pytest.raises(_safe_pickle.UnsafePickleError, match="incomplete object"):
        _safe_npz.load_npz(path)
    write_npz(path, {"x.npy": npy_with_pickle(pickle.dumps(np.zeros(3)), descr=[("a", "|O")])})
    with pytest.raises(ValueError, match="structured"):
        _safe_npz.load_npz(path)
    write_npz(path, {"x.npy": npy_with_pickle(pickle.dumps(np.array([1, 2], dtype=object)), shape=(3,))})
    with pytest.raises(ValueError, match="does not match its header"):
        _safe_npz.load_npz(path)
    write_npz(path, {"x.npy": b"\x93NUMPY\x01\x00\x08\x00__import__('os')\n"})
    with pytest.raises(ValueError, match="malformed .npy header"):
        _safe_npz.load_npz(path)
    write_npz(path, {"x.npy": b"not numpy"})
    with pytest.raises(ValueError, match="not a .npy file"):
        _safe_npz.load_npz(path)
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(ValueError, match="not a readable .npz"):
        _safe_npz.load_npz(tmp_path / "junk.npz")
    # a member larger than the limit once decompressed (a zip bomb) is refused before it is read
    monkeypatch.setattr(_safe_npz, "MAX_MEMBER_BYTES", 1000)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("x.npy", _npy(np.zeros(10_000, np.uint8)))
    with pytest.raises(ValueError, match="at most 1000"):
        _safe_npz.load_npz(path)


def test_loader_checks_the_structure(cache, monkeypatch):
    put(cache, monkeypatch, imdb, "imdb.npz", x_train=np.zeros((2, 3)), y_train=np.zeros(2, np.int64),
        x_test=np.zeros((1, 3)), y_test=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="object array of sequences"):
        imdb.load_data()
    x = np.empty(1, dtype=object)
    x[0] = ["a", "b"]
    put(cache, monkeypatch, reuters, "reuters.npz", x=x, y=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="not a sequence of integers"):
        reuters.load_data()
    put(cache, monkeypatch, reuters, "reuters.npz", z=np.zeros(1))
    with pytest.raises(ValueError, match="lacks"):
        reuters.load_data()
