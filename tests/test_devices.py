"""The device seam without a GPU: names, scopes, defaults, FASTNN_DEVICE, Tensor.device/.to, build_info. With a
CUDA build and a GPU, the CUDA tests (tests/test_cuda*.py) cover the rest."""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastnn
from fastnn import devices

HAS_CUDA = devices.cuda_available()


@pytest.mark.parametrize("name,want", [("cpu", "cpu"), ("CPU", "cpu"), ("cpu:0", "cpu"), ("cuda", "cuda:0"),
                                       ("cuda:1", "cuda:1"), ("gpu:0", "cuda:0"), ("GPU", "cuda:0")])
def test_canonical_names(name, want):
    assert devices.canonical(name) == want


@pytest.mark.parametrize("name", ["tpu", "cuda:x", "cuda:-1", "", "cpu:1", "cuda:0:1"])
def test_unknown_device_names_are_refused_by_name(name):
    with pytest.raises(ValueError, match="device"):
        devices.canonical(name)


def test_device_name_must_be_a_string():
    with pytest.raises(TypeError, match="device name"):
        fastnn.device(0).__enter__()


def test_build_info_reports_cuda_and_availability():
    info = fastnn.build_info()
    assert info["cuda"] in (True, False) and info["cuda_available"] in (True, False)
    assert not info["cuda_available"] or info["cuda"]
    assert info["cuda_available"] == HAS_CUDA
    assert fastnn.backend.cuda_memory_allocated() >= 0


def test_default_device_and_scopes_nest_per_thread():
    assert devices.current_device() == ("cuda:0" if HAS_CUDA else "cpu")
    with fastnn.device("cpu") as dev:
        assert dev == "cpu" and devices.current_device() == "cpu"
        seen = []
        t = threading.Thread(target=lambda: seen.append(devices.current_device()))
        t.start()
        t.join()
        assert seen == [devices.default_device()]  # a scope belongs to its thread
    assert devices.current_device() == devices.default_device()


def test_layers_built_and_trained_inside_a_cpu_scope():
    with fastnn.device("cpu"):
        model = fastnn.Sequential([fastnn.Input((3,)), fastnn.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse")
        model.fit(np.ones((4, 3), np.float32), np.zeros((4, 2), np.float32), verbose=0)
    assert all(fastnn.Tensor(w).device == "cpu" for w in model.get_weights())


def test_tensor_device_and_to():
    t = fastnn.tensor(np.ones(3, np.float32))
    assert t.device == "cpu" and t.to("cpu") is t and t.to("CPU:0") is t


@pytest.mark.skipif(HAS_CUDA, reason="checks the message on a machine without a usable GPU")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "gpu:1"])
def test_cuda_without_a_gpu_says_why(name):
    with pytest.raises(RuntimeError, match="build_info"):
        fastnn.device(name).__enter__()
    with pytest.raises(RuntimeError, match="build_info"):
        fastnn.tensor(np.ones(2, np.float32)).to(name)


def _run(code, **env):
    # NOTE: cwd = where the fastnn under test lives (from a checkout's root, "-c" would import its uncompiled source)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          cwd=os.path.dirname(os.path.dirname(fastnn.__file__)),
                          env={**os.environ, **env})


def test_fastnn_device_environment_override():
    r = _run("from fastnn import devices; print(devices.current_device())", FASTNN_DEVICE="cpu")
    assert r.returncode == 0 and r.stdout.strip() == "cpu", r.stderr
    r = _run("from fastnn import devices; devices.current_device()", FASTNN_DEVICE="abacus")
    assert r.returncode != 0 and "unknown device 'abacus'" in r.stderr
