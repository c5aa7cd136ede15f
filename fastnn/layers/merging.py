"""Merge layers (Keras 3): Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate, Dot and their
functional forms (``add([a, b])`` ...).

Multi-input protocol: called on a list of n inputs, a layer gets a LIST of shape tuples in ``build`` /
``compute_output_shape``, a LIST of float32 arrays in ``_forward(xs, training, need_dx)``, and its
``_backward(ctx, dy)`` returns a LIST of n gradients, each of its input's exact shape (summed back
over the axes the layer broadcast), or None when forward was told ``need_dx=False``. The gradients
may alias ``dy`` and each other: read-only for the caller.

Elementwise merges broadcast as Keras does: batch sizes must agree; an input of lower rank gets
size-1 axes inserted after the batch axis ((B, 3) with (B, 2, 3): (B, 1, 3)); then numpy
broadcasting, where size 1 stretches. numpy-level code: these layers are memory-bound and simple.
"""
import math
from functools import reduce

import numpy as np

from fastnn import backend

from fastnn._ops.array import Concatenate as _ConcatenateFunction
from fastnn._ops.basic import _unbroadcast
from fastnn.layers.base import Layer
from fastnn.tensor import recording


def _is_shape_list(input_shape):
    """True for a list of shapes ([(None, 3), (None, 4)]), False for one shape ((None, 3))."""
    return (isinstance(input_shape, (list, tuple)) and len(input_shape) > 0
            and all(isinstance(s, (list, tuple)) for s in input_shape))


def _shapes(input_shape):
    """The list of shape tuples, for messages printed as Keras prints them ([(None, 3), (None, 4)])."""
    return [tuple(s) for s in input_shape]


class _MultiInput(Layer):
    """A layer called on a list of inputs (base of the merge layers)."""

    def _error(self, message):
        return ValueError(f"{type(self).__name__} '{self.name}': {message}")


class _Merge(_MultiInput):
    """Elementwise merge of n >= 1 inputs (Keras's ``Merge``): shape rules, rank alignment and the
    un-broadcasting of gradients. Subclasses implement ``_merge(xs, keep) -> (y, saved)`` on rank-aligned
    inputs and ``_grads(saved, dy) -> list`` (one gradient per input, in the broadcast shape)."""
    supports_masking = True

    def compute_mask(self, inputs, previous_mask):
        """Keras 3: the steps any input keeps (OR of the masks); no mask unless every input has one. NOTE:
        Keras's Maximum/Minimum/Multiply also skip masked entries in their values; here they do not."""
        if previous_mask is None or any(m is None for m in previous_mask):
            return None
        return np.logical_or.reduce([np.asarray(getattr(m, "data", m), bool) for m in previous_mask])

    def _broadcast(self, a, b):
        """Non-batch output shape of two non-batch shapes (Keras's _compute_elemwise_op_output_shape:
        right-aligned; None wins over any size, 1 stretches)."""
        if len(a) < len(b):
            a, b = b, a
        if not b:
            return a
        out = list(a[:-len(b)])
        for i, j in zip(a[-len(b):], b):
            if i is None or j is None:
                out.append(None)
            elif i == 1 or j == 1 or i == j:
                out.append(max(i, j))
            else:
                raise self._error(f"Inputs have incompatible shapes. Received shapes {a} and {b}")
        return tuple(out)

    def compute_output_shape(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or (input_shape and not _is_shape_list(input_shape)):
            raise self._error(f"A merge layer should be called on a list of inputs. Received: "
                              f"input_shape={input_shape} (not a list of shapes)")
        shapes = _shapes(input_shape)
        if not shapes:
            raise self._error(f"A merge layer should be called on a list of at least 1 input. Received 0 "
                              f"inputs. Full input_shape received: {shapes}")
        batch = {s[0] for s in shapes if s} - {None}
        if len(batch) > 1:
            raise self._error(f"Cannot merge tensors with different batch sizes. Received tensors with "
                              f"shapes {shapes}")
        out = reduce(self._broadcast, [s[1:] for s in shapes])
        return (batch.pop() if batch else None,) + out

    def _forward(self, xs, training, need_dx=True):
        keep = recording((need_dx,))[0]
        rank = max(x.ndim for x in xs)
        # a lower-rank input gets size-1 axes after the batch axis: (B, 3) -> (B, 1, 3) next to (B, 2, 3)
        aligned = [x.reshape(x.shape[:1] + (1,) * (rank - x.ndim) + x.shape[1:]) for x in xs]
        y, saved = self._merge(aligned, keep)
        return y, ((saved, [a.shape for a in aligned], [x.shape for x in xs]) if keep else None)

    def _backward(self, ctx, dy):
        if ctx is None:
            return None
        saved, aligned, shapes = ctx
        return [_unbroadcast(g, a).reshape(s) for g, a, s in zip(self._grads(saved, dy), aligned, shapes)]


class Add(_Merge):
    """Elementwise sum of a list of inputs (same shape, or shapes that broadcast as Keras allows).

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    >>> fastnn.layers.Add()([a, b]).numpy()[0].tolist()
    [3.0, 3.0, 3.0]
    """
    _mean = False  # Average: the sum divided by n

    def _merge(self, xs, keep):
        y = reduce(np.add, xs)
        return (y / len(xs) if self._mean else y), len(xs)

    def _grads(self, n, dy):
        return [dy / n if self._mean else dy] * n


class Average(Add):
    """Elementwise mean of a list of inputs: ``(x1 + ... + xn) / n`` (broadcasting as ``Add``).

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> xs = [np.full((2, 3), v, np.float32) for v in (1, 2, 6)]
    >>> fastnn.layers.Average()(xs).numpy()[0].tolist()
    [3.0, 3.0, 3.0]
    """
    _mean = True


class Subtract(_Merge):
    """Elementwise difference ``inputs[0] - inputs[1]`` of exactly two inputs (broadcasting as ``Add``).

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    >>> fastnn.layers.Subtract()([a, b]).numpy()[0].tolist()
    [-1.0, -1.0, -1.0]
    """

    def compute_output_shape(self, input_shape):
        output_shape = super().compute_output_shape(input_shape)
        if len(input_shape) != 2:
            raise self._error(f"A `Subtract` layer should be called on exactly 2 inputs. Received: "
                              f"input_shape={_shapes(input_shape)}")
        return output_shape

    def _merge(self, xs, keep):
        return xs[0] - xs[1], None

    def _grads(self, saved, dy):
        return [dy, -dy]


class Multiply(_Merge):
    """Elementwise product of a list of inputs (broadcasting as ``Add``).

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> a, b = np.full((2, 3), 3, np.float32), np.full((2, 3), 2, np.float32)
    >>> fastnn.layers.Multiply()([a, b]).numpy()[0].tolist()
    [6.0, 6.0, 6.0]
    """

    def _merge(self, xs, keep):
        return reduce(np.multiply, xs), (xs if keep else None)

    def _grads(self, xs, dy):
        # d/dx_i = dy * (product of the other inputs); no division, so zeros in x are fine
        return [reduce(np.multiply, xs[:i] + xs[i + 1:], dy) for i in range(len(xs))]


class Maximum(_Merge):
    """Elementwise maximum of a list of inputs (broadcasting as ``Add``).

    Where inputs tie, the whole gradient goes to the first maximal input, as TensorFlow's Keras does
    (its pairwise ``maximum`` gives ties to the left operand); torch and JAX would split it.

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> a, b = np.array([[1, 5]], np.float32), np.array([[4, 2]], np.float32)
    >>> fastnn.layers.Maximum()([a, b]).numpy().tolist()
    [[4.0, 5.0]]
    """
    _wins = np.greater  # strict: a later input must beat the running result, so ties stay with the first

    def _merge(self, xs, keep):
        y = xs[0]
        # winner: index of the input that gives each output element (broadcast shape)
        winner = np.zeros(np.broadcast_shapes(*(x.shape for x in xs)), np.int16) if keep else None
        for i, x in enumerate(xs[1:], 1):
            wins = self._wins(x, y)
            y = np.where(wins, x, y)
            if keep:
                winner[wins] = i
        return y, ((winner, len(xs)) if keep else None)

    def _grads(self, saved, dy):
        winner, n = saved
        return [dy * (winner == i) for i in range(n)]


class Minimum(Maximum):
    """Elementwise minimum of a list of inputs (broadcasting as ``Add``); ties as ``Maximum``: the whole
    gradient goes to the first minimal input.

    Args: the standard layer keywords (name, trainable, dtype).

    >>> import fastnn
    >>> a, b = np.array([[1, 5]], np.float32), np.array([[4, 2]], np.float32)
    >>> fastnn.layers.Minimum()([a, b]).numpy().tolist()
    [[1.0, 2.0]]
    """
    _wins = np.less


class Concatenate(_MultiInput):
    """Concatenates a list of inputs along ``axis``; all other axes must match.

    Args:
        axis: the axis to join along (negative counts from the end; default -1).
        name, trainable, dtype: the standard layer keywords.

    >>> import fastnn
    >>> a, b = np.ones((2, 2, 5), np.float32), np.ones((2, 1, 5), np.float32)
    >>> fastnn.layers.Concatenate(axis=1)([a, b]).shape
    (2, 3, 5)
    """

    supports_masking = True

    def __init__(self, axis=-1, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis

    def compute_mask(self, inputs, previous_mask):
        """Keras 3: each input's mask spread over its elements (all True without one), concatenated along
        ``axis``, then any() over the last axis."""
        if previous_mask is None or all(m is None for m in previous_mask):
            return None
        full = []
        for x, m in zip(inputs, previous_mask):
            shape = np.shape(getattr(x, "data", x))
            m = np.ones(shape, bool) if m is None else np.asarray(getattr(m, "data", m), bool)
            full.append(np.broadcast_to(m[..., None], shape) if m.ndim < len(shape) else m)
        return np.concatenate(full, axis=self.axis).any(axis=-1)

    def compute_output_shape(self, input_shape):
        if not _is_shape_list(input_shape):
            what = "at least 1 input" if isinstance(input_shape, (list, tuple)) and not input_shape else "inputs"
            raise self._error(f"A `Concatenate` layer should be called on a list of {what}. Received: "
                              f"input_shape={input_shape}")
        shapes = _shapes(input_shape)
        rank = len(shapes[0])
        mismatch = self._error(f"A `Concatenate` layer requires inputs with matching shapes except for the "
                               f"concatenation axis. Received: input_shape={shapes}")
        if any(len(s) != rank for s in shapes):
            raise mismatch
        if not -rank <= self.axis < rank:
            raise self._error(f"axis {self.axis} is out of range for inputs of rank {rank}. Received: "
                              f"input_shape={shapes}")
        axis = self.axis % rank
        out = []
        for d, dims in enumerate(zip(*shapes)):
            if d == axis:
                out.append(None if None in dims else sum(dims))
                continue
            known = set(dims) - {None}
            if len(known) > 1:
                raise mismatch
            # NOTE: a size any input knows (Keras keeps the first input's, None included)
            out.append(known.pop() if known else None)
        return tuple(out)

    def _forward(self, xs, training, need_dx=True):
        fn = _ConcatenateFunction(recording((need_dx,) * len(xs)))
        return fn.forward(*xs, axis=self.axis), (fn if any(fn.needs_input_grad) else None)

    def _backward(self, ctx, dy):
        # the pieces are views of dy: made contiguous for the layers below
        return None if ctx is None else [np.ascontiguousarray(g) for g in ctx.backward(dy)]

    def get_config(self):
        config = super().get_config()
        config["axis"] = self.axis
        return config


_EPSILON = 1e-7  # Keras's backend.epsilon(): normalize caps 1/|x| at 1/epsilon


def _l2_normalize(x, axis):
    """Keras's ``ops.normalize`` (order 2): ``x * r`` with ``r = min(1/|x|, 1/epsilon)`` along ``axis``;
    returns both (r keeps the axis, size 1)."""
    with np.errstate(divide="ignore"):  # |x| = 0: r = inf, capped
        r = np.minimum(1 / np.sqrt(np.sum(x * x, axis=axis, keepdims=True)), 1 / _EPSILON)
    return x * r, r


def _l2_normalize_grad(g, n, r, axis):
    """dL/dx from dL/dn for ``n = _l2_normalize(x)``: ``r * (g - n * sum(g * n))``; where the cap holds r
    is a constant, so just ``r * g``."""
    proj = np.where(r < 1 / _EPSILON, np.sum(g * n, axis=axis, keepdims=True), 0)
    return r * (g - n * proj)


def _batch_matrices(x1, x2, a1, a2):
    """x1 as (B, P, n) with its dot axis a1 last, x2 as (B, n, Q) with its dot axis a2 second: the batch
    dot is then one batched matmul, (B, P, Q)."""
    m1, m2 = np.moveaxis(x1, a1, -1), np.moveaxis(x2, a2, 1)
    n = x1.shape[a1]
    return (m1.reshape(x1.shape[0], math.prod(m1.shape[1:-1]), n),
            m2.reshape(x2.shape[0], n, math.prod(m2.shape[2:])))


class Dot(_MultiInput):
    """Batch dot product of two inputs: sums ``x1 * x2`` over ``x1``'s axis ``axes[0]`` and ``x2``'s axis
    ``axes[1]``, per sample. The output has x1's axes (less the summed one), then x2's (less batch and
    the summed one); a result of rank 1 becomes (B, 1). (B, n) . (B, n) -> (B, 1);
    (B, n, p) . (B, q, n) with axes=(1, 2) -> (B, p, q).

    Args:
        axes: int (the same axis of both inputs) or a pair (axis of x1, axis of x2); never 0 (batch).
        normalize: L2-normalize both inputs along their dot axes first (the output is then the cosine
            similarity).
        name, trainable, dtype: the standard layer keywords.

    >>> import fastnn
    >>> a, b = np.ones((2, 3), np.float32), np.full((2, 3), 2, np.float32)
    >>> fastnn.layers.Dot(axes=1)([a, b]).numpy().tolist()
    [[6.0], [6.0]]
    """

    def __init__(self, axes, normalize=False, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(axes, int):
            if not isinstance(axes, (list, tuple)):
                raise TypeError(f"Dot '{self.name}': Invalid type for argument `axes`: it should be a list or an "
                                f"int. Received: axes={axes}")
            if len(axes) != 2:
                raise self._error(f"Invalid format for argument `axes`: it should contain two elements. "
                                  f"Received: axes={axes}")
            if not all(isinstance(a, int) for a in axes):
                raise self._error(f"Invalid format for argument `axes`: list elements should be integers. "
                                  f"Received: axes={axes}")
        self.axes, self.normalize = axes, bool(normalize)

    def _axes(self, r1, r2):
        """(axis of x1, axis of x2), non-negative, for inputs of ranks r1 and r2."""
        a1, a2 = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        return a1 % r1, a2 % r2

    def compute_output_shape(self, input_shape):
        if not (_is_shape_list(input_shape) and len(input_shape) == 2):
            shown = _shapes(input_shape) if _is_shape_list(input_shape) else input_shape
            raise self._error(f"A `Dot` layer should be called on a list of 2 inputs. Received: "
                              f"input_shape={shown}")
        s1, s2 = _shapes(input_shape)
        if len(s1) < 2 or len(s2) < 2:
            raise self._error(f"Cannot do batch_dot on inputs with rank < 2. Received inputs with shapes "
                              f"{s1} and {s2}.")
        if None not in (s1[0], s2[0]) and s1[0] != s2[0]:
            raise self._error(f"Cannot do batch_dot on inputs with different batch sizes. Received inputs "
                              f"with shapes {s1} and {s2}.")
        axes = (self.axes, self.axes) if isinstance(self.axes, int) else self.axes
        if not all(-len(s) <= a < len(s) for a, s in zip(axes, (s1, s2))):
            raise self._error(f"axes={self.axes} is out of range for inputs of shapes {s1} and {s2}")
        a1, a2 = self._axes(len(s1), len(s2))
        if 0 in (a1, a2):
            raise self._error("Cannot perform batch_dot over axis 0. If your inputs are not batched, add a "
                              "dummy batch dimension to your inputs using fastnn.ops.expand_dims(x, 0)")
        d1, d2 = s1[a1], s2[a2]
        # NOTE: an unknown (None) size passes here, checked when data comes (Keras refuses it)
        if None not in (d1, d2) and d1 != d2:
            raise self._error(f"Incompatible input shapes: axis values {d1} (at axis {a1}) != {d2} (at axis "
                              f"{a2}). Full input shapes: {s1}, {s2}")
        out = s1[:a1] + s1[a1 + 1:] + tuple(d for i, d in enumerate(s2) if i not in (0, a2))
        return out if len(out) > 1 else out + (1,)

    def _forward(self, xs, training, need_dx=True):
        keep = recording((need_dx,))[0]
        x1, x2 = xs
        a1, a2 = self._axes(x1.ndim, x2.ndim)
        r1 = r2 = None
        if self.normalize:
            (x1, r1), (x2, r2) = _l2_normalize(x1, a1), _l2_normalize(x2, a2)
        m1, m2 = _batch_matrices(x1, x2, a1, a2)
        out = x1.shape[:a1] + x1.shape[a1 + 1:] + tuple(d for i, d in enumerate(x2.shape) if i not in (0, a2))
        y = _bmm(m1, m2).reshape(out if len(out) > 1 else out + (1,))
        return y, ((x1, x2, a1, a2, r1, r2) if keep else None)

    def _backward(self, ctx, dy):
        if ctx is None:
            return None
        x1, x2, a1, a2, r1, r2 = ctx  # x1, x2: the normalized inputs when normalize
        m1, m2 = _batch_matrices(x1, x2, a1, a2)
        dz = dy.reshape(m1.shape[0], m1.shape[1], m2.shape[2])
        # undo _batch_matrices: (B, P, n) -> x1's layout, (B, n, Q) -> x2's
        d1 = np.moveaxis(_bmm(dz, m2.transpose(0, 2, 1)).reshape(np.moveaxis(x1, a1, -1).shape), -1, a1)
        d2 = np.moveaxis(_bmm(m1.transpose(0, 2, 1), dz).reshape(np.moveaxis(x2, a2, 1).shape), 1, a2)
        if self.normalize:
            d1, d2 = _l2_normalize_grad(d1, x1, r1, a1), _l2_normalize_grad(d2, x2, r2, a2)
        return [np.ascontiguousarray(d1), np.ascontiguousarray(d2)]

    def get_config(self):
        config = super().get_config()
        config.update(axes=self.axes, normalize=self.normalize)
        return config


def _bmm(a, b):
    """(B, P, n) @ (B, n, Q) -> (B, P, Q) float32 without numpy's BLAS (whose threads would spin beside fastnn's:
    issue #19): float32 matrices by fastnn's GEMM per batch item; products of vectors (P or Q is 1) and other
    dtypes (float64 gradient checks) as numpy's unoptimized einsum, which multiplies and sums without BLAS."""
    if a.shape[1] == 1 or b.shape[2] == 1 or a.dtype != np.float32 or b.dtype != np.float32:
        return np.einsum("bpn,bnq->bpq", a, b, optimize=False)
    table = backend.of(a)
    out = table.empty((a.shape[0], a.shape[1], b.shape[2]))
    for i in range(a.shape[0]):
        table.gemm(a[i], b[i], out=out[i])
    return out


def _functional(cls):
    """The functional form of an elementwise merge layer: ``add(inputs, **kwargs) = Add(**kwargs)(inputs)``."""
    def merge(inputs, **kwargs):
        return cls(**kwargs)(inputs)
    merge.__name__ = merge.__qualname__ = cls.__name__.lower()
    merge.__doc__ = (f"Functional form of ``{cls.__name__}``: builds ``{cls.__name__}(**kwargs)`` (name, ...) "
                     f"and calls it on the list ``inputs``.")
    return merge


add, subtract, multiply, average, maximum, minimum = map(_functional, (Add, Subtract, Multiply, Average,
                                                                         Maximum, Minimum))


def concatenate(inputs, axis=-1, **kwargs):
    """Functional form of ``Concatenate``: ``Concatenate(axis=axis, **kwargs)(inputs)``."""
    return Concatenate(axis=axis, **kwargs)(inputs)


def dot(inputs, axes=-1, normalize=False, **kwargs):
    """Functional form of ``Dot``: ``Dot(axes=axes, normalize=normalize, **kwargs)(inputs)`` (Keras's
    default axes=-1)."""
    return Dot(axes=axes, normalize=normalize, **kwargs)(inputs)
