"""HDF5 weight files, read with bounds: only the datasets the model expects are opened, and each one's shape and
dtype are checked against what the model expects before a byte of it is read (a corrupted header can declare any
shape). h5py is optional (``pip install fastnn[h5]``).

Keras 3 layout (a `.keras` file's model.weights.h5, `.weights.h5`): "<object path>/vars/<i>" datasets and a
"vars" group per object with its name. Legacy tf.keras layout (`.h5`): "model_weights/<layer name>" groups whose
"weight_names" attribute lists the layer's datasets in order, "optimizer_weights" likewise, the model's config in
the root's "model_config" attribute.
"""
import io
import json
import zlib

import numpy as np

CHECKSUMS_ATTR = "fastnn_checksums"  # a root attribute of the weight files fastnn writes (Keras ignores it)


def h5py_module(who):
    try:
        import h5py
    except ImportError:
        raise ImportError(f"{who}: HDF5 model files (.keras, .weights.h5, .h5) need h5py: pip install fastnn[h5] "
                          f"(`.weights.npz` files work with numpy only)") from None
    return h5py


def checksum(array):
    """crc32 of an array's dtype, shape and bytes, as 8 hex digits."""
    array = np.ascontiguousarray(array)
    head = f"{array.dtype.str}{array.shape}".encode()
    return f"{zlib.crc32(array.tobytes(), zlib.crc32(head)):08x}"


def checksums(arrays):
    return {path: checksum(a) for path, a in arrays.items()}


def verify(arrays, table, source):
    """Check every array read against the checksum fastnn wrote for it (a file without a table is a foreign one)."""
    if table is None:
        return
    if not isinstance(table, dict):
        raise ValueError(f"{source}: the weights' checksum table is corrupted")
    for path, array in arrays.items():
        if table.get(path) != checksum(array):
            raise ValueError(f"{source}: weight '{path}' does not match the checksum saved with it: the file is "
                             f"corrupted")


# ---- writing -----------------------------------------------------------------------------------------------
def keras_h5_bytes(arrays, groups, extra_attrs=None):
    """An HDF5 file (bytes) in Keras 3's layout: ``groups`` [(path, name)] of "vars" groups, then the datasets."""
    h5py = h5py_module("save")
    buf = io.BytesIO()
    with h5py.File(buf, "w", libver="latest") as h5:  # (compact groups: half the size of the 1.8 format)
        for path, name in groups:
            h5.require_group(path).attrs["name"] = name
        for path, value in arrays.items():
            h5.create_dataset(path, data=value)
        for key, value in (extra_attrs or {}).items():
            h5.attrs[key] = value
    return buf.getvalue()


# ---- reading -----------------------------------------------------------------------------------------------
def open_h5(data_or_path, source):
    h5py = h5py_module(source)
    try:
        return h5py.File(io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else data_or_path, "r")
    except FileNotFoundError:
        raise
    except Exception as e:  # h5py raises OSError, RuntimeError, ValueError... on damaged files
        raise ValueError(f"{source}: not a readable HDF5 file ({type(e).__name__}: {e})") from None


def guarded(source, fn, *args):
    """``fn(*args)``, h5py's errors on a damaged file turned into a ValueError naming the file."""
    try:
        return fn(*args)
    except (ValueError, ImportError, MemoryError):
        raise
    except Exception as e:
        raise ValueError(f"{source}: the HDF5 file is corrupted ({type(e).__name__}: {e})") from None


def read_dataset(h5, path, shape, kind, source, what=None):
    """The array at ``path``, after checking that it is a plain numeric dataset of ``shape`` (``kind`` "f": a
    floating-point weight, returned as float32; "i": a counter, integer or float)."""
    h5py = h5py_module(source)
    what = what or f"'{path}'"
    node = h5.get(path)
    if node is None:
        return None
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{source}: {what} is not a dataset")
    if tuple(node.shape) != tuple(shape):
        raise ValueError(f"{source}: {what} has shape {tuple(node.shape)}, the model expects {tuple(shape)}")
    dtype = node.dtype
    if dtype.kind not in ("f" if kind == "f" else "fiu") or dtype.itemsize > 8 or dtype.fields is not None or \
            dtype.subdtype is not None:
        raise ValueError(f"{source}: {what} holds {dtype}, not {'floating-point ' if kind == 'f' else ''}numbers")
    out = np.empty(shape, dtype=dtype.newbyteorder("="))
    if out.size:
        node.read_direct(out)
    if kind == "f" and out.dtype != np.float32:
        out = out.astype(np.float32)
    return out


def read_bounded(group, key, limit, source):
    """A numeric dataset of unknown shape, read only if its declared size is under ``limit`` bytes."""
    h5py = h5py_module(source)
    node = group.get(key)
    what = f"'{group.name}/{key}'".replace("'/", "'")
    if not isinstance(node, h5py.Dataset):
        raise ValueError(f"{source}: {what} is not a dataset")
    dtype = node.dtype
    if dtype.kind not in "fiu" or dtype.itemsize > 8 or dtype.fields is not None or dtype.subdtype is not None:
        raise ValueError(f"{source}: {what} holds {dtype}, not numbers")
    if int(np.prod(node.shape, dtype=np.float64)) * dtype.itemsize > limit:
        raise ValueError(f"{source}: {what} declares shape {node.shape}, more than the file can hold")
    return read_dataset(group, key, node.shape, "i" if dtype.kind != "f" else "f", source, what)


def read_keras_layout(h5, expected, source, optional=()):
    """{path: array} for ``expected`` [(path, shape, kind)]; a path missing from the file raises unless it is in
    ``optional`` (then it is left out)."""
    out = {}
    for path, shape, kind in expected:
        value = read_dataset(h5, path, shape, kind, source)
        if value is None:
            if path in optional:
                continue
            raise ValueError(f"{source}: the file has no '{path}' (a weight of shape {tuple(shape)} the model "
                             f"expects); it holds {_listing(h5)}")
        out[path] = value
    return out


def _listing(h5, limit=8):
    names = []
    h5.visit(lambda name: True if len(names) >= limit else names.append(name))  # True stops the walk
    return names


_ATTR_LIMIT = 16 << 20  # bytes of one text attribute


def text_attr(text):
    """Text as a fixed-length bytes attribute: its size is in the attribute's type, so a reader can check it before
    reading (a variable-length string lives in a heap whose damaged sizes HDF5 trusts)."""
    return np.bytes_(text.encode("utf-8"))


def attr_text(h5, key, fixed_only=False):
    """A root text attribute, or None. A fixed-length one is read only if its declared size is under the bound;
    ``fixed_only`` refuses variable-length ones (the attributes fastnn writes are fixed-length)."""
    if key not in h5.attrs:
        return None
    h5py = h5py_module("read")
    aid = h5py.h5a.open(h5.id, key.encode())
    dtype, count = aid.dtype, int(np.prod(aid.shape, dtype=np.int64)) if aid.shape else 1
    if dtype.kind == "S":
        if count != 1 or dtype.itemsize > _ATTR_LIMIT:
            raise ValueError(f"attribute {key!r} declares {count} x {dtype.itemsize} bytes")
    elif fixed_only or dtype.kind != "O" or count != 1:
        raise ValueError(f"attribute {key!r} is not text ({dtype}, {count} values)")
    value = h5.attrs[key]
    if isinstance(value, np.ndarray):
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(f"attribute {key!r} is not text")
    return value


def attr_json(h5, key, source, fixed_only=False):
    text = attr_text(h5, key, fixed_only)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{source}: attribute {key!r} is not valid JSON ({e})") from None


def name_list(group, key):
    """A legacy name-list attribute ("layer_names", "weight_names") as a list of str (fixed-length names are read
    only if their declared size is under the bound)."""
    if key not in group.attrs:
        return []
    aid = h5py_module("read").h5a.open(group.id, key.encode())
    count = int(np.prod(aid.shape, dtype=np.int64)) if aid.shape else 1
    if count * max(aid.dtype.itemsize, 16) > _ATTR_LIMIT:
        raise ValueError(f"attribute {key!r} declares {count} names of {aid.dtype.itemsize} bytes")
    values = np.asarray(group.attrs[key])
    if values.dtype.kind not in "OSU" and values.size:
        raise ValueError(f"attribute {key!r} is not a list of names")
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.reshape(-1)]
