"""Saving and loading models in Keras 3's files, both ways, without TensorFlow.

- ``model.save("m.keras")``: Keras 3's zip: metadata.json, config.json (Keras 3's serialization: module,
  class_name, config, registered_name, build_config, compile_config; a graph model's functional layout) and
  model.weights.h5 (Keras 3's HDF5 layout, fastnn.saving._state: "layers/dense/vars/0", optimizer state in Keras's
  order), so Keras 3 loads it and training resumes there. metadata.json also holds, under "fastnn" (Keras ignores
  it), a checksum of every array and the random-number state of Dropout layers.
- ``model.save("m.h5")``: the legacy tf.keras layout (model_config, model_weights, optimizer_weights).
- ``load_model`` (fastnn.models) reads both, and fastnn's own earlier `.keras` files (model.weights.npz inside).
- ``save_weights``/``load_weights``: `.weights.h5` (Keras 3's layout), legacy `.h5` weights (``by_name``,
  ``skip_mismatch``) and `.weights.npz` (numpy only).

Files are data, never code: classes come from explicit registries (fastnn.saving._objects), a Lambda's bytecode
is refused, arrays are read without pickle and only after their declared shapes match what the model expects,
every zip member is read with a size bound, and any decoding error becomes a ValueError naming the file. h5py is
optional (``pip install fastnn[h5]``). Every write goes to a temporary file renamed into place (fastnn.saving._atomic).
"""
import datetime
import json
import os
import tempfile
import warnings
import zipfile

import numpy as np

from fastnn.layers.base import assign_weights
from fastnn.saving import _h5, _state
from fastnn.saving._atomic import atomic_write
from fastnn.saving._functional import functional_config, functional_graph  # noqa: F401 (models use them)
from fastnn.saving._objects import (deserialize, deserialize_layer, layer_entry, layer_from_entry, loading,  # noqa
                                    resolve_class, serialize)
from fastnn.serialization import (CustomObjectScope, custom_object_scope, get_custom_objects, get_registered_name,
                                  get_registered_object, register_keras_serializable)

__all__ = ["save_model", "load_model", "load_weights", "save_weights", "register_keras_serializable", "get_registered_name",
           "get_registered_object", "get_custom_objects", "custom_object_scope", "CustomObjectScope"]

_FORMAT_KERAS_VERSION = "3.15.1"  # the Keras release whose file layout these files follow
_JSON_LIMIT = 8 << 20             # config.json / metadata.json: refused beyond 8 MB (declared or actual)


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """``keras.saving.load_model``: see fastnn.models.load_model."""
    from fastnn.models import load_model as load
    return load(filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode)


# ---- compile configuration ------------------------------------------------------------------------------------
def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    metrics = model._metric_ids  # one list per output
    weights = model._output_loss_weights
    return {"optimizer": serialize(model.optimizer, "optimizer"), "loss": serialize(model.loss, "loss"),
            # by output name (compile takes that for every model); None: compile's default, all 1
            "loss_weights": None if all(w == 1.0 for w in weights) else dict(zip(model._output_names, weights)),
            "metrics": serialize(metrics[0] if len(metrics) == 1 else metrics, "metric"),
            "weighted_metrics": None, "run_eagerly": False, "steps_per_execution": 1, "jit_compile": False}


def _compile_from_config(model, config, source):
    if not isinstance(config, dict):
        raise ValueError(f"{source}: compile_config is not a dict")
    where = f"{source}: compile_config"
    optimizer = config.get("optimizer", config.get("optimizer_config", "rmsprop"))  # (legacy .h5: optimizer_config)
    optimizer = deserialize(optimizer, "optimizer", where) if isinstance(optimizer, dict) else optimizer
    metrics = deserialize(config.get("metrics") or [], "metric", where)
    if len(model._output_names) == 1 and isinstance(metrics, list) and len(metrics) == 1 and \
            isinstance(metrics[0], list):
        metrics = metrics[0]  # tf.keras 2: one list per output
    loss_weights = config.get("loss_weights")
    if isinstance(loss_weights, list) and len(loss_weights) == len(model._output_names):
        loss_weights = dict(zip(model._output_names, loss_weights))
    try:
        model.compile(optimizer=optimizer, loss=deserialize(config.get("loss"), "loss", where),
                      loss_weights=loss_weights, metrics=metrics)
    except (TypeError, KeyError) as e:
        raise ValueError(f"{where} cannot be applied ({type(e).__name__}: {e})") from None


# ---- the arrays of a model ------------------------------------------------------------------------------------
def _weight_arrays(model):
    arrays = {path: var.value for path, var, _ in _state.weight_slots(model)}
    for path, layer in _state.hooked_layers(model, "save_own_variables"):  # Keras's hook: {key: array}
        store = {}
        layer.save_own_variables(store)
        arrays.update({_state.join(path, "vars", str(key)): np.asarray(value) for key, value in store.items()})
    return arrays


def _optimizer_arrays(model, keras_order=True):
    """The optimizer's state; of one not built yet (compiled, never trained) the iteration count and learning rate
    only, as Keras saves it."""
    opt = getattr(model, "optimizer", None)
    if opt is None or not getattr(model, "compiled", False):
        return {}
    return {path: get() for path, _, _, get, _ in _state.optimizer_slots(model, keras_order, slots=opt.built)}


def _seeds(model):
    return {path: [int(layer._seed), int(layer._offset)] for path, layer in _state.seeded_layers(model)
            if getattr(layer, "_seed", None) is not None}


def _set_seeds(model, seeds):
    if not isinstance(seeds, dict):
        return
    for path, layer in _state.seeded_layers(model):
        value = seeds.get(path)
        if isinstance(value, list) and len(value) == 2 and all(type(v) is int and 0 <= v < 2 ** 64 for v in value):
            layer._seed, layer._offset = value


def _assign(model, arrays, source):
    """Write {path: array} into the model's weights (all or nothing: every shape was checked when read), then hand
    the layers with Keras's load_own_variables hook their arrays ({key: array})."""
    slots = _state.weight_slots(model)
    assign_weights(f"model '{model.name}'", [v for _, v, _ in slots], [arrays[p] for p, _, _ in slots])
    _give_hooks(model, arrays)


def _give_hooks(model, arrays):
    for path, layer in _state.hooked_layers(model, "load_own_variables"):
        prefix = _state.join(path, "vars") + "/"
        layer.load_own_variables({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})


def _read_optimizer(model, reader, source):
    """Restore the optimizer's state with ``reader(expected)`` -> {path: array} or None when the file has none.
    A state of another size is skipped with Keras's warning (the optimizer starts afresh)."""
    n_head = len(_state.optimizer_slots(model, slots=False))  # iteration count (and learning rate)
    expected = _state.optimizer_slots(model)
    arrays = reader([(path, shape, kind) for path, shape, kind, _, _ in expected], n_head)
    if arrays is None:
        return
    for path, _, _, _, set_ in expected:
        if path in arrays:  # (an optimizer saved before its first step has no slots yet)
            set_(arrays[path])


# ---- .keras files -----------------------------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True, include_optimizer=True):
    """Save architecture, weights, compile configuration and optimizer state: `.keras` (Keras 3) or `.h5`
    (legacy tf.keras layout)."""
    filepath = os.fspath(filepath)
    if not filepath.endswith((".keras", ".h5")) or filepath.endswith(".weights.h5"):
        raise ValueError(f"save: the filepath must end in `.keras` (or `.h5` for the legacy format), got "
                         f"{filepath!r} (use save_weights() for `.weights.h5` / `.weights.npz`)")
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet: call it on data or build() it first")
    if filepath.endswith(".h5"):
        from fastnn.saving import _legacy
        data = _legacy.model_bytes(model, _compile_config(model), include_optimizer)
        atomic_write(filepath, lambda f: f.write(data), overwrite)
        return
    from fastnn import __version__
    config = {**layer_entry(model), "compile_config": _compile_config(model)}
    arrays = {**_weight_arrays(model), **(_optimizer_arrays(model) if include_optimizer else {})}
    metadata = {"keras_version": _FORMAT_KERAS_VERSION,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
                "fastnn": {"version": __version__, "checksums": _h5.checksums(arrays), "seeds": _seeds(model)}}
    weights = _weights_h5_bytes(model, arrays)
    assets = _saved_assets(model)

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(config))
            z.writestr("model.weights.h5", weights)
            for name, data in assets.items():
                z.writestr(name, data)

    atomic_write(filepath, write, overwrite)


_ASSET_LIMIT = 1 << 30  # bytes of all the assets of a file (a vocabulary, a lookup table)


def _saved_assets(model):
    """{"assets/<object path>/<file>": bytes} of the layers with Keras's save_assets hook (a vocabulary file)."""
    out = {}
    for path, layer in _state.hooked_layers(model, "save_assets"):
        with tempfile.TemporaryDirectory() as folder:
            layer.save_assets(folder)
            for root, _, files in os.walk(folder):
                for name in files:
                    full = os.path.join(root, name)
                    rel = os.path.relpath(full, folder).replace(os.sep, "/")
                    with open(full, "rb") as f:
                        out[_state.join("assets", path, rel)] = f.read()
    return out


def _read_assets(z, names, model, source):
    """[(layer, {relative name: bytes})] of the layers with Keras's load_assets hook, read with a bound."""
    out, total = [], 0
    for path, layer in _state.hooked_layers(model, "load_assets"):
        prefix = _state.join("assets", path) + "/"
        files = {}
        for name in names:
            if name.startswith(prefix) and not name.endswith("/"):
                files[name[len(prefix):]] = data = _member(z, name, _ASSET_LIMIT - total, source)
                total += len(data)
        if files:
            out.append((layer, files))
    return out


def _load_assets(assets):
    """Hand each layer its asset files in a temporary folder (after its weights: Keras's order)."""
    for layer, files in assets:
        with tempfile.TemporaryDirectory() as folder:
            for rel, data in files.items():
                target = os.path.join(folder, *rel.split("/"))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with open(target, "wb") as f:
                    f.write(data)
            layer.load_assets(folder)


def _weights_h5_bytes(model, arrays, attrs=None):
    groups = _state.vars_groups(model)
    if any(p.startswith("optimizer/") for p in arrays):
        groups.append(("optimizer/vars", model.optimizer.name))
    return _h5.keras_h5_bytes(arrays, groups, attrs)


def _member(z, name, limit, source):
    """A zip member's bytes, refused past ``limit`` bytes declared or inflated (a zip bomb stops at the bound)."""
    info = z.getinfo(name)
    if info.file_size > limit:
        raise ValueError(f"{source}: {name} declares {info.file_size} bytes, more than the {limit} allowed")
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{source}: {name} inflates past {limit} bytes")
    return data


def _check_names(names, source):
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if name.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
            raise ValueError(f"{source}: the archive holds a member with an unsafe path {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: the archive names a member twice")


def _weights_limit(model):
    """A bound for model.weights.h5: the weights, up to three optimizer slots each, and HDF5's overhead."""
    sizes = [v.value.nbytes for _, v, _ in _state.weight_slots(model)]
    return (1 << 20) + 4 * sum(sizes) + 8192 * (len(sizes) + 1) * 4


def _read_json(data, name, source):
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"{source}: {name} is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{source}: {name} does not hold a JSON object")
    return value


def _zip_errors(source, fn):
    """``fn()``, a damaged archive's errors (zipfile's, zlib's, a bad CRC) as a ValueError naming the file."""
    try:
        return fn()
    except (ValueError, ImportError, FileNotFoundError, MemoryError):
        raise
    except zipfile.BadZipFile as e:
        raise ValueError(f"{source}: not a `.keras` model file (not a zip archive, or truncated: {e})") from None
    except Exception as e:  # zlib.error, EOFError, OSError, NotImplementedError (compression), RuntimeError...
        raise ValueError(f"{source}: the file is corrupted ({type(e).__name__}: {e})") from None


def load_keras_file(filepath, build, compile=True, source=None):
    """Load a `.keras` file: ``build(config)`` makes the model its config.json describes (fastnn.models), then its
    weights, compile configuration and optimizer state are restored."""
    source = source or f"load_model({filepath!r})"

    def read():
        with zipfile.ZipFile(filepath) as z:
            names = z.namelist()
            _check_names(names, source)
            missing = {"config.json"} - set(names)
            if missing or not {"model.weights.h5", "model.weights.npz"} & set(names):
                raise ValueError(f"{source}: not a Keras/fastnn model file: it lacks "
                                 f"{sorted(missing) or ['model.weights.h5']}")
            config = _read_json(_member(z, "config.json", _JSON_LIMIT, source), "config.json", source)
            metadata = (_read_json(_member(z, "metadata.json", _JSON_LIMIT, source), "metadata.json", source)
                        if "metadata.json" in names else {})
            model = build(config)
            name = "model.weights.h5" if "model.weights.h5" in names else "model.weights.npz"
            assets = _read_assets(z, names, model, source)
            return config, metadata, model, name, _member(z, name, _weights_limit(model), source), assets

    config, metadata, model, name, data, assets = _zip_errors(source, read)
    own = metadata.get("fastnn") if isinstance(metadata.get("fastnn"), dict) else {}
    if name == "model.weights.npz":  # fastnn's earlier files
        from fastnn.saving import _npz
        _npz.restore(model, data, config, compile, source, _compile_from_config)
        _load_assets(assets)
        return model
    with _h5.open_h5(data, source) as h5:
        arrays = _h5.guarded(source, _read_weights_keras, h5, model, source)
        _h5.verify(arrays, own.get("checksums"), source)
        _assign(model, arrays, source)
        _load_assets(assets)
        _set_seeds(model, own.get("seeds"))
        if compile and config.get("compile_config"):
            _compile_from_config(model, config["compile_config"], source)
            _h5.guarded(source, _read_optimizer, model,
                        lambda expected, n_head: _read_optimizer_keras(h5, expected, n_head, own.get("checksums"),
                                                                      source), source)
    return model


def _read_weights_keras(h5, model, source):
    expected = [(path, var.shape, "f") for path, var, _ in _state.weight_slots(model)]
    return {**_h5.read_keras_layout(h5, expected, source), **_read_hooked(h5, model, source)}


def _read_hooked(h5, model, source):
    """The arrays of the layers with Keras's load_own_variables hook: every dataset in their "vars" group (shapes
    unknown beforehand: each is bounded by the file's size)."""
    out = {}
    limit = 64 * h5.id.get_filesize() + (1 << 20)
    for path, layer in _state.hooked_layers(model, "load_own_variables"):
        group = h5.get(_state.join(path, "vars"))
        if group is None:
            continue
        for key in list(group)[:1000]:
            out[_state.join(path, "vars", key)] = _h5.read_bounded(group, key, limit, source)
    return out


def _read_optimizer_keras(h5, expected, n_head, checksums, source):
    if "optimizer" not in h5:
        return None
    group = h5["optimizer"]
    count = len(group["vars"]) if "vars" in group else 0
    if count == n_head < len(expected):  # an optimizer saved before its first step: no slots yet
        expected = expected[:n_head]
    elif count != len(expected):
        warnings.warn(f"{source}: skipping the optimizer state: the file holds {count} arrays, the optimizer "
                      f"needs {len(expected)} (it starts afresh)", stacklevel=4)
        return None
    arrays = _h5.read_keras_layout(h5, expected, source)
    _h5.verify(arrays, checksums, source)
    return arrays


# ---- weights files ----------------------------------------------------------------------------------------------
def save_weights(model, filepath, overwrite=True):
    """Save the layers' weights (and the optimizer's state, as Keras 3 does) to `.weights.h5`; `.weights.npz` holds
    the weights only, with numpy alone."""
    filepath = os.fspath(filepath)
    if filepath.endswith(".weights.npz"):
        from fastnn.saving import _npz
        data = _npz.to_bytes(_weight_arrays(model))
        atomic_write(filepath, lambda f: f.write(data), overwrite)
    elif filepath.endswith(".weights.h5"):
        arrays = {**_weight_arrays(model), **_optimizer_arrays(model)}
        data = _weights_h5_bytes(model, arrays, {_h5.CHECKSUMS_ATTR: _h5.text_attr(json.dumps(_h5.checksums(arrays)))})
        atomic_write(filepath, lambda f: f.write(data), overwrite)
    else:
        raise ValueError(f"save_weights: the filename must end in `.weights.h5` or `.weights.npz`, got {filepath!r}")


def load_weights(model, filepath, skip_mismatch=False, by_name=False):
    """Load weights into a built model from `.weights.h5` (Keras 3), a legacy `.h5` (``by_name``: match layers
    by name; ``skip_mismatch``: skip layers whose weights do not fit, with a warning), a `.keras` file or a
    `.weights.npz`."""
    filepath = os.fspath(filepath)
    source = f"load_weights({filepath!r})"
    if not model.built:
        raise ValueError(f"{source}: model '{model.name}' is not built yet: call it on data or build() it first")
    if by_name and not filepath.endswith(".h5") or by_name and filepath.endswith(".weights.h5"):
        raise ValueError(f"{source}: by_name=True is only supported for legacy `.h5` files")
    if filepath.endswith(".keras"):
        _load_weights_from_keras(model, filepath, source)
    elif filepath.endswith(".h5"):
        _load_weights_h5(model, filepath, source, skip_mismatch, by_name)
    else:
        from fastnn.saving import _npz
        with open(filepath, "rb") as f:
            data = f.read()
        _npz.load_weights(model, data, source)


def _load_weights_from_keras(model, filepath, source):
    def read():
        with zipfile.ZipFile(filepath) as z:
            _check_names(z.namelist(), source)
            names = set(z.namelist())
            metadata = (_read_json(_member(z, "metadata.json", _JSON_LIMIT, source), "metadata.json", source)
                        if "metadata.json" in names else {})
            name = "model.weights.h5" if "model.weights.h5" in names else "model.weights.npz"
            if name not in names:
                raise ValueError(f"{source}: not a `.keras` model file: it holds no weights")
            return metadata, name, _member(z, name, _weights_limit(model), source)

    metadata, name, data = _zip_errors(source, read)
    if name == "model.weights.npz":
        from fastnn.saving import _npz
        _npz.load_weights(model, data, source)
        return
    own = metadata.get("fastnn") if isinstance(metadata.get("fastnn"), dict) else {}
    with _h5.open_h5(data, source) as h5:
        arrays = _h5.guarded(source, _read_weights_keras, h5, model, source)
    _h5.verify(arrays, own.get("checksums"), source)
    _assign(model, arrays, source)


def _load_weights_h5(model, filepath, source, skip_mismatch, by_name):
    with _h5.open_h5(filepath, source) as h5:
        _h5.guarded(source, _weights_from_h5, h5, model, source, skip_mismatch, by_name)


def _weights_from_h5(h5, model, source, skip_mismatch, by_name):
    if "model_weights" in h5 or "layer_names" in h5.attrs:
        from fastnn.saving import _legacy
        _legacy.load_weights(h5, model, source, skip_mismatch, by_name)
        return
    table = _h5.attr_json(h5, _h5.CHECKSUMS_ATTR, source, fixed_only=True)
    arrays = _read_matching(h5, model, source) if skip_mismatch else _read_weights_keras(h5, model, source)
    _h5.verify(arrays, table, source)
    if skip_mismatch:
        for path, var, _ in _state.weight_slots(model):
            if path in arrays:
                var.assign(arrays[path])
        _give_hooks(model, arrays)
    else:
        _assign(model, arrays, source)


def _read_matching(h5, model, source):
    """skip_mismatch: the weights whose dataset exists with the expected shape; the others warn."""
    out = _read_hooked(h5, model, source)
    for path, var, _ in _state.weight_slots(model):
        try:
            value = _h5.read_dataset(h5, path, var.shape, "f", source)
        except ValueError as e:
            value = None
            warnings.warn(f"Skipping loading weights for '{path}': {e}", stacklevel=4)
        if value is not None:
            out[path] = value
    return out


def load_h5_file(filepath, build, compile=True, source=None):
    """Load a legacy `.h5` model file (tf.keras 2, or Keras 3's ``model.save("m.h5")``): ``build(config)`` makes
    the model its model_config describes; then its weights, training configuration and optimizer state."""
    from fastnn.saving import _legacy
    source = source or f"load_model({filepath!r})"
    with _h5.open_h5(filepath, source) as h5:
        config = _h5.guarded(source, _legacy.read_config, h5, source)
        model = build(config)
        _h5.guarded(source, _legacy.load_weights, h5, model, source)
        training = _h5.guarded(source, _h5.attr_json, h5, "training_config", source)
        if compile and training:
            _compile_from_config(model, training, source)
            _h5.guarded(source, _read_optimizer, model,
                        lambda expected, n_head: _legacy.read_optimizer(h5, expected, n_head, source), source)
    return model
