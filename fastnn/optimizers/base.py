"""The optimizer base class: Keras 3's ``BaseOptimizer`` (keras/src/optimizers/base_optimizer.py).

One fused C++ call updates every parameter tensor of the model in place (``<name>_update`` kernels
taking lists of arrays). ``learning_rate`` is a plain attribute (settable between epochs, e.g. by
ReduceLROnPlateau) or a schedule ``lr(iterations)``; unknown keyword arguments such as ``lr=``
raise ``ValueError`` as in Keras 3.

Around the update, as Keras does: gradient accumulation (``gradient_accumulation_steps``: sum the
gradients of that many calls, then one update with their mean), clipping (clipvalue / clipnorm /
global_clipnorm, after accumulation), decoupled weight decay (inside the kernels), the moving average
of the weights (``use_ema``; ``ema_overwrite_frequency`` copies it into the weights every that many
iterations, ``finalize_variable_values`` at the end of fit).

State, in Keras's order (``variables``, what Keras saves as optimizer/vars/0, 1, ...): iteration,
learning_rate (not when it is a schedule), the EMA averages (use_ema), the gradient accumulators
(gradient_accumulation_steps), then each trainable variable's slots (``variables_for(var)``, the
order of the subclass's ``_slots``; Adam's amsgrad velocity_hats come after all the others, as in Keras:
``_slot_groups``), then user-subclass variables, then the subclass's scalar extras (Nadam's u_product).
"""
import math

import numpy as np

from fastnn import backend
from fastnn.optimizers import schedules


def _check_ema_and_accumulation(use_ema, ema_momentum, ema_overwrite_frequency, gradient_accumulation_steps):
    """Keras's argument checks of BaseOptimizer.__init__."""
    if gradient_accumulation_steps and not gradient_accumulation_steps >= 2:
        raise ValueError("`gradient_accumulation_steps` must be an integer >= 2. Received: "
                         f"gradient_accumulation_steps={gradient_accumulation_steps}")
    if use_ema:
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f"`ema_momentum` must be in the range [0, 1]. Received: ema_momentum={ema_momentum}")
        if ema_overwrite_frequency and (not isinstance(ema_overwrite_frequency, int) or ema_overwrite_frequency < 1):
            raise ValueError("`ema_overwrite_frequency` must be an integer >= 1 or None. Received: "
                             f"ema_overwrite_frequency={ema_overwrite_frequency}")


class Optimizer:
    """Base class. Args common to all: learning_rate, weight_decay (decoupled, applied before the
    update as Keras does), clipnorm, clipvalue, global_clipnorm, use_ema, ema_momentum,
    ema_overwrite_frequency, loss_scale_factor, gradient_accumulation_steps, name."""

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
        if sum(c is not None for c in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. Received: "
                             f"clipnorm={clipnorm}, clipvalue={clipvalue}, global_clipnorm={global_clipnorm}")
        _check_ema_and_accumulation(use_ema, ema_momentum, ema_overwrite_frequency, gradient_accumulation_steps)
        self.name = name or type(self).__name__.lower()
        self.weight_decay = weight_decay
        self.clipnorm, self.clipvalue, self.global_clipnorm = clipnorm, clipvalue, global_clipnorm
        self.use_ema, self.ema_momentum, self.ema_overwrite_frequency = bool(use_ema), ema_momentum, \
            ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.learning_rate = learning_rate
        self._iterations = 0  # Keras's raw counter: one per apply call, accumulation steps included
        self._state = {}      # id(variable) -> list of slot arrays (kernel order)
        self._averages = {}   # id(variable) -> EMA of its value (use_ema)
        self._accumulated = {}  # id(variable) -> sum of its gradients since the last update
        self._built_vars = []   # the variables in build order (Keras's variable order)
        self._index = {}        # id(variable) -> its index in _built_vars (Keras's _get_variable_index)
        self._user_variables = []  # created by a subclass's build with add_variable*
        self._cache = (None, None, None, None)  # (variable list, its ids, params, slot lists) of the last apply

    # ---- iterations and learning rate -------------------------------------------------------------
    @property
    def iterations(self):
        """Updates made so far (with gradient accumulation: apply calls // gradient_accumulation_steps)."""
        steps = self.gradient_accumulation_steps
        return self._iterations // steps if steps else self._iterations

    @iterations.setter
    def iterations(self, value):
        steps = self.gradient_accumulation_steps
        self._iterations = int(value) * (steps or 1)

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
        zeros = backend.of(variables[0].value).zeros if variables else None
        for v in variables:
            if id(v) not in self._state:
                self._index[id(v)] = len(self._built_vars)
                self._built_vars.append(v)
                self._state[id(v)] = [None if s is None else self._initial_slot(s, v) for s in self._used_slots()]
                if self.use_ema:
                    self._averages[id(v)] = zeros(v.shape)
                if self.gradient_accumulation_steps:
                    self._accumulated[id(v)] = zeros(v.shape)

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
        """The state arrays (``_slots`` order, the unused ones left out) kept for one variable."""
        return [s for s in self._state[id(variable)] if s is not None]

    def _slot_groups(self):
        """Slot indices grouped in Keras's variable order: each group over every variable in turn."""
        return (tuple(range(len(self._slots))),)

    def _extra_variables(self):
        """Scalar state of the subclass after the slots: a list of (0-d array, setter)."""
        return []

    def _variable_entries(self):
        """``(array, setter)`` per optimizer variable in Keras's order; setter None: the array is live
        state (assigned in place)."""
        entries = [(np.array(self._iterations, np.int64), self._set_raw_iterations)]
        if not callable(self._learning_rate):
            entries.append((np.array(self._learning_rate, np.float32),
                            lambda value: setattr(self, "learning_rate", float(value))))
        for store in (self._averages, self._accumulated):
            entries += [(store[id(v)], None) for v in self._built_vars if id(v) in store]
        for group in self._slot_groups():
            entries += [(self._state[id(v)][k], None) for v in self._built_vars for k in group
                        if self._state[id(v)][k] is not None]
        entries += [(v.data, None) for v in self._user_variables]
        return entries + self._extra_variables()

    def _set_raw_iterations(self, value):
        self._iterations = int(value)

    @property
    def variables(self):
        """The optimizer's state in Keras's order (see the module docstring). Slot arrays are live (writing
        into them changes the state); iteration, learning_rate and scalar extras are copies."""
        return [a for a, _ in self._variable_entries()]

    def save_own_variables(self, store):
        """Keras's API: ``store["0"], store["1"], ...`` = the variables."""
        for k, a in enumerate(self.variables):
            store[str(k)] = np.array(a)

    def load_own_variables(self, store):
        """Keras's API: set the variables from ``store["0"], ...`` (build the optimizer first, e.g. with
        ``optimizer.build(model.trainable_variables)``)."""
        entries = self._variable_entries()
        if len(store.keys()) != len(entries):
            raise ValueError(f"{type(self).__name__}.load_own_variables: the store holds {len(store.keys())} "
                             f"variables, this optimizer has {len(entries)} (is it built for the same model?)")
        for k, (array, setter) in enumerate(entries):
            value = np.asarray(store[str(k)])
            if value.shape != array.shape:
                raise ValueError(f"{type(self).__name__}.load_own_variables: variable {k} has shape "
                                 f"{value.shape}, expected {array.shape}")
            if setter is None:
                array[...] = value
            else:
                setter(value)

    def count_params(self):
        """Scalars in the optimizer state (Keras counts its iteration and learning-rate variables too)."""
        return sum(a.size for a in self.variables) if self._state else 0

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
        raise NotImplementedError(f"{type(self).__name__} must define update_step(gradient, variable, learning_rate)")

    # ---- a user's subclass (Keras's custom-optimizer API): build + update_step in Python --------------
    def update_step(self, gradient, variable, learning_rate):
        """Update one variable (Keras's method for subclasses; the built-in optimizers use fused kernels)."""
        raise NotImplementedError(f"{type(self).__name__} must define update_step(gradient, variable, learning_rate)")

    def _custom(self):
        """A user's subclass: updates through update_step (one without it is told to define it)."""
        cls = type(self)
        return cls.update_step is not Optimizer.update_step or (cls._kernel is None and cls._step is Optimizer._step)

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="none", name=None):
        """A float32 state Variable of ``shape`` (listed in ``variables``, saved with the optimizer)."""
        from fastnn import initializers
        from fastnn.layers.variable import Variable
        shape = tuple(int(d) for d in shape)
        value = np.asarray(initializers.get(initializer)(shape), np.float32).reshape(shape)
        name = name or f"variable_{len(self._user_variables)}"
        var = Variable(value, name, f"{self.name}/{name}", trainable=False)
        self._user_variables.append(var)
        return var

    def add_variable_from_reference(self, reference_variable, name=None, initializer="zeros"):
        """A state Variable shaped like ``reference_variable``, named ``<its name>_<name>`` (Keras)."""
        return self.add_variable(reference_variable.shape, initializer,
                                 name=f"{reference_variable.name}_{name}" if name else reference_variable.name)

    def _get_variable_index(self, variable):
        return self._index[id(variable)]

    @staticmethod
    def assign(variable, value):
        variable.assign(value)

    @staticmethod
    def assign_add(variable, value):
        variable.assign_add(value)

    @staticmethod
    def assign_sub(variable, value):
        variable.assign_sub(value)

    def _custom_step(self, variables, grads, lr):
        from fastnn.tensor import Tensor
        wd = self._weight_decay()
        for v, g in zip(variables, grads):
            if wd:
                v.assign(v.value - v.value * np.float32(wd) * np.float32(lr))  # Keras's decoupled decay first
            self.update_step(Tensor(np.asarray(g, np.float32)), v, lr)

    def _step(self, params, grads, slots, lr):
        """One update of every parameter (the fused kernel; Adafactor overrides)."""
        getattr(backend.of(params[0]), self._kernel)(params, grads, *slots, **self._hyper(lr))

    def _update(self, variables, grads):
        params, slots = self._prepared(variables)
        steps = self.gradient_accumulation_steps
        if steps:
            acc = [self._accumulated[id(v)] for v in variables]
            if (self._iterations + 1) % steps:  # not an update step: accumulate only
                for a, g in zip(acc, grads):
                    a += g
                grads = None
            else:
                grads = [(g + a) / np.float32(steps) for g, a in zip(grads, acc)]
                for a in acc:
                    a[...] = 0.0
        if grads is not None:
            if self.clipvalue is not None or self.clipnorm is not None or self.global_clipnorm is not None:
                grads = self._clip(grads)
            if self._custom():
                self._custom_step(variables, grads, self.learning_rate)
            else:
                self._step(params, grads, slots, self.learning_rate)
        if self.use_ema:
            self._update_averages(variables)
        self._iterations += 1

    def _update_averages(self, variables):
        """Keras: ``average = m * average + (1 - m) * value`` with m = ema_momentum (0 at iteration 0),
        then every ema_overwrite_frequency iterations the values become the averages."""
        m = np.float32(self.ema_momentum if self.iterations != 0 else 0.0)
        for v in variables:
            avg = self._averages[id(v)]
            avg[...] = m * avg + (np.float32(1) - m) * v.value
        freq = self.ema_overwrite_frequency
        if freq and (self.iterations + 1) % freq == 0:
            self._overwrite_with_averages(variables)

    def _overwrite_with_averages(self, variables):
        for v in variables:
            if id(v) in self._averages:
                v.value[...] = self._averages[id(v)]

    def finalize_variable_values(self, var_list):
        """End of training: with ``use_ema`` the variables take their moving averages (Keras)."""
        if self.use_ema:
            self._overwrite_with_averages(list(var_list))

    def _apply_vars(self, variables):
        """Update ``variables`` from their ``.grad`` (the training step's path)."""
        self._update(variables, [v.grad for v in variables])

    def scale_loss(self, loss):
        """``loss * loss_scale_factor`` (Keras; ``apply`` divides the gradients by it again)."""
        return loss * self.loss_scale_factor if self.loss_scale_factor is not None else loss

    def apply(self, grads, trainable_variables):
        """Apply ``grads`` (arrays) to ``trainable_variables`` (Variables), Keras's ``optimizer.apply``."""
        grads, variables = list(grads), list(trainable_variables)
        if len(grads) != len(variables):
            raise ValueError(f"{type(self).__name__}.apply: got {len(grads)} gradients for {len(variables)} variables")
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]  # None: not connected (as Keras)
        grads, variables = [g for g, _ in pairs], [v for _, v in pairs]
        arrays = []
        for g, v in zip(grads, variables):
            g = np.ascontiguousarray(getattr(g, "data", g), dtype=np.float32)
            if g.shape != v.shape:
                raise ValueError(f"{type(self).__name__}.apply: gradient of shape {g.shape} for variable "
                                 f"'{v.path}' of shape {v.shape}")
            if self.loss_scale_factor is not None:
                g = g / np.float32(self.loss_scale_factor)
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
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        elif callable(lr):
            raise ValueError(f"{type(self).__name__}.get_config: a plain function learning rate cannot be "
                             f"serialized; use a fastnn.optimizers.schedules class")
        return {"name": self.name, "learning_rate": lr,
                "weight_decay": self.weight_decay, "clipnorm": self.clipnorm, "clipvalue": self.clipvalue,
                "global_clipnorm": self.global_clipnorm, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency, "loss_scale_factor": self.loss_scale_factor,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config):
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            config = {**config, "learning_rate": getattr(schedules, lr["class_name"]).from_config(lr["config"])}
        return cls(**config)
