"""Backend selection: which compiled kernel table runs, thread control, build information."""
import functools
import itertools
import os
import warnings

import numpy as np

# NOTE (issue #19): libgomp reads its wait policy when _C loads it. Its default, spinning ~300,000 rounds after
# each parallel region before sleeping, keeps a core busy after every kernel, which starves whatever runs next on
# the machine (numpy's BLAS threads, a data loader, another process). Unless the user chose a policy, fastnn's
# threads spin only briefly, then sleep. Measured with the owner-first chunking of csrc/parallel.h (session 5,
# 2 threads, other processes paused; ms per training step):
#   spin rounds                        2,000   5,000   10,000   300,000 (libgomp's default)
#   MLP b32, idle                      0.199   0.172   0.171    0.172
#   seed CNN b128, idle                46.1    46.5    46.8     46.9
#   seed CNN b128, one core busy       85.2    87.7    94.5     81.4   (1 thread idle: 82.2)
#   numpy GEMM speed kept, alternating 99%     99%     99%      60%
# Short waits cost each kernel after a Python gap a wake-up (the MLP), long ones starve numpy's BLAS run next;
# 5,000 is the shortest that keeps the idle speed. The variable is set only while _C loads, so subprocesses
# (benchmark peers) keep their defaults; fastnn's own pool (csrc/pool.cpp, every kernel region since session 6)
# reads the same count when _C loads. FASTNN_SPIN_ROUNDS overrides the count (for measuring).
_SPIN_ROUNDS = os.environ.get("FASTNN_SPIN_ROUNDS", "5000")
_own_policy = not any(k in os.environ for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT"))
if _own_policy:
    os.environ["GOMP_SPINCOUNT"] = _SPIN_ROUNDS
try:
    from fastnn import _C
finally:
    if _own_policy:
        del os.environ["GOMP_SPINCOUNT"]

from fastnn import _openblas  # noqa: E402

# numpy (imported above) loaded its OpenBLAS: make its idle threads stop spinning soon after each call (_openblas.py)
openblas_calmed = _openblas.shorten_openblas_spin()

_ISAS = ("default", "avx2", "avx512")
_forced = os.environ.get("FASTNN_CPU_CAPABILITY")
if _forced and _forced not in _ISAS:
    warnings.warn(f"FASTNN_CPU_CAPABILITY={_forced!r} is not one of {_ISAS}; using {_C.active_isa!r}",
                  RuntimeWarning, stacklevel=2)
elif _forced and _forced not in _C.supported_isas:
    warnings.warn(f"FASTNN_CPU_CAPABILITY={_forced!r} is not supported by this CPU; using {_C.active_isa!r}",
                  RuntimeWarning, stacklevel=2)

cpu = _C.cpu     # the active CPU kernel table (a submodule of _C)
ref = _C.ref     # naive reference kernels: the test oracle


# of(array): the kernel table of the array's device. NOTE: every op calls it, 17 times per seed-CNN training
# step, and a Python frame each was measurable, so without a usable GPU (the common case) it is a C-level
# callable: next() of an endless repeat of the CPU table, the argument taken as next's unused default. With a
# GPU (a CUDA build and a driver) it is a function that returns the CUDA module for fastnn._cuda.Array and the
# CPU table for everything else (numpy arrays and array-likes keep the CPU path, one type check more).
def _make_of():
    from fastnn import devices
    mod = devices.cuda_module()
    if mod is None or mod.device_count() == 0:
        return functools.partial(next, itertools.repeat(cpu))
    from fastnn._cuda_setup import load_cublas
    load_cublas(mod)
    device_array = mod.Array

    def of(array):
        return mod if type(array) is device_array else cpu
    return of


of = _make_of()


def _f32_empty(shape):
    return np.empty(shape, np.float32)


def _f32_zeros(shape):
    return np.zeros(shape, np.float32)


# Allocation is part of a device's table, so that layer, op and optimizer code never names numpy:
# ``of(x).empty(shape)`` / ``of(x).zeros(shape)`` give float32 arrays on x's device.
for _table in [ref] + [getattr(_C, _name) for _name in _C.supported_isas]:
    _table.empty, _table.zeros = _f32_empty, _f32_zeros

_SIMD_NAME = {"avx512": "avx512", "avx2": "avx2", "default": "generic"}


def capability():
    """Name of the CPU kernel table in use: "avx512", "avx2" or "default"."""
    return _C.active_isa


def tables():
    """Every CPU kernel table this machine can run, by name (for tests and benchmarks)."""
    return {name: getattr(_C, name) for name in _C.supported_isas}


def set_num_threads(n):
    """Set the number of OpenMP threads the kernels use (default: OMP_NUM_THREADS or all cores).

    ``n`` must be between 1 and ``4 * cores`` (at least 64): more threads than that only slow the
    kernels down, and a thread OpenMP cannot create kills the process. In a child made by ``fork()``
    the kernels run on 1 thread (OpenMP's threads do not survive fork) and only ``n = 1`` is accepted.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    """Number of OpenMP threads the kernels use."""
    return _C.get_num_threads()


def build_info():
    """Compiler, OpenMP version, SIMD level in use, whether CUDA support was built (``cuda``) and whether a GPU is
    usable now (``cuda_available``)."""
    from fastnn import devices
    return {
        "version": __import__("fastnn").__version__,
        "compiler": _C.compiler,
        "openmp": _C.openmp,
        "simd": _SIMD_NAME[_C.active_isa],
        "cpu_capability": _C.active_isa,
        "supported_isas": list(_C.supported_isas),
        "num_threads": _C.get_num_threads(),
        "cuda": devices.cuda_module() is not None,
        "cuda_available": devices.cuda_available(),
    }


def cuda_memory_allocated():
    """Bytes of GPU memory held by fastnn's arrays (0 without a CUDA build)."""
    from fastnn import devices
    mod = devices.cuda_module()
    return 0 if mod is None else int(mod.memory_allocated())


# keras.backend's configuration functions (the Keras 2 spelling of keras.config), loaded on first use so that
# `import fastnn` stays light
def image_data_format():
    """``"channels_last"``: the only layout fastnn computes in."""
    from fastnn.config import image_data_format as f
    return f()


def epsilon():
    """Keras's fuzz factor (1e-7)."""
    from fastnn.config import epsilon as f
    return f()


def floatx():
    """``"float32"``: the only float type fastnn computes in."""
    from fastnn.config import floatx as f
    return f()


def clear_session():
    """Reset the automatic layer/model names (``dense``, ``dense_1``, ...)."""
    from fastnn._naming import clear_session as f
    return f()
