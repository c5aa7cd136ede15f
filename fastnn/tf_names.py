"""The TensorFlow names tutorials reach for (``import fastnn as tf``), as thin aliases over ``fastnn.ops``.

Where TF's signature matches the op's, the name is the op itself; where TF spells arguments or defaults
differently (``reduce_*(input_tensor, ...)``, ``argmax``'s axis 0 and int64, ``matmul``'s transposes),
a one-line wrapper translates and calls the op, so the values and gradients are those of ``fastnn.ops``.

``TF_NAMES`` lists every name: TF/Keras name -> the fastnn function it aliases (tests resolve both).
"""
import types

import numpy as np

from fastnn import __version__, ops
from fastnn import random as _random

__all__ = ["reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "argmax", "argmin", "concat", "stack",
           "matmul", "clip_by_value", "cast", "constant", "convert_to_tensor", "newaxis", "float32", "int32",
           "int64", "math", "version", "TF_NAMES"]

newaxis = None  # TF's newaxis is None, as numpy's
float32, int32, int64 = np.float32, np.int32, np.int64  # fastnn's ops take numpy dtypes
cast = ops.cast


def _reduce(op):
    """TF's reduce_* spelling (``input_tensor``) of the op ``op``."""
    def reduce(input_tensor, axis=None, keepdims=False):
        return op(input_tensor, axis=axis, keepdims=keepdims)
    reduce.__name__ = reduce.__qualname__ = f"reduce_{op.__name__}"
    reduce.__doc__ = f"``tf.reduce_{op.__name__}``: ``fastnn.ops.{op.__name__}`` under TF's argument names."
    return reduce


reduce_mean, reduce_sum, reduce_max, reduce_min = (_reduce(op) for op in (ops.mean, ops.sum, ops.max, ops.min))


def argmax(input, axis=None, output_type=np.int64):  # noqa: A002 (TF's argument name)
    """TF's argmax: axis None means 0 (not "flattened" as in numpy/Keras), int64 result by default."""
    return ops.argmax(input, axis=0 if axis is None else axis).astype(output_type)


def argmin(input, axis=None, output_type=np.int64):  # noqa: A002
    """TF's argmin: axis None means 0, int64 result by default."""
    return ops.argmin(input, axis=0 if axis is None else axis).astype(output_type)


def concat(values, axis):
    """``tf.concat``: ``ops.concatenate`` (TF requires the axis)."""
    return ops.concatenate(values, axis=axis)


def stack(values, axis=0):
    """``tf.stack``: ``ops.stack`` under TF's argument name ``values``."""
    return ops.stack(values, axis=axis)


def _swap_last(x):
    """x with its last two axes exchanged (TF's transpose_a/transpose_b; batch axes stay)."""
    axes = list(range(len(ops.shape(x))))
    axes[-2:] = axes[:-3:-1]
    return ops.transpose(x, axes)


def matmul(a, b, transpose_a=False, transpose_b=False):
    """``tf.matmul``: ``ops.matmul``, after swapping the last two axes of a / b when asked."""
    return ops.matmul(_swap_last(a) if transpose_a else a, _swap_last(b) if transpose_b else b)


def clip_by_value(t, clip_value_min, clip_value_max):
    """``tf.clip_by_value``: ``ops.clip``."""
    return ops.clip(t, clip_value_min, clip_value_max)


def constant(value, dtype=None, shape=None):
    """``tf.constant``: ``ops.convert_to_tensor``; with ``shape``, a value of that many elements is
    reshaped and a scalar (or broadcastable value) is filled out, as TF does."""
    if shape is not None:
        value = np.asarray(value)
        value = value.reshape(shape) if value.size == np.prod(shape) else np.broadcast_to(value, shape)
    if _is_text(value):  # strings stay on the host (a fastnn.data.Array, with .numpy()), as TF's tf.string
        from fastnn.data import Array
        return np.asarray(value).astype(str).view(Array)
    return ops.convert_to_tensor(value, dtype=dtype)


def _is_text(value):
    """Whether ``value`` (not a Tensor) holds strings: a str, bytes, or an array-like of them."""
    if _is_tensor(value) or hasattr(value, "shape") and getattr(value, "dtype", None) is not None \
            and np.dtype(value.dtype).kind not in "USO":
        return False
    try:
        return np.asarray(value).dtype.kind in "USO"
    except (TypeError, ValueError):
        return False


def convert_to_tensor(value, dtype=None, dtype_hint=None, name=None):
    """``tf.convert_to_tensor``: ``ops.convert_to_tensor``; strings stay a host array (see ``constant``)."""
    if _is_text(value):
        return constant(value)
    return ops.convert_to_tensor(value, dtype=dtype)


def _random_normal(shape, mean=0.0, stddev=1.0, dtype=np.float32, seed=None):
    """``tf.random.normal``: drawn from ``fastnn.random.rng(seed)``, so ``tf.random.set_seed`` (or an op
    ``seed``) makes it reproducible, as initializers are."""
    draw = _random.rng(seed).normal(mean, stddev, size=tuple(shape))
    return ops.convert_to_tensor(draw.astype(np.float32), dtype=dtype)


def _random_uniform(shape, minval=0, maxval=None, dtype=np.float32, seed=None):
    """``tf.random.uniform``: [minval, maxval) from ``fastnn.random.rng(seed)``; maxval None means 1 for
    floats, and is required for integer dtypes (as TF)."""
    gen = _random.rng(seed)
    if np.issubdtype(np.dtype(dtype), np.integer):
        if maxval is None:
            raise ValueError("tf.random.uniform: maxval is required for an integer dtype")
        return gen.integers(minval, maxval, size=tuple(shape), dtype=dtype)
    draw = gen.uniform(minval, 1.0 if maxval is None else maxval, size=tuple(shape))
    return ops.convert_to_tensor(draw.astype(np.float32), dtype=dtype)


# The table: TF/Keras name -> the fastnn function (dotted path) it aliases or wraps.
TF_NAMES = {
    "tf.reduce_mean": "fastnn.ops.mean", "tf.reduce_sum": "fastnn.ops.sum",
    "tf.reduce_max": "fastnn.ops.max", "tf.reduce_min": "fastnn.ops.min",
    "tf.argmax": "fastnn.ops.argmax", "tf.argmin": "fastnn.ops.argmin",
    "tf.concat": "fastnn.ops.concatenate", "tf.stack": "fastnn.ops.stack",
    "tf.matmul": "fastnn.ops.matmul", "tf.clip_by_value": "fastnn.ops.clip",
    "tf.cast": "fastnn.ops.cast", "tf.constant": "fastnn.ops.convert_to_tensor",
    "tf.convert_to_tensor": "fastnn.ops.convert_to_tensor",
    "tf.math.log": "fastnn.ops.log", "tf.math.exp": "fastnn.ops.exp", "tf.math.sqrt": "fastnn.ops.sqrt",
    "tf.math.square": "fastnn.ops.square", "tf.math.abs": "fastnn.ops.abs",
    "tf.math.sigmoid": "fastnn.ops.sigmoid", "tf.math.tanh": "fastnn.ops.tanh",
    "tf.math.maximum": "fastnn.ops.maximum", "tf.math.minimum": "fastnn.ops.minimum",
    "tf.math.add": "fastnn.ops.add", "tf.math.subtract": "fastnn.ops.subtract",
    "tf.math.multiply": "fastnn.ops.multiply", "tf.math.divide": "fastnn.ops.divide",
    "tf.math.negative": "fastnn.ops.negative", "tf.math.sign": "fastnn.ops.sign",
    "tf.math.softmax": "fastnn.ops.softmax", "tf.math.log_softmax": "fastnn.ops.log_softmax",
    "tf.math.reduce_logsumexp": "fastnn.ops.logsumexp", "tf.math.erf": "fastnn.ops.erf",
    "tf.math.top_k": "fastnn.ops.top_k",
    "tf.random.normal": "fastnn.random.normal", "tf.random.uniform": "fastnn.random.uniform",
    "tf.random.set_seed": "fastnn.random.set_seed",
    "tf.version.VERSION": "fastnn.__version__",
    "tf.config.list_physical_devices": "fastnn.config.list_physical_devices",
    "tf.nn.sparse_softmax_cross_entropy_with_logits": "fastnn.ops.log_softmax",
    "tf.nn.relu": "fastnn.functional.relu", "tf.nn.sigmoid": "fastnn.functional.sigmoid",
    "tf.nn.log_softmax": "fastnn.functional.log_softmax",
    "keras.config.image_data_format": "fastnn.config.image_data_format",
    "keras.config.epsilon": "fastnn.config.epsilon", "keras.config.floatx": "fastnn.config.floatx",
    "keras.config.set_floatx": "fastnn.config.set_floatx",
    "keras.backend.image_data_format": "fastnn.backend.image_data_format",
    "keras.backend.epsilon": "fastnn.backend.epsilon", "keras.backend.floatx": "fastnn.backend.floatx",
    "keras.backend.clear_session": "fastnn.backend.clear_session",
}
# tf.math also has the top-level reductions and arg* under the same names
TF_NAMES.update({"tf.math." + name[len("tf."):]: target for name, target in list(TF_NAMES.items())
                 if name.startswith(("tf.reduce_", "tf.arg"))})
# text data (issues #14, #21): Keras's homes of pad_sequences, the text datasets and TextVectorization
TF_NAMES.update({
    "keras.utils.pad_sequences": "fastnn.utils.pad_sequences",
    "keras.preprocessing.sequence.pad_sequences": "fastnn.preprocessing.sequence.pad_sequences",
    **{f"keras.datasets.{m}.{f}": f"fastnn.datasets.{m}.{f}" for m in ("imdb", "reuters")
       for f in ("load_data", "get_word_index")},
    "keras.datasets.reuters.get_label_names": "fastnn.datasets.reuters.get_label_names",
    "keras.layers.TextVectorization": "fastnn.layers.TextVectorization",
})

# tf.math: the reduce_*/arg* wrappers above, the rest the ops themselves (names as in TF_NAMES).
math = types.SimpleNamespace(
    reduce_mean=reduce_mean, reduce_sum=reduce_sum, reduce_max=reduce_max, reduce_min=reduce_min,
    argmax=argmax, argmin=argmin, reduce_logsumexp=ops.logsumexp,
    **{name[len("tf.math."):]: getattr(ops, target[len("fastnn.ops."):]) for name, target in TF_NAMES.items()
       if name.startswith("tf.math.") and not name.startswith(("tf.math.reduce_", "tf.math.arg"))})
version = types.SimpleNamespace(VERSION=__version__)


# ---- more of TensorFlow's top level (issue #21: the 22 public programs) -----------------------------------
def _is_tensor(x):
    from fastnn.tensor import Tensor
    return isinstance(x, Tensor)


def _host_or_op(np_fn, op):
    """A TF function that stays on the host for numpy inputs (keeping their dtype, strings included, and
    returning a ``fastnn.data.Array``, which has ``.numpy()``/``set_shape``) and is the differentiable op for
    Tensors. A numpy input carries no gradient, so nothing is lost by not recording it."""
    def fn(values, *args, **kwargs):
        leaves = values if isinstance(values, (list, tuple)) else [values]
        if any(_is_tensor(v) for v in leaves):
            return op(values, *args, **kwargs)
        from fastnn.data import Array
        return np.asarray(np_fn(values, *args, **kwargs)).view(Array)
    fn.__name__ = fn.__qualname__ = op.__name__
    fn.__doc__ = f"``tf.{op.__name__}``: numpy's for host arrays, ``fastnn.ops.{op.__name__}`` for Tensors."
    return fn


stack = _host_or_op(lambda values, axis=0: np.stack([np.asarray(v) for v in values], axis=axis), stack)
expand_dims = _host_or_op(lambda x, axis: np.expand_dims(np.asarray(x), axis), ops.expand_dims)
squeeze = _host_or_op(lambda x, axis=None: np.squeeze(np.asarray(x), axis), ops.squeeze)


def where(condition, x=None, y=None):
    """``tf.where``: ``ops.where`` (with x and y: elementwise choice; without: the true indices as an int64
    (n, rank) array, TF's layout)."""
    if x is None and y is None:
        return np.argwhere(np.asarray(condition)).astype(np.int64)
    return ops.where(condition, x, y)


def add_n(inputs):
    """``tf.add_n``: the elementwise sum of a list of tensors."""
    if not inputs:
        raise ValueError("tf.add_n: inputs must be a non-empty list")
    total = inputs[0]
    for t in inputs[1:]:
        total = ops.add(total, t)
    return ops.convert_to_tensor(total) if not _is_tensor(total) else total


def function(func=None, input_signature=None, autograph=True, jit_compile=None, reduce_retracing=False, **kwargs):
    """``tf.function``: fastnn runs eagerly, so the decorated function is the function itself (both
    ``@tf.function`` and ``@tf.function(...)`` spellings)."""
    if func is None:
        return lambda f: f
    return func


def _strings_map(fn):
    def apply(input, *args, **kwargs):  # noqa: A002 (TF's argument name)
        arr = np.asarray(input.numpy() if hasattr(input, "numpy") else input)
        out = np.vectorize(lambda s: fn(s.decode() if isinstance(s, bytes) else str(s), *args, **kwargs),
                           otypes=[object])(arr)
        from fastnn.data import Array
        return (out.astype(str) if out.size else arr.astype(str)).view(Array)
    return apply


def _regex_replace(s, pattern, rewrite, replace_global=True):
    import re
    return re.sub(pattern, rewrite.replace("\\0", "\\g<0>"), s, count=0 if replace_global else 1)


# tf.strings on numpy arrays of str (TextVectorization's `standardize` callables use these)
strings = types.SimpleNamespace(
    lower=_strings_map(lambda s, encoding="": s.lower()),
    upper=_strings_map(lambda s, encoding="": s.upper()),
    strip=_strings_map(lambda s: s.strip()),
    regex_replace=_strings_map(_regex_replace),
    length=lambda input, unit="BYTE": np.vectorize(  # noqa: A006
        lambda s: len(s.encode()) if unit == "BYTE" else len(s), otypes=[np.int32])(np.asarray(input)),
)

TF_NAMES.update({
    "tf.stack": "fastnn.ops.stack", "tf.expand_dims": "fastnn.ops.expand_dims", "tf.squeeze": "fastnn.ops.squeeze",
    "tf.where": "fastnn.ops.where", "tf.add_n": "fastnn.ops.add", "tf.function": "fastnn.tf_names.function",
    "tf.strings.lower": "builtins.str.lower", "tf.strings.upper": "builtins.str.upper",
    "tf.strings.strip": "builtins.str.strip", "tf.strings.regex_replace": "re.sub", "tf.strings.length": "builtins.len",
    "tf.data.Dataset": "fastnn.data.Dataset", "tf.data.AUTOTUNE": "fastnn.data.AUTOTUNE",
    "tf.data.experimental.cardinality": "fastnn.data.Dataset.cardinality",
    "keras.utils.text_dataset_from_directory": "fastnn.utils.text_dataset_from_directory",
    "keras.utils.timeseries_dataset_from_array": "fastnn.utils.timeseries_dataset_from_array",
})
from fastnn import data  # noqa: E402  (tf.data)

__all__ += ["expand_dims", "squeeze", "where", "add_n", "function", "strings", "data"]


def _host_math(np_fn, name):
    """A TF math function without a gradient (rounding, comparisons, predicates) computed by numpy on the host
    values (Tensors copied), returned as a ``fastnn.data.Array`` (it has ``.numpy()``)."""
    def fn(*args, **kwargs):
        from fastnn.data import Array
        vals = [np.asarray(a.numpy() if hasattr(a, "numpy") else a) for a in args]
        return np.asarray(np_fn(*vals, **kwargs)).view(Array)
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``tf.math.{name}``: numpy's ``{np_fn.__name__}`` on the host values (no gradient)."
    return fn


_HOST_MATH = {"ceil": np.ceil, "floor": np.floor, "round": np.rint, "equal": np.equal, "not_equal": np.not_equal,
              "greater": np.greater, "greater_equal": np.greater_equal, "less": np.less, "less_equal": np.less_equal,
              "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_not": np.logical_not,
              "is_nan": np.isnan, "is_inf": np.isinf, "is_finite": np.isfinite, "sign": np.sign}
for _name, _fn in _HOST_MATH.items():
    if not hasattr(math, _name):
        setattr(math, _name, _host_math(_fn, _name))
        TF_NAMES[f"tf.math.{_name}"] = f"numpy.{_fn.__name__}"
math.pow = ops.power if hasattr(ops, "power") else (lambda x, y: ops.exp(ops.multiply(ops.log(x), y)))
TF_NAMES["tf.math.pow"] = "fastnn.tf_names.math.pow"


# ---- tf.Variable / keras.Variable ---------------------------------------------------------------------------
from fastnn.layers.variable import Variable as _LayerVariable  # noqa: E402


class Variable(_LayerVariable):
    """``keras.Variable(initializer, shape=None, dtype=None, trainable=True, name=None)`` and
    ``tf.Variable(initial_value, trainable=True, name=None)``: a float32 Variable (the same class as layer
    weights: GradientTape, ``fastnn.ops`` and the optimizers take it). ``initializer`` is a value (array, number,
    Tensor) or an initializer (name or callable) called with ``shape``."""

    __slots__ = ()

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, autocast=True, aggregation="none",
                 synchronization="auto", name=None, initial_value=None, **kwargs):
        value = initial_value if initializer is None else initializer
        if value is None:
            raise ValueError("Variable: an initial value (or an initializer and a shape) is required")
        if isinstance(value, str) or (callable(value) and not hasattr(value, "shape")):
            if shape is None:
                raise ValueError(f"Variable: the initializer {value!r} needs a shape")
            from fastnn import initializers
            value = initializers.get(value)(tuple(int(d) for d in shape))
        value = np.asarray(value.numpy() if hasattr(value, "numpy") else value, dtype=np.float32)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ValueError(f"Variable: the initial value has shape {value.shape}, not the shape {tuple(shape)}")
        name = name or "variable"
        super().__init__(value, name, name, trainable=True if trainable is None else bool(trainable))


TF_NAMES["tf.Variable"] = "fastnn.tf_names.Variable"
TF_NAMES["keras.Variable"] = "fastnn.tf_names.Variable"
__all__ += ["Variable"]
