"""Symbolic tensors and the nodes that record a graph of layer calls (the Functional API's data).

``fastnn.Input(shape)`` returns a ``KerasTensor``; calling a layer on KerasTensors appends a ``Node``
(layer, input tensors, output tensors) to ``layer._inbound_nodes`` and returns new KerasTensors whose
shapes come from the layer's ``compute_output_shape``. Nothing is computed: a Model turns the nodes
between its inputs and outputs into a plan (``fastnn.models.graph``).
"""
from fastnn._naming import shape_str


class KerasTensor:
    """A symbolic value of a graph: its shape (batch axis None), dtype and the node that makes it.

    >>> import fastnn
    >>> fastnn.Input((784,), name="digits").shape
    (None, 784)
    """
    __slots__ = ("shape", "dtype", "name", "node", "index", "_keras_mask")

    def __init__(self, shape, dtype="float32", name=None, node=None, index=0):
        self.shape = tuple(shape)
        self.dtype = dtype
        self.name = name
        self.node = node      # the Node that outputs it (an InputLayer's node for model inputs)
        self.index = index    # which of that node's outputs
        # a bool KerasTensor (B, T) when this value carries a mask (Embedding(mask_zero=True), Masking and the
        # layers that pass it on): the plan computes the same masks on data
        self._keras_mask = None

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def _keras_history(self):
        """(layer, node index in layer._inbound_nodes, output index): Keras's name for where it comes from."""
        layer = self.node.layer
        return layer, layer._inbound_nodes.index(self.node), self.index

    def __repr__(self):
        return f"<KerasTensor shape={shape_str(self.shape)}, dtype={self.dtype}, sparse=False, name={self.name}>"

    # Arithmetic records a layer, as Keras 3's symbolic operators do: Add/Subtract/Multiply between two
    # KerasTensors, a Lambda with a constant
    def _binary(self, other, op, merge, reflected=False):
        from fastnn import layers
        if isinstance(other, KerasTensor):
            pair = [other, self] if reflected else [self, other]
            return getattr(layers, merge)()(pair) if merge else layers.Lambda(lambda ts: op(ts[0], ts[1]))(pair)
        return layers.Lambda(lambda t: op(other, t) if reflected else op(t, other))(self)

    def __add__(self, other):
        return self._binary(other, lambda a, b: a + b, "Add")

    def __radd__(self, other):
        return self._binary(other, lambda a, b: a + b, "Add", True)

    def __sub__(self, other):
        return self._binary(other, lambda a, b: a - b, "Subtract")

    def __rsub__(self, other):
        return self._binary(other, lambda a, b: a - b, "Subtract", True)

    def __mul__(self, other):
        return self._binary(other, lambda a, b: a * b, "Multiply")

    def __rmul__(self, other):
        return self._binary(other, lambda a, b: a * b, "Multiply", True)

    def __truediv__(self, other):
        return self._binary(other, lambda a, b: a / b, None)

    def __neg__(self):
        from fastnn import layers
        return layers.Lambda(lambda t: -t)(self)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"A KerasTensor is symbolic (shape {shape_str(self.shape)}): it has no value. Build a Model "
                        f"from it (fastnn.Model(inputs, outputs)) and call the model on data instead.")


class Node:
    """One call of a layer in a graph: ``outputs = layer(inputs)`` on KerasTensors.

    ``inputs``/``outputs`` are lists; ``single_input`` tells whether the layer was called on one tensor
    (its ``_forward`` then gets one array) or on a list (it gets a list of arrays); ``single_output``
    likewise for what it returns."""
    __slots__ = ("layer", "inputs", "outputs", "single_input", "single_output")

    def __init__(self, layer, inputs, single_input):
        self.layer = layer
        self.inputs = list(inputs)
        self.single_input = single_input
        self.outputs = []
        self.single_output = True


def is_symbolic(inputs):
    """True for a KerasTensor or a (non-empty) list/tuple of them; mixing them with arrays is an error."""
    if isinstance(inputs, KerasTensor):
        return True
    if isinstance(inputs, (list, tuple)) and inputs and any(isinstance(t, KerasTensor) for t in inputs):
        if not all(isinstance(t, KerasTensor) for t in inputs):
            raise ValueError(f"A layer was called on a list mixing symbolic KerasTensors and concrete values: "
                             f"{[type(t).__name__ for t in inputs]}. In a functional model every input of a "
                             f"layer call must come from fastnn.Input or another layer.")
        return True
    return False


def symbolic_call(layer, inputs):
    """Record ``layer(inputs)`` on KerasTensors: build the layer from the input shapes (shape errors surface
    here, at graph-build time), append a Node and return its output KerasTensor(s)."""
    single = isinstance(inputs, KerasTensor)
    flat = [inputs] if single else list(inputs)
    shapes = flat[0].shape if single else [t.shape for t in flat]
    out_shape = layer._maybe_build(shapes)
    node = Node(layer, flat, single)
    if isinstance(out_shape, list):  # several outputs
        node.single_output = False
        node.outputs = [KerasTensor(s, node=node, index=i, name=f"{layer.name}_{i}") for i, s in enumerate(out_shape)]
    else:
        node.outputs = [KerasTensor(out_shape, node=node, name=layer.name)]
    layer._inbound_nodes.append(node)
    _symbolic_masks(layer, inputs if single else flat, node.outputs)
    return node.outputs[0] if node.single_output else list(node.outputs)


def _symbolic_masks(layer, inputs, outputs):
    """Attach the output masks (bool KerasTensors) of ``layer(inputs)``: a producer makes one of the output's
    shape without its last axis; other layers get theirs from ``compute_mask`` on the input masks (their
    default passes the mask on when they support masking and drops it otherwise)."""
    masks = [t._keras_mask for t in inputs] if isinstance(inputs, list) else inputs._keras_mask
    has = any(m is not None for m in masks) if isinstance(masks, list) else masks is not None
    if layer._produces_mask:
        out = [KerasTensor(o.shape[:-1], dtype="bool", name=f"{o.name}_mask") for o in outputs]
    elif has or layer._makes_mask():
        try:
            out = layer.compute_mask(inputs, masks if has else None)
        except (TypeError, ValueError, AttributeError):  # a compute_mask that needs data (merge layers): on data
            # the plan computes it; here a mask of the first input mask's shape says that there is one
            first = next((m for m in (masks if isinstance(masks, list) else [masks]) if m is not None), None)
            out = first if has and layer.supports_masking else None
    else:
        return
    if out is None:
        return
    out = out if isinstance(out, (list, tuple)) else [out] * len(outputs)
    for o, m in zip(outputs, out):
        if isinstance(m, KerasTensor):
            o._keras_mask = m
