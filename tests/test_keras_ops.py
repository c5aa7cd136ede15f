"""fastnn.ops (Keras 3's keras.ops): signatures, values against numpy on array inputs, gradients against
finite differences (gradcheck) and against torch float64 when installed, integer-valued results, and
errors that name the op and the shapes."""
import inspect
import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

import fastnn
from fastnn import ops as O
from fastnn.autograd import gradcheck
from test_autograd_ops import DISTINCT, GENERAL, NONZERO, POSITIVE, Case  # noqa: F401


class _Torch:
    """torch, imported on first use (the torch twins run only when it is installed)."""

    def __getattr__(self, name):
        import torch
        return getattr(torch, name)


T = _Torch()


def _tf(name):  # torch.nn.functional.<name>
    import torch.nn.functional as F
    return getattr(F, name)


def _nhwc(f):  # a torch NCHW function applied to NHWC tensors
    return lambda x, *rest: f(x.permute(0, 3, 1, 2), *rest).permute(0, 2, 3, 1)


# Keras 3.15's signatures (keras.ops.<name>), as inspect.signature prints them.
KERAS_SIGNATURES = {
    "matmul": "(x1, x2)", "dot": "(x1, x2)", "add": "(x1, x2)", "subtract": "(x1, x2)",
    "multiply": "(x1, x2)", "divide": "(x1, x2)", "negative": "(x)", "square": "(x)", "sqrt": "(x)",
    "exp": "(x)", "log": "(x)", "abs": "(x)", "sign": "(x)", "maximum": "(x1, x2)", "minimum": "(x1, x2)",
    "clip": "(x, x_min, x_max)", "where": "(condition, x1=None, x2=None)",
    "sum": "(x, axis=None, keepdims=False)", "mean": "(x, axis=None, keepdims=False)",
    "max": "(x, axis=None, keepdims=False, initial=None)", "min": "(x, axis=None, keepdims=False, initial=None)",
    "argmax": "(x, axis=None, keepdims=False)", "argmin": "(x, axis=None, keepdims=False)",
    "reshape": "(x, newshape)", "transpose": "(x, axes=None)", "expand_dims": "(x, axis)",
    "squeeze": "(x, axis=None)", "concatenate": "(xs, axis=0)", "stack": "(x, axis=0)",
    "split": "(x, indices_or_sections, axis=0)", "take": "(x, indices, axis=None)",
    "one_hot": "(x, num_classes, axis=-1, dtype=None, sparse=False)", "cast": "(x, dtype)",
    "convert_to_tensor": "(x, dtype=None, sparse=None, ragged=None)", "convert_to_numpy": "(x)",
    "shape": "(x)", "zeros": "(shape, dtype=None)", "ones": "(shape, dtype=None)",
    "zeros_like": "(x, dtype=None)", "ones_like": "(x, dtype=None)", "relu": "(x)", "sigmoid": "(x)",
    "tanh": "(x)", "softmax": "(x, axis=-1)", "log_softmax": "(x, axis=-1)", "gelu": "(x, approximate=True)",
    "conv": "(inputs, kernel, strides=1, padding='valid', data_format=None, dilation_rate=1)",
    "max_pool": "(inputs, pool_size, strides=None, padding='valid', data_format=None)",
    "average_pool": "(inputs, pool_size, strides=None, padding='valid', data_format=None)",
    "erf": "(x)", "logsumexp": "(x, axis=None, keepdims=False)", "cumsum": "(x, axis=None, dtype=None)",
    "top_k": "(x, k, sorted=True)", "stop_gradient": "(variable)",
}


def test_names_and_signatures_follow_keras():
    assert sorted(O.__all__) == sorted(KERAS_SIGNATURES)
    for name, sig in KERAS_SIGNATURES.items():
        fn = getattr(O, name)
        assert str(inspect.signature(fn)) == sig, name
        assert fn.__doc__, name


_erf64 = np.vectorize(math.erf)
_COND = np.array([[True], [False], [True]])  # broadcasts against (3, 4)
_TAKE = [[0, -1], [2, 0]]                    # repeats and a negative index


def _np_conv_valid(x, k, s=1):
    win = sliding_window_view(x, k.shape[:2], axis=(1, 2))[:, ::s, ::s]  # (B, OH, OW, C, KH, KW)
    return np.einsum("bijcxy,xyco->bijo", win, k)


def _np_pool(x, size, stride, reduce):
    return reduce(sliding_window_view(x, (size, size), axis=(1, 2))[:, ::stride, ::stride], axis=(-2, -1))


def _np_gelu_tanh(a):
    return 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a ** 3)))


# Case(id, input shapes, fastnn.ops expression, numpy reference, torch twin, input kind)
CASES = [
    # arithmetic (broadcasting, Python numbers)
    Case("add", [(3, 1), (1, 4)], O.add, np.add, T.add),
    Case("add_number", [(2, 3)], lambda a: O.add(a, 2.5), lambda a: a + 2.5, lambda a: a + 2.5),
    Case("subtract", [(2, 3, 4), (4,)], O.subtract, np.subtract, T.subtract),
    Case("multiply", [(3, 4), (3, 1)], O.multiply, np.multiply, T.multiply),
    Case("divide", [(3, 4), (4,)], O.divide, np.divide, T.divide, kind=POSITIVE),
    Case("negative", [(3, 4)], O.negative, np.negative, T.negative),
    Case("maximum", [(3, 4), (4,)], O.maximum, np.maximum, T.maximum),
    Case("minimum_number", [(3, 4)], lambda a: O.minimum(a, 0.3), lambda a: np.minimum(a, 0.3),
         lambda a: T.clamp(a, max=0.3)),
    Case("matmul", [(2, 3, 4), (4, 5)], O.matmul, np.matmul, T.matmul),
    Case("dot_mat_vec", [(3, 4), (4,)], O.dot, np.dot, T.matmul),
    Case("dot_nd", [(2, 3), (4, 3, 5)], O.dot, np.dot, lambda a, b: T.tensordot(a, b, dims=([1], [1]))),
    Case("dot_scalar", [(), (2, 3)], O.dot, np.dot, T.multiply),
    # elementwise math
    Case("square", [(3, 4)], O.square, np.square, T.square),
    Case("sqrt", [(3, 4)], O.sqrt, np.sqrt, T.sqrt, kind=POSITIVE),
    Case("exp", [(3, 4)], O.exp, np.exp, T.exp),
    Case("log", [(3, 4)], O.log, np.log, T.log, kind=POSITIVE),
    Case("abs", [(3, 4)], O.abs, np.abs, T.abs, kind=NONZERO),
    Case("tanh", [(3, 4)], O.tanh, np.tanh, T.tanh),
    Case("erf", [(3, 4)], O.erf, _erf64, T.erf),
    Case("clip", [(3, 4)], lambda a: O.clip(a, -0.5, 1.0), lambda a: np.clip(a, -0.5, 1.0),
         lambda a: T.clamp(a, -0.5, 1.0)),
    Case("where", [(3, 4), (4,)], lambda a, b: O.where(_COND, a, b), lambda a, b: np.where(_COND, a, b),
         lambda a, b: T.where(T.as_tensor(_COND), a, b)),
    # reductions
    Case("sum_all", [(3, 4)], O.sum, np.sum, T.sum),
    Case("sum_axes_keepdims", [(2, 3, 4)], lambda a: O.sum(a, axis=(0, -1), keepdims=True),
         lambda a: np.sum(a, axis=(0, -1), keepdims=True), lambda a: a.sum(dim=(0, 2), keepdim=True)),
    Case("mean_neg_axis", [(2, 3, 4)], lambda a: O.mean(a, axis=-2), lambda a: np.mean(a, axis=-2),
         lambda a: a.mean(dim=-2)),
    Case("max_axis1", [(3, 5)], lambda a: O.max(a, axis=1), lambda a: np.max(a, axis=1),
         lambda a: a.amax(dim=1), kind=DISTINCT),
    Case("max_initial", [(3, 4)], lambda a: O.max(a, axis=0, initial=0.25),
         lambda a: np.max(a, axis=0, initial=0.25), lambda a: T.clamp(a.amax(dim=0), min=0.25), kind=DISTINCT),
    Case("min_keepdims", [(3, 4)], lambda a: O.min(a, axis=0, keepdims=True),
         lambda a: np.min(a, axis=0, keepdims=True), lambda a: a.amin(dim=0, keepdim=True), kind=DISTINCT),
    Case("min_all", [(2, 3)], O.min, np.min, T.amin, kind=DISTINCT),
    Case("logsumexp_all", [(3, 4)], O.logsumexp, lambda a: np.log(np.sum(np.exp(a))),
         lambda a: T.logsumexp(a.reshape(-1), 0)),
    Case("logsumexp_axis_keepdims", [(3, 4)], lambda a: O.logsumexp(a, axis=1, keepdims=True),
         lambda a: np.log(np.sum(np.exp(a), axis=1, keepdims=True)), lambda a: T.logsumexp(a, 1, keepdim=True)),
    Case("cumsum_flat", [(2, 3)], O.cumsum, np.cumsum, lambda a: T.cumsum(a.reshape(-1), 0)),
    Case("cumsum_axis", [(3, 4)], lambda a: O.cumsum(a, axis=-2), lambda a: np.cumsum(a, axis=-2),
         lambda a: T.cumsum(a, -2)),
    # shape
    Case("reshape", [(3, 4)], lambda a: O.reshape(a, (2, -1)), lambda a: np.reshape(a, (2, -1)),
         lambda a: a.reshape(2, -1)),
    Case("transpose_default", [(2, 3, 4)], O.transpose, np.transpose, lambda a: a.permute(2, 1, 0)),
    Case("transpose_axes", [(2, 3, 4)], lambda a: O.transpose(a, (1, 2, 0)), lambda a: np.transpose(a, (1, 2, 0)),
         lambda a: a.permute(1, 2, 0)),
    Case("expand_dims", [(2, 3)], lambda a: O.expand_dims(a, -1), lambda a: np.expand_dims(a, -1),
         lambda a: a.unsqueeze(-1)),
    Case("expand_dims_tuple", [(2, 3)], lambda a: O.expand_dims(a, (0, 2)), lambda a: np.expand_dims(a, (0, 2)),
         lambda a: a.unsqueeze(0).unsqueeze(2)),
    Case("squeeze_all", [(1, 3, 1)], O.squeeze, np.squeeze, T.squeeze),
    Case("squeeze_axis", [(1, 3, 1)], lambda a: O.squeeze(a, axis=-1), lambda a: np.squeeze(a, axis=-1),
         lambda a: a.squeeze(-1)),
    # joining, splitting, indexing
    Case("concatenate", [(2, 3), (2, 1)], lambda a, b: O.concatenate([a, b], axis=-1),
         lambda a, b: np.concatenate([a, b], axis=-1), lambda a, b: T.cat([a, b], -1)),
    Case("concatenate_default_axis", [(2, 3), (1, 3)], lambda a, b: O.concatenate([a, b]),
         lambda a, b: np.concatenate([a, b]), lambda a, b: T.cat([a, b])),
    Case("stack", [(2, 3), (2, 3)], lambda a, b: O.stack([a, b], axis=1), lambda a, b: np.stack([a, b], axis=1),
         lambda a, b: T.stack([a, b], 1)),
    Case("split_sections", [(2, 4)], lambda a: O.split(a, 2, axis=-1)[1], lambda a: np.split(a, 2, axis=-1)[1],
         lambda a: T.tensor_split(a, 2, dim=-1)[1]),
    Case("split_indices", [(5, 2)], lambda a: O.concatenate(O.split(a, [1, 3])[::-1]),
         lambda a: np.concatenate(np.split(a, [1, 3])[::-1]), lambda a: T.cat(T.tensor_split(a, [1, 3])[::-1])),
    Case("take_flat", [(3, 4)], lambda a: O.take(a, _TAKE), lambda a: np.take(a, _TAKE),
         lambda a: a.reshape(-1)[T.as_tensor(_TAKE) % 12]),
    Case("take_axis", [(3, 4)], lambda a: O.take(a, [3, 0, 3], axis=1), lambda a: np.take(a, [3, 0, 3], axis=1),
         lambda a: a[:, [3, 0, 3]]),
    Case("top_k_values", [(3, 5)], lambda a: O.top_k(a, 2)[0], lambda a: -np.sort(-a, axis=-1)[:, :2],
         lambda a: T.topk(a, 2).values, kind=DISTINCT),
    # core: float32 casts and stop_gradient keep or cut the graph
    Case("cast_float32", [(3,)], lambda a: O.multiply(O.cast(a, "float32"), 3.0), lambda a: a * 3.0,
         lambda a: a * 3.0),
    Case("stop_gradient", [(3, 4)], lambda a: O.multiply(a, O.stop_gradient(a)), lambda a: a * a,
         lambda a: a * a.detach()),
    # nn
    Case("relu", [(3, 4)], O.relu, lambda a: np.maximum(a, 0), T.relu, kind=NONZERO),
    Case("sigmoid", [(3, 4)], O.sigmoid, lambda a: 1 / (1 + np.exp(-a)), T.sigmoid),
    Case("softmax", [(3, 4)], O.softmax, lambda a: np.exp(a) / np.exp(a).sum(-1, keepdims=True),
         lambda a: T.softmax(a, -1)),
    Case("log_softmax_axis0", [(3, 4)], lambda a: O.log_softmax(a, axis=0),
         lambda a: a - np.log(np.exp(a).sum(0, keepdims=True)), lambda a: T.log_softmax(a, 0)),
    Case("gelu_tanh_default", [(3, 4)], O.gelu, _np_gelu_tanh, lambda a: _tf("gelu")(a, approximate="tanh")),
    Case("gelu_exact", [(3, 4)], lambda a: O.gelu(a, approximate=False),
         lambda a: 0.5 * a * (1 + _erf64(a / math.sqrt(2))), lambda a: _tf("gelu")(a)),
    Case("conv_valid", [(2, 5, 5, 2), (3, 3, 2, 3)], O.conv, _np_conv_valid,
         lambda x, k: _nhwc(_tf("conv2d"))(x, k.permute(3, 2, 0, 1))),
    Case("conv_strided", [(1, 7, 7, 2), (3, 3, 2, 2)], lambda x, k: O.conv(x, k, strides=2),
         lambda x, k: _np_conv_valid(x, k, 2), lambda x, k: _nhwc(_tf("conv2d"))(x, k.permute(3, 2, 0, 1), None, 2)),
    Case("max_pool", [(2, 4, 4, 2)], lambda x: O.max_pool(x, 2), lambda x: _np_pool(x, 2, 2, np.max),
         lambda x: _nhwc(_tf("max_pool2d"))(x, 2), kind=DISTINCT),
    Case("average_pool_stride1", [(1, 4, 5, 2)], lambda x: O.average_pool(x, 2, strides=1),
         lambda x: _np_pool(x, 2, 1, np.mean), lambda x: _nhwc(_tf("avg_pool2d"))(x, 2, 1)),
]
IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_value_on_arrays_matches_numpy(case):
    xs = case.inputs(1)
    out = case.f(*[x.astype(np.float32) for x in xs])  # plain arrays in, a constant Tensor out
    ref = np.asarray(case.np_f(*xs), np.float64)
    assert isinstance(out, fastnn.Tensor) and not out.requires_grad
    assert out.dtype == np.float32 and out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-5)


# stop_gradient's gradient differs from the function's derivative on purpose (checked against torch).
FD_CASES = [c for c in CASES if c.id != "stop_gradient"]


@pytest.mark.parametrize("case", FD_CASES, ids=[c.id for c in FD_CASES])
def test_gradient_matches_finite_differences(case):
    assert gradcheck(case.f, [fastnn.tensor(x, requires_grad=True) for x in case.inputs(2)])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_matches_torch_float64(case):
    torch = pytest.importorskip("torch")
    xs = case.inputs(4)
    ts = [fastnn.tensor(x, requires_grad=True) for x in xs]
    out = case.f(*ts)
    v = np.random.default_rng(5).standard_normal(out.shape).astype(np.float32)
    out.backward(v)
    tt = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    tout = case.torch_f(*tt)
    np.testing.assert_allclose(out.numpy(), tout.detach().numpy(), rtol=1e-5, atol=1e-5)
    (tout * torch.tensor(v, dtype=torch.float64)).sum().backward()
    for t, ref in zip(ts, tt):
        expected = ref.grad.numpy()
        np.testing.assert_allclose(t.grad.numpy(), expected, rtol=1e-4, atol=1e-5 * (np.abs(expected).max() + 1))
