"""Masking: marks the time steps whose features all equal ``mask_value`` as padding."""
import numpy as np

from fastnn.layers.base import Layer


def _array(x):
    return np.asarray(getattr(x, "data", x))


class Masking(Layer):
    """Masks the steps of (B, T, ...) inputs whose features all equal ``mask_value``: the output mask (B, T) is
    ``any(x != mask_value, axis=-1)`` and the masked steps of the output are zero (Keras 3); the layers after
    it that take masks (recurrent layers, GlobalAveragePooling1D, ...) skip them.

    Args:
        mask_value: the padding value (default 0.0).

    >>> import numpy as np, fastnn
    >>> x = np.array([[[1.0], [0.0]]], np.float32)
    >>> fastnn.layers.Masking()(x)._keras_mask.tolist()
    [[True, False]]
    """
    supports_masking = True
    _produces_mask = True

    def __init__(self, mask_value=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(mask_value, bool) or not isinstance(mask_value, (int, float, np.integer, np.floating)):
            raise ValueError(f"Masking '{self.name}': mask_value must be a number, got {mask_value!r}")
        self.mask_value = float(mask_value)

    def compute_output_shape(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"Masking '{self.name}' expects inputs with at least 2 dimensions (batch, ..., "
                             f"features), got shape {input_shape}")
        return tuple(input_shape)

    def _check_input_shape(self, input_shape):
        """Any shape of rank >= 2 (Keras's Masking has no input spec: a Sequential built for 10 steps runs 7)."""
        self.compute_output_shape(input_shape)

    def compute_mask(self, inputs, previous_mask=None):
        return np.any(_array(inputs) != np.float32(self.mask_value), axis=-1)

    def _forward(self, x, training, need_dx=True):
        keep = np.any(x != np.float32(self.mask_value), axis=-1, keepdims=True)  # (B, T, 1)
        return np.where(keep, x, np.float32(0)), keep

    def _backward(self, ctx, dy):
        return np.where(ctx, dy, np.float32(0))

    def get_config(self):
        config = super().get_config()
        config["mask_value"] = self.mask_value
        return config
