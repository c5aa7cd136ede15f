"""The one test table of the activation ops: a row per entry of ``_C.unary_ops`` plus softmax and
log_softmax. The kernel x ISA, reference, gradcheck, torch and layer tests are parametrised over it,
so a new kernel needs one row here (test_activation.py fails while the names differ from _C's).

Row fields:
  name      kernel / op-set name
  f         independent float64 numpy forward; ops with an alpha take it as the second argument
  df        derivative in terms of what backward receives (y for ops that save their output, else
            x), float64; None where the tests use finite differences instead
  twin      torch function of (tensor[, alpha]) computing the same thing, or None
  alpha     the default alpha (as _C.unary_ops gives it), None for ops without one
  saves     backward takes the output y (True) or the input x (False), as _C.unary_ops must say
  positive  the domain is x > 0 (log); else every real
  kinks     where the derivative jumps: gradient checks keep away, the near-kink tests aim at them
  ref_rtol  reference kernel vs f, relative (forward, and backward vs df)
  isa_rtol  every ISA table vs the reference, forward, relative
  bwd_rtol  every ISA table vs the reference, backward
  bwd_rel   bwd_rtol is relative to the reference gradient (True), or to |dy| * (|saved| + 1)
            (False: derivatives with a root, gelu and silu, cancel there; the others keep the scale
            the tests used for them before the table)
  keras     the name in fastnn.activations / Dense(activation=...), None if not an activation
"""
import functools
import math
from typing import Callable, NamedTuple, Optional

import numpy as np

SELU_A, SELU_S = 1.6732632423543772, 1.0507009873554805
erfc = np.vectorize(math.erfc)


class Row(NamedTuple):
    name: str
    f: Callable
    df: Optional[Callable] = None
    twin: Optional[Callable] = None
    alpha: Optional[float] = None
    saves: bool = False
    positive: bool = False
    kinks: tuple = ()
    ref_rtol: float = 3e-7
    isa_rtol: float = 3e-7
    bwd_rtol: float = 2e-6
    bwd_rel: bool = False
    keras: Optional[str] = None


def _torch(name, **kw):
    """torch.nn.functional.<name>(t, *alpha, **kw); torch is imported only when a twin runs."""
    def twin(t, *alpha):
        import torch.nn.functional as TF
        return getattr(TF, name)(t, *alpha, **kw)
    return twin


def _tensor_method(name):
    return lambda t: getattr(t, name)()


def gelu(x):
    return x * 0.5 * erfc(-x / math.sqrt(2))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def softmax(x, axis=-1, log=False):
    x = np.asarray(x, np.float64)
    z = x - x.max(axis=axis, keepdims=True)
    ls = np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return z - ls if log else np.exp(z - ls)


def _row(name, f, **kw):
    return Row(name, f, keras=kw.pop("keras", name), **kw)


ROWS = [
    _row("relu", lambda x: np.maximum(x, 0), df=lambda y: (y > 0) * 1.0, twin=_torch("relu"), saves=True,
         kinks=(0.0,)),
    # the slope at 0 is alpha (as torch has it) for leaky_relu and elu
    _row("leaky_relu", lambda x, a: np.where(x < 0, a * x, x), df=lambda x, a: np.where(x > 0, 1.0, a),
         twin=_torch("leaky_relu"), alpha=0.2, kinks=(0.0,)),
    _row("elu", lambda x, a: np.where(x > 0, x, a * np.expm1(x)), df=lambda x, a: np.where(x > 0, 1.0, a * np.exp(x)),
         twin=_torch("elu"), alpha=1.0, kinks=(0.0,), isa_rtol=4e-7),
    _row("selu", lambda x: SELU_S * np.where(x > 0, x, SELU_A * np.expm1(x)),
         df=lambda x: SELU_S * np.where(x > 0, 1.0, SELU_A * np.exp(x)), twin=_torch("selu"), kinks=(0.0,),
         isa_rtol=4e-7),
    # gelu: 0.5 + 0.5*erf(z) near z = -1 loses a few bits in the ISA tables (still ~1e-6)
    _row("gelu", gelu, df=lambda x: 0.5 * erfc(-x / math.sqrt(2)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi),
         twin=_torch("gelu"), isa_rtol=2e-6),
    _row("silu", lambda x: x * sigmoid(x), df=lambda x: sigmoid(x) * (1 + x * (1 - sigmoid(x))),
         twin=_torch("silu")),
    # torch switches softplus to x above its threshold (20); a huge one makes it the exact formula
    _row("softplus", lambda x: np.logaddexp(x, 0), df=sigmoid, twin=_torch("softplus", threshold=1e9)),
    _row("sigmoid", sigmoid, df=lambda y: y * (1 - y), twin=_tensor_method("sigmoid"), saves=True),
    _row("tanh", np.tanh, df=lambda y: 1 - y * y, twin=_tensor_method("tanh"), saves=True,
         isa_rtol=4e-7),  # 3.6e-7 measured against the reference built at -O1 (sanitizer stage)
    _row("exp", np.exp, df=lambda y: y, twin=_tensor_method("exp"), saves=True, bwd_rel=True, keras="exponential"),
    _row("log", np.log, df=lambda x: 1 / x, twin=_tensor_method("log"), positive=True, bwd_rel=True, keras=None),
    # the three below came with the table, at 1.2e-7 (reference) and 6e-7 relative (ISA backward)
    _row("softsign", lambda x: x / (1 + np.abs(x)), df=lambda x: 1 / (1 + np.abs(x)) ** 2, twin=_torch("softsign"),
         kinks=(0.0,), ref_rtol=1.2e-7, bwd_rtol=6e-7, bwd_rel=True),
    # Keras 3: relu6(x + 3) / 6, which is also torch's hardsigmoid
    _row("hard_sigmoid", lambda x: np.clip(x / 6 + 0.5, 0, 1), df=lambda x: np.where((x > -3) & (x < 3), 1 / 6, 0.0),
         twin=_torch("hardsigmoid"), kinks=(-3.0, 3.0), ref_rtol=1.2e-7, bwd_rtol=6e-7, bwd_rel=True),
    _row("relu6", lambda x: np.clip(x, 0, 6), df=lambda x: np.where((x > 0) & (x < 6), 1.0, 0.0),
         twin=_torch("relu6"), kinks=(0.0, 6.0), ref_rtol=1.2e-7, bwd_rtol=6e-7, bwd_rel=True),
    # not unary kernels: along the last axis here (the default of fastnn, Keras and Dense)
    _row("softmax", softmax, twin=lambda t: t.softmax(-1)),
    _row("log_softmax", lambda x: softmax(x, log=True), twin=lambda t: t.log_softmax(-1)),
]
BY_NAME = {r.name: r for r in ROWS}
UNARY = [r for r in ROWS if r.name not in ("softmax", "log_softmax")]
KERAS = [r for r in ROWS if r.keras]


def forward(row, x, alpha=None):
    """row.f in float64 at x (alpha: the row's default unless given); overflow gives inf as in float32."""
    x = np.asarray(x, np.float64)
    args = () if row.alpha is None else (row.alpha if alpha is None else alpha,)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return row.f(x, *args)


def derivative(row, saved, alpha=None):
    """row.df in float64 at the value backward receives."""
    saved = np.asarray(saved, np.float64)
    args = () if row.alpha is None else (row.alpha if alpha is None else alpha,)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return row.df(saved, *args)


def away_from_kinks(row, x, margin=0.05):
    """x with every value within margin of a kink moved to 0.3 beyond it (finite differences and
    torch/fastnn gradients disagree only on a kink's wrong side)."""
    x = x.copy()
    for k in row.kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] < k, -0.3, 0.3)
    return x


def sample(row, shape, seed, spread=3.0):
    """float32 values for gradient checks: uniform in (-spread, spread), or (0.5, spread) for a
    positive domain, away from the kinks."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, spread, shape) if row.positive else rng.uniform(-spread, spread, shape)
    return away_from_kinks(row, x).astype(np.float32)


@functools.lru_cache(maxsize=16)
def near_kinks(row, n, seed):
    """n float32 values: random (|x| for a positive domain), and values a few ulp or 1e-4 off each
    kink (never on one). Cached (every ISA gets the same input) and so read-only."""
    rng = np.random.default_rng(seed)
    near = []
    for k in row.kinks:
        near += [np.nextafter(np.float32(k), np.float32(-np.inf)), np.nextafter(np.float32(k), np.float32(np.inf)),
                 k - 1e-4, k + 1e-4, k - 3e-7, k + 3e-7]
    x = np.concatenate([np.asarray(near, np.float32), (rng.standard_normal(n) * 4).astype(np.float32)])
    x = rng.permutation(x)[:n]
    assert not np.isin(x, row.kinks).any()
    x = np.abs(x) if row.positive else x
    x.flags.writeable = False
    return x
