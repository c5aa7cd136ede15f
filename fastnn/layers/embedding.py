"""Embedding: integer token ids -> rows of a (input_dim, output_dim) table (Keras 3)."""
import numpy as np

from fastnn import initializers, regularizers
from fastnn._graph import is_symbolic
from fastnn._ops.recurrent import Embedding as _EmbeddingFunction
from fastnn.layers.base import Layer, _attach_masks, _tensor, _unsupported
from fastnn.tensor import Tensor


class Embedding(Layer):
    """Turns token ids (B, ...) into vectors (B, ..., output_dim) by table lookup.

    Args:
        input_dim: vocabulary size (ids in [0, input_dim)); output_dim: vector size.
        embeddings_initializer: default "uniform" = RandomUniform(-0.05, 0.05); embeddings_regularizer.
        mask_zero: id 0 is padding: the layer produces the mask ``ids != 0`` for the layers after it.

    >>> Embedding(10, 3)(np.array([[1, 2, 0]])).shape
    (1, 3, 3)
    """

    supports_masking = False

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", embeddings_regularizer=None,
                 embeddings_constraint=None, mask_zero=False, weights=None, lora_rank=None, input_length=None,
                 activity_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        owner = f"Embedding '{self.name}'"
        for arg, value in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{owner}: {arg} must be a positive integer, got {value!r}")
        _unsupported(owner, embeddings_constraint=embeddings_constraint, lora_rank=lora_rank,
                     activity_regularizer=activity_regularizer)
        self.input_dim, self.output_dim = int(input_dim), int(output_dim)
        self.embeddings_initializer = initializers.get(
            initializers.RandomUniform() if embeddings_initializer == "uniform" else embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self._initial_weights = weights
        self.embeddings = None

    @property
    def _produces_mask(self):
        return self.mask_zero

    def build(self, input_shape):
        self.embeddings = self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                                          name="embeddings", regularizer=self.embeddings_regularizer)
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def _check_input_shape(self, input_shape):
        """Any shape of ids (Keras's Embedding has no input spec: a Sequential built for 100 tokens runs 37)."""

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.output_dim,)

    def compute_mask(self, inputs, previous_mask=None):
        if not self.mask_zero:
            return None
        return np.asarray(inputs.data if isinstance(inputs, Tensor) else inputs) != 0

    def _ids(self, x):
        """x as int64 ids, checked: integral values (float arrays are cast) in [0, input_dim)."""
        ids = np.asarray(x.data if isinstance(x, Tensor) else x)
        if ids.dtype.kind == "f":
            if not np.all(np.isfinite(ids)) or not np.array_equal(ids, np.floor(ids)):
                raise ValueError(f"Embedding '{self.name}' expects integer token ids, got non-integral values")
        elif ids.dtype.kind not in "iub":
            raise TypeError(f"Embedding '{self.name}' expects integer token ids, got dtype {ids.dtype}")
        ids = ids.astype(np.int64, copy=False)
        if ids.size:
            lo, hi = int(ids.min()), int(ids.max())
            if lo < 0 or hi >= self.input_dim:
                bad = lo if lo < 0 else hi
                raise ValueError(f"Embedding '{self.name}': token id {bad} is out of range for input_dim="
                                 f"{self.input_dim} (ids must be in [0, {self.input_dim}))")
        return np.ascontiguousarray(ids)

    def _forward(self, x, training, need_dx=True):
        ids = self._ids(x)
        fn = _EmbeddingFunction((self._trainable and _tensor._grad_enabled, False))
        return fn.forward(self.embeddings.data, ids), fn

    def _backward(self, ctx, dy):
        if ctx.needs_input_grad[0]:
            self.embeddings.grad = ctx.backward(np.ascontiguousarray(dy, np.float32))[0]
        return None

    def __call__(self, inputs, training=False, **kwargs):
        if is_symbolic(inputs) or kwargs:
            return super().__call__(inputs, training=training, **kwargs)
        ids = self._ids(inputs)  # no float32 cast on the way (ids beyond 2**24 stay exact)
        self._maybe_build(ids.shape)
        out = _EmbeddingFunction.apply(self.embeddings, ids)
        _attach_masks(out, self.compute_mask(ids))  # mask_zero: Keras's _keras_mask for the next layers
        return out

    def get_config(self):
        config = super().get_config()
        config.update(input_dim=self.input_dim, output_dim=self.output_dim,
                      embeddings_initializer=initializers.serialize(self.embeddings_initializer),
                      embeddings_regularizer=regularizers.serialize(self.embeddings_regularizer),
                      activity_regularizer=None, embeddings_constraint=None, mask_zero=self.mask_zero)
        return config
