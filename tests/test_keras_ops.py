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
from test_autograd_ops import DISTINCT, NONZERO, POSITIVE, Case


class _Torch:
    """torch's functions, imported when first called: the table is built without torch installed (CI), and
    the torch twins run only where it is."""

    def __getattr__(self, name):
        def call(*args, **kwargs):
            import torch
            return getattr(torch, name)(*args, **kwargs)
        return call


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


def _np_conv_same_dilated(x, k, rate):  # "same" for stride 1: (effective size - 1) / 2 zeros each side
    kd = np.zeros(((k.shape[0] - 1) * rate + 1, (k.shape[1] - 1) * rate + 1) + k.shape[2:])
    kd[::rate, ::rate] = k
    ph, pw = (kd.shape[0] - 1) // 2, (kd.shape[1] - 1) // 2
    return _np_conv_valid(np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0))), kd)


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
    Case("conv_same_dilated", [(1, 6, 6, 2), (3, 3, 2, 2)], lambda x, k: O.conv(x, k, padding="same", dilation_rate=2),
         lambda x, k: _np_conv_same_dilated(x, k, 2),
         lambda x, k: _nhwc(_tf("conv2d"))(x, k.permute(3, 2, 0, 1), None, 1, "same", 2)),
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


# ---- integer- and bool-valued results: numpy arrays, as Keras's dtypes, no gradient ----------------
X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), (-1, False), (1, True), (0, False)])
def test_argmax_argmin_are_int32_arrays(name, axis, keepdims):
    for x in (X, fastnn.tensor(X, requires_grad=True)):
        got = getattr(O, name)(x, axis=axis, keepdims=keepdims)
        ref = getattr(np, name)(X, axis=axis, keepdims=keepdims)
        assert type(got) is np.ndarray and got.dtype == np.int32
        np.testing.assert_array_equal(got, ref)


def test_top_k_values_indices_and_ties():
    values, idx = O.top_k(fastnn.tensor([[1.0, 3.0, 3.0, 2.0]], requires_grad=True), 2)
    assert isinstance(values, fastnn.Tensor) and values.requires_grad
    np.testing.assert_array_equal(values.numpy(), [[3.0, 3.0]])
    assert idx.dtype == np.int32
    np.testing.assert_array_equal(idx, [[1, 2]])  # equal values keep their index order (as TensorFlow)
    values, idx = O.top_k(X, 4, sorted=False)
    np.testing.assert_array_equal(values.numpy(), -np.sort(-X, axis=-1))
    np.testing.assert_array_equal(np.take_along_axis(X, idx, -1), values.numpy())


def test_one_hot():
    hot = O.one_hot(np.array([0, 2, -1, 5]), 3)  # ids outside [0, 3): all zeros (as TensorFlow)
    assert isinstance(hot, fastnn.Tensor) and hot.dtype == np.float32
    np.testing.assert_array_equal(hot.numpy(), [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 0, 0]])
    ints = O.one_hot(fastnn.tensor([[1.0, 0.0]]), 2, axis=0, dtype="int32")  # float Tensor ids work too
    assert type(ints) is np.ndarray and ints.dtype == np.int32 and ints.shape == (2, 1, 2)
    np.testing.assert_array_equal(ints[:, 0], [[0, 1], [1, 0]])


def test_cast_and_convert():
    t = fastnn.tensor([-1.7, 0.0, 2.9], requires_grad=True)
    assert O.cast(t, "float32") is t and O.convert_to_tensor(t) is t  # float32: the same Tensor, graph kept
    np.testing.assert_array_equal(O.cast(t, "int32"), np.array([-1, 0, 2], np.int32))  # toward zero
    np.testing.assert_array_equal(O.cast(t, "bool"), [True, False, True])
    assert O.cast([1, 2], np.float32).dtype == np.float32
    assert O.convert_to_tensor([0.5, 1.0]).dtype == np.float32
    assert O.convert_to_tensor([1, 2]).dtype == np.int32            # Python ints: int32, as Keras
    assert O.convert_to_tensor(np.array([1, 2])).dtype == np.int64  # numpy keeps its dtype
    assert isinstance(O.convert_to_tensor(np.array([1, 2]), dtype="float32"), fastnn.Tensor)
    assert type(O.convert_to_numpy(t)) is np.ndarray and O.convert_to_numpy([1, 2]).tolist() == [1, 2]
    assert O.shape(t) == (3,) and O.shape([[1, 2, 3]]) == (1, 3) and type(O.shape(X)[0]) is int
    for dtype in ("float64", "float16", "bfloat16", np.complex64):
        with pytest.raises(NotImplementedError, match="float32 only"):
            O.cast(t, dtype)
    with pytest.raises(ValueError, match="convert_to_tensor: unknown dtype 'nope'"):
        O.convert_to_tensor(t, "nope")
    with pytest.raises(NotImplementedError, match="sparse"):
        O.convert_to_tensor(t, sparse=True)


def test_array_creation():
    z = O.zeros((2, 3))
    assert isinstance(z, fastnn.Tensor) and z.dtype == np.float32 and not z.numpy().any()
    o = O.ones(4, dtype="int32")
    assert type(o) is np.ndarray and o.dtype == np.int32 and o.tolist() == [1, 1, 1, 1]
    assert isinstance(O.ones_like(fastnn.tensor(X)), fastnn.Tensor) and O.ones_like(X).shape == X.shape
    assert O.zeros_like(np.array([1, 2])).dtype == np.int64  # dtype=None keeps an integer input's dtype
    assert O.zeros_like(np.array([1, 2]), dtype="float32").dtype == np.float32
    assert O.ones_like([True], dtype="bool").tolist() == [True]


def test_where_condition_only_gives_indices():
    rows, cols = O.where(fastnn.tensor([[1.0, 0.0], [0.0, 2.0]]))
    assert rows.dtype == np.int32 and rows.tolist() == [0, 1] and cols.tolist() == [0, 1]


def test_cumsum_int_dtype_and_sign_and_stop_gradient_are_constants():
    assert O.cumsum(np.array([[1, 2], [3, 4]]), dtype="int32").tolist() == [1, 3, 6, 10]
    t = fastnn.tensor([-2.0, 0.0, 3.0], requires_grad=True)
    s = O.sign(t)
    assert s.numpy().tolist() == [-1, 0, 1] and not s.requires_grad
    cut = O.stop_gradient(t)
    assert not cut.requires_grad and np.shares_memory(cut.numpy(), t.numpy())
    O.sum(O.multiply(s, t)).backward()  # sign(t) * t = |t|: gradient through t only
    assert t.grad.numpy().tolist() == [-1, 0, 1]


def test_ties_split_the_gradient():
    a, b = fastnn.tensor([1.0, 2.0, 3.0], requires_grad=True), fastnn.tensor([1.0, 5.0, 0.0], requires_grad=True)
    O.sum(O.maximum(a, b)).backward()
    assert a.grad.numpy().tolist() == [0.5, 0, 1] and b.grad.numpy().tolist() == [0.5, 1, 0]
    x = fastnn.tensor([-1.0, 0.0, 1.0, 2.0], requires_grad=True)
    O.sum(O.clip(x, 0.0, 1.0)).backward()  # both ends pass the gradient (torch, TensorFlow)
    assert x.grad.numpy().tolist() == [0, 1, 1, 0]


def test_ops_accept_lists_numbers_and_mixed_operands():
    assert O.add(1, 2).numpy() == 3 and isinstance(O.add(1, 2), fastnn.Tensor)
    assert O.sum([[1, 2], [3, 4]], axis=0).numpy().tolist() == [4, 6]
    w = fastnn.tensor([1.0, 2.0], requires_grad=True)
    O.sum(O.matmul([[1.0, 1.0], [2.0, 0.0]], w)).backward()
    assert w.grad.numpy().tolist() == [3, 1]
    parts = O.split([1.0, 2.0, 3.0, 4.0], 2)
    assert isinstance(parts, list) and [p.numpy().tolist() for p in parts] == [[1, 2], [3, 4]]


def test_logsumexp_is_finite_for_large_and_infinite_inputs():
    big = O.logsumexp([1000.0, 1000.0])
    np.testing.assert_allclose(big.numpy(), 1000 + math.log(2), rtol=1e-6)
    assert O.logsumexp([-np.inf, -np.inf]).numpy() == -np.inf


# ---- bad input: ValueError naming the op and the shapes; missing features: NotImplementedError ----
ERRORS = [
    (lambda: O.sum(X, axis=3), ValueError, r"sum: axis 3 is out of range .*shape \(2, 3, 4\)"),
    (lambda: O.mean(X, axis=(0, -4)), ValueError, r"mean: axis -4 .*shape \(2, 3, 4\)"),
    (lambda: O.max(X, axis=5), ValueError, r"max: axis 5 .*shape \(2, 3, 4\)"),
    (lambda: O.argmax(X, axis=3), ValueError, r"argmax: axis 3 .*shape \(2, 3, 4\)"),
    (lambda: O.logsumexp(X, axis=3), ValueError, r"logsumexp: axis 3 .*shape \(2, 3, 4\)"),
    (lambda: O.cumsum(X, axis=-4), ValueError, r"cumsum: axis -4 .*shape \(2, 3, 4\)"),
    (lambda: O.concatenate([np.ones((2, 3)), np.ones((3, 3))], axis=1), ValueError,
     r"concatenate: shapes must match except on axis 1, got shapes \[\(2, 3\), \(3, 3\)\]"),
    (lambda: O.concatenate([np.ones((2, 3)), np.ones(3)]), ValueError, r"concatenate: .*\[\(2, 3\), \(3,\)\]"),
    (lambda: O.concatenate([np.ones((2, 3))], axis=2), ValueError, r"concatenate: axis 2 .*shape \(2, 3\)"),
    (lambda: O.stack([np.ones((2, 3)), np.ones((3, 2))]), ValueError,
     r"stack: needs one or more tensors of the same shape, got shapes \[\(2, 3\), \(3, 2\)\]"),
    (lambda: O.stack([np.ones(2)], axis=2), ValueError, r"stack: axis 2 .*shape \(2, 1\)"),
    (lambda: O.top_k(np.ones((2, 3)), 4), ValueError, r"top_k: k=4 must be in \[0, 3\].*shape \(2, 3\)"),
    (lambda: O.top_k(np.float32(1), 1), ValueError, r"top_k: k=1 .*shape \(\)"),
    (lambda: O.split(np.ones((2, 5)), 2, axis=1), ValueError,
     r"split: axis 1 of size 5 \(shape \(2, 5\)\) does not split into 2 equal sections"),
    (lambda: O.squeeze(np.ones((1, 3)), axis=1), ValueError, r"squeeze: axis 1 has size 3, not 1 \(shape \(1, 3\)\)"),
    (lambda: O.expand_dims(np.ones((2, 3)), 3), ValueError, r"expand_dims: axis 3 .*shape \(1, 1, 1\)"),
    (lambda: O.expand_dims(np.ones((2, 3)), (0, 0)), ValueError, r"expand_dims: repeated axis .*\(2, 3\)"),
    (lambda: O.take(np.ones((2, 3)), [3], axis=1), ValueError,
     r"take: indices must lie in \[-3, 3\) for axis 1 of a tensor of shape \(2, 3\)"),
    (lambda: O.take(np.ones((2, 3)), [0], axis=2), ValueError, r"take: axis 2 .*shape \(2, 3\)"),
    (lambda: O.reshape(np.ones((2, 3)), (4, 2)), ValueError, r"reshape: .*\(2, 3\).*\(4, 2\)"),
    (lambda: O.transpose(np.ones((2, 3)), (0, 0)), ValueError, r"transpose: .*shape \(2, 3\)"),
    (lambda: O.matmul(np.ones((2, 3)), np.ones((2, 3))), ValueError, r"matmul: shapes \(2, 3\) and \(2, 3\)"),
    (lambda: O.dot(np.ones((2, 3)), np.ones((4, 2, 5))), ValueError, r"dot: shapes \(2, 3\) and \(4, 2, 5\)"),
    (lambda: O.one_hot([1, 2], 3, axis=2), ValueError, r"one_hot: axis 2 .*rank 2 \(x of shape \(2,\)\)"),
    (lambda: O.where([True], [1.0]), ValueError, r"where: x1 and x2 must be given together"),
    (lambda: O.conv(np.ones((1, 4, 4, 2)), np.ones((3, 3, 2, 1)), data_format="channels_first"),
     NotImplementedError, r"conv: data_format='channels_first' is not implemented"),
    (lambda: O.conv(np.ones((1, 4, 2)), np.ones((3, 2, 1))), NotImplementedError,
     r"conv: 1-D is not implemented, only 2-D .*shape \(1, 4, 2\)"),
    (lambda: O.max_pool(np.ones((1, 4, 4, 4, 2)), 2), NotImplementedError, r"max_pool: 3-D is not implemented"),
    (lambda: O.average_pool(np.ones((4, 2)), 2), ValueError, r"average_pool: inputs must have rank 3, 4 or 5"),
    (lambda: O.average_pool(np.ones((1, 4, 4, 1)), 2, data_format="NHWC"), ValueError, r"data_format must be"),
    (lambda: O.softmax(X, axis=(1, 2)), NotImplementedError, r"softmax: axis must be an int"),
    (lambda: O.one_hot([1], 3, sparse=True), NotImplementedError, r"one_hot: fastnn has no sparse tensors"),
]


@pytest.mark.parametrize("call,exc,match", ERRORS, ids=[f"{m.split(':')[0].split()[0]}-{i}"
                                                         for i, (_, _, m) in enumerate(ERRORS)])
def test_errors_name_the_op_and_shapes(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_import_on_its_own():
    """`import fastnn.ops` in a fresh interpreter, without anything else imported first."""
    import os
    import subprocess
    import sys
    code = "import fastnn.ops as o; print(len(o.__all__))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))  # as test_package does
    assert out.stdout.strip() == str(len(KERAS_SIGNATURES))
