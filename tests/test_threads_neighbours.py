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


TRAIN = r"""
import sys, numpy as np, fastnn
fastnn.set_num_threads(int(sys.argv[1]))
fastnn.utils.set_random_seed(0)
model = fastnn.Sequential([fastnn.Input((256,)), fastnn.layers.Dense(256, activation="relu"),
                           fastnn.layers.Dense(10, activation="softmax")])
model.compile("adam", "sparse_categorical_crossentropy")
rng = np.random.default_rng(1)
x, y = rng.normal(size=(32, 256)).astype(np.float32), rng.integers(0, 10, 32)
for _ in range(300):
    model.train_on_batch(x, y)
np.save(sys.argv[2], np.concatenate([w.numpy().ravel() for w in model.weights]))
"""


def test_training_bit_identical_with_a_core_busy_elsewhere(tmp_path):
    # with another process on a core, chunks and GEMM row blocks go to whichever thread is free (parallel.h,
    # gemm.cpp) in an order that changes from step to step: the weights still equal those of one thread
    import fastnn
    cwd = os.path.dirname(os.path.dirname(fastnn.__file__))
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for nt in (2, 1):
            r = subprocess.run([sys.executable, "-c", TRAIN, str(nt), str(tmp_path / f"w{nt}.npy")], cwd=cwd,
                               capture_output=True, text=True, timeout=300)
            assert r.returncode == 0, r.stderr
    finally:
        spinner.kill()
        spinner.wait()
    np.testing.assert_array_equal(np.load(tmp_path / "w2.npy"), np.load(tmp_path / "w1.npy"))


def test_kernels_called_from_several_python_threads_at_once():
    """fastnn's pool runs one region at a time: a kernel called while another thread's region runs computes
    serially (csrc/pool.cpp). Results stay bit-identical to one call alone, for every thread."""
    import threading

    import fastnn
    rng = np.random.default_rng(3)
    x = rng.random((8, 17, 19, 5), np.float32)
    k = rng.random((3, 3, 5, 33), np.float32)
    a, b = rng.random((129, 300), np.float32), rng.random((300, 257), np.float32)
    want_conv, want_gemm = fastnn.kernels.conv2d(x, k), fastnn.kernels.gemm(a, b)
    bad = []

    def hammer():
        for _ in range(60):
            if not np.array_equal(fastnn.kernels.conv2d(x, k), want_conv):
                bad.append("conv2d")
            if not np.array_equal(fastnn.kernels.gemm(a, b), want_gemm):
                bad.append("gemm")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a kernel call hung"
    assert bad == []


@pytest.mark.parametrize("team,chunks", [(2, 1), (2, 2), (2, 7), (3, 64), (8, 5), (8, 1000), (64, 3)])
def test_pool_runs_every_chunk_once(team, chunks):
    """csrc/pool.cpp through its test hook: every chunk exactly once, for teams larger than the chunk count and
    than the machine's cores."""
    from fastnn import _C
    for _ in range(20):
        counts, error = _C._pool_check(team, chunks)
        assert error is None and counts == [1] * chunks


def test_pool_rethrows_a_chunks_exception_and_still_runs_the_others():
    from fastnn import _C
    counts, error = _C._pool_check(4, 50, 17)
    assert error == "chunk 17 failed" and counts == [1] * 50
    counts, error = _C._pool_check(4, 50)  # the pool still works after it
    assert error is None and counts == [1] * 50


def test_pool_from_several_python_threads_at_once():
    import threading

    from fastnn import _C
    bad = []

    def hammer():
        for _ in range(200):
            counts, error = _C._pool_check(2, 9)
            if error is not None or counts != [1] * 9:
                bad.append((counts, error))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads) and bad == []
