"""fastnn.ops on symbolic KerasTensors: as in Keras 3, calling an op on the tensors of a functional graph
records it in the graph (here as a Lambda layer running the op), so ``ops.relu(x)`` and
``ops.concatenate([a, b], axis=-1)`` work between layer calls."""
import functools

from fastnn._graph import KerasTensor


def _flatten(values, found):
    """Collect the KerasTensors among values (also inside lists/tuples), in order."""
    for v in values:
        if isinstance(v, KerasTensor):
            found.append(v)
        elif isinstance(v, (list, tuple)):
            _flatten(v, found)
    return found


def _substitute(value, tensors):
    """value with each KerasTensor replaced by the next of ``tensors`` (an iterator)."""
    if isinstance(value, KerasTensor):
        return next(tensors)
    if isinstance(value, (list, tuple)):
        return type(value)(_substitute(v, tensors) for v in value)
    return value


def recorded(fn):
    """``fn`` that records itself as a Lambda layer when any argument is a KerasTensor."""
    @functools.wraps(fn)
    def op(*args, **kwargs):
        symbolic = _flatten(list(args) + list(kwargs.values()), [])
        if not symbolic:
            return fn(*args, **kwargs)
        from fastnn.layers import Lambda

        def run(values):
            it = iter(values if isinstance(values, list) else [values])
            a = [_substitute(v, it) for v in args]
            k = {key: _substitute(v, it) for key, v in kwargs.items()}
            return fn(*a, **k)
        return Lambda(run, name=None)(symbolic if len(symbolic) > 1 else symbolic[0])
    return op
