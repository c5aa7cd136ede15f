"""fastnn beside other thread pools in one process (issue #19): numpy's OpenBLAS stops spinning soon after each
call (fastnn/_openblas.py), fastnn's own pool is visible and limitable through threadpoolctl, and the OpenMP wait
policy fastnn picks is not passed on to subprocesses."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastnn import _openblas

PROBE = r"""
import ctypes, json, os, numpy as np, fastnn
from fastnn import _openblas
libs = _openblas._loaded_openblas()
out = {"calmed": fastnn.backend.openblas_calmed, "env_left": "OPENBLAS_THREAD_TIMEOUT" in os.environ,
       "gomp_left": "GOMP_SPINCOUNT" in os.environ}
if libs:
    lib = ctypes.CDLL(libs[0], mode=os.RTLD_NOLOAD)
    out["timeout"] = lib.openblas_thread_timeout()
a = np.random.default_rng(0).random((300, 300))
out["matmul_ok"] = bool(np.allclose(a @ a, np.einsum("ij,jk->ik", a, a)))
print(json.dumps(out))
"""


def _probe(**env):
    e = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "FASTNN_KEEP_OPENBLAS")}
    import fastnn  # cwd: where the fastnn under test lives (from a checkout's root, "-c" imports its source)
    r = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, env={**e, **env},
                       cwd=os.path.dirname(os.path.dirname(fastnn.__file__)))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


needs_openblas = pytest.mark.skipif(not _openblas._loaded_openblas(), reason="numpy is not linked to OpenBLAS here")


@needs_openblas
def test_openblas_spin_is_shortened_and_numpy_still_right():
    out = _probe()
    assert out["calmed"] and out["timeout"] == int(_openblas.TIMEOUT_EXP)
    assert out["matmul_ok"] and not out["env_left"] and not out["gomp_left"]


@needs_openblas
@pytest.mark.parametrize("env", [{"OPENBLAS_THREAD_TIMEOUT": "7"}, {"FASTNN_KEEP_OPENBLAS": "1"}])
def test_a_users_openblas_choice_is_kept(env):
    out = _probe(**env)
    assert out["calmed"] == [] and out["matmul_ok"]
    assert out["timeout"] == (7 if "OPENBLAS_THREAD_TIMEOUT" in env else 0)


def test_threadpoolctl_sees_and_limits_fastnn_threads():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import fastnn
    before = fastnn.get_num_threads()
    info = threadpoolctl.threadpool_info()
    assert any(d["user_api"] == "openmp" for d in info)
    with threadpoolctl.threadpool_limits(1, user_api="openmp"):
        assert fastnn.get_num_threads() == 1
        x = np.random.default_rng(0).random((64, 64), np.float32)
        np.testing.assert_allclose(fastnn.kernels.gemm(x, x), x.astype(np.float64) @ x, rtol=1e-5, atol=1e-5)
    assert fastnn.get_num_threads() == before
