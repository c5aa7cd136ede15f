"""Layer base class with Keras 3 semantics, the Variable that holds a weight, and the mixins of the
layers with kernels and activations.

A layer's ``__init__`` stores configuration only; ``build(input_shape)`` creates the weights on the
first call; the math lives in one pair of numpy-level methods that fit, evaluate, predict and nested
models all run (through the model's plan):

- ``_forward(x, training, need_dx=True) -> (y, ctx)``: each op is a ``Function(needs)`` of the op set
  (``fastnn._ops``) whose needs come from ``recording(...)``, so under ``no_grad`` (evaluate, predict)
  nothing is saved for a backward pass: that is the fast path.
- ``_backward(ctx, dy) -> dx`` (None when forward was told ``need_dx=False``); writes the gradients of
  the trainable weights into ``var.grad``.

``layer(x)`` on Tensors runs the same pair as one node of the Tensor graph (``_LayerCall``).
"""
import importlib
import inspect

import numpy as np

from fastnn import activations, backend, initializers, regularizers
from fastnn._graph import is_symbolic, symbolic_call
from fastnn._naming import _snake_case, shape_str, unique_name
from fastnn.layers.variable import Variable, checked_shape
from fastnn.serialization import charge_weight
from fastnn.tensor import Function, Tensor, no_grad

# NOTE: the module, for its _grad_enabled flag (`from fastnn import tensor` is the tensor() function)
_tensor = importlib.import_module("fastnn.tensor")


# Bumped by every change that can alter a model's plan (weights added, trainable flags, a model's layers,
# loss or metrics): a cached plan is valid while the number it was built at is current.
_VERSION = [0]


def structure_changed():
    _VERSION[0] += 1


# attributes that hold other models' layers rather than sublayers (graphs, plans, caches)
_UNTRACKED = frozenset(("_inbound_nodes", "_graph_layers", "_cached_plan", "_nodes", "_inputs", "_outputs",
                        "_input_layer", "_layers", "optimizer"))


def _unique(items):
    return list(dict.fromkeys(items))


# A layer called at several places of one graph gets the sum of its calls' weight gradients: the backward
# pass starts them at None (start_sums), each call adds its own (backward_adding), and those no call
# reached end as zeros (end_sums). The plan uses this for shared layers, the Tensor graph inside a
# GradientTape or a layer written with call().
def start_sums(variables):
    for v in variables:
        v.grad = None


def end_sums(variables):
    for v in variables:
        if v.grad is None:
            v.grad = backend.of(v.data).zeros(v.shape)


def backward_adding(layer, ctx, dy):
    """``layer._backward(ctx, dy)``, its weight gradients added to what earlier calls left in ``.grad``."""
    variables = layer.trainable_weights
    before = [v.grad for v in variables]
    dx = layer._backward(ctx, dy)
    for v, g in zip(variables, before):
        if g is not None and v.grad is not g:
            v.grad = v.grad + g
    return dx


def assign_weights(owner, variables, weights):
    """Write ``weights`` into ``variables`` after checking the count and every shape (all or nothing)."""
    weights = list(weights)
    if len(weights) != len(variables):
        kind, _ = owner.split(" ", 1)
        raise ValueError(f"You called set_weights(weights) on {owner} with a weight list of length {len(weights)}, "
                         f"but the {kind} was expecting {len(variables)} weights.")
    arrays = [np.asarray(w, dtype=np.float32) for w in weights]
    for var, arr in zip(variables, arrays):
        if arr.shape != var.shape:
            raise ValueError(f"Layer '{var.path.rsplit('/', 1)[0]}' weight shape {var.shape} is not compatible with "
                             f"provided weight shape {arr.shape} (weight '{var.name}').")
    for var, arr in zip(variables, arrays):
        var.value[...] = arr


class Layer:
    """Base class of every layer (Keras 3 semantics).

    Args:
        name: unique name; default: snake_case class name plus a per-class counter (``dense_1``).
        trainable: whether the weights are trained (``layer.trainable = False`` freezes them).
        input_shape / input_dim / batch_input_shape: accepted on the first layer of a Sequential
            (shape without the batch dimension).

    >>> import fastnn
    >>> layer = fastnn.layers.Dense(3)
    >>> layer(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    _kind = "layer"  # how messages name it ("model" for models)
    # Masks (Keras 3): a numpy bool array (B, T) per value, made by producers (Embedding(mask_zero=True),
    # Masking: ``_produces_mask``), passed to consumers (``_uses_mask``: ``_forward(..., mask=)``) and carried
    # through layers that ``supports_masking`` by ``compute_mask``; any other layer drops it.
    supports_masking = False
    _produces_mask = False
    _uses_mask = False
    # reads token ids (Embedding): fit/evaluate/predict feed a Sequential starting with it int32 data
    _integer_input = False

    def __init__(self, *, name=None, trainable=True, dtype=None, input_shape=None, input_dim=None,
                 batch_input_shape=None, batch_size=None, **kwargs):
        if kwargs:
            raise TypeError(f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"{type(self).__name__}: only dtype float32 is supported, got {dtype!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"{type(self).__name__}: name must be a string, got {name!r}")
        self.name = name or unique_name(_snake_case(type(self).__name__))
        self._trainable = bool(trainable)
        self.built = False
        self._weights = []
        self._inbound_nodes = []  # graph nodes: one per call on KerasTensors
        self._input_shape = None
        self._output_shape = None
        self._batch_input_shape = None
        if batch_input_shape is not None:
            self._batch_input_shape = tuple(batch_input_shape)
        elif input_shape is not None:
            self._batch_input_shape = (batch_size,) + tuple(input_shape)
        elif input_dim is not None:
            self._batch_input_shape = (batch_size, int(input_dim))

    # ---- weights --------------------------------------------------------------------------------
    def add_weight(self, shape=None, initializer=None, dtype=None, trainable=True, autocast=True, regularizer=None,
                   constraint=None, aggregation="none", overwrite_with_gradient=False, name=None):
        """Create a weight (Keras 3 ``add_weight``: initializer None = "glorot_uniform") and return its Variable."""
        if constraint is not None:
            raise ValueError(f"Layer '{self.name}': add_weight(constraint=...) is not supported yet")
        if dtype not in (None, "float32", np.float32):
            raise ValueError(f"Layer '{self.name}': add_weight: only dtype float32 is supported, got {dtype!r}")
        name = name or f"variable_{len(self._weights)}"
        shape = checked_shape(shape, f"Layer '{self.name}': weight '{name}'")
        charge_weight(f"layer '{self.name}'", shape)  # (loading a file: bounded by what the file can hold)
        init = initializers.get("glorot_uniform" if initializer is None else initializer)
        value = np.asarray(init(shape), dtype=np.float32).reshape(shape)
        regularizer = regularizers.get(regularizer)
        var = Variable(value, name, f"{self.name}/{name}", trainable=trainable, regularizer=regularizer)
        self._weights.append(var)
        structure_changed()
        return var

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        structure_changed()

    @property
    def weights(self):
        """All Variables: trainable ones first, then non-trainable (Keras order)."""
        return self.trainable_weights + self.non_trainable_weights

    @property
    def trainable_weights(self):
        if not self._trainable:
            return []
        own = [v for v in self._weights if v.trainable]
        return _unique(own + [v for layer in self._sublayers() for v in layer.trainable_weights])

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return _unique(list(self._weights) + [v for layer in self._sublayers() for v in layer.weights])
        own = [v for v in self._weights if not v.trainable]
        return _unique(own + [v for layer in self._sublayers() for v in layer.non_trainable_weights])

    def _sublayers(self):
        """Layers assigned to attributes of this one (also inside lists, tuples and dicts), as Keras tracks
        them: a layer written with ``call`` owns their weights."""
        found = []
        for name, value in self.__dict__.items():
            if name in _UNTRACKED:
                continue
            items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else (value,)
            for item in items:
                if isinstance(item, Layer) and item is not self:
                    found.append(item)
        return _unique(found)

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights

    @property
    def variables(self):
        return self.weights

    def get_weights(self):
        """Copies of the weights as numpy arrays, in ``weights`` order."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights):
        """Set every weight from a list of arrays (same order and shapes as ``get_weights()``)."""
        assign_weights(f"{self._kind} '{self.name}'", self.weights, weights)

    def count_params(self):
        """Number of scalars in all weights (the layer must be built)."""
        if not self.built:
            raise ValueError(f"You tried to call count_params on {self._kind} '{self.name}', but the {self._kind} "
                             f"isn't built. You can build it manually via: `{self.name}.build(batch_input_shape)`.")
        return int(sum(v.value.size for v in self.weights))

    @property
    def losses(self):
        """Regularization penalties of this layer's (and its sublayers') weights (floats), and the ``add_loss``
        terms of the last call (Tensors)."""
        own = [v.regularizer(v.value) for v in self._weights if v.regularizer is not None]
        return own + list(self.__dict__.get("_added_losses", [])) + [p for layer in self._sublayers()
                                                                     for p in layer.losses]

    def add_loss(self, loss):
        """Add a loss term (a scalar Tensor computed in ``call``, or a number) to the training loss of this
        call (Keras ``add_loss``: the terms are reset at the start of each outermost call)."""
        self.__dict__.setdefault("_added_losses", []).append(loss if isinstance(loss, Tensor) else Tensor(loss))

    def _may_add_losses(self):
        """Whether this layer or a sublayer runs user code (call) that may add_loss."""
        return self._writes_call() or any(layer._may_add_losses() for layer in self._sublayers())

    def _added_loss_terms(self):
        """The add_loss Tensors of this layer and its sublayers, from their last call."""
        return list(self.__dict__.get("_added_losses", [])) + [t for layer in self._sublayers()
                                                              for t in layer._added_loss_terms()]

    # ---- shapes and build -----------------------------------------------------------------------
    @property
    def input_shape(self):
        if self._input_shape is None:
            raise AttributeError(f"The layer '{self.name}' has never been called and thus has no defined input shape.")
        return self._input_shape

    @property
    def output_shape(self):
        if self._output_shape is None:
            raise AttributeError(f"The layer '{self.name}' has never been called and thus has no defined output shape.")
        return self._output_shape

    @property
    def output(self):
        """The output KerasTensor(s) of this layer's first call in a graph."""
        return self._node_attribute("output", "outputs", "single_output")

    @property
    def input(self):
        """The input KerasTensor(s) of this layer's first call in a graph."""
        return self._node_attribute("input", "inputs", "single_input")

    def _node_attribute(self, what, attr, single):
        if not self._inbound_nodes:
            raise AttributeError(f"The layer '{self.name}' has never been called on symbolic inputs (fastnn.Input) "
                                 f"and thus has no defined {what}.")
        node = self._inbound_nodes[0]
        tensors = getattr(node, attr)
        return tensors[0] if getattr(node, single) else list(tensors)

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch dimension first, may be None)."""

    def compute_output_shape(self, input_shape):
        """The output shape for ``input_shape``; a layer written with ``call`` and without this method finds
        it by running ``call`` once on zeros (batch 1, unknown sizes 1)."""
        if not self._writes_call():
            return tuple(input_shape)

        def zeros(shape):
            return Tensor(np.zeros(tuple(1 if d is None else d for d in shape), np.float32))

        state = [(v, v.data.copy()) for v in self.non_trainable_weights]
        with no_grad():
            out = self._user_call([zeros(s) for s in input_shape] if isinstance(input_shape, list)
                                  else zeros(input_shape), False)
        for v, value in state:  # a shape probe must leave no trace: call's state updates are undone
            v.data[...] = value
        _clear_added_losses(self)
        shapes = [(None,) + tuple(o.shape[1:]) for o in (out if isinstance(out, (list, tuple)) else [out])]
        return shapes if isinstance(out, (list, tuple)) else shapes[0]

    def _check_input_shape(self, input_shape):
        """Raise ValueError (naming the layer and both shapes) if inputs of this shape cannot be used."""
        expected = self._input_shape
        if isinstance(expected, list) or isinstance(input_shape, list):
            if not (isinstance(expected, list) and isinstance(input_shape, list) and len(expected) == len(input_shape)):
                raise ValueError(f"Layer '{self.name}' ({type(self).__name__}) was built for inputs of shape "
                                 f"{expected}, got {input_shape}")
            return
        if len(input_shape) != len(expected) or any(
                e is not None and g is not None and e != g for e, g in zip(expected[1:], input_shape[1:])):
            raise ValueError(f"Input of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected shape={shape_str(expected)}, found shape={shape_str(input_shape)}")

    def _maybe_build(self, input_shape):
        """Build on first use; afterwards check the shape. Returns the output shape. ``input_shape`` is a
        tuple, or a list of tuples for a layer called on several inputs (merge layers)."""
        if isinstance(input_shape, list):
            input_shape = [_ints(s) for s in input_shape]
        else:
            input_shape = _ints(input_shape)
        if not self.built:
            input_shape = [_batch_none(s) for s in input_shape] if isinstance(input_shape, list) else \
                _batch_none(input_shape)
            if self._writes_call():  # its output shape comes from running call, which needs the weights
                self.build(input_shape)
                self.built = True
                try:
                    output_shape = self.compute_output_shape(input_shape)
                except Exception:
                    self.built = False
                    raise
                self._input_shape, self._output_shape = input_shape, output_shape
                return output_shape
            output_shape = self.compute_output_shape(input_shape)  # validates before any weight exists
            self.build(input_shape)
            self._input_shape, self._output_shape = input_shape, output_shape
            self.built = True
            return output_shape
        self._check_input_shape(input_shape)
        if self._writes_call():  # known since the build; running call again would repeat its effects
            return self._output_shape
        return self.compute_output_shape(input_shape)

    def get_build_config(self):
        return {"input_shape": self._input_shape} if self.built else None

    def build_from_config(self, config):
        if config and config.get("input_shape") is not None:
            self._maybe_build(config["input_shape"])

    # ---- config ---------------------------------------------------------------------------------
    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable, "dtype": "float32"}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def compute_mask(self, inputs, previous_mask):
        """The mask of this layer's output (Keras 3): the input's mask when the layer supports masking."""
        return previous_mask if self.supports_masking else None

    # ---- math -----------------------------------------------------------------------------------
    # Built-in layers implement the numpy-level pair _forward/_backward; a layer written by a user (Keras
    # subclassing) implements call() on Tensors instead, and this default pair runs it through the autograd.
    def _writes_call(self):
        return type(self).call is not Layer.call

    @classmethod
    def _call_takes(cls):
        """(whether call() takes ``training``, whether it takes ``mask``), read once per class."""
        takes = cls.__dict__.get("_call_takes_cached")
        if takes is None:
            params = inspect.signature(cls.call).parameters
            anything = any(p.kind is p.VAR_KEYWORD for p in params.values())
            takes = cls._call_takes_cached = ("training" in params or anything, "mask" in params)
        return takes

    def _takes_mask(self):
        """Whether the plan passes this layer its input's mask: ``_uses_mask`` built-in layers, and layers
        written with a ``call(..., mask=None)``."""
        return self._uses_mask or (self._writes_call() and self._call_takes()[1])

    def _makes_mask(self):
        """Whether this layer may make a mask from no mask: producers, and call()-written layers that
        override ``compute_mask``."""
        return self._produces_mask or (self._writes_call() and type(self).compute_mask is not Layer.compute_mask)

    def _user_call(self, inputs, training, mask=None):
        takes = self._call_takes()
        kwargs = {"training": training} if takes[0] else {}
        if takes[1] and mask is not None:  # Keras passes the mask to a call() that names it
            kwargs["mask"] = mask
        return self.call(inputs, **kwargs)

    def _forward(self, x, training, need_dx=True, mask=None):
        """call() on Tensors made from x (a list for several inputs); ctx is the graph it recorded."""
        if not self._writes_call():
            raise NotImplementedError(f"Layer '{self.name}' ({type(self).__name__}) does not implement call()")
        record = _tensor._grad_enabled
        inputs = [Tensor(a, requires_grad=need_dx and record) for a in x] if isinstance(x, list) else \
            Tensor(x, requires_grad=need_dx and record)
        global _CALL_DEPTH
        _clear_added_losses(self)  # a plan step is an outermost call
        _CALL_DEPTH += 1
        try:
            out = self._user_call(inputs, training, mask)
        finally:
            _CALL_DEPTH -= 1
        outs = out if isinstance(out, (list, tuple)) else [out]
        arrays = [o.data if isinstance(o, Tensor) else np.asarray(o, dtype=np.float32) for o in outs]
        y = arrays if isinstance(out, (list, tuple)) else arrays[0]
        return y, ((inputs, outs, need_dx) if record else None)

    def _backward(self, ctx, dy):
        """Back-propagates dy through the graph call() recorded: the weights' gradients (own and sublayers')
        land in their ``.grad``; returns dx (a list for several inputs) or None."""
        inputs, outs, need_dx = ctx
        variables = self.trainable_weights
        start_sums(variables)
        dys = dy if isinstance(dy, list) else [dy]
        tracked = [(o, g) for o, g in zip(outs, dys) if isinstance(o, Tensor) and o.requires_grad]
        # add_loss terms of this call enter the training loss with weight 1
        tracked += [(t, np.float32(1.0)) for t in self._added_loss_terms() if t.requires_grad]
        if tracked:
            # one backward pass through every output: L = sum(o * dy)
            # (each product summed on its own: a scalar add_loss term broadcast into an output's shape
            # would be counted once per element)
            total = (tracked[0][0] * tracked[0][1]).sum() if len(tracked) > 1 else None
            _tensor._accumulating += 1
            try:
                if total is None:
                    tracked[0][0].backward(tracked[0][1])
                else:
                    for o, g in tracked[1:]:
                        total = total + (o * g).sum()
                    total.backward()
            finally:
                _tensor._accumulating -= 1
        end_sums(variables)
        if not need_dx:
            return None
        flat = inputs if isinstance(inputs, list) else [inputs]
        dx = [t.grad.data if t.grad is not None else np.zeros_like(t.data) for t in flat]
        return dx if isinstance(inputs, list) else dx[0]

    @staticmethod
    def _backward_into(fn, dy, *variables):
        """dx of ``fn.backward(dy)`` (a Function whose inputs are x, then ``variables``); the variables'
        gradients go into their ``.grad`` (None where not computed: frozen, or no such variable). A layer called
        at several places of one graph gets the sum of its calls' gradients from the plan."""
        dx, *grads = fn.backward(dy)
        for var, g in zip(variables, grads):
            if g is not None:
                var.grad = g
        return dx

    def call(self, inputs, training=None, mask=None):
        """Forward pass on Tensors (or arrays), differentiable (Keras ``call``); a list for several inputs.
        The layer's trainable weights are inputs of the recorded node, so GradientTape reaches them."""
        weights = self.trainable_weights if _tensor._grad_enabled else ()
        mask = mask if self._uses_mask else None
        if isinstance(inputs, (list, tuple)):
            xs = [_as_input(x) for x in inputs]
            return _LayerCall.apply(*xs, *weights, layer=self, training=training, inputs=len(xs), listed=True,
                                    mask=mask)
        return _LayerCall.apply(_as_input(inputs), *weights, layer=self, training=training, mask=mask)

    def __call__(self, inputs, training=None, mask=None, **kwargs):
        # training None (not given): each layer keeps its own Keras default (False for Dropout/BatchNormalization,
        # True for the augmentation layers), down through a model called directly
        if kwargs:
            raise TypeError(f"Layer '{self.name}': unexpected call arguments {sorted(kwargs)}")
        if is_symbolic(inputs):
            return symbolic_call(self, inputs)
        if isinstance(inputs, (list, tuple)):
            self._maybe_build([_input_shape_of(x, self) for x in inputs])
        else:
            self._maybe_build(_input_shape_of(inputs, self))
        if mask is None:  # the mask a previous layer attached to its output (Keras's _keras_mask)
            # (a Tensor's slot is always set: no failed attribute lookup on this hot path)
            mask = inputs._keras_mask if type(inputs) is Tensor else mask_of(inputs) if isinstance(
                inputs, (list, tuple)) else None
        writes = self._writes_call()
        if writes:  # user code: give it Tensors
            inputs = [_as_tensor(x) for x in inputs] if isinstance(inputs, (list, tuple)) else _as_tensor(inputs)
            global _CALL_DEPTH
            if _CALL_DEPTH == 0:  # the outermost call starts the add_loss terms afresh (Keras)
                _clear_added_losses(self)
            _CALL_DEPTH += 1
            try:
                out = self._user_call(inputs, bool(training), mask)
            finally:
                _CALL_DEPTH -= 1
        elif mask is not None and self._uses_mask:
            out = self.call(inputs, training=training, mask=mask)
        else:
            out = self.call(inputs, training=training)
        if mask is not None or self._produces_mask or ((writes or self._kind == "model") and self._makes_mask()):
            _attach_masks(out, self.compute_mask(inputs, mask))
        return out

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


class _LayerCall(Function):
    """A whole layer as one node of the Tensor graph: forward is ``layer._forward``, backward
    ``layer._backward`` (which writes the weight gradients into the layer's Variables). The positional
    arguments are the layer's ``inputs`` inputs, then its trainable weights (so that the node is recorded
    when only they require grad); ``listed``: the layer takes its inputs as one list (merge layers)."""

    def forward(self, *args, layer=None, training=None, inputs=1, listed=False, mask=None):
        self.layer, self.listed, self.inputs = layer, listed, inputs
        arrays = [x if type(x) is np.ndarray and x.dtype == object else np.ascontiguousarray(x, dtype=np.float32)
                  for x in args[:inputs]]  # (text, object arrays of str from _as_input, stays text)
        if any(a.dtype == object for a in arrays):
            check_text_input(layer)
        x, need_dx = arrays if listed else arrays[0], any(self.needs_input_grad[:inputs])
        if mask is None:
            y, self.ctx = layer._forward(x, training, need_dx)
        else:  # (only layers that take masks get one: Layer.call)
            y, self.ctx = layer._forward(x, training, need_dx, mask=mask)
        return y

    def backward(self, grad):
        layer, grad = self.layer, np.ascontiguousarray(grad, dtype=np.float32)
        # inside a tape or a call()-written layer, a layer called twice in this graph sums its calls' gradients
        dx = backward_adding(layer, self.ctx, grad) if _tensor._accumulating else layer._backward(self.ctx, grad)
        dxs = (tuple(dx) if dx is not None else (None,) * self.inputs) if self.listed else (dx,)
        return dxs + (None,) * (len(self.needs_input_grad) - self.inputs)


def mask_of(inputs):
    """The mask attached to ``inputs`` (a Tensor's ``_keras_mask``; a list of them for several inputs, None
    when none has one)."""
    if isinstance(inputs, (list, tuple)):
        masks = [getattr(x, "_keras_mask", None) for x in inputs]
        return masks if any(m is not None for m in masks) else None
    return getattr(inputs, "_keras_mask", None)


def _attach_masks(out, mask):
    """Set ``_keras_mask`` on the output Tensor(s) (a list of masks for several outputs)."""
    if mask is None:
        return
    outs = out if isinstance(out, (list, tuple)) else [out]
    masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(outs)
    for o, m in zip(outs, masks):
        if m is not None and isinstance(o, Tensor):
            o._keras_mask = np.asarray(m.data if isinstance(m, Tensor) else m, dtype=bool)


def takes_text(layer):
    """Whether ``layer`` reads raw strings: a text layer (TextVectorization) or a model with a string Input."""
    return getattr(layer, "_string_input", False) or (layer._kind == "model" and "string" in layer._input_dtypes())


def check_text_input(layer, source=None):
    """A TypeError naming ``layer`` when strings reach it and it is not a text layer."""
    if not takes_text(layer):
        raise TypeError(f"Layer '{layer.name}' ({type(layer).__name__}) received strings"
                        f"{f' (from {source})' if source else ''}: it takes numbers; text must first go through a "
                        f"TextVectorization layer (Input(dtype='string') -> TextVectorization -> Embedding ...)")


def _as_input(x):
    if isinstance(x, Tensor) or (type(x) is np.ndarray and x.dtype.kind not in "USO"):
        return x if isinstance(x, Tensor) else np.ascontiguousarray(x, dtype=np.float32)
    x = np.asarray(x)  # text (for a string Input / TextVectorization) stays text: Python str, never cast
    return x.astype(object) if x.dtype.kind in "US" else x if x.dtype.kind == "O" else \
        np.ascontiguousarray(x, dtype=np.float32)


_CALL_DEPTH = 0  # > 0 inside a layer's call (add_loss terms are reset by the outermost one)


def _clear_added_losses(layer):
    layer.__dict__.pop("_added_losses", None)
    for sub in layer._sublayers():
        _clear_added_losses(sub)


def _as_tensor(x):
    return x if isinstance(x, Tensor) else Tensor(np.ascontiguousarray(x, dtype=np.float32))


def _ints(shape):
    return tuple(None if d is None else int(d) for d in shape)


def _batch_none(shape):
    """The shape with its batch axis None."""
    return (None,) + shape[1:] if shape else shape


def _input_shape_of(inputs, layer):
    """Shape of a Tensor/array/list input, rejecting scalars with a message naming the layer."""
    shape = getattr(inputs, "shape", None)
    if shape is None:
        shape = np.shape(inputs)
    shape = tuple(shape)
    if len(shape) == 0:
        raise ValueError(f"Layer '{layer.name}' ({type(layer).__name__}) expects inputs with a batch "
                         f"dimension, got a scalar")
    return shape


# needs tuples of the hot layers' Functions (recording() inlined there: predict is latency-bound)
_RECORD, _NO_RECORD, _NO_GRADS = (True,), (False,), (False, False, False)


class _WithActivation:
    """Activation handling shared by Dense, Conv2D and the activation layers.

    Built-in activations run as op-set Functions; a custom callable runs on a Tensor through the
    autograd. ``logits=True`` in ``_forward`` skips a final softmax (the plan fuses it into the loss).
    """

    _act_kwargs = {}  # keyword constants of the activation Function (LeakyReLU's slope)

    def _init_activation(self, activation):
        self.activation = activations.get(activation)
        self._act = activations.canonical_name(activation)  # None for a custom callable
        self._act_function = activations.function_class(self._act) if self._act not in (None, "linear") else None

    def _act_forward(self, z, logits=False):
        if self._act_function is not None and not (logits and self._act == "softmax"):
            fn = self._act_function(_RECORD if _tensor._grad_enabled else _NO_RECORD)
            return fn.forward(z, **self._act_kwargs), fn
        if self._act is None:
            t = Tensor(z, requires_grad=True)
            out = self.activation(t)
            return np.asarray(out.data, dtype=np.float32), (t, out)
        return z, None  # linear, or a softmax fused into the loss

    @staticmethod
    def _act_backward(actx, dy):
        if actx is None:
            return dy
        if isinstance(actx, tuple):
            t, out = actx
            out.backward(dy)
            return t.grad.data
        return actx.backward(dy)[0]


def _unsupported(layer, **kwargs):
    for key, value in kwargs.items():
        if value is not None:
            raise ValueError(f"{layer}: `{key}` is not supported by fastnn yet (got {value!r})")




class _KernelLayer(_WithActivation, Layer):
    """Shared by Dense and Conv2D: activation, kernel + optional bias with initializers/regularizers, and
    the op Function ``self._op`` called as ``fn.forward(x, kernel, bias_or_None, fused_activation,
    **self._constants)`` (Conv2D's geometry)."""
    _op = None  # the Function class (Linear, Conv2D)
    _constants = {}

    def _init_kernel_layer(self, activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                           bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint):
        _unsupported(f"{type(self).__name__} '{self.name}'", activity_regularizer=activity_regularizer,
                     kernel_constraint=kernel_constraint, bias_constraint=bias_constraint)
        self._init_activation(activation)
        self._fused = "relu" if self._act == "relu" else None  # fused into the op's store
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel = self.bias = None

    def _build_kernel(self, kernel_shape):
        self.kernel = self.add_weight(kernel_shape, self.kernel_initializer, name="kernel",
                                      regularizer=self.kernel_regularizer)
        if self.use_bias:
            self.bias = self.add_weight(kernel_shape[-1:], self.bias_initializer, name="bias",
                                        regularizer=self.bias_regularizer)

    def _forward(self, x, training, need_dx=True, logits=False):
        """y and ctx of ``act(op(x, kernel, bias, **self._constants))``; relu is fused into the op."""
        t = self._trainable
        # NOTE: recording() inlined: this is the hottest layer code of predict and of every training step
        fn = self._op((need_dx, t, t and self.use_bias) if _tensor._grad_enabled else _NO_GRADS)
        bias = self.bias.data if self.use_bias else None  # (.data: .value is a property, a Python call)
        if self._constants:
            z = fn.forward(x, self.kernel.data, bias, self._fused, **self._constants)
        else:  # (no empty ** expansion: Dense in predict is latency-bound)
            z = fn.forward(x, self.kernel.data, bias, self._fused)
        if self._fused is not None:
            return z, (fn, None)
        act = self._act_function
        if act is not None and not logits and not self._act_kwargs:  # _act_forward's common case, inlined
            act = act(_RECORD if _tensor._grad_enabled else _NO_RECORD)
            return act.forward(z), (fn, act)
        y, actx = self._act_forward(z, logits)
        return y, (fn, actx)

    def _backward(self, ctx, dy):
        fn, actx = ctx
        dx, dk, db = fn.backward(dy if actx is None else self._act_backward(actx, dy))
        if dk is not None:  # (not _backward_into: the hottest backward of every step, one call less)
            self.kernel.grad = dk
            if db is not None:
                self.bias.grad = db
        return dx

    def get_config(self):
        config = super().get_config()
        config.update(activation=activations.serialize(self.activation), use_bias=self.use_bias,
                      kernel_initializer=initializers.serialize(self.kernel_initializer),
                      bias_initializer=initializers.serialize(self.bias_initializer),
                      kernel_regularizer=regularizers.serialize(self.kernel_regularizer),
                      bias_regularizer=regularizers.serialize(self.bias_regularizer))
        return config
