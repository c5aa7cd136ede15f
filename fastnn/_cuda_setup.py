"""Run-time setup of the CUDA module: finding cuBLAS. fastnn._cuda never links cuBLAS; it dlopens the library
named here, so ``import fastnn`` works whether or not cuBLAS is installed (the GEMM then uses fastnn's own
kernel). Search order: ``FASTNN_CUBLAS`` (a path), the ``nvidia-cublas`` wheel (``pip install fastnn[cuda]``;
its ``nvidia/cu13/lib`` or ``nvidia/cublas/lib`` folder), then the system loader's ``libcublas.so.13``."""
import glob
import importlib.util
import os

_SONAMES = ("libcublas.so.13", "libcublas.so")  # the module is built with CUDA 13


def _wheel_candidates():
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cu13/lib", "cublas/lib"):
            for name in _SONAMES:
                yield from sorted(glob.glob(os.path.join(root, sub, name)))


def cublas_candidates():
    """Paths and sonames tried for cuBLAS, in order."""
    forced = os.environ.get("FASTNN_CUBLAS")
    return ([forced] if forced else []) + list(_wheel_candidates()) + list(_SONAMES)


def load_cublas(mod):
    """Load cuBLAS into the CUDA module ``mod``; the path loaded, or None when none was found (then the GEMM
    runs on fastnn's tiled kernel). Never raises."""
    if mod.cublas_path() is not None:
        return mod.cublas_path()
    for path in cublas_candidates():
        try:
            if mod.load_cublas(path):
                return path
        except Exception:  # noqa: BLE001 - a broken candidate must not break import
            continue
    return None
