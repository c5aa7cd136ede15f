"""Optimizers whose update is one fused C++ kernel per step (ops/optim.h has the per-element rules):
Keras 3's defaults and update rules (keras/src/optimizers/*.py)."""
import numpy as np

from fastnn.optimizers.base import Optimizer


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


class _Moments(Optimizer):
    """Shared by Adam, Nadam and Adamax: beta_1, beta_2, epsilon (Keras defaults 0.9, 0.999, 1e-7) and a
    kernel that takes them with the 1-based step."""

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, name=None,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def _hyper(self, lr):
        return dict(learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon,
                    step=self.iterations + 1, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Adam(_Moments):
    """Keras Adam: ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t); p -= alpha * m / (sqrt(v) + epsilon)``.
    Defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7."""

    _kernel = "adam_update"
    _slots = ("m", "v", "v_hat")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, weight_decay=None,
                 name="adam", **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, name, **kwargs)
        self.amsgrad = bool(amsgrad)

    def _used_slots(self):
        return ("m", "v", "v_hat" if self.amsgrad else None)

    def _slot_groups(self):
        return ((0, 1), (2,))  # Keras: every variable's momentum and velocity, then the velocity_hats

    def get_config(self):
        return {**super().get_config(), "amsgrad": self.amsgrad}


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


class Nadam(_Moments):
    """Keras Nadam: Adam with Nesterov momentum, momentum schedule ``mu_t = beta_1 (1 - 0.5 * 0.96^t)``
    and its running product ``u_product`` (an optimizer variable, saved after the slots).
    Defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7."""

    _kernel = "nadam_update"
    _slots = ("momentum", "velocity")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, name="nadam",
                 **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, name, **kwargs)
        self._u_product, self._u_steps = np.float32(1.0), 0  # the product over the first _u_steps steps

    def _u_product_after(self, steps):
        """Keras's u_product after ``steps`` updates: ``u *= beta_1 (1 - 0.5 * 0.96^t)`` for t = 1..steps in
        float32. A function of the iteration count, so it is recomputed (once) when the iterations were
        restored by a loader that does not know this variable."""
        if steps < self._u_steps:
            self._u_product, self._u_steps = np.float32(1.0), 0
        while self._u_steps < steps:
            self._u_steps += 1
            self._u_product = (self._u_product * np.float32(self.beta_1)) * (
                np.float32(1.0) - np.float32(0.5) * np.power(np.float32(0.96), np.float32(self._u_steps)))
        return self._u_product

    def _hyper(self, lr):
        return dict(super()._hyper(lr), u_product=float(self._u_product_after(self.iterations + 1)))

    def _set_u_product(self, value):
        self._u_product, self._u_steps = np.float32(value), self.iterations

    def _extra_variables(self):
        return [(np.array(self._u_product_after(self.iterations), np.float32), self._set_u_product)] \
            if self._state else []

class Adamax(_Moments):
    """Keras Adamax: ``m += (g - m)(1 - beta_1); u = max(beta_2 u, |g|); p -= lr m / ((1 - beta_1^t)(u + eps))``.
    Defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7."""

    _kernel = "adamax_update"
    _slots = ("momentum", "norm")

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, weight_decay=None, name="adamax",
                 **kwargs):
        super().__init__(learning_rate, beta_1, beta_2, epsilon, weight_decay, name, **kwargs)


class Lion(Optimizer):
    """Keras Lion: ``p -= lr sign(beta_1 m + (1 - beta_1) g); m = beta_2 m + (1 - beta_2) g``.
    Defaults: learning_rate=0.001, beta_1=0.9, beta_2=0.99."""

    _kernel = "lion_update"
    _slots = ("momentum",)

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.99, weight_decay=None, name="lion", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        if beta_1 <= 0 or beta_1 > 1:
            raise ValueError("Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer degenerates "
                             f"to SignSGD. Received: beta_1={beta_1}.")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def _hyper(self, lr):
        return dict(learning_rate=lr, beta_1=self.beta_1, beta_2=self.beta_2, weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}


class Ftrl(Optimizer):
    """Keras Ftrl (follow the regularized leader, McMahan et al. 2013) with L1/L2 and L2-shrinkage
    regularization; accumulators start at ``initial_accumulator_value`` (0.1).
    Defaults: learning_rate=0.001, learning_rate_power=-0.5, the strengths 0.0, beta=0.0."""

    _kernel = "ftrl_update"
    _slots = ("accumulator", "linear")

    def __init__(self, learning_rate=0.001, learning_rate_power=-0.5, initial_accumulator_value=0.1,
                 l1_regularization_strength=0.0, l2_regularization_strength=0.0,
                 l2_shrinkage_regularization_strength=0.0, beta=0.0, weight_decay=None, name="ftrl", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, name=name, **kwargs)
        for arg, value, sign in (("initial_accumulator_value", initial_accumulator_value, 1),
                                 ("learning_rate_power", learning_rate_power, -1),
                                 ("l1_regularization_strength", l1_regularization_strength, 1),
                                 ("l2_regularization_strength", l2_regularization_strength, 1),
                                 ("l2_shrinkage_regularization_strength", l2_shrinkage_regularization_strength, 1)):
            if sign * value < 0:
                raise ValueError(f"`{arg}` needs to be {'positive' if sign > 0 else 'negative'} or zero. "
                                 f"Received: {arg}={value}.")
        self.learning_rate_power = float(learning_rate_power)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.l1_regularization_strength = float(l1_regularization_strength)
        self.l2_regularization_strength = float(l2_regularization_strength)
        self.l2_shrinkage_regularization_strength = float(l2_shrinkage_regularization_strength)
        self.beta = float(beta)

    def _initial_slot(self, name, var):
        slot = super()._initial_slot(name, var)
        return slot + np.float32(self.initial_accumulator_value) if name == "accumulator" else slot

    def _hyper(self, lr):
        return dict(learning_rate=lr, learning_rate_power=self.learning_rate_power,
                    l1=self.l1_regularization_strength, l2=self.l2_regularization_strength,
                    l2_shrinkage=self.l2_shrinkage_regularization_strength, beta=self.beta,
                    weight_decay=self._weight_decay())

    def get_config(self):
        return {**super().get_config(), "learning_rate_power": self.learning_rate_power,
                "initial_accumulator_value": self.initial_accumulator_value,
                "l1_regularization_strength": self.l1_regularization_strength,
                "l2_regularization_strength": self.l2_regularization_strength,
                "l2_shrinkage_regularization_strength": self.l2_shrinkage_regularization_strength, "beta": self.beta}
