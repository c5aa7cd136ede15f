"""The TensorFlow/Keras alias names (fastnn/tf_names.py, fastnn/config.py, fastnn/nn.py) against numpy."""
import importlib
import os

import numpy as np
import pytest

import fastnn as tf
from fastnn import backend, config, tf_names

X = np.array([[1.0, -2.0, 3.0], [0.5, 4.0, -1.0]], np.float32)


def _resolve(dotted):
    """Walk a dotted name from the fastnn package ("tf."/"keras." stand for `import fastnn as ...`)."""
    head, *rest = dotted.split(".")
    obj = tf if head in ("tf", "keras") else importlib.import_module(head)
    for part in rest:
        obj = getattr(obj, part)
    return obj


@pytest.mark.parametrize("name,target", sorted(tf_names.TF_NAMES.items()))
def test_every_table_entry_resolves(name, target):
    assert _resolve(target) is not None
    _resolve(name)


def test_top_level_lazy_names_are_the_table():
    top = {n[len("tf."):].split(".")[0] for n in tf_names.TF_NAMES if n.startswith("tf.")}
    assert top - {"random", "config", "nn"} <= set(tf._TF_NAMES) | {"version", "math"}


@pytest.mark.parametrize("name,ref", [("reduce_mean", np.mean), ("reduce_sum", np.sum),
                                      ("reduce_max", np.max), ("reduce_min", np.min)])
def test_reductions(name, ref):
    for fn in (getattr(tf, name), getattr(tf.math, name)):
        np.testing.assert_allclose(fn(X).numpy(), ref(X), rtol=1e-6)
        np.testing.assert_allclose(fn(X, axis=1).numpy(), ref(X, axis=1), rtol=1e-6)
        np.testing.assert_allclose(fn(input_tensor=X, axis=0, keepdims=True).numpy(),
                                   ref(X, axis=0, keepdims=True), rtol=1e-6)


def test_argmax_defaults_to_axis_0_and_int64():
    for fn, ref in ((tf.argmax, np.argmax), (tf.math.argmin, np.argmin)):
        out = fn(X)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, ref(X, axis=0))
        np.testing.assert_array_equal(fn(X, axis=1, output_type=tf.int32), ref(X, axis=1))


def test_concat_stack_matmul_clip_cast_constant():
    np.testing.assert_array_equal(tf.concat([X, X], 1).numpy(), np.concatenate([X, X], 1))
    np.testing.assert_array_equal(tf.stack([X, X]).numpy(), np.stack([X, X]))
    np.testing.assert_array_equal(tf.stack(values=[X, X], axis=1).numpy(), np.stack([X, X], 1))
    np.testing.assert_allclose(tf.matmul(X, X, transpose_b=True).numpy(), X @ X.T, rtol=1e-6)
    np.testing.assert_allclose(tf.matmul(X, X, transpose_a=True).numpy(), X.T @ X, rtol=1e-6)
    batch = np.stack([X, 2 * X])
    np.testing.assert_allclose(tf.matmul(batch, batch, transpose_a=True).numpy(),
                               np.swapaxes(batch, 1, 2) @ batch, rtol=1e-6)
    np.testing.assert_array_equal(tf.clip_by_value(X, -1.0, 2.0).numpy(), np.clip(X, -1, 2))
    np.testing.assert_array_equal(tf.cast(X, tf.int32), X.astype(np.int32))
    np.testing.assert_array_equal(tf.constant(1.5, shape=(2, 2)).numpy(), np.full((2, 2), 1.5))
    np.testing.assert_array_equal(tf.constant([1.0, 2, 3, 4], shape=(2, 2)).numpy(), [[1, 2], [3, 4]])
    assert tf.convert_to_tensor(X).numpy().dtype == tf.float32
    assert X[:, tf.newaxis].shape == (2, 1, 3)


@pytest.mark.parametrize("name,ref", [("log", np.log), ("exp", np.exp), ("sqrt", np.sqrt),
                                      ("square", np.square), ("abs", np.abs), ("tanh", np.tanh),
                                      ("sigmoid", lambda v: 1 / (1 + np.exp(-v)))])
def test_math_unary(name, ref):
    v = np.abs(X) + 0.5
    np.testing.assert_allclose(getattr(tf.math, name)(v).numpy(), ref(v), rtol=1e-5)


def test_math_binary_and_softmax():
    np.testing.assert_array_equal(tf.math.maximum(X, 0.0).numpy(), np.maximum(X, 0))
    np.testing.assert_array_equal(tf.math.minimum(X, 0.0).numpy(), np.minimum(X, 0))
    e = np.exp(X - X.max(-1, keepdims=True))
    np.testing.assert_allclose(tf.math.softmax(X).numpy(), e / e.sum(-1, keepdims=True), rtol=1e-5)


def test_sparse_softmax_cross_entropy_value_and_gradient():
    labels = np.array([2, 1])
    logits = tf.tensor(X, requires_grad=True)
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    logp = X - np.log(np.exp(X).sum(-1, keepdims=True))
    np.testing.assert_allclose(loss.numpy(), -logp[[0, 1], labels], rtol=1e-5)
    loss.sum().backward()
    np.testing.assert_allclose(logits.grad.numpy(), np.exp(logp) - np.eye(3)[labels], atol=1e-6)


def test_gradients_flow_through_reduce_matmul_clip():
    x = tf.tensor(X, requires_grad=True)
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(tf.matmul(tf.clip_by_value(x, -1.0, 2.0), np.ones((3, 1)), transpose_b=False))
    grad = tape.gradient(y, x)
    np.testing.assert_array_equal(grad.numpy(), ((X >= -1) & (X <= 2)).astype(np.float32))
    x2 = tf.tensor(X, requires_grad=True)
    tf.reduce_mean(tf.concat([x2, x2], axis=0)).backward()
    np.testing.assert_allclose(x2.grad.numpy(), np.full(X.shape, 2 / 12), rtol=1e-6)


def test_random_reproducible_with_set_seed():
    rnd = tf.random
    rnd.set_seed(7)
    a, b = rnd.normal((3, 4), mean=1.0, stddev=2.0), rnd.uniform((5,), minval=2, maxval=3)
    rnd.set_seed(7)
    np.testing.assert_array_equal(a.numpy(), rnd.normal((3, 4), mean=1.0, stddev=2.0).numpy())
    np.testing.assert_array_equal(b.numpy(), rnd.uniform((5,), minval=2, maxval=3).numpy())
    assert a.shape == (3, 4) and ((b.numpy() >= 2) & (b.numpy() < 3)).all()
    np.testing.assert_array_equal(rnd.normal((2,), seed=3).numpy(), rnd.normal((2,), seed=3).numpy())
    ints = rnd.uniform((100,), maxval=4, dtype=tf.int32)
    assert ints.dtype == np.int32 and set(ints.tolist()) <= {0, 1, 2, 3}


def test_version_and_devices():
    assert tf.version.VERSION == tf.__version__
    assert tf.config.list_physical_devices("GPU") == []
    (cpu,) = tf.config.list_physical_devices()
    assert cpu.name == "/physical_device:CPU:0" and cpu.device_type == "CPU"
    assert tf.config.list_physical_devices("CPU") == [cpu]


def test_keras_config_and_backend():
    for mod in (config, backend):
        assert mod.image_data_format() == "channels_last"
        assert mod.epsilon() == 1e-7
        assert mod.floatx() == "float32"
    backend.clear_session()
    config.set_floatx("float32")
    with pytest.raises(ValueError, match="float32"):
        tf.config.set_floatx("float64")


def test_import_fastnn_stays_light():
    import subprocess
    import sys
    code = "import sys, fastnn; print(any(m in sys.modules for m in ('fastnn.ops', 'fastnn.tf_names', 'fastnn.config')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.dirname(tf.__file__)))  # the fastnn under test, as test_package
    assert out.stdout.strip() == "False"
