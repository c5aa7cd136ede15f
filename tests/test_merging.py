"""Merge layers, Lambda and Identity: forward against numpy, backward against float64 finite differences,
output shapes, Keras 3's error messages and configs (checked against keras 3.15 with a scratch script)."""
import re

import numpy as np
import pytest

import fastnn
from fastnn._naming import clear_session
from fastnn.autograd import gradcheck
from fastnn.layers.lambdas import Identity, Lambda, register_function
from fastnn.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add,
                                   average, concatenate, dot, maximum, minimum, multiply, subtract)


@pytest.fixture(autouse=True)
def _fresh_names():
    clear_session()


def re_escape(value):
    return re.escape(str(value))


def _inputs(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]  # float64: the layers keep the input dtype


def _check_backward(layer, xs, eps=1e-6):
    """layer._backward of L = sum(y * v) against central differences, every input element, float64."""
    y, ctx = layer._forward(xs, True)
    v = np.random.default_rng(1).standard_normal(y.shape)
    grads = layer._backward(ctx, v)
    assert len(grads) == len(xs)
    for x, g in zip(xs, grads):
        assert g.shape == x.shape
        num = np.zeros_like(x)
        for i in np.ndindex(x.shape):
            old = x[i]
            x[i] = old + eps
            lp = np.sum(layer._forward(xs, False, False)[0] * v)
            x[i] = old - eps
            lm = np.sum(layer._forward(xs, False, False)[0] * v)
            x[i] = old
            num[i] = (lp - lm) / (2 * eps)
        np.testing.assert_allclose(g, num, rtol=1e-6, atol=1e-8)


# ---- elementwise merges ---------------------------------------------------------------------------------
def _keras_aligned(xs):
    """Keras's rank alignment: size-1 axes inserted after the batch axis of the lower-rank inputs."""
    rank = max(x.ndim for x in xs)
    return [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]


ELEMENTWISE = [(Add, lambda xs: sum(xs)), (Average, lambda xs: sum(xs) / len(xs)),
               (Multiply, lambda xs: np.multiply.reduce(np.broadcast_arrays(*xs))),
               (Maximum, lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs))),
               (Minimum, lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs)))]
SHAPES = [[(2, 3), (2, 3)], [(2, 3)] * 3, [(2, 4)], [(2, 3), (2, 2, 3)], [(2, 1, 3), (2, 2, 1)], [(2, 3), (2, 1)],
          [(2,), (2, 3)]]


@pytest.mark.parametrize("shapes", SHAPES, ids=str)
@pytest.mark.parametrize("cls, reference", ELEMENTWISE, ids=lambda c: getattr(c, "__name__", ""))
def test_elementwise_forward_and_backward(cls, reference, shapes):
    xs = _inputs(*shapes)
    y, _ = cls()._forward(xs, False, False)
    np.testing.assert_allclose(y, reference(_keras_aligned(xs)), rtol=1e-12)
    _check_backward(cls(), xs)


@pytest.mark.parametrize("shapes", [[(2, 3), (2, 3)], [(2, 3), (2, 2, 3)], [(2, 2, 1), (2, 3)]], ids=str)
def test_subtract_forward_and_backward(shapes):
    xs = _inputs(*shapes)
    a, b = _keras_aligned(xs)
    np.testing.assert_allclose(Subtract()._forward(xs, False, False)[0], a - b)
    _check_backward(Subtract(), xs)


def test_float32_in_float32_out():
    xs = [x.astype(np.float32) for x in _inputs((2, 3), (2, 3))]
    for layer in (Add(), Average(), Subtract(), Multiply(), Maximum(), Concatenate(), Dot(axes=1, normalize=True)):
        y, ctx = layer._forward(xs, True)
        assert y.dtype == np.float32
        assert all(g.dtype == np.float32 and g.flags.c_contiguous for g in layer._backward(ctx, np.ones_like(y)))


def test_maximum_minimum_ties_go_to_the_first_extreme_input():
    # TensorFlow's Keras (keras 3.15, tf backend) through GradientTape on these values gives exactly these
    xs = [np.array([[1.0, 2.0, 3.0]]), np.array([[1.0, 0.0, 3.0]]), np.array([[1.0, 2.0, 4.0]])]
    for cls, expected in ((Maximum, [[1, 1, 0], [0, 0, 0], [0, 0, 1]]), (Minimum, [[1, 0, 1], [0, 1, 0], [0, 0, 0]])):
        layer = cls()
        y, ctx = layer._forward(xs, True)
        grads = layer._backward(ctx, np.ones_like(y))
        np.testing.assert_array_equal(np.concatenate(grads), np.array(expected, float))


@pytest.mark.parametrize("shapes, expected", [
    ([(None, 3), (None, 3)], (None, 3)),
    ([(None, 3)], (None, 3)),
    ([(None, 3), (None, 2, 3)], (None, 2, 3)),
    ([(None, 1, 3), (None, 2, 1)], (None, 2, 3)),
    ([(None, None, 3), (None, 5, 1)], (None, None, 3)),
    ([(2, 3), (None, 3)], (2, 3)),
    ([(None, 3), (None, 1)], (None, 3)),
])
def test_elementwise_output_shapes(shapes, expected):  # Keras 3.15's for the same shapes
    for cls in (Add, Multiply, Average, Maximum, Minimum):
        assert cls().compute_output_shape(shapes) == expected
    if len(shapes) == 2:
        assert Subtract().compute_output_shape(shapes) == expected


@pytest.mark.parametrize("cls", [Add, Subtract, Multiply, Average, Maximum, Minimum])
def test_elementwise_errors_are_keras_messages(cls):
    with pytest.raises(ValueError, match=r"'\w+': Inputs have incompatible shapes\. Received shapes \(3,\) and \(4,\)"):
        cls().compute_output_shape([(None, 3), (None, 4)])
    with pytest.raises(ValueError, match=r"A merge layer should be called on a list of inputs\. Received: "
                                         r"input_shape=\(None, 3\) \(not a list of shapes\)"):
        cls().compute_output_shape((None, 3))
    with pytest.raises(ValueError, match=r"Cannot merge tensors with different batch sizes\. Received tensors "
                                         r"with shapes \[\(2, 3\), \(4, 3\)\]"):
        cls().compute_output_shape([(2, 3), (4, 3)])
    # Keras crashes on [] with a TypeError; fastnn gives the message Keras meant to give
    with pytest.raises(ValueError, match=r"A merge layer should be called on a list of at least 1 input\. "
                                         r"Received 0 inputs"):
        cls().compute_output_shape([])


def test_subtract_needs_exactly_two_inputs():
    for shapes in ([(None, 3)], [(None, 3)] * 3):
        with pytest.raises(ValueError, match=r"A `Subtract` layer should be called on exactly 2 inputs\. "
                                             rf"Received: input_shape={re_escape(shapes)}"):
            Subtract().compute_output_shape(shapes)


# ---- Concatenate ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis, shapes", [(1, [(2, 3, 2), (2, 1, 2)]), (-1, [(2, 3, 2), (2, 3, 4), (2, 3, 1)]),
                                          (-1, [(2, 3), (2, 1)]), (1, [(2, 4)])])
def test_concatenate_forward_and_backward(axis, shapes):
    xs = _inputs(*shapes)
    np.testing.assert_array_equal(Concatenate(axis=axis)._forward(xs, False, False)[0], np.concatenate(xs, axis))
    _check_backward(Concatenate(axis=axis), xs)


@pytest.mark.parametrize("axis, shapes, expected", [
    (-1, [(None, 3), (None, 4)], (None, 7)),
    (1, [(None, 3, 2), (None, 4, 2)], (None, 7, 2)),
    (1, [(None, None, 2), (None, 4, 2)], (None, None, 2)),
    (-1, [(None, 2, 3)], (None, 2, 3)),
    # Keras keeps the first input's None here, (None, None, 4): fastnn takes the size another input knows
    (-1, [(None, None, 2), (None, 4, 2)], (None, 4, 4)),
])
def test_concatenate_output_shapes(axis, shapes, expected):
    assert Concatenate(axis=axis).compute_output_shape(shapes) == expected


def test_concatenate_errors_are_keras_messages():
    for shapes in ([(None, 3, 2), (None, 4, 2)], [(None, 3), (None, 4, 2)]):
        with pytest.raises(ValueError, match=r"A `Concatenate` layer requires inputs with matching shapes except for "
                                             rf"the concatenation axis\. Received: input_shape={re_escape(shapes)}"):
            Concatenate().compute_output_shape(shapes)
    with pytest.raises(ValueError, match=r"A `Concatenate` layer should be called on a list of inputs\. Received: "
                                         r"input_shape=\(None, 3\)"):
        Concatenate().compute_output_shape((None, 3))
    with pytest.raises(ValueError, match=r"A `Concatenate` layer should be called on a list of at least 1 input\. "
                                         r"Received: input_shape=\[\]"):
        Concatenate().compute_output_shape([])
    with pytest.raises(ValueError, match=r"concatenate_\d+': axis 5 is out of range for inputs of rank 3"):
        Concatenate(axis=5).compute_output_shape([(None, 3, 2), (None, 4, 2)])


# ---- Dot --------------------------------------------------------------------------------------------------
DOTS = [  # axes, shapes, numpy reference, Keras 3.15's output shape (batch None)
    (1, [(3, 4), (3, 4)], lambda a, b: np.einsum("bn,bn->b", a, b)[:, None], (None, 1)),
    (-1, [(3, 4), (3, 4)], lambda a, b: np.einsum("bn,bn->b", a, b)[:, None], (None, 1)),
    ((1, 2), [(2, 4, 3), (2, 5, 4)], lambda a, b: np.einsum("bnx,bmn->bxm", a, b), (None, 3, 5)),
    ((1, 2), [(2, 3), (2, 5, 3)], lambda a, b: np.einsum("bn,bmn->bm", a, b), (None, 5)),
    (-1, [(2, 2, 3), (2, 3)], lambda a, b: np.einsum("bxn,bn->bx", a, b), (None, 2)),
    ((3, 1), [(2, 2, 3, 4), (2, 4, 5)], lambda a, b: np.einsum("bxyn,bnz->bxyz", a, b), (None, 2, 3, 5)),
    ((-1, 2), [(2, 2, 3, 4), (2, 5, 4, 6)], lambda a, b: np.einsum("bxyn,bpnq->bxypq", a, b), (None, 2, 3, 5, 6)),
]


@pytest.mark.parametrize("axes, shapes, reference, out_shape", DOTS, ids=[str(d[:2]) for d in DOTS])
def test_dot_forward_backward_and_shape(axes, shapes, reference, out_shape):
    xs = _inputs(*shapes)
    y = Dot(axes=axes)._forward(xs, False, False)[0]
    np.testing.assert_allclose(y, reference(*xs), rtol=1e-12)
    assert Dot(axes=axes).compute_output_shape([(None,) + s[1:] for s in shapes]) == out_shape
    _check_backward(Dot(axes=axes), xs)


@pytest.mark.parametrize("axes, shapes", [(1, [(3, 4), (3, 4)]), ((1, 2), [(2, 4, 3), (2, 5, 4)])])
def test_dot_normalize_is_cosine(axes, shapes):
    xs = _inputs(*shapes)
    a1, a2 = (axes, axes) if isinstance(axes, int) else axes
    unit = [x / np.linalg.norm(x, axis=a, keepdims=True) for x, a in zip(xs, (a1, a2))]
    np.testing.assert_allclose(Dot(axes=axes, normalize=True)._forward(xs, False, False)[0],
                               Dot(axes=axes)._forward(unit, False, False)[0], rtol=1e-12)
    _check_backward(Dot(axes=axes, normalize=True), xs)


def test_dot_normalize_of_zeros_is_zero_with_finite_gradient():  # Keras 3.15 gives [[0.0]] too
    xs = [np.zeros((1, 4)), _inputs((1, 4))[0]]
    layer = Dot(axes=1, normalize=True)
    y, ctx = layer._forward(xs, True)
    assert y.tolist() == [[0.0]]
    assert all(np.isfinite(g).all() for g in layer._backward(ctx, np.ones_like(y)))


def test_dot_errors_are_keras_messages():
    with pytest.raises(ValueError, match=r"Incompatible input shapes: axis values 3 \(at axis 1\) != 4 \(at axis 1\)\. "
                                         r"Full input shapes: \(None, 3\), \(None, 4\)"):
        Dot(axes=1).compute_output_shape([(None, 3), (None, 4)])
    for shapes in ([(None, 3)], [(None, 3)] * 3):
        with pytest.raises(ValueError, match=r"A `Dot` layer should be called on a list of 2 inputs\. Received: "
                                             rf"input_shape={re_escape(shapes)}"):
            Dot(axes=1).compute_output_shape(shapes)
    with pytest.raises(ValueError, match="Cannot perform batch_dot over axis 0"):
        Dot(axes=0).compute_output_shape([(None, 3), (None, 3)])
    with pytest.raises(ValueError, match=r"Cannot do batch_dot on inputs with rank < 2\. Received inputs with "
                                         r"shapes \(None,\) and \(None,\)\."):
        Dot(axes=1).compute_output_shape([(None,), (None,)])
    with pytest.raises(ValueError, match=r"Cannot do batch_dot on inputs with different batch sizes"):
        Dot(axes=1).compute_output_shape([(2, 3), (4, 3)])
    with pytest.raises(ValueError, match=r"axes=3 is out of range"):
        Dot(axes=3).compute_output_shape([(None, 3), (None, 3)])
    with pytest.raises(TypeError, match=r"Invalid type for argument `axes`: it should be a list or an int\. "
                                        r"Received: axes=a"):
        Dot(axes="a")
    with pytest.raises(ValueError, match=r"Invalid format for argument `axes`: it should contain two elements\. "
                                         r"Received: axes=\(1, 2, 3\)"):
        Dot(axes=(1, 2, 3))
    with pytest.raises(ValueError, match=r"list elements should be integers\. Received: axes=\(1\.0, 2\)"):
        Dot(axes=(1.0, 2))
    # an unknown size passes (Keras refuses None against 4)
    assert Dot(axes=1).compute_output_shape([(None, None), (None, 4)]) == (None, 1)


# ---- every layer: need_dx=False, config, functional forms, the Tensor graph ----------------------------
def _all_layers():
    return [(Add(), [(2, 3), (2, 3)]), (Subtract(), [(2, 3), (2, 3)]), (Multiply(), [(2, 3), (2, 3)]),
            (Average(), [(2, 3), (2, 3)]), (Maximum(), [(2, 3), (2, 3)]), (Minimum(), [(2, 3), (2, 3)]),
            (Concatenate(axis=1), [(2, 3), (2, 2)]), (Dot(axes=(1, 1), normalize=True), [(2, 3), (2, 3)]),
            (Lambda(lambda xs: xs[0] * xs[1]), [(2, 3), (2, 3)]), (Lambda(lambda x: x * 2), (2, 3)),
            (Identity(), (2, 3))]


def test_need_dx_false_saves_nothing():
    for layer, shapes in _all_layers():
        xs = [x.astype(np.float32) for x in _inputs(*shapes)] if isinstance(shapes, list) else \
            _inputs(shapes)[0].astype(np.float32)
        y, ctx = layer._forward(xs, True, need_dx=False)
        assert ctx is None and layer._backward(ctx, np.ones_like(y)) is None, layer.name
        with fastnn.no_grad():
            assert layer._forward(xs, False, need_dx=True)[1] is None, layer.name
        np.testing.assert_array_equal(layer._forward(xs, True)[0], y)


def test_get_config_round_trip():
    register_function(np.negative, name="negate")
    extra = [Lambda(np.negative, output_shape=(3,), arguments={}), Dot(axes=[1, 2], normalize=True, name="d")]
    for layer in [layer for layer, _ in _all_layers() if not isinstance(layer, Lambda)] + extra:
        config = layer.get_config()
        assert config["name"] == layer.name and config["trainable"] is True and config["dtype"] == "float32"
        again = type(layer).from_config(config)
        assert again.get_config() == config
    assert Concatenate(axis=1).get_config()["axis"] == 1
    assert {k: Dot(axes=(1, 2), normalize=True).get_config()[k] for k in ("axes", "normalize")} == \
        {"axes": (1, 2), "normalize": True}
    assert set(Add().get_config()) == {"name", "trainable", "dtype"}  # Keras's keys for the elementwise merges


def test_functional_forms_build_and_call_the_layer():
    a, b = [x.astype(np.float32) for x in _inputs((2, 3), (2, 3))]
    for fn, cls in ((add, Add), (subtract, Subtract), (multiply, Multiply), (average, Average),
                    (maximum, Maximum), (minimum, Minimum)):
        np.testing.assert_array_equal(fn([a, b], name=f"my_{fn.__name__}").numpy(), cls()([a, b]).numpy())
        assert fn.__name__ == cls.__name__.lower()
    assert concatenate([a, b], axis=0).shape == (4, 3)
    np.testing.assert_allclose(dot([a, b], axes=1, normalize=True).numpy(),
                               Dot(axes=1, normalize=True)([a, b]).numpy())
    assert dot([a, b]).shape == (2, 1)  # Keras's default axes=-1


def test_layer_calls_on_tensors_are_differentiable():
    a, b = (fastnn.tensor(x, requires_grad=True) for x in _inputs((2, 3), (2, 3)))
    assert gradcheck(lambda p, q: Dot(axes=1, normalize=True)([p, Add()([p, q])]), [a, b])
    assert gradcheck(lambda p, q: Concatenate()([Maximum()([p, q]), Multiply()([p, q])]), [a, b])
    assert gradcheck(lambda p, q: Lambda(lambda xs: (xs[0] * xs[1]).sum(axis=1, keepdims=True))([p, q]), [a, b])
    with pytest.raises(ValueError, match="Inputs have incompatible shapes"):  # checked before any build
        Add()([np.ones((2, 3), np.float32), np.ones((2, 4), np.float32)])
    layer = Concatenate()
    layer([np.ones((5, 3), np.float32), np.ones((5, 1), np.float32)])
    assert layer.built and layer.input_shape == [(None, 3), (None, 1)] and layer.output_shape == (None, 4)


# ---- Lambda and Identity ----------------------------------------------------------------------------------
def test_lambda_runs_tensor_code_with_arguments_and_training():
    seen = []

    def f(x, scale, training=None):
        seen.append(training)
        return fastnn.ops.relu(x) * scale
    layer = Lambda(f, arguments={"scale": 3.0})
    x = np.array([[-1.0, 2.0]], np.float32)
    y, ctx = layer._forward(x, True)
    assert y.tolist() == [[0.0, 6.0]] and seen[-1] is True
    assert layer._backward(ctx, np.ones_like(y)).tolist() == [[0.0, 3.0]]
    t = fastnn.tensor(_inputs((2, 3))[0], requires_grad=True)
    assert gradcheck(lambda t: Lambda(lambda x: fastnn.ops.tanh(x) * x)(t), [t])


def test_lambda_gradients_of_unused_inputs_are_zeros():
    xs = [x.astype(np.float32) for x in _inputs((2, 3), (2, 3))]
    for fn in (lambda xs: xs[0], lambda xs: fastnn.ops.zeros_like(xs[0])):
        layer = Lambda(fn)
        y, ctx = layer._forward(xs, True)
        grads = layer._backward(ctx, np.ones_like(y))
        assert [g.shape for g in grads] == [(2, 3), (2, 3)] and not grads[1].any()


def test_lambda_numpy_function_works_without_gradient_only():
    layer = Lambda(lambda x: np.sort(np.asarray(x), axis=-1))
    x = np.array([[3.0, 1.0, 2.0]], np.float32)
    assert layer._forward(x, False, need_dx=False)[0].tolist() == [[1.0, 2.0, 3.0]]
    with pytest.raises(TypeError, match="returned a ndarray, not a fastnn Tensor"):
        layer._forward(x, True)


@pytest.mark.parametrize("fn, input_shape, expected", [
    (lambda x: x[:, :2], (None, 5), (None, 2)),
    (lambda x: x.sum(axis=0), (None, 5), (5,)),  # Keras 3.15: (5,)
    (lambda x: x.reshape((-1, 5 * x.shape[1])), (None, 4, 5), (None, 20)),
    (lambda x: x * 2, (None, None, 3), (None, None, 3)),
    (lambda xs: fastnn.ops.concatenate(xs, axis=1), [(None, 5), (None, 2)], (None, 7)),
    (lambda x: x.mean(), (None, 3), ()),
])
def test_lambda_infers_output_shape(fn, input_shape, expected):
    assert Lambda(fn).compute_output_shape(input_shape) == expected


def test_lambda_output_shape_argument():
    assert Lambda(lambda x: x, output_shape=(7,)).compute_output_shape((None, 5)) == (None, 7)  # Keras: (None, 7)
    assert Lambda(lambda x: x, output_shape=lambda s: s[:1] + (9,)).compute_output_shape((4, 5)) == (4, 9)
    with pytest.raises(NotImplementedError, match=r"lambda\w*': We could not automatically infer the shape of the "
                                                  r"Lambda's output \(the function raised AttributeError"):
        Lambda(lambda x: x.nope).compute_output_shape((None, 5))
    with pytest.raises(ValueError, match="`mask` is not supported"):
        Lambda(lambda x: x, mask=lambda x, m: m)


def test_lambda_config_stores_names_only():
    config = Lambda(lambda x: x * 2, output_shape=(3,)).get_config()
    assert config["function"] == "<lambda>" and config["output_shape"] == (3,) and config["arguments"] == {}
    with pytest.raises(ValueError, match="cannot rebuild the function '<lambda>', a Python lambda: fastnn stores "
                                         "a function's name, never its bytecode"):
        Lambda.from_config(config)

    def my_unregistered_fn(x):
        return x
    with pytest.raises(ValueError, match="'my_unregistered_fn', no function of that name is registered"):
        Lambda.from_config(Lambda(my_unregistered_fn).get_config())
    double = register_function(lambda x: x * 2, name="double_it")
    rebuilt = Lambda.from_config(Lambda(double, arguments={}).get_config())
    assert rebuilt.function is double and rebuilt.get_config()["function"] == "double_it"
    with pytest.raises(ValueError, match="pass name="):
        register_function(lambda x: x)


def test_identity():
    x = _inputs((2, 3))[0].astype(np.float32)
    layer = Identity()
    y, ctx = layer._forward(x, True)
    assert y is x and layer._backward(ctx, x) is x
    assert layer.compute_output_shape((None, 3)) == (None, 3)
    assert layer.get_config() == {"name": "identity", "trainable": True, "dtype": "float32"}


def test_dot_of_matrices_uses_fastnn_gemm_not_numpy_blas(monkeypatch):
    """Batched matrix products (P, Q > 1) go through fastnn's GEMM (numpy's BLAS threads would compete with
    fastnn's: issue #19); values and gradients against float64 numpy."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((3, 4, 6)).astype(np.float32), rng.standard_normal((3, 6, 5)).astype(np.float32)
    monkeypatch.setattr(np, "matmul", None)  # any use of numpy's matmul would fail
    layer = fastnn.layers.Dot(axes=(2, 1))
    y, ctx = layer._forward([x1, x2], True)
    want = np.einsum("bpn,bnq->bpq", x1.astype(np.float64), x2.astype(np.float64))
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-5)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    d1, d2 = layer._backward(ctx, dy)
    np.testing.assert_allclose(d1, np.einsum("bpq,bnq->bpn", dy, x2.astype(np.float64)), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(d2, np.einsum("bpn,bpq->bnq", x1.astype(np.float64), dy), rtol=1e-5, atol=1e-5)
