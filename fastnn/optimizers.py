"""Optimizers with Keras 3's defaults and update rules (``keras/src/optimizers/*.py``).

One fused C++ call updates every parameter tensor of the model in place (``<name>_update`` kernels
taking lists of arrays). ``learning_rate`` is a plain attribute (settable between epochs, e.g. by
ReduceLROnPlateau) or a schedule ``lr(iterations)``; unknown keyword arguments such as ``lr=``
raise ``ValueError`` as in Keras 3.

>>> import fastnn
>>> opt = fastnn.optimizers.Adam()
>>> opt.learning_rate
0.001
"""
import math
import types

import numpy as np

from fastnn import backend


class Optimizer:
    """Base class. Args common to all: learning_rate, weight_decay (decoupled, applied before the
    update as Keras does), clipnorm, clipvalue, global_clipnorm, name."""

    _kernel = None   # name of the fused update kernel in the backend
    _slots = ()      # names of the per-parameter state arrays, in the kernel's argument order

    def _used_slots(self):
        """``_slots`` with None for the slots these hyper-parameters do not use (passed as None)."""
        return self._slots

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None,
                 use_ema=False, ema_momentum=0.99, ema_overwrite_frequency=None, loss_scale_factor=None,
                 gradient_accumulation_steps=None, name=None, **kwargs):
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if use_ema or loss_scale_factor is not None or gradient_accumulation_steps is not None:
            raise ValueError(f"{type(self).__name__}: use_ema, loss_scale_factor and gradient_accumulation_steps "
                             f"are not supported yet")
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.learning_rate = learning_rate
        self.iterations = 0
        self._state = {}      # id(variable) -> list of slot arrays
        self._cache = (None, None, None, None)  # (variable list, its ids, params, slot lists) of the last apply

    # ---- learning rate ----------------------------------------------------------------------------
    @property
    def learning_rate(self):
        lr = self._learning_rate
        return float(lr(self.iterations)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if callable(value):
            self._learning_rate = value
            return
        value = float(np.asarray(value))
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{type(self).__name__}: learning_rate must be a finite number >= 0, got {value}")
        self._learning_rate = value

    # ---- state ------------------------------------------------------------------------------------
    def _initial_slot(self, name, var):
        return backend.of(var.value).zeros(var.shape)

    def build(self, variables):
        """Create the state arrays of ``variables`` (idempotent)."""
        for v in variables:
            if id(v) not in self._state:
                self._state[id(v)] = [None if s is None else self._initial_slot(s, v) for s in self._used_slots()]

    @property
    def built(self):
        return bool(self._state)

    def _prepared(self, variables):
        """Parameter and slot lists for ``variables``, rebuilt only when the variables change."""
        if variables is not self._cache[0]:  # fit passes the same list every step
            ids = tuple(id(v) for v in variables)
            if ids != self._cache[1]:
                self.build(variables)
                params = [v.value for v in variables]
                slots = [None if name is None else [self._state[id(v)][k] for v in variables]
                         for k, name in enumerate(self._used_slots())]
                self._cache = (variables, ids, params, slots)
            else:
                self._cache = (variables,) + self._cache[1:]
        return self._cache[2], self._cache[3]

    def variables_for(self, variable):
        """The state arrays (``_slots`` order) kept for one variable."""
        return self._state[id(variable)]

    def count_params(self):
        """Scalars in the optimizer state (Keras counts its iteration and learning-rate variables too)."""
        return sum(a.size for slots in self._state.values() for a in slots if a is not None) + (2 if self._state else 0)

    # ---- updates ----------------------------------------------------------------------------------
    def _clip(self, grads):
        if self.clipvalue is not None:
            return [np.clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        if self.clipnorm is not None:
            out = []
            for g in grads:
                n = float(np.sqrt(np.square(g, dtype=np.float64).sum()))
                out.append(g * np.float32(self.clipnorm / n) if n > self.clipnorm else g)
            return out
        if self.global_clipnorm is not None:
            n = math.sqrt(sum(float(np.square(g, dtype=np.float64).sum()) for g in grads))
            if n > self.global_clipnorm:
                return [g * np.float32(self.global_clipnorm / n) for g in grads]
        return grads

    def _hyper(self, lr):
        """Keyword hyper-parameters of the kernel call."""
        raise NotImplementedError

    def _update(self, variables, grads):
        params, slots = self._prepared(variables)
        if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm is not None:
            grads = self._clip(grads)
        getattr(backend.of(params[0]), self._kernel)(params, grads, *slots, **self._hyper(self.learning_rate))
        self.iterations += 1

    def _apply_vars(self, variables):
        """Update ``variables`` from their ``.grad`` (the training step's path)."""
        self._update(variables, [v.grad for v in variables])

    def apply(self, grads, trainable_variables):
        """Apply ``grads`` (arrays) to ``trainable_variables`` (Variables), Keras's ``optimizer.apply``."""
        grads, variables = list(grads), list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}.apply: got {len(grads)} gradients for {len(variables)} variables")
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]  # None: not connected (as Keras)
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        arrays = []
        for g, v in zip(grads, variables):
            g = np.ascontiguousarray(g, dtype=np.float32)
            if g.shape != v.shape:
                raise ValueError(f"{type(self).__name__}.apply: gradient of shape {g.shape} for variable "
                                 f"'{v.path}' of shape {v.shape}")
            arrays.append(g)
        self._update(variables, arrays)

    def apply_gradients(self, grads_and_vars):
        """Apply a list of ``(gradient, variable)`` pairs."""
        pairs = list(grads_and_vars)
        self.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _weight_decay(self):
        return float(self.weight_decay or 0.0)

    def get_config(self):
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        elif callable(lr):
            raise ValueError(f"{type(self).__name__}.get_config: a plain function learning rate cannot be "
                             f"serialized; use a fastnn.optimizers.schedules class")
        return {"name": self.name, "learning_rate": lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm}

    @classmethod
    def from_config(cls, config):
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config = {**config, "learning_rate": getattr(schedules, lr["class_name"]).from_config(lr["config"])}
        return cls(**config)


class SGD(Optimizer):
    """``m = momentum * m - lr * g; p += m`` (nesterov: ``p += momentum * m - lr * g``); no momentum:
    ``p -= lr * g``. Keras defaults: learning_rate=0.01, momentum=0.0, nesterov=False."""

    _kernel = "sgd_update"
    _slots = ("momentums",)

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: `momentum` must be a float between [0, 1]. Received: momentum={momentum}")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)

    def _used_slots(self):
        return ("momentums",) if self.momentum else (None,)

    def _hyper(self, lr):
        return dict(learning_rate=lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Keras Adam: ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); p -= alpha * m / (sqrt(v) + epsilon)``.
    Defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7."""

    _kernel = "adam_update"
    _slots = ("m", "v")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None,
                 name="adam", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if amsgrad:
            raise ValueError(f"{type(self).__name__}: amsgrad=True is not supported yet")
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.amsgrad = False

    def _hyper(self, lr):
        return dict(learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                    step=self.iterations + 1, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                "amsgrad": False}


class AdamW(Adam):
    """Adam with decoupled weight decay (Keras default weight_decay=0.004)."""

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, name="adamw", **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad,
                         weight_decay=weight_decay, name=name, **kwargs)
        if weight_decay is None:
            raise ValueError("AdamW: argument `weight_decay` must be a float. Received: weight_decay=None")


class RMSprop(Optimizer):
    """Keras RMSprop: ``v = rho v + (1 - rho) g^2; p -= lr g / sqrt(v + epsilon)`` (epsilon inside the root).
    Defaults: learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False."""

    _kernel = "rmsprop_update"
    _slots = ("velocities", "momentums", "average_grads")

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, weight_decay=None,
                 name="rmsprop", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.rho, self.momentum, self.epsilon = float(rho), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def _used_slots(self):
        return ("velocities", "momentums" if self.momentum > 0 else None, "average_grads" if self.centered else None)

    def _hyper(self, lr):
        return dict(learning_rate=lr, rho=self.rho, momentum=self.momentum, epsilon=self.epsilon,
                    centered=self.centered, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum, "epsilon": self.epsilon,
                "centered": self.centered}


class Adagrad(Optimizer):
    """Keras Adagrad: ``acc += g^2; p -= lr g / sqrt(acc + epsilon)``, accumulators start at
    ``initial_accumulator_value`` (0.1). Defaults: learning_rate=0.001, epsilon=1e-7."""

    _kernel = "adagrad_update"
    _slots = ("accumulators",)

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def _initial_slot(self, name, var):
        return super()._initial_slot(name, var) + np.float32(self.initial_accumulator_value)

    def _hyper(self, lr):
        return dict(learning_rate=lr, epsilon=self.epsilon, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Keras Adadelta. NOTE: Keras 3's default learning_rate is 0.001 (Keras 2 used 1.0); scripts written
    for Keras 2 that call ``Adadelta()`` train 1000x slower; pass ``learning_rate=1.0`` for the old behaviour.
    Defaults: learning_rate=0.001, rho=0.95, epsilon=1e-7."""

    _kernel = "adadelta_update"
    _slots = ("accumulated_grads", "accumulated_deltas")

    def __init__(self, learning_rate=0.001, rho=0.95, epsilon=1e-7, weight_decay=None, name="adadelta", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def _hyper(self, lr):
        return dict(learning_rate=lr, rho=self.rho, epsilon=self.epsilon, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


# ---- learning-rate schedules (keras.optimizers.schedules): lr = schedule(iterations) -------------------

class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate`` (step = the optimizer's iterations so far)."""

    def __call__(self, step):
        raise NotImplementedError

    def get_config(self):
        return dict(self.__dict__)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _StepDecay(LearningRateSchedule):
    """Shared by the decays of ``step / decay_steps`` (floored when ``staircase``)."""

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        if decay_steps <= 0:
            raise ValueError(f"{type(self).__name__}: decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate, self.decay_steps, self.decay_rate = initial_learning_rate, decay_steps, decay_rate
        self.staircase, self.name = staircase, name or type(self).__name__

    def _progress(self, step):
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


class ExponentialDecay(_StepDecay):
    """``initial_learning_rate * decay_rate ** (step / decay_steps)``."""

    def __call__(self, step):
        return self.initial_learning_rate * self.decay_rate ** self._progress(step)


class InverseTimeDecay(_StepDecay):
    """``initial_learning_rate / (1 + decay_rate * step / decay_steps)``."""

    def __call__(self, step):
        return self.initial_learning_rate / (1 + self.decay_rate * self._progress(step))


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` while ``boundaries[i-1] < step <= boundaries[i]`` (Keras semantics)."""

    def __init__(self, boundaries, values, name="PiecewiseConstant"):
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"PiecewiseConstantDecay: needs len(values) == len(boundaries) + 1, got "
                             f"{len(values)} values and {len(boundaries)} boundaries")
        self.boundaries, self.values, self.name = list(boundaries), list(values), name

    def __call__(self, step):
        for boundary, value in zip(self.boundaries, self.values):
            if step <= boundary:
                return value
        return self.values[-1]


class CosineDecay(LearningRateSchedule):
    """Cosine decay from ``initial_learning_rate`` to ``alpha * initial_learning_rate`` over ``decay_steps``."""

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name="CosineDecay"):
        if decay_steps <= 0:
            raise ValueError(f"CosineDecay: decay_steps must be > 0, got {decay_steps}")
        self.initial_learning_rate, self.decay_steps, self.alpha, self.name = (initial_learning_rate, decay_steps,
                                                                                alpha, name)

    def __call__(self, step):
        done = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * done))
        return self.initial_learning_rate * ((1 - self.alpha) * cosine + self.alpha)


schedules = types.SimpleNamespace(LearningRateSchedule=LearningRateSchedule, ExponentialDecay=ExponentialDecay,
                                  InverseTimeDecay=InverseTimeDecay, PiecewiseConstantDecay=PiecewiseConstantDecay,
                                  CosineDecay=CosineDecay)

_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad, "adadelta": Adadelta}


def get(identifier):
    """Resolve "adam", "sgd", "rmsprop", "adagrad", "adadelta", "adamw" (any case), a config dict or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _BY_NAME:
        return _BY_NAME[identifier["class_name"].lower()].from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Known: {sorted(_BY_NAME)}")
