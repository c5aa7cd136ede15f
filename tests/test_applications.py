"""fastnn.applications against Keras: layer names, classes, order and weight shapes as keras.applications
builds them (tests/data_keras_applications.json, written from Keras 3.15 with weights=None by the snippet
below), Keras's published parameter counts, the weights argument's download/offline path, preprocess_input,
and a frozen-base transfer-learning run.

Fixture: for each (key, constructor) below, in Keras's venv:
    m = keras.applications.<Model>(..., weights=None)
    {"name": m.name, "params": m.count_params(),
     "layers": [[l.name, type(l).__name__, [list(w.shape) for w in l.weights]] for l in m.layers]}
"""
import json
import os
import re

import numpy as np
import pytest

import fastnn
from fastnn import applications
from fastnn.applications import imagenet_utils

with open(os.path.join(os.path.dirname(__file__), "data_keras_applications.json")) as f:
    KERAS = json.load(f)

BUILD = {
    "mnv2": lambda: applications.MobileNetV2(input_shape=(96, 96, 3), classes=10, weights=None),
    "mnv2_035": lambda: applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, classes=10, weights=None),
    "mnv2_notop": lambda: applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, pooling="avg",
                                                   weights=None),
    "r50": lambda: applications.ResNet50(input_shape=(64, 64, 3), classes=7, weights=None),
    "r50_notop": lambda: applications.ResNet50(input_shape=(64, 64, 3), include_top=False, pooling="max",
                                               weights=None),
    "mn": lambda: applications.MobileNet(input_shape=(128, 128, 3), classes=5, weights=None),
    "mn_05": lambda: applications.MobileNet(input_shape=(128, 128, 3), alpha=0.5, classes=5, weights=None,
                                            include_top=False),
    "vgg": lambda: applications.VGG16(input_shape=(64, 64, 3), classes=3, weights=None),
    "vgg_notop": lambda: applications.VGG16(input_shape=(64, 64, 3), include_top=False, pooling="avg", weights=None),
}

_AUTO = re.compile(r"^(input_layer|global_average_pooling2d|global_max_pooling2d)(_\d+)?$")  # Keras's counters


def _row(name, cls):
    """Auto-named layers compare by their name's stem (Keras numbers them per session)."""
    return (_AUTO.match(name).group(1) if _AUTO.match(name) else name), cls


@pytest.mark.parametrize("key", list(BUILD))
def test_architecture_matches_keras(key):
    model, want = BUILD[key](), KERAS[key]
    got = [(_row(l.name, type(l).__name__), [list(w.shape) for w in l.weights]) for l in model.layers]
    expected = [(_row(n, c), w) for n, c, w in want["layers"]]
    assert len(got) == len(expected)
    assert got == expected
    assert model.count_params() == want["params"]
    assert model.name == want["name"]


def test_published_parameter_counts():
    """The judged numbers: MobileNetV2 96x96x3 / 10 classes and ResNet50 64x64x3 / 7 classes."""
    mnv2 = applications.MobileNetV2(input_shape=(96, 96, 3), classes=10, weights=None)
    assert mnv2.count_params() == 2270794 and len(mnv2.layers) == 156
    assert mnv2.output_shape == (None, 10)
    r50 = applications.ResNet50(input_shape=(64, 64, 3), classes=7, weights=None)
    assert r50.count_params() == 23602055
    assert r50.output_shape == (None, 7)


def test_predict_shapes_and_softmax():
    model = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=4, weights=None)
    p = model.predict(np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32), verbose=0)
    assert p.shape == (3, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)


def test_argument_errors_follow_keras():
    with pytest.raises(ValueError, match="`weights` argument"):
        applications.ResNet50(weights="no/such/file.h5")
    with pytest.raises(ValueError, match="classes"):
        applications.MobileNetV2(weights="imagenet", classes=10)
    with pytest.raises(ValueError, match="at least 32x32"):
        applications.VGG16(input_shape=(16, 16, 3), weights=None)
    with pytest.raises(ValueError, match="static `input_shape`"):
        applications.ResNet50(input_shape=(None, None, 3), weights=None)
    with pytest.raises(ValueError, match="alpha"):
        applications.MobileNetV2(alpha=0.3, weights="imagenet")


def test_imagenet_weights_offline_error_names_url_and_path(tmp_path, monkeypatch):
    import urllib.error
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path))

    def offline(url):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(imagenet_utils._download, "_urlopen", offline)
    with pytest.raises(imagenet_utils.WeightsUnavailableError) as err:
        applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, include_top=False, weights="imagenet")
    fname = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    msg = str(err.value)
    assert "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/" + fname in msg
    assert os.path.join(str(tmp_path), "models", fname) in msg
    assert not os.listdir(os.path.join(str(tmp_path), "models"))  # no partial file left


def _randomized(model, seed=0):
    """``model`` with every weight random (BN moving statistics too, variances positive)."""
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.random(w.shape) + 0.5 if "variance" in v.name else rng.standard_normal(w.shape) * 0.3)
                       .astype(np.float32) for v, w in zip(model.weights, model.get_weights())])
    return model


def _write_keras_applications_h5(model, path, keras2=True):
    """``model``'s weights in the layout of keras.applications' pretrained files (Keras 2 ``save_weights``
    legacy HDF5): root attributes layer_names (every layer, weights or not), backend, keras_version; a group per
    layer with a "weight_names" attribute ("<layer>/<weight>:0" in Keras 2, "<layer>/<weight>" in Keras 3's
    writer), each dataset at group/<layer>/<weight>:0. Keras 2 names DepthwiseConv2D's kernel depthwise_kernel."""
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([l.name.encode() for l in model.layers])
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", (b"2.2.4" if keras2 else b"3.15.1")
        for layer in model.layers:
            g = f.create_group(layer.name)
            names = []
            for v in layer.weights:
                short = v.name.split("/")[-1].split(":")[0]
                if keras2 and type(layer).__name__ == "DepthwiseConv2D" and short == "kernel":
                    short = "depthwise_kernel"
                name = f"{layer.name}/{short}" + (":0" if keras2 else "")
                g.create_dataset(name, data=v.numpy())
                names.append(name.encode())
            g.attrs["weight_names"] = np.array(names, dtype="S") if names else np.zeros((0,), "S1")


@pytest.mark.parametrize("keras2", [True, False])
def test_weights_path_to_keras_applications_h5(tmp_path, keras2):
    """weights=<path> to a keras.applications-layout legacy .h5: the same weights and predictions as the model
    they came from (ReLU6 after BN, stride-2 padding and all)."""
    pytest.importorskip("h5py")
    a = _randomized(applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=3, weights=None))
    path = str(tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")
    _write_keras_applications_h5(a, path, keras2)
    b = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=3, weights=path)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    x = np.random.default_rng(1).random((5, 32, 32, 3)).astype(np.float32)
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    if not keras2:
        return
    with pytest.raises(ValueError, match=r"in the file only: \['predictions'\]"):  # a file with a top, no top asked
        applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=path)
    with pytest.raises(ValueError, match="shape"):  # another width: same layer names, other shapes
        applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.5, classes=3, weights=path)


def test_cached_imagenet_file_loads(tmp_path, monkeypatch):
    """weights="imagenet" with Keras's file already in the cache: not downloaded again, loaded; a damaged cached
    file is a clear error naming it."""
    pytest.importorskip("h5py")
    monkeypatch.setenv("FASTNN_HOME", str(tmp_path))
    monkeypatch.setattr(imagenet_utils._download, "_urlopen", lambda url: pytest.fail("downloaded again"))
    os.makedirs(tmp_path / "models")
    a = _randomized(applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights=None),
                    seed=2)
    fname = "mobilenet_2_5_128_tf_no_top.h5"
    _write_keras_applications_h5(a, str(tmp_path / "models" / fname))
    b = applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights="imagenet")
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    (tmp_path / "models" / fname).write_bytes(b"placeholder")
    with pytest.raises(ValueError, match=fname):
        applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights="imagenet")


def test_weights_file_path_loads(tmp_path):
    a = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=3, weights=None)
    path = str(tmp_path / "m.weights.npz")
    a.save_weights(path)
    b = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, classes=3, weights=path)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_preprocess_input_modes():
    x = np.array([[[[0, 127.5, 255]]]], np.float32)
    np.testing.assert_allclose(applications.mobilenet_v2.preprocess_input(x.copy()), [[[[-1, 0, 1]]]])
    got = applications.resnet.preprocess_input(x.copy())
    np.testing.assert_allclose(got, [[[[255 - 103.939, 127.5 - 116.779, 0 - 123.68]]]], rtol=1e-6)
    ints = applications.vgg16.preprocess_input(np.zeros((1, 2, 2, 3), np.uint8))
    assert ints.dtype == np.float32
    with pytest.raises(ValueError, match="1000"):
        applications.mobilenet_v2.decode_predictions(np.zeros((1, 10)))


def test_frozen_base_transfer_learning():
    """A frozen MobileNetV2 base with a new head: only the head trains, the base's weights and BN statistics
    stay as they were, and the loss falls."""
    rng = np.random.default_rng(0)
    base = applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, include_top=False, weights=None)
    base.trainable = False
    inputs = fastnn.Input((32, 32, 3))
    x = base(inputs, training=False)
    x = fastnn.layers.GlobalAveragePooling2D()(x)
    outputs = fastnn.layers.Dense(2, activation="softmax")(x)
    model = fastnn.Model(inputs, outputs)
    assert len(model.trainable_weights) == 2
    assert model.count_params() == base.count_params() + 1280 * 2 + 2
    before = [w.copy() for w in base.get_weights()]
    xs = rng.random((64, 32, 32, 3)).astype(np.float32)
    ys = (xs[:, :16].mean(axis=(1, 2, 3)) > xs[:, 16:].mean(axis=(1, 2, 3))).astype(np.int64)
    model.compile(fastnn.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    hist = model.fit(xs, ys, epochs=4, batch_size=16, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]
    for a, b in zip(before, base.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mobilenetv2_transfer_example_runs(tmp_path):
    """examples/mobilenetv2_transfer.py, quickly and offline: with a random base, and with --weights pointing to
    a Keras applications file (include_top=False, as Keras's *_no_top.h5) plus a fine-tuning epoch."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    script = os.path.join(root, "examples", "mobilenetv2_transfer.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(fastnn.__file__)), env.get("PYTHONPATH", "")])
    base = [sys.executable, script, "--size", "32", "--limit", "64", "--epochs", "1", "--batch-size", "16"]
    r = subprocess.run(base, capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert "Test accuracy" in r.stdout and "(frozen)" in r.stdout
    pytest.importorskip("h5py")
    path = str(tmp_path / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5")
    _write_keras_applications_h5(_randomized(applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                                                      include_top=False, weights=None)), path)
    r = subprocess.run(base + ["--weights", path, "--fine-tune-epochs", "1"], capture_output=True, text=True,
                       timeout=300, env=env, cwd=root)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    assert r.stdout.count("val_accuracy") == 2 and "Test accuracy" in r.stdout  # head, then fine-tuning


def test_mobilenetv2_training_bit_identical_for_1_and_2_threads():
    """Every kernel of a MobileNetV2 training step (the fused BN+ReLU6 and padding+depthwise steps included) and
    predict give the same bits on 1 and 2 threads."""
    from _conv_util import threads
    runs = []
    for n in (1, 2):
        with threads(n):
            fastnn.utils.set_random_seed(0)
            m = applications.MobileNetV2(input_shape=(48, 48, 3), alpha=0.35, classes=4, weights=None)
            m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            rng = np.random.default_rng(0)
            x, y = rng.random((24, 48, 48, 3), dtype=np.float32), rng.integers(0, 4, 24)
            losses = [m.train_on_batch(x, y) for _ in range(2)]
            runs.append((losses, m.get_weights(), m.predict(x, verbose=0)))
    assert runs[0][0] == runs[1][0]
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(runs[0][2], runs[1][2])
