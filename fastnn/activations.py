"""Activation functions with Keras 3's names and defaults.

Public functions take a Tensor or array and return a differentiable ``fastnn.Tensor``. Layers use the
numpy-level pairs in ``_PAIRS`` directly in the training step (no graph), so both paths share one
implementation.

>>> import fastnn
>>> fastnn.activations.relu([-1.0, 2.0]).numpy().tolist()
[0.0, 2.0]
"""
import numpy as np

# ---- numpy-level forward/backward pairs -------------------------------------------------------
# forward(x) -> y ; backward(x, y, dy) -> dx. Inputs/outputs are float32 arrays.


def _relu_f(x):
    return np.maximum(x, 0.0)


def _relu_b(x, y, dy):
    return dy * (y > 0)


def _sigmoid_f(x):
    # NOTE: split by sign so exp never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(np.float32)


def _sigmoid_b(x, y, dy):
    return dy * y * (1.0 - y)


def _tanh_f(x):
    return np.tanh(x)


def _tanh_b(x, y, dy):
    return dy * (1.0 - y * y)


def _softmax_f(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _softmax_b(x, y, dy):
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def _log_softmax_f(x):
    z = x - x.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _log_softmax_b(x, y, dy):
    return dy - np.exp(y) * dy.sum(axis=-1, keepdims=True)


def _linear_f(x):
    return x


def _linear_b(x, y, dy):
    return dy


def _elu_f(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0))).astype(np.float32)


def _elu_b(x, y, dy):
    return dy * np.where(x > 0, 1.0, y + 1.0).astype(np.float32)


_SELU_A, _SELU_S = 1.6732632423543772, 1.0507009873554805


def _selu_f(x):
    return (_SELU_S * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0.0)))).astype(np.float32)


def _selu_b(x, y, dy):
    return dy * np.where(x > 0, _SELU_S, y + _SELU_S * _SELU_A).astype(np.float32)


def _softplus_f(x):
    return (np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))).astype(np.float32)


def _softplus_b(x, y, dy):
    return dy * _sigmoid_f(x)


def _softsign_f(x):
    return x / (1.0 + np.abs(x))


def _softsign_b(x, y, dy):
    return dy / np.square(1.0 + np.abs(x))


def _silu_f(x):
    return x * _sigmoid_f(x)


def _silu_b(x, y, dy):
    s = _sigmoid_f(x)
    return dy * (s * (1.0 + x * (1.0 - s)))


def _erf(x):
    # Abramowitz-Stegun 7.1.26 refined (max abs error 1.2e-7), evaluated in float64
    x = np.asarray(x, dtype=np.float64)
    t = 1.0 / (1.0 + 0.5 * np.abs(x))
    poly = -x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))))
    return np.sign(x) * (1.0 - t * np.exp(poly))


def _gelu_f(x):
    return (0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))).astype(np.float32)


def _gelu_b(x, y, dy):
    x64 = x.astype(np.float64)
    cdf = 0.5 * (1.0 + _erf(x64 / np.sqrt(2.0)))
    pdf = np.exp(-0.5 * x64 * x64) / np.sqrt(2.0 * np.pi)
    return (dy * (cdf + x64 * pdf)).astype(np.float32)


def _leaky_relu_f(x, slope=0.2):
    return np.where(x > 0, x, slope * x).astype(np.float32)


def _leaky_relu_b(x, y, dy, slope=0.2):
    return dy * np.where(x > 0, 1.0, slope).astype(np.float32)


def _exponential_f(x):
    return np.exp(x)


def _exponential_b(x, y, dy):
    return dy * y


def _hard_sigmoid_f(x):
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0).astype(np.float32)


def _hard_sigmoid_b(x, y, dy):
    return dy * ((x > -3.0) & (x < 3.0)) / 6.0


def _relu6_f(x):
    return np.clip(x, 0.0, 6.0)


def _relu6_b(x, y, dy):
    return dy * ((x > 0.0) & (x < 6.0))


_PAIRS = {
    "linear": (_linear_f, _linear_b), "relu": (_relu_f, _relu_b), "sigmoid": (_sigmoid_f, _sigmoid_b),
    "tanh": (_tanh_f, _tanh_b), "softmax": (_softmax_f, _softmax_b),
    "log_softmax": (_log_softmax_f, _log_softmax_b), "elu": (_elu_f, _elu_b), "selu": (_selu_f, _selu_b),
    "softplus": (_softplus_f, _softplus_b), "softsign": (_softsign_f, _softsign_b),
    "silu": (_silu_f, _silu_b), "gelu": (_gelu_f, _gelu_b), "leaky_relu": (_leaky_relu_f, _leaky_relu_b),
    "exponential": (_exponential_f, _exponential_b), "hard_sigmoid": (_hard_sigmoid_f, _hard_sigmoid_b),
    "relu6": (_relu6_f, _relu6_b),
}
_ALIASES = {"swish": "silu", None: "linear"}


def function_class(name):
    """The autograd Function class computing activation ``name`` (a ``_PAIRS`` key)."""
    from fastnn.layers._bridge import pair_function
    return pair_function(name, *_PAIRS[name])


def _apply(name, x):
    from fastnn.layers._bridge import apply_function
    return apply_function(function_class(name), x)


def _public(name, doc):
    def fn(x):
        return _apply(name, x)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
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
    """x if x > 0 else negative_slope * x (Keras default slope 0.2)."""
    from fastnn.layers._bridge import apply_function, pair_function
    cls = pair_function(f"leaky_relu_{negative_slope!r}", lambda a: _leaky_relu_f(a, negative_slope),
                        lambda a, y, dy: _leaky_relu_b(a, y, dy, negative_slope))
    return apply_function(cls, x)


def canonical_name(identifier):
    """The ``_PAIRS`` key for a string/None/known function identifier, or None for a custom callable."""
    if identifier is None or isinstance(identifier, str):
        name = _ALIASES.get(identifier, identifier)
        if name not in _PAIRS:
            raise ValueError(f"Unknown activation: {identifier!r}. Known: {sorted(_PAIRS) + ['swish']}")
        return name
    name = getattr(identifier, "__name__", None)
    if name in _PAIRS and globals().get(name) is identifier:
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
