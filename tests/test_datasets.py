"""Dataset loaders on small files written here in the real formats (npz, gz IDX, CIFAR tar.gz of
pickled batches). The network is never used: the downloader's `_urlopen` is replaced."""
import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import urllib.error

import numpy as np
import pytest

from fastnn.datasets import _download, _safe_pickle, cifar10, digits, fashion_mnist, mnist
from fastnn.datasets import DatasetUnavailableError


def sha(b):
    return hashlib.sha256(b).hexdigest()


class FakeWeb:
    """Serves given bytes per URL and records requests; any other URL fails like a dead network."""

    def __init__(self, files=None):
        self.files = dict(files or {})
        self.requests = []

    def __call__(self, url):
        self.requests.append(url)
        if url not in self.files:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return io.BytesIO(self.files[url])


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path / "fnhome"))
    web = FakeWeb()
    monkeypatch.setattr(_download, "_urlopen", web)
    return tmp_path / "fnhome" / "datasets", web


def mnist_bytes(seed=0):
    r = np.random.default_rng(seed)
    buf = io.BytesIO()
    arrays = dict(x_train=r.integers(0, 256, (6, 28, 28), dtype=np.uint8), y_train=r.integers(0, 10, 6, dtype=np.uint8),
                  x_test=r.integers(0, 256, (3, 28, 28), dtype=np.uint8), y_test=r.integers(0, 10, 3, dtype=np.uint8))
    np.savez_compressed(buf, **arrays)
    return buf.getvalue(), arrays


def serve_mnist(monkeypatch, web, data):
    monkeypatch.setattr(mnist, "SHA256", sha(data))
    web.files[mnist.ORIGIN] = data


# ---------------------------------------------------------------- downloader + mnist (npz)

def test_mnist_download_cache_and_reuse(home, monkeypatch):
    cache, web = home
    data, arrays = mnist_bytes()
    serve_mnist(monkeypatch, web, data)
    (xtr, ytr), (xte, yte) = mnist.load_data()
    assert (cache / "mnist.npz").read_bytes() == data
    for got, key in ((xtr, "x_train"), (ytr, "y_train"), (xte, "x_test"), (yte, "y_test")):
        np.testing.assert_array_equal(got, arrays[key])
        assert got.dtype == np.uint8
    assert sorted(os.listdir(cache)) == ["mnist.npz"]          # no temporary file left behind
    del web.files[mnist.ORIGIN]                                # offline now: the cache is used
    (xtr2, _), _ = mnist.load_data()
    np.testing.assert_array_equal(xtr2, xtr)
    assert len(web.requests) == 1


def test_hash_mismatch_saves_nothing(home, monkeypatch):
    cache, web = home
    data, _ = mnist_bytes()
    serve_mnist(monkeypatch, web, data)
    web.files[mnist.ORIGIN] = data[:100] + bytes([data[100] ^ 1]) + data[101:]   # one bit flipped
    with pytest.raises(ValueError, match="sha256"):
        mnist.load_data()
    assert not cache.exists() or os.listdir(cache) == []


def test_offline_without_cache_names_the_path(home, monkeypatch):
    cache, web = home
    with pytest.raises(DatasetUnavailableError) as e:
        mnist.load_data()
    msg = str(e.value)
    assert str(cache / "mnist.npz") in msg and mnist.ORIGIN in msg and mnist.SHA256 in msg
    assert "FASTNN_HOME" in msg
    assert os.listdir(cache) == []                             # no .part file left


def test_corrupted_cache_is_replaced_or_reported(home, monkeypatch):
    cache, web = home
    data, arrays = mnist_bytes()
    monkeypatch.setattr(mnist, "SHA256", sha(data))
    cache.mkdir(parents=True)
    (cache / "mnist.npz").write_bytes(b"planted")
    with pytest.raises(DatasetUnavailableError, match="corrupted"):   # offline: reported, not trusted
        mnist.load_data()
    web.files[mnist.ORIGIN] = data                                     # online: downloaded again
    (xtr, _), _ = mnist.load_data()
    np.testing.assert_array_equal(xtr, arrays["x_train"])
    assert (cache / "mnist.npz").read_bytes() == data


def test_cache_dir_default_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTNN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert _download.cache_dir() == os.path.join(str(tmp_path / "h"), ".fastnn", "datasets")
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path / "other"))
    assert _download.cache_dir() == os.path.join(str(tmp_path / "other"), "datasets")


def test_mnist_absolute_and_relative_path(home, monkeypatch, tmp_path):
    cache, web = home
    data, arrays = mnist_bytes(1)
    serve_mnist(monkeypatch, web, data)
    target = tmp_path / "elsewhere" / "m.npz"
    (xtr, _), _ = mnist.load_data(path=str(target))
    assert target.read_bytes() == data
    mnist.load_data(path="sub/m2.npz")
    assert (cache / "sub" / "m2.npz").exists()


def test_mnist_wrong_npz_content(home, monkeypatch):
    cache, web = home
    buf = io.BytesIO()
    np.savez(buf, a=np.zeros(3))
    serve_mnist(monkeypatch, web, buf.getvalue())
    with pytest.raises(ValueError, match="not an MNIST file"):
        mnist.load_data()


# ---------------------------------------------------------------- fashion_mnist (gz IDX)

def idx_gz(arr):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(header + arr.astype(np.uint8).tobytes())


def test_fashion_mnist_idx(home, monkeypatch):
    cache, web = home
    r = np.random.default_rng(2)
    arrays = {"train-images": r.integers(0, 256, (5, 28, 28)), "train-labels": r.integers(0, 10, 5),
              "t10k-images": r.integers(0, 256, (2, 28, 28)), "t10k-labels": r.integers(0, 10, 2)}
    hashes = {}
    for key, arr in arrays.items():
        fname = f"{key}-idx{arr.ndim}-ubyte.gz"
        blob = idx_gz(arr)
        web.files[fashion_mnist.BASE + fname] = blob
        hashes[fname] = sha(blob)
    assert sorted(hashes) == sorted(fashion_mnist.FILE_HASHES)
    monkeypatch.setattr(fashion_mnist, "FILE_HASHES", hashes)
    (xtr, ytr), (xte, yte) = fashion_mnist.load_data()
    np.testing.assert_array_equal(xtr, arrays["train-images"])
    np.testing.assert_array_equal(ytr, arrays["train-labels"])
    np.testing.assert_array_equal(xte, arrays["t10k-images"])
    np.testing.assert_array_equal(yte, arrays["t10k-labels"])
    assert xtr.dtype == ytr.dtype == np.uint8
    assert sorted(os.listdir(cache / "fashion-mnist")) == sorted(hashes)


def test_keras_hashes_are_pinned():
    for h in [mnist.SHA256, cifar10.SHA256, *fashion_mnist.FILE_HASHES.values()]:
        assert len(h) == 64 and int(h, 16) >= 0


def test_idx_reader_rejects_bad_files(tmp_path):
    p = tmp_path / "bad-idx1-ubyte.gz"
    p.write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abc"))   # says 5 bytes, has 3
    with pytest.raises(ValueError, match="needs"):
        fashion_mnist.read_idx(p)
    p.write_bytes(gzip.compress(b"PK\x03\x04garbage"))
    with pytest.raises(ValueError, match="not an IDX file"):
        fashion_mnist.read_idx(p)


# ---------------------------------------------------------------- cifar10 (tar.gz of pickles)

def py2_batch(data, labels):
    """A batch pickled the way the real CIFAR files are (Python 2 cPickle, protocol 2): str keys
    and the array's raw bytes as Python 2 str opcodes, numpy.core.multiarray._reconstruct."""
    def s(b):
        return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)
    n = data.shape[0]
    return (b"\x80\x02}q\x01(" + s(b"batch_label") + s(b"training batch 1 of 5") + s(b"data")
            + b"cnumpy.core.multiarray\n_reconstruct\nq\x05cnumpy\nndarray\nq\x06K\x00\x85U\x01b\x87Rq\x07("
            + b"K\x01K" + bytes([n]) + b"M" + struct.pack("<H", 3072) + b"\x86"
            + b"cnumpy\ndtype\nq\x08U\x02u1K\x00K\x01\x87Rq\t(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb"
            + b"\x89" + s(data.tobytes()) + b"tb"
            + s(b"labels") + b"]q\n(" + b"".join(b"K" + bytes([int(v)]) for v in labels) + b"eu.")


def cifar_archive(batches, extra=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, blob in list(batches.items()) + list(extra):
            info = tarfile.TarInfo("cifar-10-batches-py/" + name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


def make_cifar(n=3, seed=0, py2_first=True):
    r = np.random.default_rng(seed)
    batches, truth = {}, {}
    for name in ["data_batch_3", "test_batch", "data_batch_1", "data_batch_5", "data_batch_2", "data_batch_4"]:
        data = r.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in r.integers(0, 10, n)]
        truth[name] = (data, labels)
        if py2_first and name == "data_batch_1":
            batches[name] = py2_batch(data, labels)
        else:  # what Python 3's pickle writes with protocol 2 (bytes keys, as encoding="bytes" gives)
            batches[name] = pickle.dumps({b"batch_label": b"x", b"data": data, b"labels": labels,
                                          b"filenames": [b"f.png"] * n}, protocol=2)
    return batches, truth


def test_cifar10_reads_archive(home, monkeypatch):
    cache, web = home
    batches, truth = make_cifar()
    blob = cifar_archive(batches, extra=[("readme.html", b"<html/>"), ("batches.meta", pickle.dumps({}, 2))])
    monkeypatch.setattr(cifar10, "SHA256", sha(blob))
    web.files[cifar10.ORIGIN] = blob
    (xtr, ytr), (xte, yte) = cifar10.load_data()
    assert xtr.shape == (15, 32, 32, 3) and ytr.shape == (15, 1) and xte.shape == (3, 32, 32, 3) and yte.shape == (3, 1)
    assert xtr.dtype == ytr.dtype == xte.dtype == yte.dtype == np.uint8 and xtr.flags.c_contiguous
    data = np.concatenate([truth[f"data_batch_{i}"][0] for i in range(1, 6)])
    labels = np.concatenate([truth[f"data_batch_{i}"][1] for i in range(1, 6)])
    # pixel (row r, column c, channel ch) of image i is data[i, ch*1024 + r*32 + c]
    np.testing.assert_array_equal(xtr, data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    assert xtr[4, 5, 6, 2] == data[4, 2 * 1024 + 5 * 32 + 6]
    np.testing.assert_array_equal(ytr[:, 0], labels)
    np.testing.assert_array_equal(yte[:, 0], truth["test_batch"][1])
    assert (cache / "cifar-10-python.tar.gz").exists()


def test_cifar10_missing_batch_and_offline(home, monkeypatch):
    cache, web = home
    with pytest.raises(DatasetUnavailableError, match="cifar-10-python.tar.gz"):
        cifar10.load_data()
    batches, _ = make_cifar()
    del batches["data_batch_4"]
    blob = cifar_archive(batches)
    monkeypatch.setattr(cifar10, "SHA256", sha(blob))
    web.files[cifar10.ORIGIN] = blob
    with pytest.raises(ValueError, match="data_batch_4 missing"):
        cifar10.load_data()


class _Exploit:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_cifar10_refuses_code_in_pickles(home, monkeypatch, tmp_path):
    cache, web = home
    batches, _ = make_cifar()
    marker = str(tmp_path / "pwned")
    batches["data_batch_2"] = pickle.dumps({b"data": _Exploit(marker)}, protocol=2)
    blob = cifar_archive(batches)
    monkeypatch.setattr(cifar10, "SHA256", sha(blob))
    web.files[cifar10.ORIGIN] = blob
    with pytest.raises(_safe_pickle.UnsafePickleError, match="refusing to load global"):
        cifar10.load_data()
    assert not os.path.exists(marker)


@pytest.mark.parametrize("protocol", [2, 3, 4])
def test_safe_pickle_round_trip(protocol):
    obj = {b"k": [1, -2, 70000, 2**40, 1.5, None, True], "s": "text", "b": b"\x00\xff",
           "u8": np.arange(12, dtype=np.uint8).reshape(3, 4), "f64": np.linspace(0, 1, 6).reshape(2, 3).T,
           "i32": np.array([-1, 2], dtype=">i4"), "bool": np.array([True, False]), "empty": np.zeros((0, 2), np.float32),
           "t": (1, (2, 3))}
    got = _safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
    assert got.keys() == obj.keys()
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            assert got[k].dtype == v.dtype.newbyteorder("=") and got[k].shape == v.shape
            np.testing.assert_array_equal(got[k], v)
            assert got[k].flags.writeable
        else:
            assert got[k] == v


@pytest.mark.parametrize("bad, match", [
    (lambda: pickle.dumps(np.array([1, None], dtype=object), 2), "dtype"),
    (lambda: pickle.dumps({"a": np.arange(10)}, 2)[:-30], "truncated"),
    (lambda: pickle.dumps(np.arange(3), 5), "protocol 5"),
    (lambda: pickle.dumps(_Exploit("/nonexistent/x"), 2), "posix.mkdir|nt.mkdir"),
    (lambda: b"\x80\x02cbuiltins\neval\n.", "builtins.eval"),
    (lambda: b"\x80\x02K\x01K\x02.", "unbalanced"),
    (lambda: b"\x80\x02\xff.", "opcode"),
    (lambda: b"\x80\x02K\x01K\x02a.", "list expected"),                    # APPEND onto an int
    (lambda: pickle.dumps(np.arange(4), 2).replace(b"K\x04\x85", b"\x8a\x08" + (2**62).to_bytes(8, "little") + b"\x85"),
     "needs"),                                                                  # shape far beyond the data
    (lambda: b"\x80\x02" + b"]" * 100000 + b"a" * 99999 + b".", "malformed"),  # nesting deeper than the stack
])
def test_safe_pickle_refusals(bad, match):
    with pytest.raises(_safe_pickle.UnsafePickleError, match=match):
        _safe_pickle.loads(bad())


# ---------------------------------------------------------------- digits (bundled)

def test_digits_bundled_split():
    (xtr, ytr), (xte, yte) = digits.load_data()
    assert os.path.isfile(digits.DATA_PATH)
    assert os.path.isfile(os.path.join(os.path.dirname(digits.DATA_PATH), "README.md"))   # the credit
    assert xtr.shape == (1442, 8, 8) and xte.shape == (355, 8, 8) and ytr.shape == (1442,) and yte.shape == (355,)
    assert xtr.dtype == ytr.dtype == xte.dtype == yte.dtype == np.uint8
    assert xtr.max() == 16 and xtr.min() == 0
    assert len(xtr) + len(xte) == 1797
    ctr, cte = np.bincount(ytr, minlength=10), np.bincount(yte, minlength=10)
    assert np.all(np.abs(cte / (ctr + cte) - 0.2) < 0.01)       # stratified 80/20
    (xtr2, ytr2), (xte2, yte2) = digits.load_data()            # deterministic
    np.testing.assert_array_equal(xtr2, xtr)
    np.testing.assert_array_equal(yte2, yte)
    with np.load(digits.DATA_PATH) as f:                       # the split is a partition of the file
        both = np.concatenate([xtr, xte]).reshape(len(f["images"]), -1)
        assert sorted(map(bytes, both)) == sorted(map(bytes, f["images"].reshape(len(f["images"]), -1)))
