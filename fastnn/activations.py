"""Activation functions with Keras 3's names and defaults.

Public functions take a Tensor or array and return a differentiable ``fastnn.Tensor``. They are the
op set's functions (``fastnn._ops.activation``, built from the C++ table ``_C.unary_ops``), so a new
kernel is a new activation here without an edit; layers run the same Functions on arrays.

>>> import fastnn
>>> fastnn.activations.relu([-1.0, 2.0]).numpy().tolist()
[0.0, 2.0]
"""
from fastnn._ops import activation as _ops
from fastnn.tensor import Tensor

_KERAS_NAME = {"exp": "exponential"}  # kernel name -> Keras's activation name, where they differ
_NOT_ACTIVATIONS = {"log"}             # elementwise kernels that Keras does not list as activations
_ALIASES = {"swish": "silu", None: "linear"}

_FUNCTION_CLASSES = {"softmax": _ops.Softmax, "log_softmax": _ops.LogSoftmax}  # Keras name -> Function class
for _kernel, (_cls, _alpha) in _ops.UNARY.items():
    if _kernel not in _NOT_ACTIVATIONS:
        _FUNCTION_CLASSES[_KERAS_NAME.get(_kernel, _kernel)] = _cls


def linear(x):
    """Identity. Takes a Tensor or array, returns a Tensor."""
    return x if isinstance(x, Tensor) else Tensor(x)


def exponential(x):
    """exp(x). Takes a Tensor or array, returns a Tensor."""
    return _ops.Exp.apply(x)


for _name in _FUNCTION_CLASSES:
    if _name not in globals():
        globals()[_name] = getattr(_ops, _name)  # relu, gelu(x, approximate), leaky_relu(x, negative_slope), ...
swish = silu  # noqa: F821 (made by the loop above)
_NAMES = sorted(_FUNCTION_CLASSES) + ["linear"]


def function_class(name):
    """The Function class computing activation ``name`` (a canonical name other than "linear")."""
    return _FUNCTION_CLASSES[name]


def canonical_name(identifier):
    """The Keras name for a string/None/known function identifier, or None for a custom callable."""
    if identifier is None or isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _NAMES:
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
