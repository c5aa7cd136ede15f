"""The CUDA build without a GPU (runs everywhere): fastnn and fastnn._cuda import without a driver, report
no device, keep the CPU fast path, and refuse device work with a clear error. The kernels themselves are
tested on a GPU by tests/test_cuda_kernels.py."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import backend, devices

cuda = devices.cuda_module()
needs_module = pytest.mark.skipif(cuda is None, reason="fastnn was built without CUDA (FASTNN_CUDA=ON)")
no_gpu = pytest.mark.skipif(devices.cuda_available(), reason="a GPU is usable here: tests/test_cuda_kernels.py runs")


def test_build_info_and_memory_without_gpu():
    info = fastnn.build_info()
    assert info["cuda"] == (cuda is not None)
    assert info["cuda_available"] == (cuda is not None and cuda.device_count() > 0)
    assert backend.cuda_memory_allocated() >= 0


@needs_module
@no_gpu
def test_module_imports_without_a_driver_and_counts_no_device():
    assert cuda.device_count() == 0
    assert cuda.memory_allocated() == 0 and cuda.memory_reserved() == 0
    assert cuda.runtime_version() >= 12000
    # the same op names as the CPU table, so backend.of can hand it out for device arrays
    cpu_ops = {n for n in dir(backend.cpu) if n.endswith(("_forward", "_backward", "_update"))} | {"gemm", "dropout"}
    missing = sorted(n for n in cpu_ops if not hasattr(cuda, n))
    assert set(missing) <= {"conv2d_forward", "conv2d_backward", "maxpool2d_forward", "maxpool2d_backward",
                            "avgpool2d_forward", "avgpool2d_backward", "resample_forward", "resample_backward",
                            "resample_bilinear_forward", "resample_bilinear_backward"}, missing


@needs_module
@no_gpu
def test_device_work_without_gpu_raises_naming_the_count():
    with pytest.raises(RuntimeError, match="0 CUDA device"):
        cuda.to_device(np.ones(3, np.float32))
    with pytest.raises(RuntimeError, match="CUDA device"):
        cuda.empty((2, 3))
    with pytest.raises(RuntimeError, match="cuda"):
        fastnn.Tensor(np.ones(2, np.float32)).to("cuda")


@needs_module
def test_numpy_inputs_to_the_cuda_table_are_refused_as_host_device_mixing():
    with pytest.raises(TypeError, match="host and device"):
        cuda.relu_forward(np.ones(3, np.float32))
    with pytest.raises(TypeError, match="host and device"):
        cuda.gemm(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match="host and device"):
        cuda.sgd_update([np.ones(2, np.float32)], [np.ones(2, np.float32)])


@no_gpu
def test_of_stays_the_c_level_cpu_lookup_without_gpu():
    x = np.ones(3, np.float32)
    assert backend.of(x) is backend.cpu and backend.of([1.0]) is backend.cpu
    assert type(backend.of).__name__ == "partial"  # no Python frame per op call


def test_import_fastnn_with_a_broken_cublas_path_still_works():
    env = dict(os.environ, FASTNN_CUBLAS="/nonexistent/libcublas.so.13", PYTHONPATH=os.getcwd())
    code = "import fastnn; print(fastnn.build_info()['cuda'])"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))  # the fastnn under test, not a checkout's source
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == str(cuda is not None)


@needs_module
def test_cublas_candidates_start_with_the_forced_path(monkeypatch):
    from fastnn import _cuda_setup
    monkeypatch.setenv("FASTNN_CUBLAS", "/x/libcublas.so.13")
    cands = _cuda_setup.cublas_candidates()
    assert cands[0] == "/x/libcublas.so.13" and cands[-1] == "libcublas.so"
    assert cuda.cublas_path() is None or cuda.gemm_backend() in ("cublas", "tiled")
    with pytest.raises(ValueError, match="set_gemm_backend"):
        cuda.set_gemm_backend("fast")
    assert cuda.allow_tf32() is False  # fp32 by default, as Keras/TF
