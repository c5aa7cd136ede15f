"""Losses with Keras 3 semantics.

Functions (``categorical_crossentropy(y_true, y_pred)`` ...) return the per-sample losses as a
numpy array (reduced over the last axis); classes (``CategoricalCrossentropy(from_logits=False)``)
return the reduced scalar (default reduction ``"sum_over_batch_size"``: the mean of the per-sample
losses). Probabilities are renormalised and clipped to [1e-7, 1 - 1e-7] as Keras does.

In ``fit`` each loss gives its value and the gradient with respect to the model output from one
fused C++ kernel pair (``_value_and_grad``), and a softmax output layer with a cross-entropy loss
is fused into one softmax cross-entropy on the logits (``_logits_value_and_grad``): numerically
better (no clipping of probabilities) and one pass over the data.

>>> import fastnn
>>> round(fastnn.losses.SparseCategoricalCrossentropy()([1], [[0.1, 0.9]]).item(), 4)
0.1054
"""
import numpy as np

from fastnn._naming import _snake_case
from fastnn._ops import loss as _ops
from fastnn.tensor import Function, Tensor

EPSILON = 1e-7
_F32 = np.float32


def _f32(x):
    return np.asarray(x, dtype=_F32)


def _one_hot(labels, n):
    out = np.zeros((labels.size, n), _F32)
    out[np.arange(labels.size), labels.reshape(-1)] = 1.0
    return out


def _sparse_labels(y_true, y_pred, who):
    """Integer labels of shape y_pred.shape[:-1] (accepts a trailing axis of 1), range-checked."""
    y = np.asarray(y_true)
    if y.shape != y_pred.shape[:-1]:
        if y.shape == y_pred.shape[:-1] + (1,):
            y = y.reshape(y.shape[:-1])
        else:
            hint = " (one-hot labels need categorical_crossentropy)" if y.shape == y_pred.shape else ""
            raise ValueError(f"{who}: labels of shape {y.shape} do not match predictions of shape {y_pred.shape} "
                             f"(expected integer labels of shape {y_pred.shape[:-1]}){hint}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{who}: labels contain NaN or infinity")
        if (y != np.round(y)).any():
            raise ValueError(f"{who}: sparse labels must be integer class ids, got non-integer values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"{who}: sparse labels must be integers, got dtype {y.dtype}")
    n = y_pred.shape[-1]
    if y.size and (y.min() < 0 or y.max() >= n):
        bad = y.min() if y.min() < 0 else y.max()
        raise ValueError(f"{who}: label {int(bad)} is out of range for {n} classes (predictions of shape "
                         f"{y_pred.shape}): labels must be in [0, {n})")
    return y.astype(np.intp)


def _dense_targets(y_true, y_pred, who):
    """Float targets of y_pred's shape ((N,) is accepted for (N, 1) predictions), NaN-checked."""
    y = _f32(y_true)
    if y.shape != y_pred.shape:
        if y.size == y_pred.size and y.shape[:1] == y_pred.shape[:1]:
            y = y.reshape(y_pred.shape)
        else:
            hint = (" (integer class labels need sparse_categorical_crossentropy, or one-hot encode them with "
                    "fastnn.utils.to_categorical)" if y.shape == y_pred.shape[:-1] and "categorical" in who else "")
            raise ValueError(f"{who}: targets of shape {y.shape} do not match predictions of shape "
                             f"{y_pred.shape}{hint}")
    if np.isnan(y).any():
        raise ValueError(f"{who}: targets contain NaN")
    return y


# ---- the loss Functions of the op set: per-sample values and training's value and gradient -----------

def _xent(from_logits, needs):
    return (_ops.SoftmaxCrossEntropy if from_logits else _ops.CategoricalCrossentropy)(needs)


def _xent_rows(p, y, from_logits):
    """Per-sample cross-entropies over the last axis; y: class ids of shape p.shape[:-1] or a distribution."""
    fn = _xent(from_logits, (False, False))
    fn.forward(p, y)
    return fn.rows.reshape(p.shape[:-1])


def _bce_per_sample(y, p, from_logits):
    if from_logits:
        per = np.maximum(p, 0.0) - p * y + np.log1p(np.exp(-np.abs(p)))
    else:
        pc = np.clip(p, EPSILON, 1.0 - EPSILON)
        per = -(y * np.log(pc) + (1.0 - y) * np.log(1.0 - pc))
    return per.mean(axis=-1)


def _smooth(y, label_smoothing, n):
    return y * _F32(1.0 - label_smoothing) + _F32(label_smoothing / n) if label_smoothing else y


def _smooth_binary(y, label_smoothing):
    return y * _F32(1.0 - label_smoothing) + _F32(0.5 * label_smoothing) if label_smoothing else y


# ---- public per-sample functions ------------------------------------------------------------------
# On a prediction Tensor that records gradients (a GradientTape, a train_step) each function computes with
# fastnn.ops and returns a per-sample Tensor, differentiable as Keras's are (``_tensor_form``); otherwise the
# numpy float32 per-sample values.

def _records(y_pred):
    return isinstance(y_pred, Tensor) and y_pred.requires_grad


def _tensor_form(formula, name):
    """Decorator: the numpy function, or ``formula(y_true as Tensor, y_pred, **options)`` on a recording
    Tensor ``y_pred`` (targets validated as the numpy path does)."""
    def decorate(np_fn):
        def function(y_true, y_pred, *args, **kwargs):
            if _records(y_pred):
                y = y_true if name == "sparse_categorical_crossentropy" else \
                    _dense_targets(y_true.numpy() if isinstance(y_true, Tensor) else y_true, y_pred.data, name)
                return formula(y, y_pred, *args, **kwargs)
            return np_fn(y_true, y_pred, *args, **kwargs)
        function.__name__ = function.__qualname__ = np_fn.__name__
        function.__doc__ = np_fn.__doc__
        return function
    return decorate


def _t_xent(y, p, from_logits=False, label_smoothing=0.0, axis=-1):
    """Keras 3's categorical cross-entropy on Tensors (probabilities renormalised and clipped)."""
    o = _fops()
    y = _smooth(np.asarray(y, _F32), label_smoothing, p.shape[-1])
    if from_logits:
        return o.negative(o.sum(o.multiply(y, o.log_softmax(p, axis=axis)), axis=axis))
    p = o.divide(p, o.sum(p, axis=axis, keepdims=True))
    return o.negative(o.sum(o.multiply(y, o.log(o.clip(p, EPSILON, 1.0 - EPSILON))), axis=axis))


def _t_sparse_xent(y, p, from_logits=False, axis=-1):
    y = _sparse_labels(y.numpy() if isinstance(y, Tensor) else y, p.data, "sparse_categorical_crossentropy")
    return _t_xent(_one_hot(y, p.shape[-1]), p, from_logits)


def _t_bce(y, p, from_logits=False, label_smoothing=0.0, axis=-1):
    """Keras 3's binary cross-entropy on Tensors, averaged over the last axis."""
    o = _fops()
    y = _smooth_binary(np.asarray(y, _F32), label_smoothing)
    if from_logits:  # max(p, 0) - p y + log(1 + exp(-|p|))
        per = o.add(o.subtract(o.relu(p), o.multiply(p, y)), o.log(o.add(1.0, o.exp(o.negative(o.abs(p))))))
    else:
        pc = o.clip(p, EPSILON, 1.0 - EPSILON)
        per = o.negative(o.add(o.multiply(y, o.log(pc)), o.multiply(1.0 - y, o.log(o.subtract(1.0, pc)))))
    return o.mean(per, axis=-1)


def _t_mse(y, p):
    o = _fops()
    return o.mean(o.square(o.subtract(p, y)), axis=-1)


def _t_mae(y, p):
    o = _fops()
    return o.mean(o.abs(o.subtract(p, y)), axis=-1)


@_tensor_form(_t_xent, "categorical_crossentropy")

def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``-sum(y_true * log(y_pred))`` over the last axis; one-hot ``y_true``."""
    p = _f32(y_pred)
    y = _smooth(_dense_targets(y_true, p, "categorical_crossentropy"), label_smoothing, p.shape[-1])
    return _xent_rows(p, y, from_logits)


@_tensor_form(_t_sparse_xent, "sparse_categorical_crossentropy")
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, axis=-1):
    """Per-sample cross-entropy with integer class ids ``y_true`` of shape (N,) or (N, 1)."""
    p = _f32(y_pred)
    return _xent_rows(p, _sparse_labels(y_true, p, "sparse_categorical_crossentropy"), from_logits)


@_tensor_form(_t_bce, "binary_crossentropy")
def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample mean over the last axis of ``-(y log p + (1 - y) log(1 - p))``."""
    p = _f32(y_pred)
    return _bce_per_sample(_smooth_binary(_dense_targets(y_true, p, "binary_crossentropy"), label_smoothing), p,
                           from_logits)


@_tensor_form(_t_mse, "mean_squared_error")
def mean_squared_error(y_true, y_pred):
    """Per-sample mean over the last axis of ``(y_true - y_pred)**2``."""
    p = _f32(y_pred)
    return np.square(p - _dense_targets(y_true, p, "mean_squared_error")).mean(axis=-1)


@_tensor_form(_t_mae, "mean_absolute_error")
def mean_absolute_error(y_true, y_pred):
    """Per-sample mean over the last axis of ``|y_true - y_pred|``."""
    p = _f32(y_pred)
    return np.abs(p - _dense_targets(y_true, p, "mean_absolute_error")).mean(axis=-1)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error


# ---- the long tail: losses written once with fastnn.ops on Tensors ---------------------------------
# Each formula takes the targets and predictions as Tensors and returns per-sample Tensor losses, exactly
# as Keras 3 writes it (same clipping and epsilons). The same formula gives the numpy function form
# (run on constant Tensors) and training's gradient through the autograd (_OpsLoss); a fused C++ kernel
# can replace the autograd path later without changing the values.

def _fops():
    # imported when first used: fastnn.ops imports modules that import this one
    from fastnn import ops
    return ops


def _huber(y, p, delta=1.0):
    """Per-sample mean of ``0.5 e**2`` where ``|e| <= delta``, else ``delta |e| - 0.5 delta**2``."""
    o = _fops()
    err = p - y
    a = o.abs(err)
    return o.where(a.data <= delta, 0.5 * o.square(err), delta * a - 0.5 * delta * delta).mean(axis=-1)


def _kl_divergence(y, p):
    """Per-sample ``sum(y log(y / p))``, both clipped to [1e-7, 1]."""
    o = _fops()
    y, p = o.clip(y, EPSILON, 1.0), o.clip(p, EPSILON, 1.0)
    return (y * o.log(y / p)).sum(axis=-1)


def _hinge_targets(y):
    """Keras converts {0, 1} labels to {-1, 1} when every target of the batch is 0 or 1."""
    d = y.data
    return Tensor(2.0 * d - 1.0) if np.all((d == 0) | (d == 1)) else y


def _hinge(y, p):
    """Per-sample mean of ``max(1 - y p, 0)``; {0, 1} targets become {-1, 1}."""
    return _fops().maximum(1.0 - _hinge_targets(y) * p, 0.0).mean(axis=-1)


def _squared_hinge(y, p):
    """Per-sample mean of ``max(1 - y p, 0)**2``; {0, 1} targets become {-1, 1}."""
    o = _fops()
    return o.square(o.maximum(1.0 - _hinge_targets(y) * p, 0.0)).mean(axis=-1)


def _categorical_hinge(y, p):
    """Per-sample ``max(max((1 - y) p) - sum(y p) + 1, 0)`` (one-hot targets)."""
    o = _fops()
    pos = (y * p).sum(axis=-1)
    neg = o.max((1.0 - y) * p, axis=-1)
    return o.maximum(neg - pos + 1.0, 0.0)


def _log_cosh(y, p):
    """Per-sample mean of ``log(cosh(y_pred - y_true))``."""
    # log(cosh(x)) = |x| + log(1 + exp(-2|x|)) - log(2): Keras's x + softplus(-2x) - log(2), without
    # overflow of exp for large |x|
    o = _fops()
    a = o.abs(p - y)
    return (a + o.log(1.0 + o.exp(-2.0 * a)) - float(np.log(2.0))).mean(axis=-1)


def _poisson(y, p):
    """Per-sample mean of ``y_pred - y_true log(y_pred + 1e-7)``."""
    return (p - y * _fops().log(p + EPSILON)).mean(axis=-1)


def _l2_normalize(x, axis):
    # Keras's normalize: x / sqrt(max(sum(x**2), 1e-12))
    o = _fops()
    return x / o.sqrt(o.maximum(o.square(x).sum(axis=axis, keepdims=True), 1e-12))


def _cosine_similarity(y, p, axis=-1):
    """Per-sample negative cosine similarity of the L2-normalised targets and predictions."""
    return -(_l2_normalize(y, axis) * _l2_normalize(p, axis)).sum(axis=axis)


def _mean_squared_logarithmic_error(y, p):
    """Per-sample mean of ``(log(max(p, 1e-7) + 1) - log(max(y, 1e-7) + 1))**2``."""
    o = _fops()
    first = o.log(o.maximum(p, EPSILON) + 1.0)
    second = o.log(o.maximum(y, EPSILON) + 1.0)
    return o.square(first - second).mean(axis=-1)


def _mean_absolute_percentage_error(y, p):
    """Per-sample mean of ``100 |y - p| / max(|y|, 1e-7)``."""
    o = _fops()
    return 100.0 * o.abs((y - p) / o.maximum(o.abs(y), EPSILON)).mean(axis=-1)


def _categorical_focal_crossentropy(y, p, alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1):
    """Per-sample ``sum(alpha (1 - q)**gamma * -y log q)``, q the renormalised probabilities clipped to
    [1e-7, 1 - 1e-7] (softmax of the logits with ``from_logits``); ``label_smoothing`` as in
    categorical_crossentropy."""
    o = _fops()
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + label_smoothing / y.data.shape[-1]
    if from_logits:
        p = o.softmax(p, axis=axis)
    q = o.clip(p / o.sum(p, axis=axis, keepdims=True), EPSILON, 1.0 - EPSILON)
    return o.sum((1.0 - q) ** float(gamma) * alpha * (-y * o.log(q)), axis=axis)


def _binary_focal_crossentropy(y, p, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                               label_smoothing=0.0, axis=-1):
    """Per-sample mean of ``(1 - p_t)**gamma * bce`` with ``p_t = y p + (1 - y)(1 - p)`` (sigmoid of the
    logits with ``from_logits``), weighted by ``alpha`` / ``1 - alpha`` for positives / negatives when
    ``apply_class_balancing``; ``label_smoothing`` pulls the targets toward 0.5."""
    o = _fops()
    if label_smoothing:
        y = y * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        p = o.sigmoid(p)
    pc = o.clip(p, EPSILON, 1.0 - EPSILON)
    bce = -(y * o.log(pc) + (1.0 - y) * o.log(1.0 - pc))
    p_t = y * p + (1.0 - y) * (1.0 - p)
    focal = (1.0 - p_t) ** float(gamma) * bce
    if apply_class_balancing:
        focal = (y * alpha + (1.0 - y) * (1.0 - alpha)) * focal
    return o.mean(focal, axis=axis)


def _function_form(formula):
    """Keras's function form of a formula, ``name(y_true, y_pred, **options)``: per-sample losses as a
    float32 numpy array (the formula runs on constant Tensors), or as a Tensor on a recording ``y_pred``."""
    name = formula.__name__.lstrip("_")

    def function(y_true, y_pred, *args, **kwargs):
        if _records(y_pred):  # differentiable on a recording prediction Tensor (a tape, a train_step)
            y = _dense_targets(y_true.numpy() if isinstance(y_true, Tensor) else y_true, y_pred.data, name)
            return formula(Tensor(y), y_pred, *args, **kwargs)
        p = _f32(y_pred)
        y = _dense_targets(y_true, p, name)
        return np.asarray(formula(Tensor(y), Tensor(p), *args, **kwargs).data, dtype=_F32)
    function.__name__ = function.__qualname__ = name
    function.__doc__ = formula.__doc__
    return function


huber = _function_form(_huber)
kl_divergence = _function_form(_kl_divergence)
hinge = _function_form(_hinge)
squared_hinge = _function_form(_squared_hinge)
categorical_hinge = _function_form(_categorical_hinge)
log_cosh = _function_form(_log_cosh)
poisson = _function_form(_poisson)
cosine_similarity = _function_form(_cosine_similarity)
mean_squared_logarithmic_error = _function_form(_mean_squared_logarithmic_error)
mean_absolute_percentage_error = _function_form(_mean_absolute_percentage_error)
categorical_focal_crossentropy = _function_form(_categorical_focal_crossentropy)
binary_focal_crossentropy = _function_form(_binary_focal_crossentropy)

kld = KLD = kl_divergence
msle = MSLE = mean_squared_logarithmic_error
mape = MAPE = mean_absolute_percentage_error

# ---- classes ----------------------------------------------------------------------------------------
class _ScaleRowGrad(Function):
    """Identity whose gradient is multiplied by ``scale`` (per-sample weights, broadcast over each row):
    how a weighted loss of a Tensor gets each sample's gradient scaled by its weight."""

    def forward(self, x, scale):
        self.scale = scale
        return x

    def backward(self, grad):
        return (grad * self.scale,)


_REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "none", None)


class Loss:
    """Base loss: ``loss(y_true, y_pred, sample_weight=None)`` -> reduced float32 scalar."""

    _softmax_fusable = False  # a softmax output layer can be fused into this loss (cross-entropies)
    from_logits = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: invalid reduction {reduction!r}; expected one of {_REDUCTIONS}")
        self.name = name or _snake_case(type(self).__name__)
        self.reduction = reduction

    def __init_subclass__(cls, **kwargs):
        """A user's subclass that defines Keras's ``call(y_true, y_pred) -> per-sample losses`` (written with
        fastnn.ops on Tensors) gets its values and training gradient through the autograd, as a wrapped
        function does."""
        super().__init_subclass__(**kwargs)
        if "call" in cls.__dict__:
            for name in ("_per_sample", "_tensor_value", "_value_and_grad"):
                setattr(cls, name, getattr(LossFunctionWrapper, name))
            cls.fn = property(lambda self: self.call)

    def call(self, y_true, y_pred):
        """Per-sample losses of Tensors (Keras's method for subclasses to define)."""
        raise NotImplementedError(f"{type(self).__name__} must define call(y_true, y_pred)")

    def _per_sample(self, y, p):
        """Per-sample losses (shape p.shape[:-1]) for prepared targets ``y``."""
        raise NotImplementedError(f"{type(self).__name__} must define call(y_true, y_pred)")

    def _function(self, logits):
        """The op-set Function class of this loss and its keyword constants (``logits``: ``p`` holds the
        logits of a softmax output layer fused into this loss)."""
        raise NotImplementedError

    def _prepare_targets(self, y_true, y_pred):
        """Validated targets for predictions ``y_pred`` (an array or a shape-only array)."""
        return _dense_targets(y_true, y_pred, self.name)

    def _reduce(self, per, sample_weight=None):
        if sample_weight is not None:
            w = _f32(sample_weight)
            per = per * w.reshape(w.shape + (1,) * (per.ndim - w.ndim))
        if self.reduction in ("none", None):
            return per
        total = per.sum(dtype=np.float64)
        return _F32(total if self.reduction == "sum" else total / max(per.size, 1))

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss as a Tensor (``.numpy()``, ``float()``), as Keras returns a backend tensor; on a
        prediction Tensor that records gradients (GradientTape, ``train_step``) it is differentiable."""
        if isinstance(y_pred, Tensor) and y_pred.requires_grad \
                and self.reduction in ("sum_over_batch_size", "sum", "mean"):
            if sample_weight is None:
                return self._tensor_value(y_true, y_pred)
            weighted = self._weighted_tensor_value(y_true, y_pred, sample_weight)
            if weighted is not None:
                return weighted
        p = _f32(y_pred)
        return Tensor(self._reduce(self._per_sample(self._prepare_targets(y_true, p), p), sample_weight))

    def _weighted_tensor_value(self, y_true, y_pred, sample_weight):
        """The loss with one weight per sample (``sample_weight`` of N values) of a recording prediction
        Tensor: Keras's ``sum(w * l) / size`` as the value, and each sample's gradient scaled by its weight
        (the unweighted recorded loss of the prediction with its row gradients scaled, plus the constant
        difference of the values). None for other weight shapes (then not differentiable)."""
        p = y_pred.data
        w = np.asarray(sample_weight.numpy() if hasattr(sample_weight, "numpy") else sample_weight, _F32)
        if w.size != len(p):
            return None
        w = w.reshape((len(p),) + (1,) * (p.ndim - 1))
        per = self._per_sample(self._prepare_targets(np.asarray(y_true), p), p)
        shift = float(self._reduce(per, w.reshape(-1))) - float(self._reduce(per))
        return self._tensor_value(y_true, _ScaleRowGrad.apply(y_pred, scale=w)) + _F32(shift)

    def _tensor_value(self, y_true, y_pred):
        """The reduced loss of a prediction Tensor through the op set's loss Function (recorded)."""
        cls, constants = self._function(False)
        out = cls.apply(y_pred, self._prepare_targets(np.asarray(y_true), y_pred.data), **constants)
        if self.reduction == "sum":
            out = out * float(y_pred.data.size // y_pred.data.shape[-1])
        return out

    def _value_and_grad(self, p, y, logits=False):
        """Reduced loss (float) and its gradient w.r.t. the model output ``p``, for prepared targets ``y``:
        the training step's one loss call (forward and backward of the loss's Function)."""
        cls, constants = self._function(logits)
        fn = cls((True, False))
        fn.forward(p, y, **constants)
        if self.reduction == "sum":
            n = p.size // p.shape[-1]
            return fn.value * n, fn.backward(float(n))[0]
        return fn.value, fn.backward(1.0)[0]

    def _value(self, p, y, w=None, logits=False):
        """The reduced loss only (evaluation), optionally with per-sample weights ``w`` (N,): Keras's
        ``sum(w * l) / size`` ("sum_over_batch_size" still divides by the element count)."""
        per = _xent_rows(p, y, True) if logits else self._per_sample(y, p)
        if w is not None:
            per = per * np.asarray(w, dtype=_F32).reshape((len(w),) + (1,) * (per.ndim - 1))
        total = float(per.sum(dtype=np.float64))
        return total if self.reduction == "sum" else total / max(per.size, 1)

    def _weighted_value_and_grad(self, p, y, w, logits=False):
        """Loss with per-sample weights ``w`` (see ``_value``) and its gradient (each row's gradient scaled
        by its weight)."""
        _, grad = self._value_and_grad(p, y, logits)
        w = np.asarray(w, dtype=_F32)
        return self._value(p, y, w, logits), grad * w.reshape((len(w),) + (1,) * (grad.ndim - 1))

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _Crossentropy(Loss):
    """Categorical cross-entropies: probabilities (renormalised, clipped) or logits, fusable with softmax."""

    _softmax_fusable = True

    def _per_sample(self, y, p):
        return _xent_rows(p, y, self.from_logits)

    def _function(self, logits):
        return (_ops.SoftmaxCrossEntropy if logits or self.from_logits else _ops.CategoricalCrossentropy), {}


class CategoricalCrossentropy(_Crossentropy):
    """Cross-entropy with one-hot targets; ``from_logits=False`` expects probabilities."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _prepare_targets(self, y_true, y_pred):
        return _smooth(_dense_targets(y_true, y_pred, self.name), self.label_smoothing, y_pred.shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis)
        return config


class SparseCategoricalCrossentropy(_Crossentropy):
    """Cross-entropy with integer class-id targets of shape (N,) or (N, 1)."""

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name="sparse_categorical_crossentropy", dtype=None):
        super().__init__(name, reduction)
        if ignore_class is not None:
            raise ValueError("SparseCategoricalCrossentropy: ignore_class is not supported yet")
        self.from_logits = bool(from_logits)

    def _prepare_targets(self, y_true, y_pred):
        return _sparse_labels(y_true, y_pred, self.name)

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, ignore_class=None)
        return config


class BinaryCrossentropy(Loss):
    """Binary cross-entropy averaged over the last axis; ``from_logits=False`` expects probabilities."""

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size",
                 name="binary_crossentropy", dtype=None):
        super().__init__(name, reduction)
        self.from_logits, self.label_smoothing, self.axis = bool(from_logits), float(label_smoothing), axis

    def _prepare_targets(self, y_true, y_pred):
        return _smooth_binary(_dense_targets(y_true, y_pred, self.name), self.label_smoothing)

    def _per_sample(self, y, p):
        return _bce_per_sample(y, p, self.from_logits)

    def _function(self, logits):
        return _ops.BinaryCrossentropy, {"from_logits": self.from_logits}

    def get_config(self):
        config = super().get_config()
        config.update(from_logits=self.from_logits, label_smoothing=self.label_smoothing, axis=self.axis)
        return config


class MeanSquaredError(Loss):
    """Mean of ``(y_true - y_pred)**2``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_squared_error", dtype=None):
        super().__init__(name, reduction)

    def _per_sample(self, y, p):
        return np.square(p - y).mean(axis=-1)

    def _function(self, logits):
        return _ops.MeanSquaredError, {}


class MeanAbsoluteError(Loss):
    """Mean of ``|y_true - y_pred|``."""

    def __init__(self, reduction="sum_over_batch_size", name="mean_absolute_error", dtype=None):
        super().__init__(name, reduction)

    def _per_sample(self, y, p):
        return np.abs(p - y).mean(axis=-1)

    def _function(self, logits):
        return _ops.MeanAbsoluteError, {}


class LossFunctionWrapper(Loss):
    """Wraps a user function ``fn(y_true, y_pred) -> per-sample losses`` written with Tensor ops."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction)
        self.fn = fn

    def _per_sample(self, y, p):
        return np.asarray(self.fn(Tensor(y), Tensor(p)).data, dtype=_F32)

    def _tensor_value(self, y_true, y_pred):
        per = self.fn(Tensor(_dense_targets(y_true, y_pred.data, self.name)), y_pred)
        mean = per.mean() if per.data.ndim else per
        return mean * float(y_pred.data.size // y_pred.data.shape[-1]) if self.reduction == "sum" else mean

    def _value_and_grad(self, p, y, logits=False):
        t = Tensor(p, requires_grad=True)
        per = self.fn(Tensor(y), t)
        mean = per.mean() if per.data.ndim else per
        n = p.size // p.shape[-1] if self.reduction == "sum" else 1
        mean.backward(np.float32(n))
        return float(mean.data) * n, t.grad.data


class _OpsLoss(LossFunctionWrapper):
    """A loss class over one of the formulas above: its constructor arguments (``delta``, ``axis``) are the
    formula's keyword arguments; values and gradient come from the formula through the autograd."""

    _formula = None

    def __init__(self, reduction="sum_over_batch_size", name=None, **kwargs):
        self._kwargs = kwargs
        formula = type(self)._formula
        super().__init__(lambda y, p: formula(y, p, **kwargs), reduction, name)

    def get_config(self):
        return {**Loss.get_config(self), **self._kwargs}


def _ops_loss(class_name, formula, default_name, doc, **defaults):
    """A Keras loss class with Keras's constructor ``(<defaults>, reduction=..., name=default_name)``."""
    def __init__(self, reduction="sum_over_batch_size", name=default_name, dtype=None, **kwargs):
        unknown = set(kwargs) - set(defaults)
        if unknown:
            raise TypeError(f"{class_name}: unexpected arguments {sorted(unknown)}")
        _OpsLoss.__init__(self, reduction, name, **{**defaults, **kwargs})
    return type(class_name, (_OpsLoss,), {"__init__": __init__, "_formula": staticmethod(formula), "__doc__": doc,
                                          "__module__": __name__})


Huber = _ops_loss("Huber", _huber, "huber_loss", huber.__doc__, delta=1.0)
KLDivergence = _ops_loss("KLDivergence", _kl_divergence, "kl_divergence", kl_divergence.__doc__)
Hinge = _ops_loss("Hinge", _hinge, "hinge", hinge.__doc__)
SquaredHinge = _ops_loss("SquaredHinge", _squared_hinge, "squared_hinge", squared_hinge.__doc__)
CategoricalHinge = _ops_loss("CategoricalHinge", _categorical_hinge, "categorical_hinge", categorical_hinge.__doc__)
LogCosh = _ops_loss("LogCosh", _log_cosh, "log_cosh", log_cosh.__doc__)
Poisson = _ops_loss("Poisson", _poisson, "poisson", poisson.__doc__)
CosineSimilarity = _ops_loss("CosineSimilarity", _cosine_similarity, "cosine_similarity", cosine_similarity.__doc__,
                             axis=-1)
MeanSquaredLogarithmicError = _ops_loss("MeanSquaredLogarithmicError", _mean_squared_logarithmic_error,
                                        "mean_squared_logarithmic_error", mean_squared_logarithmic_error.__doc__)
MeanAbsolutePercentageError = _ops_loss("MeanAbsolutePercentageError", _mean_absolute_percentage_error,
                                        "mean_absolute_percentage_error", mean_absolute_percentage_error.__doc__)
CategoricalFocalCrossentropy = _ops_loss("CategoricalFocalCrossentropy", _categorical_focal_crossentropy,
                                         "categorical_focal_crossentropy", categorical_focal_crossentropy.__doc__,
                                         alpha=0.25, gamma=2.0, from_logits=False, label_smoothing=0.0, axis=-1)
BinaryFocalCrossentropy = _ops_loss("BinaryFocalCrossentropy", _binary_focal_crossentropy,
                                    "binary_focal_crossentropy", binary_focal_crossentropy.__doc__,
                                    apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                                    label_smoothing=0.0, axis=-1)


_BY_NAME = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy, "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "MSE": MeanSquaredError, "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "MAE": MeanAbsoluteError,
}
_TAIL = {huber: Huber, kl_divergence: KLDivergence, hinge: Hinge, squared_hinge: SquaredHinge,
         categorical_hinge: CategoricalHinge, log_cosh: LogCosh, poisson: Poisson, cosine_similarity: CosineSimilarity,
         mean_squared_logarithmic_error: MeanSquaredLogarithmicError,
         mean_absolute_percentage_error: MeanAbsolutePercentageError,
         categorical_focal_crossentropy: CategoricalFocalCrossentropy, binary_focal_crossentropy: BinaryFocalCrossentropy}
_BY_NAME.update({fn.__name__: cls for fn, cls in _TAIL.items()})
_BY_NAME.update(kld=KLDivergence, msle=MeanSquaredLogarithmicError, mape=MeanAbsolutePercentageError)  # Keras's aliases
_BY_FUNCTION = {categorical_crossentropy: CategoricalCrossentropy,
                sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
                binary_crossentropy: BinaryCrossentropy, mean_squared_error: MeanSquaredError,
                mean_absolute_error: MeanAbsoluteError}
_BY_FUNCTION.update(_TAIL)
_CLASSES = {cls.__name__: cls for cls in _BY_FUNCTION.values()}


def get(identifier):
    """Resolve a loss name ("mse", "sparse_categorical_crossentropy"), function or Loss to a Loss object."""
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier) or _CLASSES.get(identifier)
        if cls is None:
            raise ValueError(f"Unknown loss function: {identifier!r}. Known: {sorted(_BY_NAME)}")
        return cls()
    if identifier in _BY_FUNCTION:
        return _BY_FUNCTION[identifier]()
    if callable(identifier):
        return LossFunctionWrapper(identifier)
    raise ValueError(f"Could not interpret loss identifier: {identifier!r}")
