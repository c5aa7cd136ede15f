"""Activation functions with Keras 3's names and defaults.

Public functions take a Tensor or array and return a differentiable ``fastnn.Tensor``. Layers run the
same Functions at the numpy level in the training step (no graph), so both paths share one implementation.

>>> import fastnn
>>> fastnn.activations.relu([-1.0, 2.0]).numpy().tolist()
[0.0, 2.0]
"""
import numpy as np

# Activations with a C++ kernel run as the op set's Functions (fastnn.ops.activation); the few
# without one are numpy forward/backward pairs: forward(x) -> y ; backward(x, y, dy) -> dx.
_OP_CLASSES = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
               "log_softmax": "LogSoftmax", "elu": "Elu", "selu": "Selu", "gelu": "Gelu", "silu": "Silu",
               "softplus": "Softplus", "leaky_relu": "LeakyRelu"}


def _softsign_b(x, y, dy):
    return dy / np.square(1.0 + np.abs(x))


def _hard_sigmoid_b(x, y, dy):
    return dy * ((x > -3.0) & (x < 3.0)) / np.float32(6.0)


_PAIRS = {
    "linear": (lambda x: x, lambda x, y, dy: dy),
    "softsign": (lambda x: x / (1.0 + np.abs(x)), _softsign_b),
    "exponential": (np.exp, lambda x, y, dy: dy * y),
    "hard_sigmoid": (lambda x: np.clip(x / np.float32(6.0) + np.float32(0.5), 0.0, 1.0), _hard_sigmoid_b),
    "relu6": (lambda x: np.clip(x, 0.0, 6.0), lambda x, y, dy: dy * ((x > 0.0) & (x < 6.0))),
}
_NAMES = sorted(_PAIRS) + sorted(_OP_CLASSES)
_ALIASES = {"swish": "silu", None: "linear"}


_FUNCTION_CLASSES = {}


def function_class(name):
    """The autograd Function class computing activation ``name`` (a canonical name)."""
    cls = _FUNCTION_CLASSES.get(name)
    if cls is None:
        if name in _OP_CLASSES:
            from fastnn.ops import activation
            cls = getattr(activation, _OP_CLASSES[name])
        else:
            from fastnn.layers._bridge import pair_function
            cls = pair_function(name, *_PAIRS[name])
        _FUNCTION_CLASSES[name] = cls
    return cls


def _apply(name, x):
    from fastnn.layers._bridge import apply_function
    return apply_function(function_class(name), x)


def _public(name, doc):
    def fn(x):
        return _apply(name, x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc + " Takes a Tensor or array, returns a Tensor."
    return fn


linear = _public("linear", "Identity.")
relu = _public("relu", "max(x, 0).")
sigmoid = _public("sigmoid", "1 / (1 + exp(-x)).")
tanh = _public("tanh", "Hyperbolic tangent.")
softmax = _public("softmax", "exp(x) / sum(exp(x)) along the last axis.")
log_softmax = _public("log_softmax", "log(softmax(x)) along the last axis, computed stably.")
elu = _public("elu", "x if x > 0 else exp(x) - 1.")
selu = _public("selu", "Scaled ELU (Klambauer et al.).")
softplus = _public("softplus", "log(1 + exp(x)).")
softsign = _public("softsign", "x / (1 + |x|).")
silu = _public("silu", "x * sigmoid(x).")
swish = silu
gelu = _public("gelu", "Exact (erf) GELU, Keras's default.")
exponential = _public("exponential", "exp(x).")
hard_sigmoid = _public("hard_sigmoid", "clip(x / 6 + 0.5, 0, 1) (Keras 3 definition).")
relu6 = _public("relu6", "min(max(x, 0), 6).")


def leaky_relu(x, negative_slope=0.2):
    """x if x > 0 else negative_slope * x (Keras default slope 0.2). Takes a Tensor or array, returns a Tensor."""
    from fastnn.layers._bridge import _as_input
    from fastnn.ops.activation import LeakyRelu
    return LeakyRelu.apply(_as_input(x), alpha=float(negative_slope))


def canonical_name(identifier):
    """The ``_PAIRS`` key for a string/None/known function identifier, or None for a custom callable."""
    if identifier is None or isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _PAIRS and name not in _OP_CLASSES:
            raise ValueError(f"Unknown activation: {identifier!r}. Known: {_NAMES + ['swish']}")
        return name
    name = getattr(identifier, "__name__", None)
    if name in _NAMES and globals().get(name) is identifier:
        return name
    if callable(identifier):
        return None
    raise ValueError(f"Could not interpret activation identifier: {identifier!r}")


def get(identifier):
    """Resolve None/"relu"/a function to the public activation function."""
    name = canonical_name(identifier)
    return identifier if name is None else globals()[name]


def serialize(activation):
    """The activation's name (what layers store in get_config)."""
    name = canonical_name(activation)
    return name if name is not None else getattr(activation, "__name__", repr(activation))
