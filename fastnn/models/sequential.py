"""Sequential: a Model whose graph is a chain of layers, on the same engine (its plan's steps are the chain).

>>> import fastnn
>>> from fastnn.layers import Dense, Flatten
>>> model = fastnn.models.Sequential([Flatten(input_shape=(28, 28)), Dense(128, activation="relu"), Dense(10)])
>>> model.count_params()
101770
"""
from fastnn._graph import KerasTensor
from fastnn._naming import shape_str, unique_name
from fastnn.layers.base import Layer, structure_changed
from fastnn.layers.core import InputLayer
from fastnn.models.model import Model


class Sequential(Model):
    """A linear stack of layers that can be trained.

    Args:
        layers: list of layers (the first may be ``Input(shape)`` or carry ``input_shape=``).
        name: model name (default ``sequential``, ``sequential_1``, ...).

    Once its input shape is known, every layer has also been called on the model's Input tensor, so
    ``model.inputs``, ``layer.output`` and feature extractors (``Model(model.inputs, layer.output)``) work.
    """

    _chain = True

    def __init__(self, layers=None, trainable=True, name=None):
        Model.__init__(self, name=name or unique_name("sequential"), trainable=trainable)
        self._layers = []
        self._batch_input_shape = None
        self._input_layer = None
        self._input_structure = self._output_structure = "single"
        for layer in layers or []:
            self.add(layer)

    # ---- structure ------------------------------------------------------------------------------
    @property
    def layers(self):
        return list(self._layers)

    @property
    def _is_graph(self):
        return True

    @property
    def _input_names(self):
        return [self._input_layer.name] if self._input_layer is not None else ["input_layer"]

    @property
    def _output_names(self):
        return [self._layers[-1].name] if self._layers else ["output"]

    @property
    def _output_shapes(self):
        return [self._output_shape]

    def add(self, layer):
        """Append a layer; with a known input shape it is built at once, so shape errors surface here."""
        if isinstance(layer, KerasTensor) and isinstance(layer.node.layer, InputLayer):
            layer = layer.node.layer  # Sequential([fastnn.Input(shape), ...])
        if isinstance(layer, InputLayer):
            if self._layers:
                raise ValueError(f"Sequential '{self.name}': an Input can only be the first entry of the model")
            self._batch_input_shape = (None,) + tuple(layer.shape[1:])
            self._input_layer = layer
            return
        if not isinstance(layer, Layer):
            raise TypeError(f"The added layer must be an instance of class Layer. Received: layer={layer!r} of type "
                            f"{type(layer).__name__}.")
        if any(existing.name == layer.name for existing in self._layers):
            raise ValueError(f"All layers added to a Sequential model should have unique names. Name '{layer.name}' is "
                             f"already the name of a layer in this model. Update the `name` argument to pass a "
                             f"unique name.")
        if not self._layers and self._batch_input_shape is None and layer._batch_input_shape is not None:
            self._batch_input_shape = (None,) + tuple(layer._batch_input_shape[1:])
        self._layers.append(layer)
        structure_changed()
        if self._batch_input_shape is not None:
            try:
                self._build_chain(self._batch_input_shape)
            except Exception:
                self._layers.pop()
                raise

    def pop(self):
        """Remove the last layer."""
        if not self._layers:
            raise ValueError(f"There are no layers in the model '{self.name}'.")
        layer = self._layers.pop()
        structure_changed()
        self._output_shape = self._layers[-1]._output_shape if self._layers and self.built else None
        if not self._layers:
            self.built = False
        return layer

    def _build_chain(self, input_shape):
        """Build every layer for ``input_shape`` and record the chain on the model's Input tensor."""
        shape = (None,) + tuple(input_shape[1:])
        for layer in self._layers:
            shape = layer._maybe_build(shape)
        self._input_shape, self._output_shape = (None,) + tuple(input_shape[1:]), shape
        if self._input_layer is None or self._input_layer.shape[1:] != self._input_shape[1:]:
            self._input_layer = InputLayer(batch_shape=self._input_shape)
        x = self._input_layer.output
        for layer in self._layers:
            x = layer(x)
        self._inputs, self._outputs = [self._input_layer.output], [x]
        self.built = bool(self._layers)
        structure_changed()
        return shape

    def build(self, input_shape=None):
        """Build every layer for inputs of ``input_shape`` (batch dimension first)."""
        input_shape = input_shape or self._batch_input_shape
        if input_shape is None:
            raise ValueError(f"Sequential '{self.name}': build() needs an input shape")
        self._batch_input_shape = (None,) + tuple(input_shape[1:])
        self._build_chain(self._batch_input_shape)

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self._layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def _maybe_build(self, input_shape):
        input_shape = tuple(input_shape)
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        if not self.built:
            return self._build_chain(input_shape)
        self._check_input_shape(input_shape)
        return self._output_shape

    def _check_input_shape(self, input_shape):
        expected = self._input_shape
        if input_shape[1:] == expected[1:]:
            return
        first = self._layers[0]
        if type(first)._check_input_shape is not Layer._check_input_shape:
            # a shape the first layer's own check accepts runs, as Keras checks only its input spec (sequence
            # layers take any number of steps: Sequential([Input((100,)), Embedding, LSTM]) predicts 37 tokens)
            try:
                first._check_input_shape(tuple(input_shape))
                return
            except ValueError:
                pass
        if len(input_shape) != len(expected) or any(
                e is not None and g != e for e, g in zip(expected[1:], input_shape[1:])):
            first = self._layers[0]
            raise ValueError(f"Input of model '{self.name}' is incompatible with its first layer '{first.name}' "
                             f"({type(first).__name__}): expected shape={shape_str(expected)}, found "
                             f"shape={shape_str(input_shape)}")

    def _check_inputs(self, xs, what):
        rest = xs[0].shape[1:]
        if not self.built:
            self._maybe_build((None,) + rest)
        elif rest != self._input_shape[1:]:  # (the common case, equal shapes, costs one comparison)
            self._check_input_shape((None,) + rest)

    def _require_graph(self):
        if not self._layers:
            raise ValueError(f"Sequential model '{self.name}' has no layers")
        if not self.built:
            raise ValueError(f"Sequential model '{self.name}' is not built yet: give the first layer an input shape "
                             f"(Input(shape) or input_shape=) or call build()/fit() first")

    def _input_dtypes(self):
        """The Input's dtype; without an Input, integer when the first layer reads token ids (an Embedding's
        ``_integer_input``), as Keras feeds Sequential([Embedding(...), ...]) its integer data."""
        if self._input_layer is not None and self._input_layer.dtype != "float32":
            return [self._input_layer.dtype]
        first = self._layers[0] if self._layers else None
        return ["string" if getattr(first, "_string_input", False) else
                "int32" if first is not None and first._integer_input else "float32"]

    # ---- the plan: a chain ----------------------------------------------------------------------
    def _plan_steps(self):
        steps = [(layer, (k,), (k + 1,), True, True) for k, layer in enumerate(self._layers)]
        return steps, [0], [len(steps)], len(steps) + 1

    @property
    def _act(self):
        return getattr(self._layers[-1], "_act", None) if self._layers else None

    def _sublayers(self):
        return list(self._layers)

    def _summary_is_graph(self):
        return False

    def _summary_layers(self):
        return self._layers

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "layers": [{"class_name": type(layer).__name__, "config": layer.get_config()}
                             for layer in self._layers]}
        if self._batch_input_shape is not None:
            config["batch_input_shape"] = self._batch_input_shape
        return config

    @classmethod
    def from_config(cls, config):
        """The model ``get_config()`` describes; its layers' classes are resolved as ``load_model`` does (fastnn's
        own, then registered or ``custom_objects`` classes: ``fastnn.saving.resolve_class``)."""
        from fastnn import saving
        from fastnn.models import _MODEL_CLASSES  # the package imports this module: not at its top
        model = cls(name=config.get("name"), trainable=config.get("trainable", True))
        if config.get("batch_input_shape") is not None:
            model._batch_input_shape = tuple(config["batch_input_shape"])
        for entry in config["layers"]:
            model.add(saving.layer_from_entry(entry, _MODEL_CLASSES))
        return model
