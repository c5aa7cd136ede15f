"""Inputs found by fuzzing that gave silently wrong results or killed the process: each is now an
error naming the problem (or, for fork, works)."""
import multiprocessing

import numpy as np
import pytest

import fastnn
from fastnn import _C, kernels


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---- out= aliasing an input ------------------------------------------------------------------

@pytest.mark.parametrize("which", ["a", "b"])
def test_gemm_out_aliasing_an_input_is_refused(which):
    a, b = _rand(8, 8), _rand(8, 8, seed=1)
    with pytest.raises(ValueError, match=f"gemm: out overlaps input {which}; pass a separate array"):
        kernels.gemm(a, b, out=a if which == "a" else b)


def test_gemm_out_overlapping_a_transposed_view_is_refused():
    a = _rand(8, 8)
    with pytest.raises(ValueError, match="out overlaps input a"):
        kernels.gemm(a.T, _rand(8, 8, seed=1), out=a)


def test_gemm_out_may_be_c_and_a_disjoint_slice_of_a_shared_buffer():
    buf = _rand(3, 8, 8)
    want = buf[0] @ buf[1] + buf[2]
    got = kernels.gemm(buf[0], buf[1], buf[2], beta=1.0, out=buf[2])
    assert got is buf[2] or np.shares_memory(got, buf[2])
    np.testing.assert_allclose(buf[2], want, rtol=1e-5, atol=1e-5)


def test_conv2d_same_padding_out_is_x_is_refused():
    x = _rand(1, 5, 5, 2)
    with pytest.raises(ValueError, match="conv2d: out overlaps input x"):
        kernels.conv2d(x, _rand(3, 3, 2, 2, seed=1), padding="same", out=x)


@pytest.mark.parametrize("pool", [kernels.avg_pool2d, kernels.max_pool2d])
def test_pool_1x1_out_is_x_is_refused(pool):
    x = _rand(1, 4, 4, 3)
    with pytest.raises(ValueError, match="pool2d: out overlaps input x"):
        pool(x, 1, out=x)


def test_elementwise_out_on_a_shifted_view_of_x_is_refused():
    buf = _rand(65)
    with pytest.raises(ValueError, match="exp_forward: out overlaps input x"):
        kernels.exp(buf[:64], out=buf[1:])


@pytest.mark.parametrize("op", [
    lambda x, out: kernels.exp(x, out=out),
    lambda x, out: kernels.relu(x, out=out),
    lambda x, out: kernels.softmax(x, out=out),
    lambda x, out: kernels.log_softmax(x, out=out),
    lambda x, out: kernels.dropout(x, 0.5, 7, out=out),
], ids=["exp", "relu", "softmax", "log_softmax", "dropout"])
def test_elementwise_in_place_is_still_allowed(op):
    x = _rand(16, 40)
    want = op(x.copy(), None)
    got = op(x, x)
    assert np.shares_memory(got, x)
    np.testing.assert_array_equal(x, want)


def test_unary_backward_in_place_on_dy_is_allowed():
    x, dy = _rand(100), _rand(100, seed=1)
    want = _C.cpu.tanh_backward(dy.copy(), x)
    _C.cpu.tanh_backward(dy, x, out=dy)
    np.testing.assert_array_equal(dy, want)


def test_loss_out_overlapping_logits_is_refused():
    x = _rand(4, 4)
    with pytest.raises(ValueError, match="softmax_xent_backward: out overlaps input logits"):
        _C.cpu.softmax_xent_backward(1.0, x, np.zeros(4, np.float32), np.arange(4), out=x)


# ---- complex and object inputs ---------------------------------------------------------------

@pytest.mark.parametrize("call", [lambda z: kernels.relu(z), lambda z: kernels.gemm(z, np.eye(2)),
                                  lambda z: kernels.relu([[1 + 1j, 2]])], ids=["relu", "gemm", "list"])
def test_complex_input_is_refused_not_truncated(call):
    with pytest.raises(TypeError, match="complex128"):
        call(np.array([[1 + 2j, 3], [4, 5]]))


def test_object_array_input_is_refused():
    with pytest.raises(TypeError, match="got dtype object"):
        kernels.relu(np.array([1.0, None], dtype=object))


def test_tensor_of_none_is_a_type_error():
    with pytest.raises(TypeError, match="None"):
        fastnn.tensor(None)


# ---- thread count ----------------------------------------------------------------------------

@pytest.mark.parametrize("n", [100000, 2 ** 70])
def test_set_num_threads_refuses_more_than_the_bound(n):
    old = fastnn.get_num_threads()
    with pytest.raises(ValueError, match=f"n must be <= {_C.max_num_threads} "):
        fastnn.set_num_threads(n)
    assert fastnn.get_num_threads() == old
    assert _C.max_num_threads >= 64


def test_set_num_threads_accepts_the_bound():
    old = fastnn.get_num_threads()
    try:
        fastnn.set_num_threads(_C.max_num_threads)
        assert fastnn.get_num_threads() == _C.max_num_threads
    finally:
        fastnn.set_num_threads(old)


# ---- fork after a parallel kernel --------------------------------------------------------------

def _gemm_in_child():
    a = _rand(256, 256)
    err = float(np.abs(kernels.gemm(a, a) - a @ a).max())
    try:
        fastnn.set_num_threads(2)
        refused = False
    except ValueError:
        refused = True
    return err, fastnn.get_num_threads(), refused


def test_forked_child_runs_kernels_on_one_thread_instead_of_hanging():
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(2)
    try:
        a = _rand(256, 256)
        kernels.gemm(a, a)  # starts the parent's OpenMP threads
        with multiprocessing.get_context("fork").Pool(1) as pool:
            err, threads, refused = pool.apply_async(_gemm_in_child).get(timeout=60)
    finally:
        fastnn.set_num_threads(old)
    assert err < 1e-3
    assert threads == 1 and refused
    assert fastnn.get_num_threads() == old  # the parent is unaffected


# ---- huge strides, pool sizes and dilations --------------------------------------------------

@pytest.mark.parametrize("value", [2 ** 31, 2 ** 63 - 1, 2 ** 64, (1, 2 ** 70)])
@pytest.mark.parametrize("arg", ["strides", "dilation_rate"])
def test_conv2d_huge_pair_argument_is_a_value_error_naming_it(arg, value):
    x, k = _rand(1, 8, 8, 2), _rand(3, 3, 2, 2, seed=1)
    for padding in ("valid", "same"):
        with pytest.raises(ValueError, match=f"conv2d: {arg} must be <= 2147483647"):
            kernels.conv2d(x, k, padding=padding, **{arg: value})


@pytest.mark.parametrize("arg", ["pool_size", "strides"])
def test_pool_huge_pair_argument_is_a_value_error_naming_it(arg):
    x = _rand(1, 8, 8, 2)
    for value in (2 ** 63 - 1, 2 ** 64):
        with pytest.raises(ValueError, match=f"avgpool2d: {arg} must be <= 2147483647"):
            kernels.avg_pool2d(x, padding="same", **{"pool_size": 2, arg: value})


def test_largest_accepted_strides_and_dilation_give_keras_shapes():
    x, k, big = _rand(1, 8, 8, 2), _rand(3, 3, 2, 2, seed=1), 2 ** 31 - 1
    # "same": ceil(8 / stride) = 1 output cell; "valid": one window
    assert kernels.conv2d(x, k, strides=big, padding="same").shape == (1, 1, 1, 2)
    assert kernels.conv2d(x, k, strides=big).shape == (1, 1, 1, 2)
    assert kernels.avg_pool2d(x, 2, strides=big, padding="same").shape == (1, 1, 1, 2)
    # a dilated window far larger than x: only the centre tap lands in the image
    y = kernels.conv2d(x, k, dilation_rate=big, padding="same")
    np.testing.assert_allclose(y, kernels.conv2d(x, k[1:2, 1:2]), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="larger than the input"):
        kernels.conv2d(x, k, dilation_rate=big)


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_sparse_labels_are_a_value_error_naming_the_labels(bad):
    model = fastnn.Sequential([fastnn.Input((4,)), fastnn.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="labels contain NaN or infinity"):
        model.fit(np.ones((4, 4), np.float32), np.array([0, 1, bad, 2]), verbose=0)
