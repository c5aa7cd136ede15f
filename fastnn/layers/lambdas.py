"""Lambda (any differentiable fastnn code as a layer) and Identity (Keras 3).

Saving: Keras stores a Python lambda's bytecode in the config; fastnn never does (not portable, and
loading it runs arbitrary code). A Lambda's config holds its function's NAME only, and ``from_config``
finds the function by that name among those given to ``register_function`` (in the process that
loads): anything else, a ``lambda`` above all, raises ValueError saying so.
"""
import inspect

import numpy as np

from fastnn.layers.base import Layer, _unsupported
from fastnn.layers.merging import _is_shape_list, _MultiInput
from fastnn.tensor import Tensor, no_grad, recording

_FUNCTIONS = {}  # registered name -> function (register_function)


def register_function(function, name=None):
    """Register ``function`` under ``name`` (default: its ``__name__``) so that a Lambda using it can be
    rebuilt from its config (``Lambda.from_config``, loading a saved model). A ``lambda`` needs a
    ``name``. Returns the function, so it works as a decorator.

    >>> from fastnn.layers.lambdas import Lambda, register_function
    >>> double = register_function(lambda x: x * 2, name="double")
    >>> Lambda.from_config(Lambda(double).get_config()).function is double
    True
    """
    name = name or function.__name__
    if name == "<lambda>":
        raise ValueError("register_function: a lambda has no name of its own; pass name=...")
    _FUNCTIONS[name] = function
    return function


def _function_name(function):
    """What a config stores for ``function``: its registered name, else its ``__name__``."""
    for name, registered in _FUNCTIONS.items():
        if registered is function:
            return name
    return getattr(function, "__name__", type(function).__name__)


def _registered(name, what):
    """The function a config names (a callable passes through); ValueError if none is registered."""
    if callable(name):
        return name
    if name in _FUNCTIONS:
        return _FUNCTIONS[name]
    why = ("a Python lambda: fastnn stores a function's name, never its bytecode" if name == "<lambda>"
           else "no function of that name is registered")
    raise ValueError(f"Lambda.from_config: cannot rebuild the {what} {name!r}, {why}. Register it in this "
                     f"process with fastnn.layers.lambdas.register_function(fn, name=...) (before saving too, "
                     f"for a lambda), or write a Layer subclass.")


class Lambda(_MultiInput):
    """Wraps a function of Tensors as a layer: ``function(x, **arguments)`` runs on a ``fastnn.Tensor``
    (a list of Tensors for a list of inputs), so any differentiable fastnn code (Tensor operators,
    ``fastnn.ops``) trains through it. A function with a ``training`` argument receives the flag.

    Args:
        function: the function; takes the input Tensor (or list) first, returns one Tensor.
        output_shape: tuple without the batch dimension, or a function of the full input shape; default:
            inferred by running ``function`` on tiny zero batches.
        mask: not supported (fastnn has no masking): must be None.
        arguments: dict of keyword arguments for ``function``.
        name, trainable, dtype: the standard layer keywords.

    Saving stores the function's name only: see ``register_function``.

    >>> import fastnn
    >>> square = fastnn.layers.Lambda(lambda x: x ** 2)
    >>> square(np.full((2, 3), 3, np.float32)).numpy()[0].tolist()
    [9.0, 9.0, 9.0]
    """

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kwargs):
        super().__init__(**kwargs)
        _unsupported(f"Lambda '{self.name}'", mask=mask)
        if not callable(function):
            raise TypeError(f"Lambda '{self.name}': function must be callable, got {function!r}")
        self.function, self.arguments = function, dict(arguments or {})
        self._shape_arg = tuple(output_shape) if isinstance(output_shape, list) else output_shape
        try:
            self._takes_training = "training" in inspect.signature(function).parameters
        except (TypeError, ValueError):  # a callable without a signature (some builtins)
            self._takes_training = False

    def _run(self, x, training):
        kwargs = dict(self.arguments, training=training) if self._takes_training else self.arguments
        return self.function(x, **kwargs)

    # ---- shapes ---------------------------------------------------------------------------------
    def compute_output_shape(self, input_shape):
        if callable(self._shape_arg):
            return tuple(self._shape_arg(input_shape))
        batch = (input_shape[0] if _is_shape_list(input_shape) else input_shape)[0]
        if self._shape_arg is not None:
            return (batch,) + tuple(self._shape_arg)
        # Two probes, every unknown size (batch included) set to 1 then to 2: the output axes that
        # follow them are unknown (None), the leading one (the batch) takes the input's batch size.
        one, two = self._probe(input_shape, 1), self._probe(input_shape, 2)
        if len(one) != len(two):
            raise self._cannot_infer(f"the output rank changes with the batch size ({one} vs {two})")
        out = tuple(d if d == e else None for d, e in zip(one, two))
        return (batch,) + out[1:] if out and out[0] is None else out

    def _probe(self, input_shape, size):
        """Output shape of ``function`` on zeros of ``input_shape`` with None sizes set to ``size``."""
        multi = _is_shape_list(input_shape)
        zeros = [Tensor(np.zeros(tuple(size if d is None else d for d in (None,) + tuple(s)[1:]), np.float32))
                 for s in (input_shape if multi else [input_shape])]
        try:
            with no_grad(), np.errstate(all="ignore"):  # zeros: log(0), 0/0 are fine here
                out = self._run(zeros if multi else zeros[0], False)
        except Exception as e:
            raise self._cannot_infer(f"the function raised {type(e).__name__}: {e}") from e
        if not isinstance(out, (Tensor, np.ndarray)):
            raise self._cannot_infer(f"the function returned a {type(out).__name__}, not one tensor")
        return tuple(out.shape)

    def _cannot_infer(self, why):
        # Keras raises NotImplementedError here too
        return NotImplementedError(f"Lambda '{self.name}': We could not automatically infer the shape of the "
                                   f"Lambda's output ({why}). Please specify the `output_shape` argument for "
                                   f"this Lambda layer.")

    # ---- math -----------------------------------------------------------------------------------
    def _forward(self, x, training, need_dx=True):
        need = recording((need_dx,))[0]
        ts = [Tensor(a, requires_grad=need) for a in x] if isinstance(x, list) else Tensor(x, requires_grad=need)
        out = self._run(ts, training)
        if need and not isinstance(out, Tensor):
            raise TypeError(f"Lambda '{self.name}': the function returned a {type(out).__name__}, not a fastnn "
                            f"Tensor, so no gradient can flow through it: write it with Tensor operators and "
                            f"fastnn.ops")
        y = np.ascontiguousarray(out.data if isinstance(out, Tensor) else out, dtype=np.float32)  # (slices: views)
        return y, ((ts, out) if need else None)

    def _backward(self, ctx, dy):
        if ctx is None:
            return None
        ts, out = ctx
        if out.requires_grad:  # else the output does not depend on the inputs: zero gradients
            out.backward(dy)
        grads = [np.zeros(t.shape, np.float32) if t.grad is None else t.grad.data
                 for t in (ts if isinstance(ts, list) else [ts])]
        return grads if isinstance(ts, list) else grads[0]

    # ---- config ---------------------------------------------------------------------------------
    def get_config(self):
        config = super().get_config()
        config["function"] = _function_name(self.function)
        if self._shape_arg is not None:
            config["output_shape"] = (_function_name(self._shape_arg) if callable(self._shape_arg)
                                      else self._shape_arg)
        config["arguments"] = dict(self.arguments)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["function"] = _registered(config["function"], "function")
        if isinstance(config.get("output_shape"), str):
            config["output_shape"] = _registered(config["output_shape"], "output_shape function")
        return cls(**config)


class Identity(Layer):
    """Returns its input unchanged: a placeholder where a layer is expected.

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> fastnn.layers.Identity()(np.ones((2, 3), np.float32)).shape
    (2, 3)
    """
    supports_masking = True  # passes an input mask on (Keras 3)

    def _forward(self, x, training, need_dx=True):
        return x, (recording((need_dx,))[0] or None)  # ctx: True where a backward will come

    def _backward(self, ctx, dy):
        return None if ctx is None else dy
