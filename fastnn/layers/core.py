"""Core layers: Input, Dense, Dropout, Flatten, Reshape (Keras 3 arguments and defaults)."""
import math

import numpy as np

from fastnn import random as _random
from fastnn._graph import KerasTensor, Node
from fastnn._naming import shape_str
from fastnn._ops.activation import Dropout as _DropoutFunction
from fastnn._ops.linear import Linear
from fastnn.layers.base import _NO_RECORD, Layer, _KernelLayer, _tensor, _unsupported

_MASK64 = (1 << 64) - 1


def _positive_int(layer, arg, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{layer}: received an invalid value for `{arg}`, expected a positive integer. "
                         f"Received: {arg}={value!r}")
    return int(value)


class InputLayer(Layer):
    """The input of a model: holds its shape and the KerasTensor a graph starts from (``layer.output``).
    ``Input(shape)`` is the usual way to make one."""

    def __init__(self, shape=None, batch_size=None, dtype=None, batch_shape=None, name=None, **kwargs):
        if shape is None and batch_shape is None:
            raise ValueError("InputLayer: you must pass a `shape` argument (without the batch dimension)")
        super().__init__(name=name, **kwargs)
        self._dtype = _input_dtype(dtype)
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        self._batch_input_shape = tuple(batch_shape) if batch_shape is not None else (batch_size,) + tuple(shape)
        self._input_shape = self._output_shape = (None,) + tuple(self._batch_input_shape[1:])
        self.built = True
        node = Node(self, [], True)
        node.outputs = [KerasTensor(self._output_shape, dtype=self._dtype, node=node, name=self.name)]
        self._inbound_nodes.append(node)

    @property
    def shape(self):
        return self._batch_input_shape

    @property
    def dtype(self):
        return self._dtype

    def get_config(self):
        return {"batch_shape": self._batch_input_shape, "dtype": self._dtype, "name": self.name}

    def _forward(self, x, training, need_dx=True):
        return x, None

    def _backward(self, ctx, dy):
        return dy


def _input_dtype(dtype):
    """An Input's dtype name: float32 (default), an integer type (token ids fed to an Embedding as int32) or
    "string" (raw text for a TextVectorization)."""
    if dtype is None:
        return "float32"
    if (dtype in ("string", "str", "object") if isinstance(dtype, str)
            else any(dtype is t for t in (str, bytes, np.str_, np.bytes_, object))):
        return "string"
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in ("float32", "int32", "int64", "uint8", "int16", "uint16"):
        raise ValueError(f"Input: dtype must be 'float32', an integer type such as 'int32', or 'string', got {dtype!r}")
    return name


def Input(shape=None, batch_size=None, dtype=None, batch_shape=None, name=None):
    """A model's input: a symbolic KerasTensor (``fastnn.Model(inputs, outputs)``, or the first entry of a
    Sequential). ``shape`` excludes the batch axis.

    >>> import fastnn
    >>> fastnn.layers.Input((784,)).shape
    (None, 784)
    """
    return InputLayer(shape=shape, batch_size=batch_size, dtype=dtype, batch_shape=batch_shape, name=name).output


class Dense(_KernelLayer):
    """Densely-connected layer: ``activation(inputs @ kernel + bias)``, kernel (in, units).

    Args: units; activation (None = linear); use_bias; kernel_initializer ("glorot_uniform");
    bias_initializer ("zeros"); kernel_regularizer / bias_regularizer (e.g. "l2" or L2(0.01)).
    A relu activation is fused into the GEMM's epilogue.

    >>> import fastnn
    >>> fastnn.layers.Dense(4, activation="relu")(np.ones((2, 3), np.float32)).shape
    (2, 4)
    """
    supports_masking = True  # passes an input mask on (Keras 3)

    _op = Linear

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 activity_regularizer=None, kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(f"Dense '{self.name}'", "units", units)
        self._init_kernel_layer(activation, use_bias, kernel_initializer, bias_initializer, kernel_regularizer,
                                bias_regularizer, activity_regularizer, kernel_constraint, bias_constraint)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2 or input_shape[-1] is None:
            raise ValueError(f"Dense '{self.name}' needs inputs with a known last dimension (features), "
                             f"got shape {shape_str(input_shape)}")
        return tuple(input_shape[:-1]) + (self.units,)

    def build(self, input_shape):
        self._build_kernel((input_shape[-1], self.units))

    def _check_input_shape(self, input_shape):
        n_in = self._input_shape[-1]
        if len(input_shape) < 2 or input_shape[-1] != n_in:
            raise ValueError(f"Dense '{self.name}' expects inputs with {n_in} features (shape "
                             f"{shape_str(self._input_shape)}), got {shape_str(input_shape)}")

    def get_config(self):
        config = super().get_config()
        config["units"] = self.units
        return config


class Dropout(Layer):
    """Inverted dropout: at training time zeroes each input with probability ``rate`` and scales the
    rest by ``1 / (1 - rate)``; identity at inference. ``seed`` fixes the masks."""
    supports_masking = True  # passes an input mask on (Keras 3)

    def __init__(self, rate, noise_shape=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or not 0 <= rate < 1:
            raise ValueError(f"Dropout '{self.name}': invalid value received for argument `rate`. Expected a float "
                             f"value between 0 and 1 (1 excluded). Received: rate={rate!r}")
        _unsupported(f"Dropout '{self.name}'", noise_shape=noise_shape)
        self.rate, self.seed = float(rate), seed
        self._seed = None
        self._offset = 0  # Philox counter offset: each call draws elements [offset, offset + size)

    def _forward(self, x, training, need_dx=True):
        if not training or self.rate == 0.0:
            return x, None
        if self._seed is None:  # drawn on first use (after set_random_seed), restored by load_model
            self._seed = (self.seed if self.seed is not None else _random.next_seed()) & _MASK64
        fn = _DropoutFunction((need_dx,) if _tensor._grad_enabled else _NO_RECORD)  # recording(), inlined
        y = fn.forward(x, rate=self.rate, seed=self._seed, offset=self._offset)
        self._offset = (self._offset + x.size) & _MASK64
        return y, fn

    def _backward(self, ctx, dy):
        return dy if ctx is None else ctx.backward(dy)[0]

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed, noise_shape=None)
        return config


class Flatten(Layer):
    """Flattens every axis but the batch axis: (None, 28, 28) -> (None, 784)."""

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"Flatten '{self.name}': only data_format='channels_last' is supported, "
                             f"got {data_format!r}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        size = None if any(d is None for d in rest) else math.prod(rest)
        return (input_shape[0], size)

    def _forward(self, x, training, need_dx=True):
        return x.reshape(x.shape[0], -1), x.shape

    def _backward(self, ctx, dy):
        return dy.reshape(ctx)

    def get_config(self):
        config = super().get_config()
        config["data_format"] = "channels_last"
        return config


class Reshape(Layer):
    """Reshapes the non-batch axes to ``target_shape`` (one entry may be -1)."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1 or any(d == 0 or d < -1 for d in self.target_shape):
            raise ValueError(f"Reshape '{self.name}': invalid target_shape {self.target_shape}")

    def compute_output_shape(self, input_shape):
        rest = input_shape[1:]
        if any(d is None for d in rest):
            return (input_shape[0],) + tuple(None if d == -1 else d for d in self.target_shape)
        size, known = math.prod(rest), math.prod(d for d in self.target_shape if d != -1)
        if (-1 in self.target_shape and size % known) or (-1 not in self.target_shape and size != known):
            raise ValueError(f"Reshape '{self.name}': the total size of the tensor must be unchanged. Received: "
                             f"input_shape={shape_str(input_shape)}, target_shape={self.target_shape}")
        return (input_shape[0],) + tuple(size // known if d == -1 else d for d in self.target_shape)

    def _forward(self, x, training, need_dx=True):
        return x.reshape((x.shape[0],) + self.target_shape), x.shape

    def _backward(self, ctx, dy):
        return dy.reshape(ctx)

    def get_config(self):
        config = super().get_config()
        config["target_shape"] = self.target_shape
        return config
