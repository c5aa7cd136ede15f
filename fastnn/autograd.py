"""Gradient checking: analytic gradients (backward) against central finite differences."""
import numpy as np

from fastnn.tensor import Tensor, _run_backward, no_grad

_U32 = 2.0 ** -24  # float32 unit roundoff


class GradcheckError(AssertionError):
    """Raised by gradcheck when an analytic gradient disagrees with finite differences."""


def gradcheck(fn, inputs, eps=1e-3, atol=1e-5, rtol=1e-3, *, seed=0, noise_factor=4.0,
              raise_exception=True):
    """Check the gradients of ``fn(*inputs)`` against central finite differences.

    Every Tensor in ``inputs`` with ``requires_grad=True`` is checked element by element; other
    inputs (arrays, labels, numbers) are passed through unchanged. A non-scalar output is reduced
    to ``L = sum(out * v)`` with a fixed random ``v``, so every output element takes part.

    The ops compute in float32, so the finite differences are formed in float64 around float32
    evaluations: the step actually taken is ``float32(x+eps) - float32(x-eps)`` (not ``2*eps``),
    and ``L`` is accumulated in float64. What remains is the float32 rounding inside ``fn``,
    which no step size removes. gradcheck bounds it to first order from the analytic pass: each
    intermediate tensor ``t`` of the graph is rounded by at most ``2**-24 * |t|``, which moves
    ``L`` by ``|dL/dt|`` times that, so ``noise = noise_factor * 2**-24 * sum_t(|dL/dt| * |t|) / step``
    (``noise_factor`` covers the rounding inside kernels, e.g. a GEMM's K-term sums). An element
    passes when ``|analytic - numeric| <= atol + rtol * |numeric| + noise``. A wrong gradient is
    off by O(|gradient|), well above that floor for well-scaled inputs; the floor is printed with
    any failure, so a check that float32 cannot resolve shows as a large noise term.
    Keep inputs away from kinks (relu at 0, ties in max) and use tiny shapes: the cost is two
    evaluations of ``fn`` per checked element. The caller's tensors and their ``.grad`` are not
    touched (fn runs on copies).

    Returns True, or raises GradcheckError naming the worst element (``raise_exception=False``:
    returns False instead).

    >>> import fastnn
    >>> from fastnn.autograd import gradcheck
    >>> x = fastnn.tensor([[0.5, -1.0], [2.0, 0.3]], requires_grad=True)
    >>> gradcheck(lambda t: (t * t).sum(axis=0), [x])
    True
    """
    if isinstance(inputs, Tensor) or not isinstance(inputs, (list, tuple)):
        inputs = (inputs,)
    args = [Tensor(a.data.copy(), requires_grad=a.requires_grad) if isinstance(a, Tensor) else a
            for a in inputs]
    checked = [i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input is a Tensor with requires_grad=True")

    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    v = np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)
    if not out.requires_grad:
        raise GradcheckError("gradcheck: the output does not depend on any input that requires grad")
    # First-order float32 rounding of L: every graph node t is rounded by at most 2**-24 * |t|,
    # which moves L by |dL/dt| times that; `rounding` sums |dL/dt| * |t| over all nodes.
    rounding = [0.0]

    def observe(node, g):
        rounding[0] += float(np.sum(np.abs(g.astype(np.float64)) * np.abs(node.data)))
    _run_backward(out, v, observe)
    v64 = v.astype(np.float64)

    def loss():
        return float(np.sum(fn(*args).data.astype(np.float64) * v64))

    worst = None
    with no_grad():
        for i in checked:
            t = args[i]
            analytic = (t.grad.data if t.grad is not None else np.zeros(t.shape, np.float32)).astype(np.float64)
            flat = t.data.reshape(-1)  # a view: perturb in place
            for j in range(flat.size):
                x0 = flat[j]
                xp, xm = np.float32(float(x0) + eps), np.float32(float(x0) - eps)
                flat[j] = xp
                lp = loss()
                flat[j] = xm
                lm = loss()
                flat[j] = x0
                step = float(xp) - float(xm)
                numeric = (lp - lm) / step
                noise = noise_factor * _U32 * rounding[0] / step
                a = analytic.reshape(-1)[j]
                excess = abs(a - numeric) - (atol + rtol * abs(numeric) + noise)
                if worst is None or excess > worst[0]:
                    idx = np.unravel_index(j, t.shape) if t.ndim else ()
                    worst = (excess, i, tuple(int(k) for k in idx), a, numeric, noise)
    if worst[0] <= 0:
        return True
    excess, i, idx, a, numeric, noise = worst
    msg = (f"gradcheck: gradient of input {i} (shape {args[i].shape}) at index {idx}: analytic {a:.6g}, "
           f"numeric {numeric:.6g} (|diff| {abs(a - numeric):.3g} > atol {atol:g} + rtol {rtol:g}*|numeric| "
           f"+ float32 noise {noise:.3g})")
    if raise_exception:
        raise GradcheckError(msg)
    return False
