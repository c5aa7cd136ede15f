"""numpy's OpenBLAS beside fastnn in one process (issue #19).

After each multi-threaded call, OpenBLAS's worker threads keep spinning for 2**28 cycles (~0.1 s) before they
sleep. A fastnn kernel that runs in that window shares a core with a spinning thread: measured on 2 cores, numpy and
fastnn 1024^3 products alternating in one process, fastnn kept 45% of its speed alone. With a spin of 2**22 cycles
(~1.6 ms: back-to-back numpy calls still find their threads awake) both keep >= 97%.

So at import, unless the user set ``OPENBLAS_THREAD_TIMEOUT`` (or ``FASTNN_KEEP_OPENBLAS=1``), fastnn shortens the
spin of every OpenBLAS already loaded in the process: it sets the variable, has OpenBLAS re-read its environment
(``openblas_read_env``) and stops its idle thread pool (``blas_thread_shutdown_``, what OpenBLAS's own fork handler
calls), which OpenBLAS restarts on its next call with the new timeout. The variable is removed again, so child
processes keep OpenBLAS's default. docs/threads.md has the recipe for doing this by hand.
"""
import ctypes
import os

TIMEOUT_EXP = "22"  # 2**22 cycles
_SYMBOLS = ("openblas_read_env", "blas_thread_shutdown_", "openblas_thread_timeout")


def _loaded_openblas():
    """Paths of the OpenBLAS libraries mapped into this process (numpy's, scipy's...)."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f if line.count(" ") >= 5 and "openblas" in line}
    except OSError:
        return []
    return sorted(p for p in paths if p.startswith("/") and ".so" in p)


def shorten_openblas_spin():
    """Shorten the idle spin of the loaded OpenBLAS libraries (see the module docstring); returns their paths."""
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ or os.environ.get("FASTNN_KEEP_OPENBLAS") == "1":
        return []
    done = []
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path, mode=getattr(os, "RTLD_NOLOAD", 4))
        except OSError:
            continue
        if not all(hasattr(lib, s) for s in _SYMBOLS):
            continue
        os.environ["OPENBLAS_THREAD_TIMEOUT"] = TIMEOUT_EXP
        try:
            lib.openblas_read_env()
            lib.blas_thread_shutdown_()
        finally:
            del os.environ["OPENBLAS_THREAD_TIMEOUT"]
        done.append(path)
    return done
