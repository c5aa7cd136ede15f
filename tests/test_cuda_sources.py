"""The CUDA module's host sources (csrc/cuda/*.cpp) still compile against the CPU headers they share
(resolve/, ops/, bind/optim_defs.h). A GPU build is rare here, so a renamed shared helper would otherwise
break `FASTNN_CUDA=ON` unnoticed (it did once: a check renamed on the CPU side). Syntax only, no nvcc;
runs where the CUDA headers and a C++ compiler are installed (skipped otherwise)."""
import glob
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CUDA_INCLUDE = next((d for d in (os.environ.get("CUDA_HOME", "") + "/include", "/usr/local/cuda/include")
                     if os.path.isfile(os.path.join(d, "cuda_runtime_api.h"))), None)
SOURCES = sorted(glob.glob(os.path.join(ROOT, "csrc", "cuda", "*.cpp")))


@pytest.mark.skipif(CUDA_INCLUDE is None or shutil.which("g++") is None, reason="no CUDA headers or g++")
def test_cuda_host_sources_compile():
    pybind11 = pytest.importorskip("pybind11")
    import sysconfig
    assert SOURCES, "csrc/cuda has no host sources"
    flags = ["g++", "-std=c++17", "-fvisibility=hidden", "-fsyntax-only", "-I" + os.path.join(ROOT, "csrc"),
             "-I" + pybind11.get_include(), "-I" + sysconfig.get_paths()["include"], "-I" + CUDA_INCLUDE]

    def check(src):
        p = subprocess.run(flags + [src], capture_output=True, text=True)
        return src, p.returncode, p.stderr[-2000:]

    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        failed = [(s, err) for s, rc, err in pool.map(check, SOURCES) if rc != 0]
    assert not failed, "\n".join(f"{os.path.relpath(s, ROOT)}:\n{err}" for s, err in failed)
