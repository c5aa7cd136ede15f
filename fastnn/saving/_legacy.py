"""The legacy tf.keras HDF5 layout (`model.save("m.h5")` in tf.keras 2 and Keras 3), both ways.

Root attributes: "model_config" (JSON), "training_config" (JSON: loss, metrics, loss_weights, optimizer_config),
"keras_version", "backend". "model_weights": a group per layer of ``model.layers`` (its "layer_names" attribute
lists them in order), each with a "weight_names" attribute listing its datasets in the layer's weights order.
"optimizer_weights": "weight_names" of the optimizer's variables in Keras's order (iteration, learning rate, slots).
Weights are matched to layers in order (only layers with weights), or by name (``by_name``).
"""
import io
import json
import warnings

import numpy as np

from fastnn.layers.base import assign_weights
from fastnn.saving import _h5
from fastnn.saving._objects import layer_entry


# ---- reading ---------------------------------------------------------------------------------------------------
def read_config(h5, source):
    config = _h5.attr_json(h5, "model_config", source)
    if config is None:
        raise ValueError(f"{source}: the file holds no model config (a weights-only file: build the model and "
                         f"call load_weights)")
    if not isinstance(config, dict):
        raise ValueError(f"{source}: model_config is not a JSON object")
    return upgrade_config(config)


def upgrade_config(entry):
    """A tf.keras 2 model config in Keras 3's form: functional calls as {"args", "kwargs"}, InputLayer's
    batch_input_shape as batch_shape, a single input/output unwrapped. Keras 3 configs pass unchanged."""
    config = entry.get("config")
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        return entry
    old = _is_old(config["layers"])
    layers = []
    for layer in config["layers"]:
        if not isinstance(layer, dict):
            layers.append(layer)
            continue
        layer = dict(layer)
        if layer.get("class_name") == "InputLayer" and isinstance(layer.get("config"), dict):
            sub = dict(layer["config"])
            if "batch_input_shape" in sub and "batch_shape" not in sub:
                sub["batch_shape"] = sub.pop("batch_input_shape")
            layer["config"] = sub
        if isinstance(layer.get("inbound_nodes"), list):
            layer["inbound_nodes"] = [_upgrade_node(node) for node in layer["inbound_nodes"]]
        if isinstance(layer.get("config"), dict) and isinstance(layer["config"].get("layers"), list):
            layer = upgrade_config(layer)  # a nested model
        layers.append(layer)
    config = {**config, "layers": layers}
    for key in ("input_layers", "output_layers"):
        refs = config.get(key)
        if isinstance(refs, list) and len(refs) == 1 and isinstance(refs[0], list) and refs[0] and \
                isinstance(refs[0][0], str) and old:
            config[key] = refs[0]  # tf.keras 2 lists a single input too
    return {**entry, "config": config}


def _is_old(layers):
    return any(isinstance(l, dict) and any(isinstance(n, list) for n in l.get("inbound_nodes") or [])
               for l in layers)


def _upgrade_node(node):
    """tf.keras 2's call [[layer, node, tensor, kwargs], ...] as Keras 3's {"args": [tensor(s)], "kwargs": {}}."""
    if not isinstance(node, list):
        return node
    tensors = []
    for ref in node:
        if not (isinstance(ref, list) and len(ref) >= 3):
            raise ValueError(f"config: malformed legacy call {node!r}"[:300])
        tensors.append({"class_name": "__keras_tensor__", "config": {"keras_history": list(ref[:3])}})
    kwargs = node[0][3] if len(node[0]) > 3 and isinstance(node[0][3], dict) else {}
    return {"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": kwargs}


def load_weights(h5, model, source, skip_mismatch=False, by_name=False):
    """Legacy weights (a whole-model `.h5`'s or a tf.keras `save_weights` `.h5`) into ``model``'s layers, checked
    against the checksums fastnn writes into its own files."""
    table = _h5.attr_json(h5, _h5.CHECKSUMS_ATTR, source, fixed_only=True)
    group = h5["model_weights"] if "model_weights" in h5 else h5
    file_layers = [name for name in _h5.name_list(group, "layer_names") if _h5.name_list(group[name], "weight_names")]
    layers = [layer for layer in model.layers if layer.weights]
    if by_name:
        by = {layer.name: layer for layer in layers}
        pairs = [(name, by[name]) for name in file_layers if name in by]
    else:
        if len(file_layers) != len(layers):
            raise ValueError(f"{source}: the file holds weights for {len(file_layers)} layers ({file_layers[:8]}), "
                             f"model '{model.name}' has {len(layers)} layers with weights")
        pairs = list(zip(file_layers, layers))
    for name, layer in pairs:
        weight_names = _h5.name_list(group[name], "weight_names")
        variables = layer.weights
        try:
            if len(weight_names) != len(variables):
                raise ValueError(f"{source}: layer '{name}' holds {len(weight_names)} weights in the file, layer "
                                 f"'{layer.name}' has {len(variables)}")
            values = [_dataset(group[name], wn, v.shape, source, f"weight {wn!r} of layer {name!r}")
                      for wn, v in zip(weight_names, variables)]
            _h5.verify({f"{group[name].name}/{wn}".lstrip("/"): v for wn, v in zip(weight_names, values)}, table,
                       source)
        except ValueError as e:
            if not skip_mismatch:
                raise
            warnings.warn(f"Skipping loading weights for layer '{layer.name}': {e}", stacklevel=3)
            continue
        assign_weights(f"layer '{layer.name}'", variables, values)


def _dataset(group, name, shape, source, what, kind="f"):
    value = _h5.read_dataset(group, name, shape, kind, source, what)
    if value is None:
        raise ValueError(f"{source}: {what} is missing")
    return value


def read_optimizer(h5, expected, n_head, source):
    """{path: array} of the optimizer's state in ``expected``'s order, or None (with Keras's warning) when the file
    has none or one of another size (a tf.keras 2 optimizer: no learning-rate variable, other slot order)."""
    if "optimizer_weights" not in h5:
        return None
    group = h5["optimizer_weights"]
    names = _h5.name_list(group, "weight_names")
    if len(names) == n_head < len(expected):  # an optimizer saved before its first step: no slots yet
        expected = expected[:n_head]
    elif len(names) != len(expected):
        warnings.warn(f"{source}: error in loading the saved optimizer state: it holds {len(names)} arrays, the "
                      f"optimizer needs {len(expected)}; it starts afresh", stacklevel=4)
        return None
    arrays = {f"optimizer_weights/{name}": _dataset(group, name, shape, source, f"optimizer weight {name!r}", kind)
              for name, (path, shape, kind) in zip(names, expected)}
    _h5.verify(arrays, _h5.attr_json(h5, _h5.CHECKSUMS_ATTR, source, fixed_only=True), source)
    return {path: value for (path, _, _), value in zip(expected, arrays.values())}


# ---- writing ---------------------------------------------------------------------------------------------------
def model_bytes(model, compile_config, include_optimizer):
    """The legacy `.h5` file of a model (bytes)."""
    from fastnn.saving import _FORMAT_KERAS_VERSION, _optimizer_arrays
    h5py = _h5.h5py_module("save")
    entry = layer_entry(model)
    config = {"class_name": entry["class_name"], "config": entry["config"]}
    buf = io.BytesIO()
    checks = {}
    with h5py.File(buf, "w", libver="latest") as h5:
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["keras_version"] = _FORMAT_KERAS_VERSION
        h5.attrs["model_config"] = _h5.text_attr(json.dumps(config))
        group = h5.create_group("model_weights")
        group.attrs["backend"] = "tensorflow"
        group.attrs["keras_version"] = _FORMAT_KERAS_VERSION
        group.attrs["layer_names"] = _names([layer.name for layer in model.layers] + ["top_level_model_weights"])
        for layer in model.layers:
            _write_layer(group, layer.name, [(f"{layer.name}/{_var_name(v, i)}", v.value)
                                             for i, v in enumerate(layer.weights)], checks)
        _write_layer(group, "top_level_model_weights", [], checks)
        if compile_config is not None:
            training = {k: v for k, v in compile_config.items() if k != "optimizer"}
            optimizer = compile_config["optimizer"]
            if isinstance(optimizer, dict):
                optimizer = {"class_name": optimizer["class_name"], "config": optimizer["config"]}
            h5.attrs["training_config"] = _h5.text_attr(json.dumps({**training, "optimizer_config": optimizer}))
            arrays = _optimizer_arrays(model) if include_optimizer else {}
            if arrays:
                name = model.optimizer.name
                n_slots = _n_slots(model) if model.optimizer.built else 0
                kinds = ["iteration", "learning_rate"][:len(arrays) - n_slots]
                names = [f"{name}/{k}" for k in kinds] + [f"{name}/slot_{i}" for i in range(n_slots)]
                _write_layer(h5, "optimizer_weights", list(zip(names, arrays.values())), checks)
        h5.attrs[_h5.CHECKSUMS_ATTR] = _h5.text_attr(json.dumps(checks))
    return buf.getvalue()


def _n_slots(model):
    opt = model.optimizer
    return sum(s is not None for v in model.trainable_weights for s in opt.variables_for(v))


def _var_name(var, i):
    name = getattr(var, "name", None) or f"weight_{i}"
    return f"{name}_{i}" if "/" in name else name


def _names(names):
    """A name-list attribute as Keras writes it (byte strings)."""
    return np.array([n.encode("utf-8") for n in names], dtype=bytes) if names else np.zeros(0)


def _write_layer(parent, name, named_arrays, checks):
    group = parent.create_group(name)
    group.attrs["weight_names"] = _names([n for n, _ in named_arrays])
    for n, value in named_arrays:
        group.create_dataset(n, data=value)
        checks[f"{group.name}/{n}".lstrip("/")] = _h5.checksum(value)
