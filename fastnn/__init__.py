"""fastnn: Keras-compatible deep learning with hand-written C++ CPU kernels."""
__version__ = "0.1.0"

from fastnn.backend import build_info, get_num_threads, set_num_threads  # noqa: E402
from fastnn import kernels  # noqa: E402,F401
from fastnn.tensor import Tensor, tensor, no_grad, is_grad_enabled  # noqa: E402
from fastnn import functional, autograd  # noqa: E402,F401
from fastnn import datasets, utils  # noqa: E402,F401

__all__ = ["__version__", "build_info", "get_num_threads", "set_num_threads", "kernels",
           "Tensor", "tensor", "no_grad", "is_grad_enabled", "functional", "autograd", "datasets", "utils"]
