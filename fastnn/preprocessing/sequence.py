"""Sequence utilities: `pad_sequences` (Keras's `keras.utils.pad_sequences`, also reachable as
`fastnn.utils.pad_sequences` and `fastnn.preprocessing.sequence.pad_sequences`)."""
import numpy as np

__all__ = ["pad_sequences"]


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pad (or truncate) a list of sequences into one array of shape `(len(sequences), maxlen) + S`.

    `sequences`: a list of sequences (lists or arrays); every non-empty one has items of the same shape
    `S` (`()` for numbers), taken from the first non-empty sequence.
    `maxlen`: the number of time steps; None = the longest sequence's length.
    `dtype`: the output dtype; use `object` (or a numpy str dtype) for strings.
    `padding` / `truncating`: "pre" or "post": where values are added to short sequences / removed from
    long ones. `value`: the padding value (a string needs dtype object or a str dtype).

    >>> pad_sequences([[1], [2, 3], [4, 5, 6]], maxlen=2)
    array([[0, 1],
           [2, 3],
           [5, 6]], dtype=int32)

    Same results as Keras; where Keras fails by accident this raises a ValueError that says why (an
    unknown `padding` also when every sequence is empty, an empty `sequences` without `maxlen`), and
    `maxlen=0` gives an empty (N, 0) array for either `truncating` (Keras's "pre" path fails).
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    for arg, v in (("padding", padding), ("truncating", truncating)):
        if not isinstance(v, str) or v not in ("pre", "post"):
            raise ValueError(f'{arg.capitalize()} type "{v}" not understood: expected "pre" or "post"')
    lengths, sample_shape = [], None
    for x in sequences:
        try:
            lengths.append(len(x))
        except TypeError:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {x}") from None
        if sample_shape is None and len(x):  # the item shape of the first non-empty sequence
            sample_shape = np.asarray(x).shape[1:]
    sample_shape = sample_shape or ()
    if maxlen is None:
        if not lengths:
            raise ValueError("pad_sequences: cannot infer `maxlen` from an empty list of sequences; pass maxlen")
        maxlen = max(lengths)
    if isinstance(maxlen, bool) or not isinstance(maxlen, (int, np.integer)) or maxlen < 0:
        raise ValueError(f"pad_sequences: `maxlen` must be None or an integer >= 0, got {maxlen!r}")
    maxlen = int(maxlen)
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")

    out = np.full((len(lengths), maxlen) + sample_shape, value, dtype=dtype)
    if maxlen == 0:
        return out
    for i, s in enumerate(sequences):
        if not len(s):
            continue
        kept = np.asarray(s[-maxlen:] if truncating == "pre" else s[:maxlen], dtype=dtype)
        if kept.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {kept.shape[1:]} of sequence at position {i} is different from "
                             f"expected shape {sample_shape}")
        if padding == "post":
            out[i, :len(kept)] = kept
        else:
            out[i, maxlen - len(kept):] = kept
    return out
