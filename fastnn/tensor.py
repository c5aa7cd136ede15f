"""Tensor, Function and the backward engine: the thin autograd every layer is written in.

A ``Tensor`` wraps a float32 numpy array. Every differentiable operation is a ``Function``
subclass: ``apply`` unwraps Tensor arguments to their arrays, runs ``forward`` once (one kernel
call) and, when gradients are being recorded, links the output Tensor to the Function instance.
``Tensor.backward`` walks that graph once in reverse topological order, accumulates into the
``.grad`` of leaf tensors and frees the graph as it goes.
"""
import numpy as np

_F32 = np.float32
_F32_DTYPE = np.dtype(np.float32)  # a singleton: compared with `is`
_new = object.__new__
_grad_enabled = True
# > 0 while a GradientTape or a layer written with call() back-propagates: the weight gradients of a layer
# called several times in that graph are summed (starting from None) instead of overwritten
_accumulating = 0


class no_grad:
    """Context manager (and decorator) that disables graph recording.

    Inside it, ops compute values only: outputs have ``requires_grad=False`` and hold no graph.

    >>> import fastnn
    >>> w = fastnn.tensor([1.0, 2.0], requires_grad=True)
    >>> with fastnn.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """
    __slots__ = ("_prev",)

    def __enter__(self):
        global _grad_enabled
        self._prev = _grad_enabled
        _grad_enabled = False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def __call__(self, fn):
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)
        wrapper.__name__, wrapper.__doc__, wrapper.__wrapped__ = fn.__name__, fn.__doc__, fn
        return wrapper


def is_grad_enabled():
    """True unless inside ``no_grad()``."""
    return _grad_enabled


def recording(flags):
    """``flags`` (a tuple of bools: which gradients a layer's Functions must be able to return) while
    gradients are recorded, all False inside ``no_grad`` (then forward saves nothing: the fast path)."""
    return flags if _grad_enabled else (False,) * len(flags)


class Function:
    """One differentiable operation: a node of the autograd graph, and the unit every layer computes with.

    ``Function(needs)`` makes one: ``needs`` (``needs_input_grad``) holds one bool per positional
    argument of forward, saying which gradients backward must return; forward saves only what those
    need, so with every entry False (``no_grad``, predict) it is the op's fast path. Subclasses
    implement ``forward(*args, **kwargs) -> np.ndarray`` (arrays in, array out, one kernel call; save
    what backward needs, shapes included, as attributes of ``self``: never read the inputs back from
    the graph) and ``backward(grad) -> tuple`` with one entry per positional argument: an array of that
    argument's shape, or None where not needed. NOTE: ``grad`` may be shared with other nodes and may
    be a read-only view: never modify it in place.

    Two callers use the same pair: layers in the training step (``fn = Linear(needs);
    y = fn.forward(x, kernel, bias); ... fn.backward(dy)``, no Tensor, no graph) and the Tensor graph
    (``MyFunction.apply(*args, **kwargs)``: positional Tensors reach forward as their float32 arrays,
    anything else (arrays, numbers, strings, None) unchanged; keyword arguments are constants, a
    Tensor there is an error). backward may omit trailing entries for trailing constant arguments.
    """
    __slots__ = ("needs_input_grad", "parents", "__dict__")

    def __init__(self, needs=(True,)):
        self.needs_input_grad = needs

    @classmethod
    def apply(cls, *args, **kwargs):
        raw = []
        track = False
        if _grad_enabled:
            needs = []
            for a in args:
                if isinstance(a, Tensor):
                    raw.append(a.data)
                    if a.requires_grad:
                        needs.append(True)
                        track = True
                        continue
                else:
                    raw.append(a)
                needs.append(False)
            ctx = cls(tuple(needs))
        else:
            for a in args:
                raw.append(a.data if isinstance(a, Tensor) else a)
            ctx = cls((False,) * len(args))
        if kwargs:
            for k, v in kwargs.items():
                if isinstance(v, Tensor):
                    raise TypeError(f"{cls.__name__}.apply: Tensor passed as keyword {k!r}; pass Tensors "
                                    f"positionally so that gradients flow to them")
        data = ctx.forward(*raw, **kwargs)
        if type(data) is not np.ndarray or data.dtype is not _F32_DTYPE:
            data = np.asarray(data, dtype=_F32)
        out = _new(Tensor)
        out.data = data
        out.grad = None
        out._keras_mask = None
        if track:
            ctx.parents = args
            out._ctx = ctx
            out.requires_grad = True
        else:
            out._ctx = None
            out.requires_grad = False
        return out

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def backward(self, grad):
        raise NotImplementedError(f"{type(self).__name__}.backward")


class _Freed(Function):
    """Stands in for the Function of a tensor whose graph an earlier backward() released."""
    parents = ()

    def backward(self, grad):
        raise RuntimeError(
            "backward() reached a tensor whose graph was already freed by an earlier backward() "
            "(fastnn frees the graph after each backward): recompute the forward pass, or detach() "
            "tensors that are kept across steps")


_FREED = _Freed(())


def _as_f32(data):
    if isinstance(data, Tensor):
        return data.data
    if data is None:  # numpy would make it NaN
        raise TypeError("cannot make a tensor from None")
    if type(data).__module__ == "fastnn._cuda":  # a device array (fastnn._cuda.Array) stays on its device
        return data
    return np.asarray(data, dtype=_F32)


class Tensor:
    """A float32 array that can record the operations applied to it for automatic differentiation.

    Args:
        data: array-like (numpy array, nested lists, scalar or Tensor); converted to float32.
            A float32 numpy array is wrapped without a copy (use ``fastnn.tensor`` to copy).
        requires_grad: record operations on this tensor so ``backward()`` fills ``.grad``.

    >>> import fastnn
    >>> x = fastnn.Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad.numpy().tolist()
    [[2.0, 4.0], [6.0, 8.0]]
    """
    # _keras_mask: a bool array (B, T) that masking layers attach to their outputs (Keras's mask metadata),
    # else None (set at creation: reading an unset slot would raise, which costs more on Layer.__call__)
    __slots__ = ("data", "grad", "requires_grad", "_ctx", "_keras_mask", "__weakref__")
    # numpy defers to our reflected operators (ndarray + Tensor -> Tensor.__radd__).
    __array_ufunc__ = None
    _grad_is_array = False  # Variables keep .grad as a plain array

    def __init__(self, data, requires_grad=False):
        self.data = _as_f32(data)
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self._keras_mask = None

    # ---- array protocol and properties -------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def ndim(self):
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    @property
    def device(self):
        """"cpu" for host (numpy) data, else the device of the data's array (e.g. "cuda:0")."""
        return "cpu" if isinstance(self.data, np.ndarray) else self.data.device

    def to(self, device):
        """This tensor's value on ``device`` ("cpu", "cuda", "cuda:N"): itself when already there, else a copy
        (not recorded by the autograd)."""
        from fastnn import devices
        target = devices.check(devices.canonical(device))
        if target == self.device:
            return self
        mod = devices.cuda_module()
        data = np.asarray(mod.to_host(self.data)) if target == "cpu" else mod.to_device(self.data, target)
        return Tensor(data, requires_grad=self.requires_grad)

    @property
    def is_leaf(self):
        """True for tensors not produced by a recorded operation (their ``.grad`` is filled)."""
        return self._ctx is None

    def numpy(self):
        """The underlying float32 array (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted to a Python number, "
                             f"got shape {self.data.shape}")
        return float(self.data.reshape(-1)[0])

    def __float__(self):
        return self.item()

    def __bool__(self):
        return bool(self.data)

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        return f"tensor({body}{', requires_grad=True' if self.requires_grad else ''})"

    def detach(self):
        """A new tensor sharing this one's data, cut from the graph (``requires_grad=False``)."""
        return Tensor(self.data)

    def zero_grad(self):
        """Drop the accumulated gradient (``.grad`` becomes None)."""
        self.grad = None

    # ---- autograd ------------------------------------------------------------------------------
    def backward(self, grad=None):
        """Accumulate d(self)/d(leaf) * grad into ``.grad`` of every leaf that requires grad.

        ``grad`` defaults to 1 for a one-element tensor and is required otherwise (same shape as
        this tensor). Gradients add up across calls; the graph is freed afterwards, so calling
        backward a second time through the same graph raises.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(no input had requires_grad=True, or it was computed under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be omitted only for one-element tensors, "
                                   f"got shape {self.data.shape}; pass grad= of that shape")
            g = np.ones(self.data.shape, _F32)
        else:
            g = _as_f32(grad)
            if g.shape != self.data.shape:
                raise ValueError(f"backward(): grad has shape {g.shape}, expected the tensor's "
                                 f"shape {self.data.shape}")
        _run_backward(self, g)

    # ---- operators (+ - * / @ and their reflected forms are attached below, after the ops) -----
    def __neg__(self):
        return _b.Neg.apply(self)

    def __pos__(self):
        return self

    def __pow__(self, p):
        if type(p) not in (int, float):
            if isinstance(p, (np.integer, np.floating)) or (isinstance(p, np.ndarray) and p.ndim == 0):
                p = float(p)
            else:
                raise TypeError(f"tensor ** p: p must be a Python/numpy scalar, got {type(p).__name__}")
        return _b.Pow.apply(self, p)

    def __rpow__(self, base):
        # base ** t = exp(t * ln(base)) for a positive scalar base
        return (self * float(np.log(base))).exp()

    def __getitem__(self, index):
        return _b.GetItem.apply(self, index=_index(index))

    # ---- reductions and shape ------------------------------------------------------------------
    def sum(self, axis=None, keepdims=False):
        return _b.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims=False):
        return _b.Mean.apply(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims=False):
        return _b.Max.apply(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return _b.Reshape.apply(self, shape=shape)

    def flatten(self):
        return _b.Reshape.apply(self, shape=(-1,))

    def transpose(self, *axes):
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0])
        return _b.Transpose.apply(self, axes=axes or None)

    @property
    def T(self):
        return _b.Transpose.apply(self, axes=None)

    # ---- elementwise math ----------------------------------------------------------------------
    def exp(self):
        return _b.Exp.apply(self)

    def log(self):
        return _b.Log.apply(self)

    def relu(self):
        return _act.Relu.apply(self)

    def sigmoid(self):
        return _act.Sigmoid.apply(self)

    def tanh(self):
        return _act.Tanh.apply(self)


class GradientTape:
    """Records the operations run inside it for automatic differentiation (``tf.GradientTape``).

    Layers, models, losses and ``fastnn.ops`` functions called on Tensors or arrays inside the tape are
    recorded; ``tape.gradient(target, sources)`` returns d(target)/d(source) for each source (Variables
    such as ``model.trainable_weights``, or Tensors), in the structure of ``sources``, None where a source
    does not affect the target. A non-scalar target is summed (as TensorFlow does).

    >>> import fastnn as tf
    >>> x = tf.Tensor([3.0])
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = x * x
    >>> tape.gradient(y, x).numpy().tolist()
    [6.0]
    """

    def __init__(self, persistent=False, watch_accessed_variables=True):
        self.persistent = bool(persistent)
        self._used = False
        self._prev = None

    def __enter__(self):
        global _grad_enabled
        self._prev, _grad_enabled = _grad_enabled, True
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._prev

    def watch(self, tensor):
        """Record operations on ``tensor`` (a Tensor or a list of them) so gradients can be taken with respect
        to it."""
        for t in tensor if isinstance(tensor, (list, tuple)) else [tensor]:
            if not isinstance(t, Tensor):
                raise TypeError(f"GradientTape.watch: expected a fastnn.Tensor, got {type(t).__name__}")
            t.requires_grad = True if not t._grad_is_array else t.requires_grad

    def gradient(self, target, sources, output_gradients=None):
        """Gradients of ``target`` with respect to ``sources`` (a Tensor/Variable, or a list/tuple/dict)."""
        if self._used and not self.persistent:
            raise RuntimeError("A non-persistent GradientTape can only be used to compute one set of gradients "
                               "(use GradientTape(persistent=True))")
        self._used = True
        if isinstance(sources, dict):
            keys, flat = list(sources), list(sources.values())
        else:
            keys, flat = None, list(sources) if isinstance(sources, (list, tuple)) else [sources]
        if not isinstance(target, Tensor):
            raise TypeError(f"GradientTape.gradient: target must be a fastnn.Tensor, got {type(target).__name__}")
        saved = [s.grad for s in flat]
        for s in flat:
            s.grad = None
        if target.requires_grad:
            g = np.ones(target.shape, _F32) if output_gradients is None else _as_f32(output_gradients)
            global _accumulating
            _accumulating += 1
            try:
                _run_backward(target, g, retain_graph=self.persistent)
            finally:
                _accumulating -= 1
        grads = []
        for s, old in zip(flat, saved):
            g = s.grad
            grads.append(None if g is None else Tensor(g if s._grad_is_array else g.data))
            s.grad = old
        if keys is not None:
            return dict(zip(keys, grads))
        if isinstance(sources, tuple):
            return tuple(grads)
        return grads if isinstance(sources, list) else grads[0]


def tensor(data, requires_grad=False):
    """A new float32 Tensor holding a copy of ``data`` (array-like or Tensor).

    >>> import fastnn
    >>> t = fastnn.tensor([[1, 2], [3, 4]], requires_grad=True)
    >>> t.dtype, t.shape
    (dtype('float32'), (2, 2))
    """
    return Tensor(np.array(_as_f32(data)), requires_grad=requires_grad)  # _as_f32 refuses None


def _run_backward(root, g, observe=None, retain_graph=False):
    """The backward engine: propagate g from root to the leaves, freeing the graph on the way (unless
    ``retain_graph``: a persistent GradientTape back-propagates through it again).

    observe(node, grad), when given, sees every graph node with its incoming gradient (gradcheck
    uses it to bound float32 rounding)."""
    adopted = {id(g)}
    if root._ctx is None:
        _accumulate(root, g, adopted)
        return
    # Iterative depth-first post-order over tensors that carry a graph node.
    topo = []
    visited = {root}
    stack = [(root, iter(root._ctx.parents))]
    while stack:
        node, it = stack[-1]
        for p in it:
            if isinstance(p, Tensor) and p._ctx is not None and p not in visited:
                visited.add(p)
                stack.append((p, iter(p._ctx.parents)))
                break
        else:
            stack.pop()
            topo.append(node)
    grads = {root: g}
    for node in reversed(topo):
        ctx = node._ctx
        if not retain_graph:
            node._ctx = _FREED
        g = grads.pop(node, None)
        if g is None:  # no path carried a gradient here (every consumer returned None)
            continue
        if observe is not None:
            observe(node, g)
        in_grads = ctx.backward(g)
        for p, pg in zip(ctx.parents, in_grads):
            if pg is None or not isinstance(p, Tensor) or not p.requires_grad:
                continue
            if pg.shape != p.data.shape:
                _bad_grad_shape(ctx, pg, p)
            if p._ctx is None:
                _accumulate(p, pg, adopted)
            elif p in grads:
                grads[p] = grads[p] + pg
            else:
                grads[p] = pg


def _bad_grad_shape(ctx, g, inp):
    raise RuntimeError(f"{type(ctx).__name__}.backward returned a gradient of shape {g.shape} for an "
                       f"input of shape {inp.data.shape}")


def _accumulate(leaf, g, adopted):
    """Add g into leaf.grad. `adopted`: ids of arrays this backward may not hand to a leaf as is."""
    if leaf._grad_is_array:  # a layer weight (Variable): .grad is the array the optimizer reads
        leaf.grad = np.array(g, dtype=_F32) if leaf.grad is None else np.add(leaf.grad, g, dtype=_F32)
        return
    if leaf.grad is None:
        # NOTE: a fresh array (a kernel's output) becomes .grad without a copy; views, read-only
        # arrays, the caller's grad and arrays already given to another leaf are copied, so no
        # two .grad arrays share memory and user code may modify .grad in place.
        if g.base is not None or id(g) in adopted or g.dtype is not _F32_DTYPE or not g.flags.writeable:
            g = np.array(g, dtype=_F32)
        adopted.add(id(g))
        leaf.grad = Tensor(g)
    else:
        # out of place: g may still be pending as another node's gradient
        leaf.grad.data = np.add(leaf.grad.data, g, dtype=_F32)


_SCALARS = frozenset((float, int))


def _operand(x):
    """Second operand of an operator: Tensors and Python numbers pass, the rest becomes float32."""
    if isinstance(x, Tensor) or type(x) in _SCALARS:
        return x
    return np.asarray(x, dtype=_F32)


def _index(index):
    """Index for __getitem__: Tensors inside it become integer arrays."""
    if isinstance(index, Tensor):
        return index.data.astype(np.intp)
    if isinstance(index, tuple) and any(isinstance(i, Tensor) for i in index):
        return tuple(i.data.astype(np.intp) if isinstance(i, Tensor) else i for i in index)
    return index


# The op modules import Function/Tensor from here, so they load last.
from fastnn._ops import basic as _b  # noqa: E402
from fastnn._ops import linear as _linear  # noqa: E402
from fastnn._ops import activation as _act  # noqa: E402


def _binary(apply):
    """(op, reflected op) methods for a binary Function; the hottest path of every model."""
    def op(self, other):
        return apply(self, other if isinstance(other, Tensor) or type(other) in _SCALARS else _operand(other))

    def rop(self, other):
        return apply(other if type(other) in _SCALARS else _operand(other), self)
    return op, rop


Tensor.__add__, Tensor.__radd__ = _binary(_b.Add.apply)
Tensor.__sub__, Tensor.__rsub__ = _binary(_b.Sub.apply)
Tensor.__mul__, Tensor.__rmul__ = _binary(_b.Mul.apply)
Tensor.__truediv__, Tensor.__rtruediv__ = _binary(_b.Div.apply)
Tensor.__matmul__, Tensor.__rmatmul__ = _binary(_linear.MatMul.apply)
