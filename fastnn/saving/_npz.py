"""`.weights.npz` files and fastnn's earlier `.keras` files (model.weights.npz inside): the same object paths as
Keras 3's HDF5 layout, the optimizer state as "optimizer/vars/<i>" (0: the iteration count, then the slots variable
by variable, no learning rate) and Dropout's random state as "<path>/seed_generator" = [seed, offset].

Each array's header is read first and its declared shape checked against the model's before its bytes are read;
object arrays (pickles) are refused.
"""
import io
import zipfile

import numpy as np

from fastnn.layers.base import assign_weights
from fastnn.saving import _state


def to_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


class _Archive:
    """The arrays of an npz (bytes), each read only once its header matches the expected shape."""

    def __init__(self, data, source):
        self.source = source
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            self.names = {n[:-4] for n in self.zip.namelist() if n.endswith(".npy")}
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
            raise ValueError(f"{source}: the weights are not a readable npz archive ({e})") from None

    def read(self, key, shape=None):
        """The array ``key`` (None if absent); ``shape``: the shape it must declare."""
        if key not in self.names:
            return None
        try:
            with self.zip.open(key + ".npy") as f:
                version = np.lib.format.read_magic(f)
                header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                declared, fortran, dtype = header(f)
                if dtype.hasobject or dtype.kind not in "fiub":
                    raise ValueError(f"'{key}' holds {dtype} (pickled objects are refused)")
                if shape is not None and tuple(declared) != tuple(shape):
                    raise ValueError(f"'{key}' has shape {tuple(declared)}, the model expects {tuple(shape)}")
                count = int(np.prod(declared, dtype=np.int64)) if declared else 1
                if count * dtype.itemsize > self.zip.getinfo(key + ".npy").file_size:
                    raise ValueError(f"'{key}' declares more data than it holds")
                raw = f.read(count * dtype.itemsize)
        except ValueError as e:
            raise ValueError(f"{self.source}: the weights are not a readable npz archive ({e})") from None
        except Exception as e:  # zlib.error, EOFError, BadZipFile on damaged data
            raise ValueError(f"{self.source}: the weights are corrupted ({type(e).__name__}: {e})") from None
        if len(raw) != count * dtype.itemsize:
            raise ValueError(f"{self.source}: '{key}' is truncated")
        array = np.frombuffer(raw, dtype=dtype)
        return (array.reshape(declared[::-1]).T if fortran else array.reshape(declared)).copy()


def _read_weights(model, archive):
    values, variables = [], []
    for path, var, layer in _state.weight_slots(model):
        value = archive.read(path, var.shape)
        if value is None:
            layer_keys = sorted(k for k in archive.names if not k.startswith("optimizer/"))[:8]
            raise ValueError(f"{archive.source}: no weights for layer '{layer.name}' (missing '{path}', shape "
                             f"{var.shape}); the file holds {layer_keys}")
        values.append(value)
        variables.append(var)
    hooked, known = [], {p for p, _, _ in _state.weight_slots(model)}
    for path, layer in _state.hooked_layers(model, "load_own_variables"):  # Keras's hook: {key: array}
        prefix = _state.join(path, "vars") + "/"
        keys = sorted(k for k in archive.names if k.startswith(prefix))
        known |= set(keys)
        hooked.append((layer, {k[len(prefix):]: archive.read(k) for k in keys}))
    extra = sorted(k for k in archive.names - known if "/vars/" in k and not k.startswith("optimizer/"))
    if extra:
        raise ValueError(f"{archive.source}: the file holds weights the model does not have: {extra[:8]}")
    assign_weights(f"model '{model.name}'", variables, values)
    for layer, store in hooked:
        layer.load_own_variables(store)


def load_weights(model, data, source):
    _read_weights(model, _Archive(data, source))


def restore(model, data, config, compile, source, compile_from_config):
    """A model built from an earlier fastnn `.keras` file's config: weights, Dropout state, compile, optimizer."""
    archive = _Archive(data, source)
    _read_weights(model, archive)
    for path, layer in _state.seeded_layers(model):
        rng = archive.read(path + "/seed_generator", (2,))
        if rng is not None:
            layer._seed, layer._offset = int(rng[0]), int(rng[1])
    if not (compile and config.get("compile_config")):
        return
    compile_from_config(model, config["compile_config"], source)
    if "optimizer/vars/0" not in archive.names:
        return
    expected = _state.optimizer_slots(model, keras_order=False)
    n_file = sum(1 for k in archive.names if k.startswith("optimizer/vars/"))
    if n_file != len(expected):
        raise ValueError(f"{source}: the optimizer state holds {n_file - 1} arrays, the model's optimizer "
                         f"{type(model.optimizer).__name__} needs {len(expected) - 1}")
    values = [archive.read(path, shape) for path, shape, _, _, _ in expected]
    for (_, _, _, _, set_), value in zip(expected, values):
        set_(value)
