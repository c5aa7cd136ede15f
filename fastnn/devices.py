"""Devices (API.md "Devices"): ``fastnn.device("cpu" | "cuda" | "cuda:N")`` scopes where layers are built and
models run, as ``keras.device`` does. The default is ``cuda`` when a usable GPU and the CUDA module exist, else
``cpu``; ``FASTNN_DEVICE`` overrides it. Kernels are reached through ``backend.of(array)``, so code that runs on
arrays never names a device; this module only decides where new arrays go.
"""
import contextlib
import os
import threading

_local = threading.local()
_KINDS = {"cpu": "cpu", "cuda": "cuda", "gpu": "cuda"}  # Keras also spells a GPU "gpu"


def cuda_module():
    """The compiled CUDA module ``fastnn._cuda``, or None when fastnn was built without CUDA."""
    try:
        from fastnn import _cuda
    except ImportError:
        return None
    return _cuda


def cuda_available():
    """True when fastnn was built with CUDA and a GPU is usable now (a driver and at least one device)."""
    mod = cuda_module()
    return bool(mod is not None and mod.device_count() > 0)


def canonical(name):
    """``"cpu"`` or ``"cuda:N"`` for a device name (``cpu``, ``cpu:0``, ``cuda``, ``cuda:1``, ``gpu:0``; any case);
    a ValueError names anything else."""
    if not isinstance(name, str):
        raise TypeError(f"device: expected a device name such as 'cpu' or 'cuda:0', got {type(name).__name__}")
    kind, _, index = name.strip().lower().partition(":")
    if kind not in _KINDS or (index and not index.isdigit()):
        raise ValueError(f"device: unknown device {name!r}; expected 'cpu', 'cuda' or 'cuda:N' (also 'gpu:N')")
    if _KINDS[kind] == "cpu":
        if index not in ("", "0"):
            raise ValueError(f"device: {name!r}: there is one CPU device, 'cpu' (or 'cpu:0')")
        return "cpu"
    return f"cuda:{int(index or 0)}"


def check(device):
    """``device`` (canonical) if it can be used now, else a RuntimeError saying why."""
    if device == "cpu":
        return device
    mod = cuda_module()
    if mod is None:
        raise RuntimeError(f"device {device!r}: this fastnn was built without CUDA (fastnn.build_info()['cuda'] is "
                           f"False); rebuild with `FASTNN_CUDA=ON pip install .` on a machine with nvcc")
    count = mod.device_count()
    index = int(device.split(":")[1])
    if index >= count:
        raise RuntimeError(f"device {device!r}: {count} CUDA device(s) usable now "
                           f"(fastnn.build_info()['cuda_available'] is {count > 0})")
    return device


def default_device():
    """``FASTNN_DEVICE`` when set, else ``cuda:0`` when usable, else ``cpu``."""
    forced = os.environ.get("FASTNN_DEVICE")
    if forced:
        return check(canonical(forced))
    return "cuda:0" if cuda_available() else "cpu"


def current_device():
    """The device of the innermost ``fastnn.device`` scope of this thread, else the default."""
    stack = getattr(_local, "stack", None)
    return stack[-1] if stack else default_device()


@contextlib.contextmanager
def device(name):
    """Run the block on device ``name`` (``keras.device``): layers built and models trained inside use it.

    Args:
        name: "cpu", "cuda" (= "cuda:0"), "cuda:N"; Keras's "gpu:N" spelling is accepted.

    >>> import fastnn
    >>> with fastnn.device("cpu"):
    ...     layer = fastnn.layers.Dense(2)
    """
    dev = check(canonical(name))
    stack = _local.__dict__.setdefault("stack", [])
    stack.append(dev)
    try:
        yield dev
    finally:
        stack.pop()
