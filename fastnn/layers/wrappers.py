"""TimeDistributed: one layer applied to every time step, with the same weights."""
from fastnn._naming import shape_str
from fastnn.layers.base import Layer


class TimeDistributed(Layer):
    """Applies ``layer`` to every step of (B, T, ...) inputs: the steps run as one batch of B*T rows (a free
    reshape around the layer's own forward/backward), so the weights are shared by every step.

    Args:
        layer: the layer to apply (its weights are this layer's weights).

    >>> import fastnn
    >>> fastnn.layers.TimeDistributed(fastnn.layers.Dense(8))(np.ones((2, 5, 3), np.float32)).shape
    (2, 5, 8)
    """
    supports_masking = True  # the mask of the steps passes on (Keras 3)

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(layer, Layer):
            raise ValueError(f"TimeDistributed '{self.name}': please initialize `TimeDistributed` layer with a "
                             f"`keras.layers.Layer` instance. Received: {layer!r}")
        self.layer = layer

    @property
    def _act(self):
        """The inner layer's final activation (a final softmax is fused into the loss by the plan)."""
        return getattr(self.layer, "_act", None)

    def _inner_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed '{self.name}' requires inputs of at least 3 dimensions (batch, time, "
                             f"...), got shape {shape_str(input_shape)}")
        return (None,) + tuple(input_shape[2:])

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._inner_shape(input_shape))
        return tuple(input_shape[:2]) + tuple(inner[1:])

    def build(self, input_shape):
        self.layer._maybe_build(self._inner_shape(input_shape))
        for v in self.layer.weights:  # Keras 3 paths: time_distributed/dense/kernel
            if not v.path.startswith(self.name + "/"):
                v.path = f"{self.name}/{v.path}"

    def _forward(self, x, training, need_dx=True, logits=False):
        B, T = x.shape[:2]
        rows = x.reshape((B * T,) + x.shape[2:])  # (B*T, ...): every step of every sequence as one row
        if logits:
            y, ctx = self.layer._forward(rows, training, need_dx, True)
        else:
            y, ctx = self.layer._forward(rows, training, need_dx)
        return y.reshape((B, T) + y.shape[1:]), (ctx, x.shape)

    def _backward(self, ctx, dy):
        inner, shape = ctx
        dx = self.layer._backward(inner, dy.reshape((shape[0] * shape[1],) + dy.shape[2:]))
        return None if dx is None else dx.reshape(shape)

    def get_config(self):
        config = super().get_config()
        config["layer"] = {"module": "keras.layers", "class_name": type(self.layer).__name__,
                           "config": self.layer.get_config(), "registered_name": None}
        return config

    @classmethod
    def from_config(cls, config):
        from fastnn import saving
        from fastnn.models import _MODEL_CLASSES  # (the models package imports the layers)
        config = dict(config)
        entry = config.pop("layer")
        layer = saving.resolve_class(entry, _MODEL_CLASSES).from_config(entry["config"])
        return cls(layer, **config)
