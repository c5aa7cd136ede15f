"""Names shared by layers, models, losses, metrics and saving: Keras's snake_case class names, the
per-prefix unique-name counters (``dense``, ``dense_1``, ...) and how shapes are printed."""
import re

_NAME_UIDS = {}


def _snake_case(name):
    """Keras's to_snake_case: "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d"."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``, ... (per prefix, as Keras's get_uid)."""
    uid = _NAME_UIDS.get(prefix, 0)
    _NAME_UIDS[prefix] = uid + 1
    return prefix if uid == 0 else f"{prefix}_{uid}"


def clear_session():
    """Reset the automatic layer/model names (``dense``, ``dense_1``, ...), as ``keras.utils.clear_session()``."""
    _NAME_UIDS.clear()


def shape_str(shape):
    """``(None, 784)`` for a shape tuple (Keras's way of printing batch dimensions)."""
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"
