"""The metric base class: ``update_state(y_true, y_pred, sample_weight=None)``, ``result()``,
``reset_state()``, and Keras's ``add_weight`` / ``add_variable`` for metrics written by users
(tf.keras style: state in Variables created in ``__init__``, ``update_state`` assigning to them)."""
import numpy as np

from fastnn._naming import _snake_case
from fastnn.losses import _f32


class MetricValue(np.ndarray):
    """A metric's result: a float32 numpy array (0-d for one value) that also has ``.numpy()``, as the
    backend tensor Keras returns does (``m.result().numpy()``, ``float(m.result())``, f-strings)."""

    def numpy(self):
        return np.asarray(self).copy()

    def __format__(self, spec):
        return format(self.item(), spec) if self.ndim == 0 else super().__format__(spec)


def _result_value(value):
    if isinstance(value, (np.ndarray, np.generic, float, int)):
        return np.asarray(value, np.float32).view(MetricValue)
    return value  # a Tensor or Variable (a user's result) already has .numpy()


class Metric:
    """Base class. Built-in metrics implement ``_update(y, p)`` on numpy arrays; a user's subclass
    overrides ``update_state`` and ``result`` (and ``reset_state`` when its state does not restart at 0)."""

    _argmax_only = False  # the metric only needs argmax of the predictions (so logits serve)

    def __init_subclass__(cls, **kwargs):
        """Every ``result`` returns a MetricValue (numpy with ``.numpy()``)."""
        super().__init_subclass__(**kwargs)
        if "result" in cls.__dict__ and not getattr(cls.__dict__["result"], "_wrapped", False):
            result = cls.__dict__["result"]

            def wrapped(self):
                return _result_value(result(self))
            wrapped._wrapped, wrapped.__doc__, wrapped.__name__ = True, result.__doc__, "result"
            cls.result = wrapped

    def __init__(self, name=None, dtype=None):
        self.name = name or _snake_case(type(self).__name__)
        self._variables = []
        self.reset_state()

    @property
    def variables(self):
        """The Variables created by ``add_weight`` / ``add_variable``."""
        return list(getattr(self, "_variables", []))

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum", name=None):
        """A float32 state Variable of ``shape`` (Keras 3's ``Metric.add_variable``)."""
        from fastnn import initializers
        from fastnn.layers.variable import Variable
        if not hasattr(self, "_variables"):
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before adding variables")
        shape = tuple(int(d) for d in (shape if shape is not None else ()))
        init = initializers.get(initializer)
        value = np.asarray(init(shape) if shape else init((1,)).reshape(()), dtype=np.float32)
        name = name or f"variable_{len(self._variables)}"
        var = Variable(value, name, f"{self.name}/{name}", trainable=False)
        self._variables.append(var)
        return var

    def add_weight(self, name=None, shape=(), initializer="zeros", dtype=None, aggregation="sum"):
        """tf.keras's spelling of ``add_variable`` (``name`` first)."""
        return self.add_variable(shape=shape, initializer=initializer, dtype=dtype, aggregation=aggregation,
                                 name=name)

    def reset_state(self):
        """Set every state variable to zeros (Keras 3's default)."""
        for v in self.variables:
            v.assign(np.zeros(v.shape, np.float32))

    def result(self):
        raise NotImplementedError(f"{type(self).__name__} must define result()")

    def _update(self, y, p, sample_weight=None):
        """Accumulate a batch: ``y`` targets (integer labels or float arrays), ``p`` float32 predictions."""
        if type(self).update_state is Metric.update_state:
            raise NotImplementedError(f"{type(self).__name__} must define update_state(y_true, y_pred, "
                                      f"sample_weight=None)")
        self.update_state(y, p) if sample_weight is None else self.update_state(y, p, sample_weight=sample_weight)

    _weighted = False  # _update takes a sample_weight argument

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true)
        if sample_weight is None:
            self._update(y_true, _f32(y_pred))
        elif self._weighted:
            self._update(y_true, _f32(y_pred), sample_weight)
        else:
            raise ValueError(f"{self.name}: sample_weight is not supported yet")

    def __call__(self, *args, **kwargs):
        """Update with the arguments of ``update_state`` (one ``values`` for Mean and Sum), return the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": "float32"}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
