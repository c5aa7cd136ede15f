"""A metric's accumulated state as numbers, so ranks can add their states up (every fastnn metric keeps
sums and counts: totals, confusion counts, per-class sums, all additive over samples).

The state of a metric is what its ``reset_state()`` assigns: found once per class by running
``reset_state`` on a copy whose attribute writes are recorded, so user metrics written the same way work.
"""
import copy

import numpy as np

_KEYS = {}


def state_keys(metric):
    cls = type(metric)
    keys = _KEYS.get(cls)
    if keys is None:
        written = []

        class _Recorder(cls):
            def __setattr__(self, name, value):
                written.append(name)
                object.__setattr__(self, name, value)

        probe = copy.copy(metric)
        probe.__class__ = _Recorder
        probe.reset_state()
        keys = _KEYS[cls] = tuple(dict.fromkeys(written))
    return keys


def pack(metrics):
    """(float64 vector of every metric's state, the saved originals for ``restore``)."""
    saved, parts = [], []
    for m in metrics:
        for k in state_keys(m):
            value = getattr(m, k)
            saved.append((m, k, value))
            parts.append(np.asarray(value, np.float64).reshape(-1))
    return (np.concatenate(parts) if parts else np.zeros(0)), saved


def unpack(vector, saved):
    """Set the metrics' state from ``vector`` (laid out as ``pack`` made it), keeping each value's type."""
    pos = 0
    for m, k, value in saved:
        n = np.size(value)
        part = vector[pos:pos + n]
        pos += n
        if isinstance(value, np.ndarray):
            new = part.reshape(value.shape).astype(value.dtype)
        elif isinstance(value, (bool, np.bool_)):
            new = value
        elif isinstance(value, (int, np.integer)):
            new = type(value)(round(float(part[0])))
        else:
            new = type(value)(part[0])
        object.__setattr__(m, k, new)


def restore(saved):
    for m, k, value in saved:
        object.__setattr__(m, k, value)
