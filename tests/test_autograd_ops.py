"""Every differentiable op: value against numpy (float64), gradient against finite differences
(fastnn.autograd.gradcheck) and both against torch in float64 when torch is installed."""
import numpy as np
import pytest

import fastnn
import fastnn.functional as F
from fastnn.autograd import GradcheckError, gradcheck
from op_table import BY_NAME

GENERAL, POSITIVE, NONZERO, DISTINCT = "general", "positive", "nonzero", "distinct"


class Case:
    def __init__(self, id, shapes, f, np_f=None, torch_f=None, kind=GENERAL):
        self.id, self.shapes, self.f, self.kind = id, shapes, f, kind
        self.np_f = np_f or f
        self.torch_f = torch_f or f

    def inputs(self, seed):
        rng = np.random.default_rng(seed)
        out = []
        for s in self.shapes:
            if self.kind == POSITIVE:
                x = rng.uniform(0.5, 2.0, s)
            elif self.kind == DISTINCT:  # no near-ties (max): a shuffled grid 0.1 apart
                x = (rng.permutation(int(np.prod(s))) * 0.1 - 1.0).reshape(s)
            elif self.kind == NONZERO:  # away from kinks at 0 (relu) and from ties
                x = rng.choice([-1.0, 1.0], s) * rng.uniform(0.1, 2.0, s)
            else:
                x = rng.uniform(-2.0, 2.0, s)
            out.append(np.asarray(x, np.float64))
        return out


def _idx_torch(i):  # index or constant as a torch tensor
    import torch
    return torch.as_tensor(i)


CASES = [
    # arithmetic with broadcasting (scalar, (3,1)x(1,4), leading axes)
    Case("add", [(3, 4), (3, 4)], lambda a, b: a + b),
    Case("add_scalar_tensor", [(3, 4), ()], lambda a, b: a + b),
    Case("add_scalar_left", [(), (2, 3)], lambda a, b: a + b),
    Case("add_col_row", [(3, 1), (1, 4)], lambda a, b: a + b),
    Case("add_leading", [(2, 3, 4), (4,)], lambda a, b: a + b),
    Case("add_leading_ones", [(1, 3, 1), (5, 1, 1, 7)], lambda a, b: a + b),
    Case("add_const", [(3, 4)], lambda a: a + 1.5),
    Case("radd_const", [(3, 4)], lambda a: 2.0 + a),
    Case("sub", [(3, 1), (1, 4)], lambda a, b: a - b),
    Case("rsub_const", [(5,)], lambda a: 1.0 - a),
    Case("mul", [(2, 3, 4), (3, 1)], lambda a, b: a * b),
    Case("mul_fanout", [(3, 4)], lambda a: a * a * a),
    Case("mul_const_array", [(3, 4)], lambda a: a * np.linspace(-1, 1, 4),
         torch_f=lambda a: a * _idx_torch(np.linspace(-1, 1, 4))),
    Case("div", [(3, 4), (1, 4)], lambda a, b: a / b, kind=POSITIVE),
    Case("div_leading", [(4,), (2, 3, 4)], lambda a, b: a / b, kind=POSITIVE),
    Case("rdiv_const", [(3,)], lambda a: 2.0 / a, kind=POSITIVE),
    Case("neg", [(3, 4)], lambda a: -a),
    Case("pow2", [(3, 4)], lambda a: a ** 2),
    Case("pow3", [(7,)], lambda a: a ** 3),
    Case("pow_half", [(3, 4)], lambda a: a ** 0.5, kind=POSITIVE),
    Case("pow_neg", [(3, 4)], lambda a: a ** -1.5, kind=POSITIVE),
    Case("pow0", [(3,)], lambda a: a ** 0),
    Case("exp", [(3, 4)], lambda a: a.exp(), BY_NAME["exp"].f),
    Case("log", [(3, 4)], lambda a: a.log(), BY_NAME["log"].f, kind=POSITIVE),
    # reductions
    Case("sum_all", [(3, 4)], lambda a: a.sum(), np.sum),
    Case("sum_axis0", [(3, 4)], lambda a: a.sum(axis=0), lambda a: np.sum(a, axis=0),
         lambda a: a.sum(dim=0)),
    Case("sum_axis_neg_keep", [(2, 3, 4)], lambda a: a.sum(axis=-1, keepdims=True),
         lambda a: np.sum(a, axis=-1, keepdims=True), lambda a: a.sum(dim=-1, keepdim=True)),
    Case("sum_axes_tuple", [(2, 3, 4)], lambda a: a.sum(axis=(0, 2)), lambda a: np.sum(a, axis=(0, 2)),
         lambda a: a.sum(dim=(0, 2))),
    Case("mean_all", [(3, 4)], lambda a: a.mean(), np.mean),
    Case("mean_axis1_keep", [(3, 5)], lambda a: a.mean(axis=1, keepdims=True),
         lambda a: np.mean(a, axis=1, keepdims=True), lambda a: a.mean(dim=1, keepdim=True)),
    Case("mean_axes", [(2, 3, 4)], lambda a: a.mean(axis=(0, 1)), lambda a: np.mean(a, axis=(0, 1)),
         lambda a: a.mean(dim=(0, 1))),
    Case("max_all", [(3, 4)], lambda a: a.max(), np.max, lambda a: a.amax(), kind=DISTINCT),
    Case("max_axis1", [(3, 5)], lambda a: a.max(axis=1), lambda a: np.max(a, axis=1),
         lambda a: a.amax(dim=1), kind=DISTINCT),
    Case("max_axis0_keep", [(4, 3, 2)], lambda a: a.max(axis=0, keepdims=True),
         lambda a: np.max(a, axis=0, keepdims=True), lambda a: a.amax(dim=0, keepdim=True), kind=DISTINCT),
    # shape ops and indexing
    Case("reshape", [(3, 4)], lambda a: a.reshape(2, 6) * 1.0, lambda a: a.reshape(2, 6)),
    Case("reshape_tuple_infer", [(2, 3, 4)], lambda a: a.reshape((4, -1)), lambda a: a.reshape((4, -1))),
    Case("T", [(3, 4)], lambda a: a.T, lambda a: a.T, lambda a: a.t()),
    Case("transpose_3d", [(2, 3, 4)], lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(2, 0, 1),
         lambda a: a.permute(2, 0, 1)),
    Case("getitem_slices", [(4, 5)], lambda a: a[1:, ::2]),
    Case("getitem_int", [(4, 5)], lambda a: a[2]),
    Case("getitem_neg_int_col", [(4, 5)], lambda a: a[:, -1]),
    Case("getitem_ellipsis_none", [(2, 3, 4)], lambda a: a[..., 1:3, None]),
    Case("getitem_intarray_repeats", [(5, 3)], lambda a: a[np.array([0, 2, 0, 4])],
         torch_f=lambda a: a[_idx_torch([0, 2, 0, 4])]),
    Case("getitem_boolmask", [(4, 3)], lambda a: a[np.array([True, False, True, True])],
         torch_f=lambda a: a[_idx_torch([True, False, True, True])]),
    # activations (the Tensor methods; torch tensors have the same methods)
    Case("relu", [(3, 4)], lambda a: a.relu(), BY_NAME["relu"].f, kind=NONZERO),
    Case("sigmoid", [(3, 4)], lambda a: a.sigmoid(), BY_NAME["sigmoid"].f),
    Case("tanh", [(3, 4)], lambda a: a.tanh(), BY_NAME["tanh"].f),
    # matmul (numpy semantics) and linear on the C++ GEMM
    Case("matmul", [(3, 4), (4, 5)], lambda a, b: a @ b),
    Case("matmul_primes", [(7, 13), (13, 5)], lambda a, b: a @ b),
    Case("matmul_vec_mat", [(4,), (4, 5)], lambda a, b: a @ b),
    Case("matmul_mat_vec", [(3, 4), (4,)], lambda a, b: a @ b),
    Case("matmul_vec_vec", [(4,), (4,)], lambda a, b: a @ b),
    Case("matmul_nd_2d", [(2, 3, 4), (4, 5)], lambda a, b: a @ b),
    Case("matmul_batched", [(2, 3, 4), (2, 4, 5)], lambda a, b: a @ b),
    Case("matmul_bcast_batch", [(3, 4), (2, 4, 5)], lambda a, b: a @ b),
    Case("matmul_bcast_4d", [(2, 1, 3, 4), (3, 4, 2)], lambda a, b: a @ b),
    Case("matmul_vec_batched", [(4,), (2, 4, 3)], lambda a, b: a @ b),
    Case("matmul_const_left", [(4, 5)], lambda b: np.arange(12.0).reshape(3, 4) @ b,
         torch_f=lambda b: _idx_torch(np.arange(12.0).reshape(3, 4)) @ b),
    Case("matmul_fn", [(1, 4), (4, 1)], lambda a, b: F.matmul(a, b), lambda a, b: a @ b, lambda a, b: a @ b),
]


def _np_linear(x, w, b=None, relu=False):
    y = x @ w + (0 if b is None else b)
    return np.maximum(y, 0) if relu else y


def _torch_linear(x, w, b=None, relu=False):
    y = x @ w + (0 if b is None else b)
    return y.relu() if relu else y


CASES += [
    Case("linear", [(3, 4), (4, 5), (5,)], lambda x, w, b: F.linear(x, w, b), _np_linear, _torch_linear),
    Case("linear_relu", [(6, 4), (4, 5), (5,)], lambda x, w, b: F.linear(x, w, b, "relu"),
         lambda x, w, b: _np_linear(x, w, b, True), lambda x, w, b: _torch_linear(x, w, b, True),
         kind=NONZERO),
    Case("linear_nobias", [(3, 4), (4, 2)], lambda x, w: F.linear(x, w), _np_linear, _torch_linear),
    Case("linear_nd", [(2, 3, 4), (4, 5), (5,)], lambda x, w, b: F.linear(x, w, b), _np_linear, _torch_linear),
    Case("linear_1d", [(4,), (4, 3), (3,)], lambda x, w, b: F.linear(x, w, b), _np_linear, _torch_linear),
    Case("linear_sigmoid", [(3, 4), (4, 5), (5,)], lambda x, w, b: F.linear(x, w, b, "sigmoid"),
         lambda x, w, b: 1 / (1 + np.exp(-_np_linear(x, w, b))), lambda x, w, b: _torch_linear(x, w, b).sigmoid()),
    Case("linear_single_row_col", [(1, 1), (1, 1), (1,)], lambda x, w, b: F.linear(x, w, b), _np_linear,
         _torch_linear),
    # compositions
    Case("softmax_by_hand", [(3, 5)], lambda a: (a - a.max(axis=1, keepdims=True)).exp()
         / (a - a.max(axis=1, keepdims=True)).exp().sum(axis=1, keepdims=True),
         lambda a: np.exp(a - a.max(1, keepdims=True)) / np.exp(a - a.max(1, keepdims=True)).sum(1, keepdims=True),
         lambda a: (a - a.amax(1, keepdim=True)).exp() / (a - a.amax(1, keepdim=True)).exp().sum(1, keepdim=True)),
]

IDS = [c.id for c in CASES]


def _fastnn_out(case, xs, requires_grad=True):
    ts = [fastnn.tensor(x, requires_grad=requires_grad) for x in xs]
    return case.f(*ts), ts


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_matches_numpy(case):
    xs = case.inputs(1)
    out, _ = _fastnn_out(case, xs)
    ref = np.asarray(case.np_f(*xs), np.float64)
    assert out.shape == ref.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("seed", [2, 3])
def test_gradient_matches_finite_differences(case, seed):
    xs = case.inputs(seed)
    assert gradcheck(case.f, [fastnn.tensor(x, requires_grad=True) for x in xs])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_float64(case):
    torch = pytest.importorskip("torch")
    xs = case.inputs(4)
    out, ts = _fastnn_out(case, xs)
    v = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
    out.backward(v)
    tt = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    tout = case.torch_f(*tt)
    if not isinstance(tout, torch.Tensor):  # constant-only numpy expressions
        tout = torch.as_tensor(tout)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    (tout * torch.tensor(v, dtype=torch.float64)).sum().backward()
    for t, ref in zip(ts, tt):
        expected = ref.grad.numpy() if ref.grad is not None else np.zeros(ref.shape)
        got = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        scale = np.abs(expected).max() + 1
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * scale)


def test_only_needed_gradients_are_computed():
    x = fastnn.tensor(np.ones((2, 3)), requires_grad=True)
    w = fastnn.tensor(np.ones((3, 4)))  # no grad wanted
    y = F.linear(x, w)
    y.sum().backward()
    assert x.grad.shape == (2, 3) and w.grad is None


def test_gradcheck_catches_a_wrong_gradient():
    from fastnn._ops.basic import Mul

    class WrongMul(Mul):
        def backward(self, g):
            ga, gb = super().backward(g)
            return ga * 1.01, gb

    x = fastnn.tensor(np.random.default_rng(0).uniform(-2, 2, (3, 4)), requires_grad=True)
    with pytest.raises(GradcheckError, match=r"input 0 \(shape \(3, 4\)\)"):
        gradcheck(lambda t: WrongMul.apply(t, t), [x])
    assert gradcheck(lambda t: WrongMul.apply(t, t), [x], raise_exception=False) is False
    assert x.grad is None  # gradcheck works on copies


def test_gradcheck_arguments():
    x = fastnn.tensor([1.0, 2.0], requires_grad=True)
    assert gradcheck(lambda t, k: t * k, (x, 3.0))
    assert gradcheck(lambda t: t.sum(), x)
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda t: t * 2, [fastnn.tensor([1.0])])


def test_matmul_shape_errors_name_shapes():
    a, b = fastnn.tensor(np.ones((3, 4))), fastnn.tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(5, 2\)"):
        a @ b
    with pytest.raises(ValueError, match=r"\(2, 3, 4\) and \(2, 5, 2\)"):
        F.matmul(np.ones((2, 3, 4)), np.ones((2, 5, 2)))
    with pytest.raises(ValueError, match="at least 1 dimension"):
        F.matmul(np.ones(()), np.ones((2, 2)))


def test_linear_shape_errors_name_shapes():
    with pytest.raises(ValueError, match=r"x has shape \(32, 785\) and kernel has shape \(784, 10\)"):
        F.linear(np.ones((32, 785)), np.ones((784, 10)))
    with pytest.raises(ValueError, match=r"bias has shape \(9,\), expected \(10,\)"):
        F.linear(np.ones((2, 784)), np.ones((784, 10)), np.ones(9))
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        F.linear(np.ones((2, 3)), np.ones((3, 4)), activation="nope")


def test_shape_op_errors():
    t = fastnn.tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*into shape \(4, 2\)"):
        t.reshape(4, 2)
    with pytest.raises(ValueError, match="not a permutation"):
        t.transpose(0, 0)
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        t.sum(axis=2)


def test_functional_accepts_arrays_and_returns_tensors():
    y = F.linear([[1.0, 2.0]], [[1.0], [1.0]], [0.5])
    assert isinstance(y, fastnn.Tensor) and y.requires_grad is False
    np.testing.assert_allclose(y.numpy(), [[3.5]])
    for name in ("relu", "sigmoid", "tanh"):
        assert isinstance(getattr(F, name)(np.array([0.5, -0.5])), fastnn.Tensor)


def test_linear_relu_masks_gradient_by_output():
    x = fastnn.tensor([[1.0, -1.0]], requires_grad=True)
    w = fastnn.tensor([[1.0, 1.0], [0.0, 0.0]], requires_grad=True)
    b = fastnn.tensor([0.0, -2.0], requires_grad=True)
    F.linear(x, w, b, "relu").sum().backward()  # out = [1, 0]: second unit is inactive
    np.testing.assert_allclose(b.grad.numpy(), [1, 0])
    np.testing.assert_allclose(w.grad.numpy(), [[1, 0], [-1, 0]])
    np.testing.assert_allclose(x.grad.numpy(), [[1, 0]])


def test_max_shares_gradient_between_ties():
    x = fastnn.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, -1.0]], requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1, 0, 0]])


def test_linear_forward_backward_bit_identical_for_1_and_2_threads():
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((64, 300)), rng.standard_normal((300, 130)), rng.standard_normal(130)

    def run():
        ts = [fastnn.tensor(a, requires_grad=True) for a in (x, w, b)]
        y = F.linear(*ts, activation="relu")
        (y * y).mean().backward()
        return [y.numpy()] + [t.grad.numpy() for t in ts]

    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(1)
        one = run()
        fastnn.set_num_threads(2)
        two = run()
    finally:
        fastnn.set_num_threads(old)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)


def _scaled_backward(cls, which, factor):
    """A copy of Function `cls` whose gradient for input `which` is off by `factor`."""
    class Mutant(cls):
        def backward(self, g):
            grads = list(super().backward(g))
            grads[which] = grads[which] * factor
            return tuple(grads)
    return Mutant


@pytest.mark.parametrize("fn_name,which", [("MatMul", 0), ("MatMul", 1), ("Linear", 1), ("Linear", 2)])
def test_gradcheck_resolves_a_two_percent_error_through_a_long_gemm_reduction(fn_name, which):
    from fastnn._ops import linear as L
    rng = np.random.default_rng(11)
    x, w, b = rng.standard_normal((2, 256)), rng.standard_normal((256, 3)), rng.standard_normal(3)
    good, bad = getattr(L, fn_name), _scaled_backward(getattr(L, fn_name), which, 1.02)

    def loss(cls):
        if fn_name == "MatMul":
            return lambda x, w, b: (cls.apply(x, w) + b).mean()
        return lambda x, w, b: cls.apply(x, w, b).mean()

    inputs = [fastnn.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert gradcheck(loss(good), inputs)
    with pytest.raises(GradcheckError, match=f"input {which}"):
        gradcheck(loss(bad), inputs)


def _t(a):
    return fastnn.tensor(a, requires_grad=True)


FUNCTIONAL = {  # the other op groups through fastnn.functional, composed with the basic ops
    "conv2d_same_bias": (lambda x, k, b: F.conv2d(x, k, b, padding="same"),
                         [(2, 5, 5, 3), (3, 3, 3, 4), (4,)]),
    "conv2d_strided_mean": (lambda x, k: F.conv2d(x, k, strides=2).mean(), [(1, 7, 7, 2), (3, 3, 2, 3)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), [(2, 4, 4, 3)]),
    "softmax_log_softmax": (lambda z: F.softmax(z) * F.log_softmax(z, axis=0), [(4, 3)]),
    "gelu_silu_softplus": (lambda z: F.gelu(z) + F.silu(z) * F.softplus(z), [(4, 3)]),
    "mlp_cross_entropy": (lambda x, w1, b1, w2: F.cross_entropy(F.linear(F.linear(x, w1, b1, "tanh"), w2),
                                                                np.array([1, 0, 2])),
                          [(3, 5), (5, 4), (4,), (4, 3)]),
}


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_functional_ops_pass_gradcheck(name):
    fn, shapes = FUNCTIONAL[name]
    rng = np.random.default_rng(list(FUNCTIONAL).index(name))
    assert gradcheck(fn, [_t(rng.standard_normal(s)) for s in shapes])
