"""fastnn: Keras-compatible deep learning with hand-written C++ CPU kernels."""
__version__ = "0.1.0"

from fastnn.backend import build_info, get_num_threads, set_num_threads  # noqa: E402
from fastnn.devices import device  # noqa: E402
from fastnn import kernels  # noqa: E402,F401
from fastnn.tensor import GradientTape, Tensor, tensor, no_grad, is_grad_enabled  # noqa: E402
from fastnn import functional, autograd  # noqa: E402,F401
from fastnn import datasets, utils  # noqa: E402,F401

__all__ = ["__version__", "build_info", "device", "get_num_threads", "set_num_threads", "kernels",
           "GradientTape", "Tensor", "tensor", "no_grad", "is_grad_enabled", "functional", "autograd", "datasets", "utils"]

# Keras-like API, imported on first use (keeps `import fastnn` fast). `fastnn.keras` is the package
# itself, so `import fastnn as keras` and `import fastnn as tf; tf.keras.layers.Dense` both work.
_LAZY_MODULES = ("models", "layers", "optimizers", "losses", "metrics", "callbacks", "activations",
                 "initializers", "regularizers", "nn", "ops", "saving", "config")
_LAZY_MODULES += ("applications",)
# TensorFlow's top-level names (fastnn/tf_names.py, whose TF_NAMES table lists them all).
_TF_NAMES = ("reduce_mean", "reduce_sum", "reduce_max", "reduce_min", "argmax", "argmin", "concat", "stack",
             "matmul", "clip_by_value", "cast", "constant", "convert_to_tensor", "newaxis", "float32", "int32",
             "int64", "math", "version")
_TF_NAMES += ("expand_dims", "squeeze", "where", "add_n", "function", "strings", "data", "Variable")  # issue #21
_LAZY_NAMES = {"Sequential": "models", "Model": "models", "Input": "layers", **dict.fromkeys(_TF_NAMES, "tf_names")}


def __getattr__(name):
    import importlib
    import sys
    if name in _LAZY_MODULES:
        return importlib.import_module(f"fastnn.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"fastnn.{_LAZY_NAMES[name]}"), name)
    if name == "keras":
        return sys.modules[__name__]
    raise AttributeError(f"module 'fastnn' has no attribute {name!r}")


__all__ += list(_LAZY_MODULES) + list(_LAZY_NAMES) + ["keras"]

# data parallelism over MPI ranks (fastnn/distribution; mpi4py is imported only under mpiexec)
_LAZY_MODULES += ("distribution",)
__all__ += ["distribution"]

# `from fastnn.keras import layers` / `from fastnn.keras.models import Sequential` (issue #21)
from fastnn import _keras_alias  # noqa: E402

_keras_alias.install()
