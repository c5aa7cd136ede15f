"""``keras.backend``'s configuration functions (Keras 2 spelling of ``keras.config``): the same functions.

Not yet reachable as ``fastnn.backend.*``: ``fastnn.backend`` is the kernel-selection module, imported
eagerly by ``import fastnn``; its owner decides whether it re-exports these names."""
from fastnn._naming import clear_session  # noqa: F401
from fastnn.config import epsilon, floatx, image_data_format  # noqa: F401

__all__ = ["image_data_format", "epsilon", "floatx", "clear_session"]
