"""Keras 3's functional config (a graph model's layers with their calls, "inbound_nodes") both ways, and the
tf.keras 2 form of it found in legacy `.h5` files ([[layer, node, tensor, kwargs], ...] per call)."""
from fastnn.saving._objects import layer_entry, layer_from_entry


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
    layers = [{**layer_entry(layer), "name": layer.name,
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
    if not isinstance(config.get("layers"), list):
        raise ValueError("config: a functional model's config needs a 'layers' list")
    for entry in config["layers"]:
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            raise ValueError(f"config: a layer entry without a name: {entry!r}"[:300])
        if name in layers:
            raise ValueError(f"config: two layers are named {name!r}")
        layers[name] = layer_from_entry(entry, model_classes)
        pending[name] = list(entry.get("inbound_nodes") or [])
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
