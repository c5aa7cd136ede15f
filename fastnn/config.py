"""``keras.config`` and ``tf.config`` for fastnn: the fixed settings fastnn computes with, and the device list.

fastnn computes in float32, channels_last, on the CPU; these functions report that so tutorial code
that asks (``keras.config.floatx()``, ``tf.config.list_physical_devices("GPU")``) runs unchanged.
"""
import collections

__all__ = ["image_data_format", "epsilon", "floatx", "set_floatx", "list_physical_devices", "PhysicalDevice"]

# tf.config.PhysicalDevice is a namedtuple of (name, device_type) too.
PhysicalDevice = collections.namedtuple("PhysicalDevice", ["name", "device_type"])
_CPU = PhysicalDevice("/physical_device:CPU:0", "CPU")


def image_data_format():
    """Always "channels_last": fastnn's convolution and pooling kernels are NHWC only."""
    return "channels_last"


def epsilon():
    """The fuzz factor Keras uses (1e-7), the value fastnn's losses and metrics clip with."""
    from fastnn.losses import EPSILON  # losses is not loaded by `import fastnn`; keep config light
    return EPSILON


def floatx():
    """Always "float32": the only float dtype fastnn computes in."""
    return "float32"


def set_floatx(value):
    """Accepts only "float32"; any other float type cannot be honoured, so it is an error, not ignored."""
    if value != "float32":
        raise ValueError(f"set_floatx({value!r}): fastnn computes in float32 only")


def list_physical_devices(device_type=None):
    """fastnn runs on the CPU alone: one CPU device; [] for "GPU", "TPU" or any other type."""
    return [_CPU] if device_type in (None, "CPU") else []
