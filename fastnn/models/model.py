"""Model: a graph of layer calls between Input tensors and outputs (the Functional API), trainable with
compile/fit/evaluate/predict and usable as a layer of another model.

>>> import numpy as np, fastnn
>>> inputs = fastnn.Input((4,))
>>> hidden = fastnn.layers.Dense(8, activation="relu")(inputs)
>>> model = fastnn.Model(inputs, fastnn.layers.Dense(3, activation="softmax")(hidden))
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
>>> model.predict(np.zeros((2, 4)), verbose=0).shape
(2, 3)
"""
import importlib

import numpy as np

from fastnn._graph import KerasTensor
from fastnn._naming import shape_str, unique_name
from fastnn.layers.base import _VERSION, Layer, _LayerCall, _as_input, backward_adding
from fastnn.layers.core import InputLayer
from fastnn.models.plan import Plan
from fastnn.models.summary import print_summary
from fastnn.models.training import Trainer

_tensor = importlib.import_module("fastnn.tensor")  # (the attribute fastnn.tensor is the function)


def _flatten(structure, what):
    """(list of KerasTensors, "single" | "list" | "dict", dict keys or None)."""
    if isinstance(structure, KerasTensor):
        return [structure], "single", None
    if isinstance(structure, dict):
        items = sorted(structure.items())  # Keras flattens dicts in sorted key order
        tensors, keys = [t for _, t in items], [k for k, _ in items]
        kind = "dict"
    elif isinstance(structure, (list, tuple)):
        tensors, keys, kind = list(structure), None, "list"
    else:
        raise ValueError(f"Model: `{what}` must be KerasTensors (from fastnn.Input and layer calls), a list or a "
                         f"dict of them, got {type(structure).__name__}")
    if not tensors:
        raise ValueError(f"Model: `{what}` is empty")
    for t in tensors:
        if not isinstance(t, KerasTensor):
            raise ValueError(f"Model: all `{what}` must be KerasTensors (from fastnn.Input and layer calls), got "
                             f"{type(t).__name__}")
    return tensors, kind, keys


def _graph_nodes(inputs, outputs):
    """The nodes between ``inputs`` and ``outputs`` in topological order, or Keras's 'Graph disconnected' error."""
    known = {id(t) for t in inputs}
    order, seen, done = [], set(), set()
    for out in outputs:
        stack = [(out.node, False)]
        while stack:
            node, expanded = stack.pop()
            if id(node) in done:
                continue
            if expanded:
                done.add(id(node))
                order.append(node)
                continue
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.append((node, True))
            if isinstance(node.layer, InputLayer):
                if not any(id(t) in known for t in node.outputs):
                    accessed = [n.layer.name for n in order]
                    raise ValueError(f"Graph disconnected: cannot find parent for {node.outputs[0]!r} at layer "
                                     f"\"{node.layer.name}\". The following previous layers were accessed without "
                                     f"issue: {accessed}")
                continue
            for t in reversed(node.inputs):
                stack.append((t.node, False))
    return order


def _layers_by_depth(nodes):
    """Keras 3's ``model.layers`` order: by graph depth, deepest (inputs) first, ties in the order a walk from
    the outputs meets them. ``nodes`` is that walk's post-order (inputs before the nodes that read them)."""
    node_depth, layer_depth = {}, {}
    for node in reversed(nodes):
        depth = max(node_depth.setdefault(id(node), 0), layer_depth.get(id(node.layer), 0))
        layer_depth[id(node.layer)] = node_depth[id(node)] = depth
        for t in node.inputs:
            node_depth[id(t.node)] = max(depth + 1, node_depth.get(id(t.node), 0))
    first_seen = {}
    for node in nodes:
        first_seen.setdefault(id(node.layer), (len(first_seen), node.layer))
    ordered = sorted(first_seen.values(), key=lambda item: (-layer_depth[id(item[1])], item[0]))
    return [layer for _, layer in ordered]


class Model(Trainer, Layer):
    """A trainable graph of layers: ``fastnn.Model(inputs, outputs)`` with KerasTensors (one, a list or a dict
    of each), Keras 3's Functional API. A Model is a layer too: call it on KerasTensors to nest it, or on
    arrays/Tensors to run it.

    Args:
        inputs: the model's ``fastnn.Input`` tensor(s).
        outputs: tensors computed from them by layer calls.
        name: model name (default ``functional``, ``functional_1``, ...).
    """

    _kind = "model"
    _chain = False  # Sequential: its layers list is its graph

    def __init__(self, *args, inputs=None, outputs=None, name=None, trainable=True, **kwargs):
        if args:
            if len(args) > 2 or (len(args) >= 1 and inputs is not None) or (len(args) == 2 and outputs is not None):
                raise TypeError("Model(inputs, outputs, name=None): inputs and outputs given twice")
            inputs = args[0]
            outputs = args[1] if len(args) == 2 else outputs
        functional = inputs is not None or outputs is not None
        default = "functional" if functional else None
        Layer.__init__(self, name=name or (unique_name(default) if default else None), trainable=trainable, **kwargs)
        self.optimizer = self.loss = None
        self.compiled = False
        self._metric_ids, self._output_metrics, self._metrics_resolved = [], [], False
        self._output_losses = None
        self.stop_training = False
        self.history = None
        if functional:
            if inputs is None or outputs is None:
                raise ValueError("Model: a functional model needs both `inputs` and `outputs`")
            self._init_graph(inputs, outputs)
        elif not self._chain:  # a subclassed model: its call() is its graph (one input, one output)
            self._input_structure = self._output_structure = "single"
            self._input_names, self._output_names = ["input_1"], ["output_1"]

    @property
    def _is_graph(self):
        return "_nodes" in self.__dict__

    @property
    def _output_shapes(self):
        return self.__dict__.get("_graph_output_shapes") or [self._output_shape]

    # ---- the graph ------------------------------------------------------------------------------
    def _init_graph(self, inputs, outputs):
        self._inputs, self._input_structure, input_keys = _flatten(inputs, "inputs")
        self._outputs, self._output_structure, output_keys = _flatten(outputs, "outputs")
        for t in self._inputs:
            if not isinstance(t.node.layer, InputLayer):
                raise ValueError(f"Model: every input must come from fastnn.Input, got {t!r} made by layer "
                                 f"'{t.node.layer.name}'")
        self._nodes = _graph_nodes(self._inputs, self._outputs)
        self._graph_layers = _layers_by_depth(self._nodes)
        self._input_names = input_keys or [t.node.layer.name for t in self._inputs]
        self._output_names = output_keys or [t.node.layer.name for t in self._outputs]
        if len(set(self._output_names)) != len(self._output_names):  # one layer's outputs, or a layer used twice
            self._output_names = [f"{n}_{i}" if self._output_names.count(n) > 1 else n
                                  for i, n in enumerate(self._output_names)]
        shapes = [t.shape for t in self._inputs]
        self._input_shape = shapes[0] if len(shapes) == 1 else shapes
        self._graph_output_shapes = [t.shape for t in self._outputs]
        self._output_shape = self._graph_output_shapes[0] if len(self._outputs) == 1 else list(self._graph_output_shapes)
        self.built = True

    def _input_dtypes(self):
        """The dtype of each input's data ("float32", or an integer type for token ids)."""
        return [t.dtype for t in self._inputs] if self._is_graph else ["float32"]

    def _plan_steps(self):
        if not self._is_graph:  # the whole call() is one step
            return [(self, (0,), (1,), True, True)], [0], [1], 2
        slot = {}

        def slot_of(t):
            return slot.setdefault(id(t), len(slot))

        input_slots = [slot_of(t) for t in self._inputs]
        steps = []
        for node in self._nodes:
            if isinstance(node.layer, InputLayer):
                continue
            ins = tuple(slot[id(t)] for t in node.inputs)
            outs = tuple(slot_of(t) for t in node.outputs)
            steps.append((node.layer, ins, outs, node.single_input, node.single_output))
        return steps, input_slots, [slot[id(t)] for t in self._outputs], len(slot)

    def _plan(self):
        """The cached plan, rebuilt when any layer, weight, trainable flag, loss or metric changed."""
        plan = self.__dict__.get("_cached_plan")
        if plan is None or plan.version != _VERSION[0]:
            self._require_graph()
            plan = self._cached_plan = Plan(self, _VERSION[0])
        return plan

    def _require_graph(self):
        if not self._is_graph and not self.built:
            raise ValueError(f"Model '{self.name}' is not built yet: call it on data (or fit/predict) first")

    @property
    def inputs(self):
        """The input KerasTensors (None for a subclassed or unbuilt model)."""
        return list(self._inputs) if "_inputs" in self.__dict__ else None

    @property
    def outputs(self):
        return list(self._outputs) if "_outputs" in self.__dict__ else None

    @property
    def losses(self):
        """The weights' penalties and the add_loss terms of the last call (Keras). A graph model runs its layers
        through its plan, whose backward already carries the add_loss terms' gradient (weight 1) to the model's
        inputs and weights; its terms are therefore given as values (detached), so that a custom loop's
        ``loss += sum(model.losses)`` adds them once, as in Keras."""
        out = Layer.losses.fget(self)
        if not self._is_graph:
            return out
        return [t.detach() if isinstance(t, _tensor.Tensor) else t for t in out]

    def _added_loss_terms(self):
        """The add_loss Tensors of the last call (detached for a graph model: see ``losses``)."""
        out = Layer._added_loss_terms(self)
        return [t.detach() for t in out] if self._is_graph else out

    @property
    def input(self):
        """A graph model's input KerasTensor (a list for several; Keras's Functional ``input``); a model never
        built as a graph: that of its first call on symbolic inputs, as any layer."""
        if "_inputs" in self.__dict__:
            return self._inputs[0] if len(self._inputs) == 1 else list(self._inputs)
        return Layer.input.fget(self)

    @property
    def output(self):
        """A graph model's output KerasTensor (a list for several), as Keras's Functional ``output``."""
        if "_outputs" in self.__dict__:
            return self._outputs[0] if len(self._outputs) == 1 else list(self._outputs)
        return Layer.output.fget(self)

    @property
    def input_names(self):
        return list(self._input_names)

    @property
    def output_names(self):
        return list(self._output_names)

    @property
    def layers(self):
        return list(self._graph_layers) if self._is_graph else Layer._sublayers(self)

    def get_layer(self, name=None, index=None):
        """The layer called ``name`` (or at position ``index`` of ``layers``)."""
        layers = self.layers
        if index is not None:
            if name is not None:
                raise ValueError("get_layer: provide only one of `name` and `index`")
            if not -len(layers) <= index < len(layers):
                raise ValueError(f"get_layer: was asked to retrieve layer at index {index} but model only has "
                                 f"{len(layers)} layers.")
            return layers[index]
        for layer in layers:
            if layer.name == name:
                return layer
        raise ValueError(f"No such layer: {name}. Existing layers are: {[layer.name for layer in layers]}.")

    def _check_inputs(self, xs, what):
        """Input arrays against the inputs' shapes (Keras's message, naming the input and both shapes)."""
        if not self._is_graph:
            Layer._maybe_build(self, (None,) + xs[0].shape[1:])  # a subclassed model builds on its first data
            return
        self._check_input_shapes([(None,) + x.shape[1:] for x in xs], f"{what}: ")

    def _check_input_shapes(self, shapes, prefix):
        """Each shape against the model's Input at its position (None matches any size): Keras's message, naming
        the input and both shapes, after ``prefix`` (the calling method's name, or nothing)."""
        for k, (shape, t) in enumerate(zip(shapes, self._inputs)):
            shape = tuple(shape)
            if len(shape) != len(t.shape) or any(e is not None and g is not None and e != g
                                                 for e, g in zip(t.shape[1:], shape[1:])):
                message = (f"{prefix}input {k} ('{self._input_names[k]}') of model '{self.name}' is incompatible "
                           f"with the layer: expected shape={shape_str(t.shape)}, found shape={shape_str(shape)}")
                raise ValueError(message[0].upper() + message[1:] if not prefix else message)

    # ---- a model as a layer ----------------------------------------------------------------------
    def _maybe_build(self, input_shape):
        if not self._is_graph:
            return Layer._maybe_build(self, input_shape)
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        if len(shapes) != len(self._inputs):
            raise ValueError(f"Model '{self.name}' expects {len(self._inputs)} input(s), got {len(shapes)}")
        self._check_input_shapes(shapes, "")
        return self._output_shape

    def compute_output_shape(self, input_shape):
        return self._output_shape if self._is_graph else Layer.compute_output_shape(self, input_shape)

    # ---- masks: a nested graph model takes its inputs' masks and its outputs carry the masks of its graph ----
    @property
    def _uses_mask(self):
        return self._is_graph

    def _makes_mask(self):
        if self._is_graph:  # (the cached plan knows: eager calls ask this every time)
            return self.built and self._plan().masked
        return Layer._makes_mask(self) and type(self).compute_mask is not Model.compute_mask

    def compute_mask(self, inputs, previous_mask):
        """The output masks of the forward pass that just ran (symbolically: those of the graph's outputs, made
        inside it; masks given to its inputs are known on data only)."""
        if not self._is_graph:
            return Layer.compute_mask(self, inputs, previous_mask)
        if any(isinstance(t, KerasTensor) for t in (inputs if isinstance(inputs, (list, tuple)) else [inputs])):
            masks = [None if t._keras_mask is None else KerasTensor(t._keras_mask.shape, dtype="bool")
                     for t in self._outputs]
        else:
            masks = self._plan().out_masks
        return masks[0] if len(masks) == 1 else list(masks)

    @property
    def _act(self):
        if not self._is_graph:
            return None
        plan = self._plan()
        return "softmax" if len(plan.output_slots) == 1 and plan.output_softmax[0] is not None else None

    def _forward(self, x, training, need_dx=True, logits=False, mask=None):
        if not self._is_graph:
            return Layer._forward(self, x, training, need_dx, mask)
        plan = self._plan()
        xs = x if isinstance(x, list) else [x]
        if mask is None:
            outs, ctx = plan.forward(xs, training, need_dx, plan.softmax_steps if logits else ())
        else:  # the masks of its inputs flow through its graph (the masked walk, whatever its own layers make)
            outs, ctx = plan._forward_masked(xs, training, need_dx, plan.softmax_steps if logits else (),
                                             mask if isinstance(mask, list) else [mask])
        return (outs[0] if len(outs) == 1 else outs), (plan, ctx, need_dx)

    def _writes_call(self):
        return type(self).call not in (Layer.call, Model.call)  # (Model.call below is not the user's)

    def call(self, inputs, training=None, mask=None):
        """A graph model on Tensors: Layer.call (one recorded node); with several outputs, one node that returns
        them all (``_MultiOutputCall``) and a differentiable slice per output, so that a tape reaches each."""
        if not self._is_graph or len(self._outputs) == 1 or mask is not None:
            return Layer.call(self, inputs, training, mask)
        weights = self.trainable_weights if _tensor._grad_enabled else ()
        xs = [_as_input(x) for x in inputs] if isinstance(inputs, (list, tuple)) else [_as_input(inputs)]
        listed = isinstance(inputs, (list, tuple))
        shapes = []
        node = _MultiOutputCall.apply(*xs, *weights, layer=self, training=training, inputs=len(xs),
                                      listed=listed, shapes=shapes)
        outs, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            outs.append(node[start:start + size].reshape(*shape))
            start += size
        return outs

    def _backward(self, ctx, dy):
        if not self._is_graph:
            return Layer._backward(self, ctx, dy)
        plan, inner, need_dx = ctx
        dx = plan.backward(inner, dy if isinstance(dy, list) else [dy], need_dx)
        if dx is None:
            return None
        return dx[0] if len(dx) == 1 and not isinstance(self._input_shape, list) else dx

    # ---- weights --------------------------------------------------------------------------------
    def _sublayers(self):
        if not self._is_graph:  # a subclassed model: the layers assigned to its attributes
            return Layer._sublayers(self)
        return [layer for layer in self.layers if layer is not self]

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        Layer.trainable.fset(self, value)
        for layer in self._sublayers():
            layer.trainable = value

    def _summary_layers(self):
        return self.layers

    def _summary_is_graph(self):
        """Keras 3 adds "Connected to" unless the graph is a chain of one-input, one-output calls."""
        if not self._is_graph:
            return False
        if len(self._inputs) != 1 or len(self._outputs) != 1:
            return True
        readers = {}
        for node in self._nodes:
            if len(node.inputs) > 1 or not node.single_output:
                return True
            for t in node.inputs:
                readers[id(t)] = readers.get(id(t), 0) + 1
        return any(n > 1 for n in readers.values())

    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False, show_trainable=False,
                layer_range=None):
        """Print Keras 3's summary table (layer name and type, output shape, param count, totals; "Connected to"
        for graphs that are not a chain)."""
        print_summary(self, line_length, positions, print_fn)

    # ---- config ---------------------------------------------------------------------------------
    def get_config(self):
        """Keras 3's functional config: every layer with its calls inside this model ("inbound_nodes") and the
        inputs/outputs as [layer name, node index, tensor index] (layout: ``fastnn.saving.functional_config``).
        A subclassed model's is the base layer config (name, trainable, dtype) that its own get_config extends
        with its constructor's arguments."""
        if not self._is_graph:
            from fastnn.serialization import check_get_config  # only this method needs it
            check_get_config(self, Model)
            return Layer.get_config(self)
        from fastnn import saving  # saving is imported by the models package: not at the top of this module
        self._require_graph()
        return saving.functional_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """The model ``get_config()`` describes, with new weights. Only fastnn's own layer classes and registered
        (or ``custom_objects``) ones are built. A subclassed model's config holds its constructor's arguments."""
        if custom_objects:
            from fastnn.serialization import custom_object_scope
            with custom_object_scope(custom_objects):
                return cls.from_config(config)
        from fastnn import saving
        from fastnn.models import _MODEL_CLASSES  # the package imports this module: not at its top
        if not {"layers", "input_layers", "output_layers"} <= set(config):
            return cls._from_constructor_config(config)
        inputs, outputs = saving.functional_graph(config, _MODEL_CLASSES)
        return cls(inputs, outputs, name=config.get("name"), trainable=config.get("trainable", True))

    @classmethod
    def _from_constructor_config(cls, config):
        try:
            return cls(**config)
        except TypeError as e:  # Keras's message
            raise TypeError(f"Unable to revive model from config. When overriding the `get_config()` method, make sure "
                            f"that the returned config contains all items used as arguments in the constructor to "
                            f"{cls}, which is the default behavior. You can override this default behavior by defining "
                            f"a `from_config(cls, config)` class method to specify how to create an instance of "
                            f"{cls.__name__} from its config.\n\nReceived config={config}\n\nError encountered during "
                            f"deserialization: {e}") from e


class _MultiOutputCall(_LayerCall):
    """A graph model with several outputs as one node of the Tensor graph: forward returns the outputs
    raveled and concatenated (their shapes left in the ``shapes`` list passed in), backward splits the
    gradient back into one array per output for the model's ``_backward``."""

    def forward(self, *args, shapes=None, **kwargs):
        outs = super().forward(*args, **kwargs)
        self.shapes = [np.shape(o) for o in outs]
        shapes[:] = self.shapes
        return np.concatenate([np.ravel(o) for o in outs]).astype(np.float32, copy=False)

    def backward(self, grad):
        grads, start = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            grads.append(np.ascontiguousarray(grad[start:start + size].reshape(shape), dtype=np.float32))
            start += size
        layer = self.layer
        dx = backward_adding(layer, self.ctx, grads) if _tensor._accumulating else layer._backward(self.ctx, grads)
        dxs = (tuple(dx) if dx is not None else (None,) * self.inputs) if self.listed else (dx,)
        return dxs + (None,) * (len(self.needs_input_grad) - self.inputs)
