"""Saving and loading models: one `.keras` zip modelled on Keras 3's layout, and weights-only files.

A `.keras` file is a zip holding
  metadata.json      {"keras_version", "fastnn_version", "date_saved"}
  config.json        {"module", "class_name", "config", "registered_name", "build_config", "compile_config"}; a
                     graph model's config is Keras 3's functional layout (see functional_config)
  model.weights.npz  layer weights under "layers/<class>[_k]/vars/<i>" (see _layer_paths; a nested model's layers
                     under "layers/functional/layers/...", a subclassed model's or custom layer's sublayers under
                     their attribute names: "dense1/vars/0") and the optimizer state under
                     "optimizer/vars/<i>" (0: the iteration count, then each slot array of each trainable
                     variable in model order) — Keras's `weights_format="npz"` object paths.
Nothing in a file is executed: classes are looked up by name among fastnn's own layers, losses,
metrics and optimizers, and custom classes by their registered name among those registered with
`register_keras_serializable` or given as `custom_objects` (see fastnn.serialization); arrays are
read with `allow_pickle=False`. Every write goes to a temporary file in the target folder that is
renamed into place, so a failed or interrupted save never leaves a half-written file (and never
removes the previous one).
Weights-only files: `.weights.npz` (the same npz layout). `.weights.h5` (Keras's layout:
`layers/<class>[_k]/vars/<i>` datasets) needs h5py, an optional dependency.
"""
import datetime
import io
import json
import os
import tempfile
import zipfile

import numpy as np

from fastnn import layers as layers_module
from fastnn._naming import _snake_case
from fastnn.layers.base import _UNTRACKED, Layer, assign_weights
from fastnn.serialization import (CustomObjectScope, check_get_config, custom_object_scope, get_custom_objects,
                                  get_registered_name, get_registered_object, register_keras_serializable)

__all__ = ["save_model", "load_weights", "save_weights", "register_keras_serializable", "get_registered_name",
           "get_registered_object", "get_custom_objects", "custom_object_scope", "CustomObjectScope"]

_FORMAT_KERAS_VERSION = "3.0.0"  # the Keras file layout these files follow


def _atomic_write(filepath, write, overwrite=True):
    """Call ``write(fileobj)`` on a temporary file next to ``filepath``, then rename it into place."""
    filepath = os.fspath(filepath)
    if not overwrite and os.path.exists(filepath):
        raise FileExistsError(f"{filepath} exists and overwrite=False")
    folder = os.path.dirname(os.path.abspath(filepath))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(filepath) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---- weights ---------------------------------------------------------------------------------------
def _class_name(layer):
    """The class name Keras writes: a graph model is a "Functional" (what keras.Model(inputs, outputs) makes)."""
    name = type(layer).__name__
    return "Functional" if name == "Model" else name


def _join(*parts):
    return "/".join(p for p in parts if p)


def _layer_paths(layer, path="", visited=None):
    """(path, layer) per layer whose own weights go under "<path>/vars/<i>", walked as Keras 3's saving_lib walks
    a model: a Functional's or Sequential's layers under "layers/<class>[_k]" (see _ranked), a nested model's
    layers continuing its path ("layers/functional/layers/dense"); any other layer (a subclassed model, a custom
    layer) holds its own weights and its sublayers under the attributes that hold them ("dense1/vars/0"). A
    layer reached twice is saved once, at its first path."""
    visited = set() if visited is None else visited
    if id(layer) in visited:
        return
    visited.add(id(layer))
    if layer._kind == "model" and layer._is_graph:
        children = _ranked(layer.layers, _join(path, "layers"))
    else:
        yield path, layer
        children = _attribute_layers(layer, path)
    for child_path, child in children:
        yield from _layer_paths(child, child_path, visited)


def _ranked(layers, path):
    """A path per layer of a list: its class and its rank among same-class layers ("dense", "dense_1"), not its
    global name, so weights load into another instance of the same architecture."""
    seen = {}
    for layer in layers:
        base = _snake_case(_class_name(layer))
        k = seen.get(base, 0)
        seen[base] = k + 1
        yield _join(path, base + (f"_{k}" if k else "")), layer


def _attribute_layers(layer, path):
    """(path, sublayer) for the layers assigned to ``layer``'s attributes (those ``Layer._sublayers`` tracks), in
    Keras's order: attribute names sorted, private ones last; a list's or dict's layers ranked as in _ranked."""
    for name, value in sorted(vars(layer).items(), key=_private_last):
        if name in _UNTRACKED or value is layer:
            continue
        if isinstance(value, Layer):
            yield _join(path, name), value
        elif isinstance(value, (list, tuple, dict)):
            items = value.values() if isinstance(value, dict) else value
            yield from _ranked([item for item in items if isinstance(item, Layer) and item is not layer],
                               _join(path, name))


def _private_last(item):
    name = item[0]
    return "~" + name if name.startswith("_") else name


def _own_weights(layer):
    """The weights a layer made itself (add_weight), trainable ones first: Keras's save_own_variables order."""
    return [v for v in layer._weights if v.trainable] + [v for v in layer._weights if not v.trainable]


def _weight_arrays(model):
    """{"<path>/vars/<i>": array} for every layer's weights (trainable and not), in layer order,
    plus "<path>/seed_generator" = [seed, offset] for layers that draw random numbers (Dropout),
    so that training resumes with the same masks (Keras saves its SeedGenerator state the same way)."""
    out = {}
    for path, layer in _layer_paths(model):
        for i, var in enumerate(_own_weights(layer)):
            out[_join(path, f"vars/{i}")] = var.value
        if getattr(layer, "_seed", None) is not None:
            out[_join(path, "seed_generator")] = np.array([layer._seed, layer._offset], dtype=np.uint64)
    return out


def _set_weight_arrays(model, arrays, source):
    for path, layer in _layer_paths(model):
        variables, values = _own_weights(layer), []
        for i in range(len(variables)):
            key = _join(path, f"vars/{i}")
            if key not in arrays:
                raise ValueError(f"{source}: no weights for layer '{layer.name}' (missing '{key}'); the file holds "
                                 f"{sorted(k for k in arrays if not k.startswith('optimizer/'))[:8]}")
            values.append(arrays[key])
        if _join(path, f"vars/{len(variables)}") in arrays:
            raise ValueError(f"{source}: layer '{layer.name}' has {len(variables)} weights but the file holds more")
        if values:
            assign_weights(f"layer '{layer.name}'", variables, values)
        rng = arrays.get(_join(path, "seed_generator"))
        if rng is not None and hasattr(layer, "_offset"):
            layer._seed, layer._offset = int(rng[0]), int(rng[1])


def _optimizer_arrays(model):
    opt = getattr(model, "optimizer", None)
    if opt is None or not opt.built:
        return {}
    out = {"optimizer/vars/0": np.array(opt.iterations, dtype=np.int64)}
    k = 1
    for var in model.trainable_weights:
        for slot in opt.variables_for(var):
            if slot is not None:
                out[f"optimizer/vars/{k}"] = slot
                k += 1
    return out


def _set_optimizer_arrays(model, arrays, source):
    if "optimizer/vars/0" not in arrays:
        return
    opt = model.optimizer
    variables = model.trainable_weights
    opt.build(variables)
    slots = [s for var in variables for s in opt.variables_for(var) if s is not None]
    n_file = sum(1 for key in arrays if key.startswith("optimizer/vars/")) - 1
    if n_file != len(slots):
        raise ValueError(f"{source}: the optimizer state holds {n_file} arrays, the model's optimizer "
                         f"{type(opt).__name__} needs {len(slots)}")
    for k, slot in enumerate(slots, start=1):
        value = arrays[f"optimizer/vars/{k}"]
        if value.shape != slot.shape:
            raise ValueError(f"{source}: optimizer array {k} has shape {value.shape}, expected {slot.shape}")
        slot[...] = value
    opt.iterations = int(arrays["optimizer/vars/0"])


def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _read_npz(data, source):
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{source}: the weights are not a readable npz archive ({e})") from None


# ---- configs -----------------------------------------------------------------------------------------
def _serialize(obj):
    """A loss/metric/optimizer (or a list/dict of them, per output) as JSON: its name (str) or
    {"class_name", "config"}."""
    if isinstance(obj, str) or obj is None:
        return obj
    if isinstance(obj, (list, tuple)):
        return [_serialize(o) for o in obj]
    if isinstance(obj, dict):
        return {k: _serialize(o) for k, o in obj.items()}
    if hasattr(obj, "get_config"):
        return {"class_name": type(obj).__name__, "config": obj.get_config()}
    name = getattr(obj, "__name__", None)
    if name is None:
        raise ValueError(f"cannot save {obj!r}: it has neither a name nor get_config()")
    return name


def _deserialize(entry, module, what):
    """Inverse of _serialize: only names and classes defined in `module` (fastnn's own) are accepted."""
    if isinstance(entry, str) or entry is None:
        return entry
    if isinstance(entry, list):
        return [_deserialize(e, module, what) for e in entry]
    if isinstance(entry, dict) and "class_name" not in entry:
        return {k: _deserialize(e, module, what) for k, e in entry.items()}
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise ValueError(f"bad {what} entry in config.json: {entry!r}")
    cls = getattr(module, entry["class_name"], None)
    if not isinstance(cls, type) or not hasattr(cls, "from_config"):
        raise ValueError(f"unknown {what} class in config.json: {entry['class_name']!r}")
    return cls.from_config(entry.get("config") or {})


# Keras 3's "module" of the objects a config names (every other one of fastnn's own is a layer: "keras.layers")
_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras"}


def _is_own(cls):
    """fastnn's own classes (its exported layers, Model and Sequential): configs name them without a registered
    name, as Keras names its built-ins."""
    if cls.__module__ in ("fastnn.models.model", "fastnn.models.sequential"):
        return True
    return cls.__name__ in layers_module.__all__ and getattr(layers_module, cls.__name__) is cls


def _entry(layer):
    """Keras 3's serialized object: module, class_name, config, registered_name and build_config. A custom class
    has its module (None for __main__) and its registered name ("package>Name", its class name if unregistered),
    which is how loading finds it again."""
    cls, class_name = type(layer), _class_name(layer)
    if _is_own(cls):
        module = _MODULES.get(class_name, "keras.layers")
        registered = "Functional" if class_name == "Functional" else None
    else:
        check_get_config(layer, Layer)
        module = None if cls.__module__ == "__main__" else cls.__module__
        registered = get_registered_name(cls)
    entry = {"module": module, "class_name": class_name, "config": _config(layer), "registered_name": registered}
    if not isinstance(layer, layers_module.InputLayer):  # Keras writes none for the one layer never built by a call
        entry["build_config"] = layer.get_build_config()
    return entry


def _config(layer):
    """``layer.get_config()``; a Sequential's layers as full entries (as Keras 3 writes them), so that custom
    layers in it carry their registered names."""
    config = layer.get_config()
    if layer._kind == "model" and layer._chain:
        config["layers"] = [_entry(sublayer) for sublayer in layer.layers]
    return config


def resolve_class(entry, model_classes, unknown="Unknown layer class in config:"):
    """The class a config entry names. Without a registered name of its own, fastnn's own: an exported layer
    (``fastnn.layers.__all__``) or one of ``model_classes``; then a custom Layer class, by its registered name
    (then its class name), from the open custom_object_scopes (load_model's ``custom_objects``) or the registry.
    Anything else is refused with ``unknown``: nothing is imported or looked up elsewhere."""
    class_name, registered = entry.get("class_name"), entry.get("registered_name")
    if isinstance(class_name, str) and registered in (None, class_name):
        own = model_classes.get(class_name) or (
            getattr(layers_module, class_name) if class_name in layers_module.__all__ else None)
        if isinstance(own, type) and issubclass(own, Layer):
            return own
    names = [n for n in (registered, class_name) if isinstance(n, str)]
    for cls in (get_registered_object(name) for name in names):
        if isinstance(cls, type) and issubclass(cls, Layer):
            return cls
    raise ValueError(f"{unknown} {class_name!r}. fastnn loads its own layers, {sorted(model_classes)} and custom "
                     f"classes: decorate a custom class with @fastnn.saving.register_keras_serializable() (and import "
                     f"it before loading) or pass it as load_model(..., custom_objects={{{class_name!r}: the class}}).")


def _calls_in(model):
    """{id(layer): that layer's nodes inside ``model``, in call order}. Their positions are the node indices of the
    config: Keras renumbers the calls of a layer that is also called outside the model."""
    mine = {id(node) for node in model._nodes} | {id(t.node) for t in model._inputs}
    return {id(layer): [node for node in layer._inbound_nodes if id(node) in mine] for layer in model.layers}


def functional_config(model):
    """Keras 3's config of a graph model: {"name", "trainable", "layers", "input_layers", "output_layers"}. Each
    layer entry lists its calls ("inbound_nodes": {"args": [tensor or list of tensors], "kwargs": {}}), a tensor
    being {"class_name": "__keras_tensor__", "config": {"shape", "dtype", "keras_history": [layer name, node
    index, tensor index]}}; inputs and outputs are such histories: one, a list, or a dict by key as the model
    was made."""
    calls = _calls_in(model)

    def history(t):
        layer = t.node.layer
        return [layer.name, calls[id(layer)].index(t.node), t.index]

    def tensor(t):
        return {"class_name": "__keras_tensor__",
                "config": {"shape": list(t.shape), "dtype": t.dtype, "keras_history": history(t)}}

    def node_config(node):
        args = tensor(node.inputs[0]) if node.single_input else [tensor(t) for t in node.inputs]
        return {"args": [args], "kwargs": {}}

    # an InputLayer's own node reads nothing: Keras lists no call for it
    layers = [{**_entry(layer), "name": layer.name,
               "inbound_nodes": [node_config(node) for node in calls[id(layer)] if node.inputs]}
              for layer in model.layers]
    return {"name": model.name, "trainable": model.trainable, "layers": layers,
            "input_layers": _structure_config(model._inputs, model._input_structure, model._input_names, history),
            "output_layers": _structure_config(model._outputs, model._output_structure, model._output_names,
                                               history)}


def _structure_config(tensors, structure, names, history):
    refs = [history(t) for t in tensors]
    if structure == "single":
        return refs[0]
    return dict(zip(names, refs)) if structure == "dict" else refs


def functional_graph(config, model_classes):
    """(inputs, outputs) of the graph a ``functional_config`` describes: every layer rebuilt from its entry, then
    called on the tensors its "inbound_nodes" name, in order. ``model_classes`` maps "Functional", "Model" and
    "Sequential" to the classes of nested models (this module does not import fastnn.models)."""
    layers, pending = {}, {}
    for entry in config["layers"]:
        name = entry["name"]
        if name in layers:
            raise ValueError(f"config: two layers are named {name!r}")
        layers[name] = resolve_class(entry, model_classes).from_config(entry["config"])
        pending[name] = list(entry["inbound_nodes"])
    # nodes a layer will have: those made already (an InputLayer's) and those its entry makes
    counts = {name: len(layer._inbound_nodes) + len(pending[name]) for name, layer in layers.items()}

    def resolve(ref):
        """The KerasTensor a keras_history names, or None while its node is not made yet."""
        name, node, index = _history(ref)
        if name not in layers:
            raise ValueError(f"config: tensor {ref!r} names layer {name!r}, which is not in the model")
        if not 0 <= node < counts[name]:
            raise ValueError(f"config: tensor {ref!r} names node {node} of layer {name!r}, which has "
                             f"{counts[name]} node(s)")
        nodes = layers[name]._inbound_nodes
        if node >= len(nodes):
            return None
        if not 0 <= index < len(nodes[node].outputs):
            raise ValueError(f"config: tensor {ref!r} names output {index} of layer {name!r}, which has "
                             f"{len(nodes[node].outputs)} output(s)")
        return nodes[node].outputs[index]

    _call_layers(layers, pending, resolve)
    return (_structure_from_config(config["input_layers"], resolve),
            _structure_from_config(config["output_layers"], resolve))


def _call_layers(layers, pending, resolve):
    """Call every layer on its nodes' arguments, each layer's calls in order; a call waits until the layers it
    reads from have made those tensors (a shared layer's later call may read a layer listed after it)."""
    progress = True
    while progress:
        progress = False
        for name, nodes in pending.items():
            while nodes:
                args = _node_args(nodes[0], name, resolve)
                if args is None:
                    break
                layers[name](args)
                nodes.pop(0)
                progress = True
    waiting = sorted(name for name, nodes in pending.items() if nodes)
    if waiting:
        raise ValueError(f"config: the calls of layers {waiting} wait on each other (a cycle in inbound_nodes)")


def _node_args(node, name, resolve):
    """The KerasTensor (or list of them) of one "inbound_nodes" entry, or None if one is not made yet. Keras writes
    {"mask": None} for nested models: call keywords must be None, fastnn's layers take none."""
    args, kwargs = node.get("args"), node.get("kwargs") or {}
    if not (isinstance(args, list) and len(args) == 1) or any(v is not None for v in kwargs.values()):
        raise ValueError(f"config: layer {name!r} has a call that fastnn cannot make: {node!r}")
    refs = args[0] if isinstance(args[0], list) else [args[0]]
    tensors = [resolve(_tensor_ref(ref, name)) for ref in refs]
    if any(t is None for t in tensors):
        return None
    return tensors if isinstance(args[0], list) else tensors[0]


def _tensor_ref(tensor, name):
    """The keras_history of a call argument, which must be a "__keras_tensor__"."""
    is_tensor = isinstance(tensor, dict) and tensor.get("class_name") == "__keras_tensor__"
    if not (is_tensor and isinstance(tensor.get("config"), dict)):
        raise ValueError(f"config: layer {name!r} is called on {tensor!r}, not a __keras_tensor__")
    return tensor["config"].get("keras_history")


def _history(ref):
    if not (isinstance(ref, list) and len(ref) == 3 and isinstance(ref[0], str)
            and all(type(i) is int for i in ref[1:])):
        raise ValueError(f"config: {ref!r} is not a keras_history [layer name, node index, tensor index]")
    return ref


def _structure_from_config(refs, resolve):
    """The model's inputs or outputs: one tensor, a list, or a dict by key (inverse of _structure_config)."""
    if isinstance(refs, dict):
        return {key: resolve(ref) for key, ref in refs.items()}
    if isinstance(refs, list) and refs and isinstance(refs[0], str):
        return resolve(refs)
    return [resolve(ref) for ref in refs]


def _compile_config(model):
    if not getattr(model, "compiled", False):
        return None
    metrics = model._metric_ids  # one list per output
    weights = model._output_loss_weights
    return {"optimizer": _serialize(model.optimizer), "loss": _serialize(model.loss),
            # by output name (compile takes that for every model); None: compile's default, all 1
            "loss_weights": None if all(w == 1.0 for w in weights) else dict(zip(model._output_names, weights)),
            "metrics": _serialize(metrics[0] if len(metrics) == 1 else metrics)}


def _compile_from_config(model, config):
    from fastnn import losses, metrics, optimizers
    optimizer = config["optimizer"]
    if isinstance(optimizer, dict):
        optimizer = optimizers.get(optimizer)
    model.compile(optimizer=optimizer, loss=_deserialize(config["loss"], losses, "loss"),
                  loss_weights=config.get("loss_weights"),
                  metrics=_deserialize(config.get("metrics", []), metrics, "metric"))


# ---- public ------------------------------------------------------------------------------------------
def save_model(model, filepath, overwrite=True):
    """Save architecture, weights, compile configuration and optimizer state to a `.keras` zip."""
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError(f"save: the filepath must end in `.keras`, got {filepath!r} "
                         f"(use save_weights() for `.weights.npz` / `.weights.h5`)")
    if not model.built:
        raise ValueError(f"save: model '{model.name}' is not built yet: call it on data or build() it first")
    from fastnn import __version__
    config = {**_entry(model), "compile_config": _compile_config(model)}
    metadata = {"keras_version": _FORMAT_KERAS_VERSION, "fastnn_version": __version__,
                "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")}
    weights = _npz_bytes({**_weight_arrays(model), **_optimizer_arrays(model)})

    def write(f):
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("metadata.json", json.dumps(metadata))
            z.writestr("config.json", json.dumps(config))
            z.writestr("model.weights.npz", weights)

    _atomic_write(filepath, write, overwrite)


def read_model_file(filepath):
    """(config, weight arrays, source) of a `.keras` file written by `model.save(path)`; the model class
    named in the config is the caller's to build (``fastnn.models.load_model``), so this module never
    imports the models."""
    filepath = os.fspath(filepath)
    source = f"load_model({filepath!r})"
    try:
        with zipfile.ZipFile(filepath) as z:
            names = set(z.namelist())
            missing = {"config.json", "model.weights.npz"} - names
            if missing:
                raise ValueError(f"{source}: not a fastnn/Keras model file: it lacks {sorted(missing)}")
            config = json.loads(z.read("config.json"))
            weights = _read_npz(z.read("model.weights.npz"), source)
    except zipfile.BadZipFile as e:
        raise ValueError(f"{source}: not a `.keras` model file (not a zip archive, or truncated: {e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{source}: config.json is not valid JSON ({e})") from None
    except (OSError, EOFError, RuntimeError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ValueError(f"{source}: the file is corrupted ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{source}: unsupported model class {config!r} (fastnn loads Sequential and functional "
                         f"models)")
    return config, weights, source


def restore_model_state(model, config, weights, source, compile=True):
    """Weights, then (``compile``) the compile configuration and optimizer state, of a model built from
    ``read_model_file``'s config."""
    _set_weight_arrays(model, weights, source)
    if compile and config.get("compile_config"):
        _compile_from_config(model, config["compile_config"])
        _set_optimizer_arrays(model, weights, source)
    return model


def save_weights(model, filepath, overwrite=True):
    """Save the layers' weights to `<name>.weights.npz` (or `.weights.h5`, which needs h5py)."""
    filepath = os.fspath(filepath)
    arrays = _weight_arrays(model)
    if filepath.endswith(".weights.npz"):
        data = _npz_bytes(arrays)
        _atomic_write(filepath, lambda f: f.write(data), overwrite)
    elif filepath.endswith(".weights.h5"):
        h5py = _h5py("save_weights")

        def write(f):
            with h5py.File(f, "w") as h5:
                for key, value in arrays.items():
                    h5.create_dataset(key, data=value)

        _atomic_write(filepath, write, overwrite)
    else:
        raise ValueError(f"save_weights: the filename must end in `.weights.npz` or `.weights.h5`, got {filepath!r}")


def load_weights(model, filepath):
    """Load weights saved by `save_weights` (or the weights of a `.keras` file) into a built model."""
    filepath = os.fspath(filepath)
    source = f"load_weights({filepath!r})"
    if not model.built:
        raise ValueError(f"{source}: model '{model.name}' is not built yet: call it on data or build() it first")
    if filepath.endswith(".keras"):
        try:
            with zipfile.ZipFile(filepath) as z:
                arrays = _read_npz(z.read("model.weights.npz"), source)
        except (zipfile.BadZipFile, KeyError) as e:
            raise ValueError(f"{source}: not a `.keras` model file ({e})") from None
    elif filepath.endswith(".weights.h5"):
        h5py = _h5py("load_weights")
        arrays = {}
        with h5py.File(filepath, "r") as h5:
            h5.visititems(lambda k, v: arrays.__setitem__(k, v[()]) if isinstance(v, h5py.Dataset) else None)
    else:
        with open(filepath, "rb") as f:
            arrays = _read_npz(f.read(), source)
    _set_weight_arrays(model, arrays, source)


def _h5py(who):
    try:
        import h5py
    except ImportError:
        raise ValueError(f"{who}: `.weights.h5` files need the optional package h5py (pip install h5py); "
                         f"`.weights.npz` works without it") from None
    return h5py
