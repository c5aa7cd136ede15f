"""Backend selection: which compiled kernel table runs, thread control, build information."""
import os
import warnings

from fastnn import _C

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


def of(array):
    """The kernel table of ``array``'s device (today every array is a CPU numpy array: the active CPU table)."""
    return cpu


_SIMD_NAME = {"avx512": "avx512", "avx2": "avx2", "default": "generic"}


def capability():
    """Name of the CPU kernel table in use: "avx512", "avx2" or "default"."""
    return _C.active_isa


def tables():
    """Every CPU kernel table this machine can run, by name (for tests and benchmarks)."""
    return {name: getattr(_C, name) for name in _C.supported_isas}


def set_num_threads(n):
    """Set the number of OpenMP threads the kernels use (default: OMP_NUM_THREADS or all cores)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    _C.set_num_threads(n)


def get_num_threads():
    """Number of OpenMP threads the kernels use."""
    return _C.get_num_threads()


def build_info():
    """Compiler, OpenMP version, SIMD level in use and whether CUDA support was built."""
    try:
        from fastnn import _cuda  # noqa: F401
        cuda = True
    except ImportError:
        cuda = False
    return {
        "version": __import__("fastnn").__version__,
        "compiler": _C.compiler,
        "openmp": _C.openmp,
        "simd": _SIMD_NAME[_C.active_isa],
        "cpu_capability": _C.active_isa,
        "supported_isas": list(_C.supported_isas),
        "num_threads": _C.get_num_threads(),
        "cuda": cuda,
    }
