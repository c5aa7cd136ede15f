"""Layer base class with Keras 3 semantics, and the Variable that holds a weight.

A layer's ``__init__`` stores configuration only; ``build(input_shape)`` creates the weights on the
first call; the math lives in two numpy-level methods that the training loop calls directly:

- ``_forward(x, training) -> (y, ctx)``
- ``_backward(ctx, dy, need_dx) -> dx`` (writes the gradients of the trainable weights into ``var.grad``)

``layer(x)`` runs the same pair through one autograd Function (``fastnn.layers._bridge``), so a
layer is differentiable on Tensors too, and the model's training step needs no graph at all.
"""
import re

import numpy as np

_NAME_UIDS = {}


def _snake_case(name):
    """Keras's to_snake_case: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``, ... (per prefix, as Keras's get_uid)."""
    uid = _NAME_UIDS.get(prefix, 0)
    _NAME_UIDS[prefix] = uid + 1
    return prefix if uid == 0 else f"{prefix}_{uid}"


def clear_session():
    """Reset the automatic layer/model name counters (Keras ``clear_session``)."""
    _NAME_UIDS.clear()


def shape_str(shape):
    """``(None, 784)`` for a shape tuple (Keras's way of printing batch dimensions)."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


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


class Variable:
    """A layer weight: a float32 numpy array updated in place, plus its gradient buffer.

    ``name`` ("kernel"), ``path`` ("dense/kernel"), ``trainable``, ``shape``, ``numpy()``, ``assign()``.
    """

    __slots__ = ("value", "name", "path", "trainable", "regularizer", "grad")

    def __init__(self, value, name, path, trainable=True, regularizer=None):
        self.value = np.array(value, dtype=np.float32, order="C")  # owns its storage
        self.name, self.path, self.trainable, self.regularizer = name, path, trainable, regularizer
        self.grad = np.zeros_like(self.value) if trainable else None

    @property
    def shape(self):
        return self.value.shape

    @property
    def dtype(self):
        return "float32"

    def numpy(self):
        return self.value.copy()

    def __array__(self, dtype=None, copy=None):
        return self.value if dtype is None else self.value.astype(dtype)

    def assign(self, value):
        value = np.asarray(value, dtype=np.float32)
        if value.shape != self.value.shape:
            raise ValueError(f"Variable '{self.path}' has shape {self.value.shape}, cannot assign a value "
                             f"of shape {value.shape}")
        self.value[...] = value

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.value.shape}, dtype=float32>"


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
    def add_weight(self, shape, initializer="zeros", name=None, trainable=True, regularizer=None):
        """Create a weight (Keras ``add_weight``) and return its Variable."""
        from fastnn import initializers
        init = initializers.get(initializer)
        value = np.asarray(init(tuple(shape)), dtype=np.float32).reshape(shape)
        name = name or f"variable_{len(self._weights)}"
        var = Variable(value, name, f"{self.name}/{name}", trainable=trainable, regularizer=regularizer)
        self._weights.append(var)
        return var

    @property
    def trainable(self):
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)

    @property
    def weights(self):
        """All Variables: trainable ones first, then non-trainable (Keras order)."""
        return self.trainable_weights + self.non_trainable_weights

    @property
    def trainable_weights(self):
        return [v for v in self._weights if v.trainable] if self._trainable else []

    @property
    def non_trainable_weights(self):
        if not self._trainable:
            return list(self._weights)
        return [v for v in self._weights if not v.trainable]

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
        """Regularization penalties of this layer's weights (floats)."""
        return [v.regularizer(v.value) for v in self._weights if v.regularizer is not None]

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

    def build(self, input_shape):
        """Create the weights for inputs of ``input_shape`` (batch dimension first, may be None)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _check_input_shape(self, input_shape):
        """Raise ValueError (naming the layer and both shapes) if inputs of this shape cannot be used."""
        expected = self._input_shape
        if len(input_shape) != len(expected) or any(
                e is not None and g is not None and e != g for e, g in zip(expected[1:], input_shape[1:])):
            raise ValueError(f"Input of layer '{self.name}' ({type(self).__name__}) is incompatible with the layer: "
                             f"expected shape={shape_str(expected)}, found shape={shape_str(input_shape)}")

    def _maybe_build(self, input_shape):
        """Build on first use; afterwards check the shape. Returns the output shape."""
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
        if not self.built:
            input_shape = (None,) + input_shape[1:]
            output_shape = self.compute_output_shape(input_shape)  # validates before any weight exists
            self.build(input_shape)
            self._input_shape, self._output_shape = input_shape, output_shape
            self.built = True
            return output_shape
        self._check_input_shape(input_shape)
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

    # ---- math -----------------------------------------------------------------------------------
    def _forward(self, x, training):
        raise NotImplementedError(f"{type(self).__name__} does not implement _forward")

    def _infer(self, x):
        """Inference output only (predict's low-latency path); layers may override it to skip the
        bookkeeping that ``_forward`` does for a backward pass."""
        return self._forward(x, False)[0]

    def _backward(self, ctx, dy, need_dx):
        raise NotImplementedError(f"{type(self).__name__} does not implement _backward")

    def call(self, inputs, training=False):
        """Forward pass on a Tensor, differentiable (Keras ``call``)."""
        from fastnn.layers._bridge import apply_layer
        return apply_layer(self, inputs, training)

    def __call__(self, inputs, training=False, **kwargs):
        if kwargs:
            raise TypeError(f"Layer '{self.name}': unexpected call arguments {sorted(kwargs)}")
        from fastnn.layers._bridge import input_shape_of
        self._maybe_build(input_shape_of(inputs, self))
        return self.call(inputs, training=training)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"
