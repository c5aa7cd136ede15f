"""Hostile and damaged files: loading never executes anything, never allocates beyond a bound, and raises a clear
ValueError naming the file; a save killed at any moment leaves the previous file loadable."""
import io
import json
import os
import pickle
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zipfile

import numpy as np
import pytest

import fastnn
from fastnn.datasets import cifar10
from fastnn.layers import Dense, Input
from fastnn.models import Sequential, load_model

h5py = pytest.importorskip("h5py")


def tiny(name="tiny"):
    return Sequential([Input((2,)), Dense(1)], name=name)


@pytest.fixture
def saved(tmp_path):
    """A small compiled, trained model saved as .keras, .weights.h5 and .h5."""
    fastnn.utils.set_random_seed(0)
    model = Sequential([Input((3,)), Dense(4, activation="relu"), Dense(2)])
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    model.fit(np.ones((8, 3), np.float32), np.ones((8, 2), np.float32), batch_size=4, verbose=0)
    for suffix in (".keras", ".weights.h5", ".h5"):
        if suffix == ".weights.h5":
            model.save_weights(tmp_path / ("m" + suffix))
        else:
            model.save(tmp_path / ("m" + suffix))
    return model, tmp_path


def rezip(src, dst, replace=None, extra=()):
    """Copy a .keras zip, replacing members by name ({name: bytes}) and appending ``extra`` [(name, bytes)]."""
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for name in zin.namelist():
            zout.writestr(name, replace.get(name, zin.read(name)))
        for name, data in extra:
            zout.writestr(name, data)
    return dst


def config_of(path):
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))


# ---- names a config may not reach ------------------------------------------------------------------------------
HOSTILE = ["__builtins__", "__class__", "__dict__", "__init__", "core", "base", "activations", "os", "Input", "add",
           "Variable", "Function", "get", "serialize", "Tensor"]


def edited(tmp_path, edit):
    config = config_of(tmp_path / "m.keras")
    edit(config)
    return rezip(tmp_path / "m.keras", tmp_path / "edited.keras", {"config.json": json.dumps(config).encode()})


def _layer(config):
    return config["config"]["layers"][1]


EDITS = {
    "layer": lambda c, name: _layer(c).__setitem__("class_name", name),
    "registered layer": lambda c, name: _layer(c).__setitem__("registered_name", name),
    "model": lambda c, name: c.__setitem__("class_name", name),
    "initializer": lambda c, name: _layer(c)["config"]["kernel_initializer"].__setitem__("class_name", name),
    "initializer name": lambda c, name: _layer(c)["config"].__setitem__("kernel_initializer", name),
    "activation": lambda c, name: _layer(c)["config"].__setitem__("activation", name),
    "regularizer": lambda c, name: _layer(c)["config"].__setitem__(
        "kernel_regularizer", {"module": "keras.regularizers", "class_name": name, "config": {}}),
    "optimizer": lambda c, name: c["compile_config"]["optimizer"].__setitem__("class_name", name),
    "optimizer name": lambda c, name: c["compile_config"].__setitem__("optimizer", name),
    "schedule": lambda c, name: c["compile_config"]["optimizer"]["config"].__setitem__(
        "learning_rate", {"module": "keras.optimizers.schedules", "class_name": name, "config": {}}),
    "loss": lambda c, name: c["compile_config"].__setitem__("loss", {"module": "keras.losses", "class_name": name,
                                                                       "config": {}}),
    "loss name": lambda c, name: c["compile_config"].__setitem__("loss", name),
    "metric": lambda c, name: c["compile_config"].__setitem__("metrics", [{"module": "keras.metrics",
                                                                          "class_name": name, "config": {}}]),
    "metric name": lambda c, name: c["compile_config"].__setitem__("metrics", [name]),
}


@pytest.mark.parametrize("where", sorted(EDITS))
def test_classes_come_only_from_the_registries(saved, where):
    _, tmp_path = saved
    for name in HOSTILE:
        path = edited(tmp_path, lambda c: EDITS[where](c, name))
        with pytest.raises(ValueError, match=f"'{name}'|{name}") as info:
            load_model(path)
        assert name in str(info.value)


def test_legacy_h5_config_names_are_resolved_the_same_way(saved):
    _, tmp_path = saved
    path = tmp_path / "m.h5"
    with h5py.File(path, "r+") as h5:
        config = json.loads(h5.attrs["model_config"])
        config["config"]["layers"][1]["class_name"] = "__builtins__"
        h5.attrs["model_config"] = json.dumps(config)
    with pytest.raises(ValueError, match="__builtins__"):
        load_model(path)


def test_lambda_bytecode_is_refused_even_unsafe(saved):
    _, tmp_path = saved
    code = {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAAAAAAAAEAAAADAAAA", "defaults": None,
                                                     "closure": None}}

    def add_lambda(config):
        config["config"]["layers"].insert(2, {"module": "keras.layers", "class_name": "Lambda", "registered_name": None,
                                              "config": {"name": "evil", "function": code, "arguments": {},
                                                         "output_shape": None, "trainable": True}})
    path = edited(tmp_path, add_lambda)
    with pytest.raises(ValueError, match="safe_mode=False"):
        load_model(path)
    with pytest.raises(ValueError, match="bytecode"):
        load_model(path, safe_mode=False)


# ---- damaged files ---------------------------------------------------------------------------------------------
def outcome(load, reference, path):
    """"same" if the damaged file loads the reference's exact arrays, "error" for a ValueError naming the file;
    any other exception propagates (the test fails on it)."""
    try:
        arrays = load()
    except ValueError as e:
        assert str(path) in str(e), e
        return "error"
    for a, b in zip(arrays, reference):
        np.testing.assert_array_equal(a, b)
    return "same"


FLIP_EVERY_BYTE = textwrap.dedent("""
    import re, resource, sys, time
    resource.setrlimit(resource.RLIMIT_DATA, (4 << 30, 4 << 30))  # a runaway allocation fails instead of growing
    import numpy as np, fastnn
    from fastnn.layers import Dense, Input
    source, folder = sys.argv[1], sys.argv[2]
    model = fastnn.models.Sequential([Input((2,)), Dense(1)])
    model.load_weights(source)
    reference = [w.copy() for w in model.get_weights()]
    data = open(source, "rb").read()
    path = folder + "/flipped.weights.h5"
    counts, start = {"same": 0, "error": 0}, time.time()
    # every byte, except that of HDF5's unused space (runs of more than 64 zero bytes: 70% of a tiny file) one in 16
    zero_run = bytearray(len(data))
    for m in re.finditer(rb"\\x00{65,}", data):
        zero_run[m.start():m.end()] = b"\\x01" * (m.end() - m.start())
    positions = [i for i in range(len(data)) if not zero_run[i] or i % 16 == 0]
    for i in positions:
        with open(path, "wb") as f:
            f.write(data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:])
        model.set_weights([np.zeros_like(w) for w in reference])
        try:
            model.load_weights(path)
        except ValueError as e:
            assert path in str(e), e
            counts["error"] += 1
            continue
        for a, b in zip(model.get_weights(), reference):
            np.testing.assert_array_equal(a, b)  # a flip that loads must load the very same weights
        counts["same"] += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print("RESULT", len(positions), counts["same"], counts["error"], peak, round(time.time() - start, 1))
""")


def test_every_byte_flipped_in_a_weights_file(tmp_path):
    """Each byte of a tiny model's .weights.h5 flipped in turn (one process): a clean ValueError naming the file, or
    the very same weights (a flip in unused space, or in a name fastnn does not read); HDF5 never allocates without
    bound (the process peak stays small) nor hangs."""
    fastnn.utils.set_random_seed(0)
    model = tiny()
    model.save_weights(tmp_path / "w.weights.h5")
    env = {**os.environ, "FASTNN_DEVICE": "cpu", "PYTHONPATH": os.pathsep.join([os.path.dirname(os.path.dirname(fastnn.__file__)),
                                                         os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", FLIP_EVERY_BYTE, str(tmp_path / "w.weights.h5"), str(tmp_path)],
                         capture_output=True, text=True, timeout=600, env=env,
                         cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))  # not a checkout's uncompiled source
    lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
    assert run.returncode == 0 and lines, run.stdout[-2000:] + run.stderr[-4000:]
    size, same, errors, peak_kb, _ = (float(v) for v in lines[0].split()[1:])
    assert same + errors == size and errors > 500
    assert peak_kb < 1.5 * 2 ** 20  # KB: the loads never grew the process past 1.5 GB


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_random_corruptions_of_a_keras_file(saved, compression):
    """200 single-bit corruptions of a .keras (stored as fastnn writes it, or deflated as other zips are: damaged
    deflate streams raise zlib.error)."""
    model, tmp_path = saved
    with zipfile.ZipFile(tmp_path / "m.keras") as zin, zipfile.ZipFile(tmp_path / "z.keras", "w", compression) as z:
        for name in zin.namelist():
            z.writestr(name, zin.read(name))
    data = (tmp_path / "z.keras").read_bytes()
    reference = model.get_weights()
    rng = random.Random(0)
    counts = {"same": 0, "error": 0}
    path = tmp_path / "damaged.keras"
    for _ in range(200):
        i = rng.randrange(len(data))
        path.write_bytes(data[:i] + bytes([data[i] ^ (1 << rng.randrange(8))]) + data[i + 1:])
        counts[outcome(lambda: load_model(path).get_weights(), reference, path)] += 1
    assert counts["error"] >= 150, counts


@pytest.mark.parametrize("name", ["m.keras", "m.weights.h5", "m.h5", "m.weights.npz"])
def test_truncated_files(saved, name):
    model, tmp_path = saved
    model.save_weights(tmp_path / "m.weights.npz")
    data = (tmp_path / name).read_bytes()
    path = tmp_path / ("cut_" + name)
    for n in list(range(0, len(data), max(1, len(data) // 60))) + [len(data) - 1]:
        path.write_bytes(data[:n])
        with pytest.raises(ValueError) as info:
            if ".weights." in name:
                model.load_weights(path)
            else:
                load_model(path)
        assert str(path) in str(info.value)


def test_checksums_catch_a_changed_weight(saved):
    """A weight changed inside an otherwise valid file (what a flipped bit in the data does) is refused."""
    model, tmp_path = saved
    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "r+") as h5:
        h5["layers/dense/vars/0"][0, 0] += 1.0
    with pytest.raises(ValueError, match="checksum"):
        model.load_weights(path)


# ---- huge shapes, wrong dtypes, path traversal, zip bombs, pickles ------------------------------------------------
def weights_file(tmp_path, name, make):
    """A .weights.h5 for tiny() whose kernel dataset ``make(h5)`` writes."""
    path = tmp_path / name
    with h5py.File(path, "w") as h5:
        make(h5)
        h5.create_dataset("layers/dense/vars/1", data=np.zeros(1, np.float32))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda h5: h5.create_dataset("layers/dense/vars/0", shape=(1 << 40,), dtype="f4"), "shape"),
    (lambda h5: h5.create_dataset("layers/dense/vars/0", shape=(1 << 20, 1 << 20), dtype="f8", chunks=(1, 1)), "shape"),
    (lambda h5: h5.create_dataset("layers/dense/vars/0", data=np.array([[b"ab"], [b"cd"]])), "not floating-point numbers"),
    (lambda h5: h5.create_dataset("layers/dense/vars/0", data=np.zeros((2, 1), "f4,f4")), "not floating-point numbers"),
    (lambda h5: h5.create_dataset("layers/dense/vars/0", shape=(2, 1), dtype=h5py.vlen_dtype("f4")), "not floating-point numbers"),
    (lambda h5: h5.create_group("layers/dense/vars/0"), "not a dataset"),
    (lambda h5: h5.create_dataset("layers/dense/vars/0", data=np.ones((2, 1), np.int32)), "not floating-point"),
])
def test_declared_shapes_and_dtypes_are_checked_before_reading(tmp_path, make, message):
    model = tiny()
    path = weights_file(tmp_path, "w.weights.h5", make)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=message):
        model.load_weights(path)
    assert time.perf_counter() - start < 5


def test_huge_shape_declared_in_an_npz(tmp_path):
    model = tiny()
    model.save_weights(tmp_path / "w.weights.npz")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 40, 1)})
    with zipfile.ZipFile(tmp_path / "w.weights.npz") as zin, zipfile.ZipFile(tmp_path / "huge.weights.npz", "w") as z:
        for name in zin.namelist():
            z.writestr(name, b"\x93NUMPY\x01\x00" + header.getvalue()[8:] + b"\0" * 64
                       if name == "layers/dense/vars/0.npy" else zin.read(name))
    with pytest.raises(ValueError, match="shape"):
        model.load_weights(tmp_path / "huge.weights.npz")


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "assets/../../evil.txt"])
def test_path_traversal_names_are_refused(saved, member):
    _, tmp_path = saved
    path = rezip(tmp_path / "m.keras", tmp_path / "traversal.keras", extra=[(member, b"x")])
    with pytest.raises(ValueError, match="unsafe path"):
        load_model(path)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_zip_bomb_config_is_refused_before_inflating(saved):
    _, tmp_path = saved
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(tmp_path / "m.keras") as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED,
                                                                       compresslevel=1) as z:
        for name in zin.namelist():
            if name != "config.json":
                z.writestr(name, zin.read(name))
        with z.open("config.json", "w", force_zip64=True) as f:  # 512 MB of spaces: valid JSON padding
            chunk = b" " * (1 << 20)
            for _ in range(512):
                f.write(chunk)
    start = time.perf_counter()
    with pytest.raises(ValueError, match="config.json declares"):
        load_model(path)
    assert time.perf_counter() - start < 2


def test_zip_member_that_lies_about_its_size(saved):
    """A header declaring 100 bytes for a member that inflates to 16 MB: reading stops at the declared size and the
    mismatch is an error."""
    _, tmp_path = saved
    path = tmp_path / "liar.keras"
    with zipfile.ZipFile(tmp_path / "m.keras") as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in zin.namelist():
            z.writestr(name, b"{" + b" " * (16 << 20) + b"}" if name == "config.json" else zin.read(name))
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = z.getinfo("config.json")
    struct.pack_into("<I", data, info.header_offset + 22, 100)  # the local header's uncompressed size
    central = data.find(b"PK\x01\x02" + data[info.header_offset + 4:info.header_offset + 6])
    while central >= 0:
        if data[central + 46:central + 46 + len("config.json")] == b"config.json":
            struct.pack_into("<I", data, central + 24, 100)
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(path)):
        load_model(path)


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_pickles_are_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model = tiny()
    model.save_weights(tmp_path / "w.weights.npz")
    buf = io.BytesIO()
    np.save(buf, np.array([_Evil()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(tmp_path / "w.weights.npz") as zin, zipfile.ZipFile(tmp_path / "evil.weights.npz", "w") as z:
        for name in zin.namelist():
            z.writestr(name, buf.getvalue() if name == "layers/dense/vars/0.npy" else zin.read(name))
    with pytest.raises(ValueError, match="pickled objects are refused|object"):
        model.load_weights(tmp_path / "evil.weights.npz")
    blob = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [_Evil()]}, 2)
    with pytest.raises(ValueError, match="refusing to load global"):
        cifar10.load_batch(blob)
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_billion_laughs_pickle_is_refused_at_once():
    nested = [0]
    for _ in range(30):
        nested = [nested] * 10  # 10**30 items as a tree, a few hundred bytes as a pickle (shared references)
    blob = pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": nested}, 2)
    assert len(blob) < 4096
    start = time.perf_counter()
    with pytest.raises(ValueError, match="expands"):
        cifar10.load_batch(blob)
    assert time.perf_counter() - start < 1


# ---- saves killed mid-way ----------------------------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_saves_killed_at_random_moments_leave_the_previous_file(tmp_path):
    """20 times: a child process saves the model over and over and is SIGKILLed at a random moment; the file is
    always a whole, loadable model, and the next save in this process removes the dead saves' temporaries."""
    fastnn.utils.set_random_seed(0)
    model = Sequential([Input((8,)), Dense(64), Dense(4)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.ones((4, 8), np.float32), np.ones((4, 4), np.float32), verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    rng = random.Random(0)
    for _ in range(20):
        pid = os.fork()
        if pid == 0:  # the child only saves (no kernels: no OpenMP after fork)
            try:
                while True:
                    model.save(path)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.05))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert load_model(path).count_params() == model.count_params()
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]


def test_a_live_saves_temporary_file_is_left_alone(tmp_path):
    model = tiny()
    live = tmp_path / f".m.keras.{os.getppid()}.abc.tmp"
    live.write_bytes(b"partial")
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".m.keras.{int(child.stdout)}.abc.tmp"
    dead.write_bytes(b"partial")
    other = tmp_path / f".other.keras.{int(child.stdout)}.abc.tmp"
    other.write_bytes(b"partial")
    model.save(tmp_path / "m.keras")
    assert live.exists() and other.exists() and not dead.exists()


def test_a_config_cannot_allocate_more_than_the_file_holds(saved):
    _, tmp_path = saved
    path = edited(tmp_path, lambda c: _layer(c)["config"].__setitem__("units", 10 ** 9))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="exceed what the file can hold"):
        load_model(path)
    assert time.perf_counter() - start < 2
