"""Where each weight and optimizer array of a model lives in a file: Keras 3's object paths.

Keras 3's saving_lib walks a model so: a Functional's or Sequential's layers under "layers/<class>[_k]" (ranked
by class, not by their names, so weights load into another instance of the architecture), a nested model's layers
continuing its path ("layers/functional/layers/dense"); any other layer (a subclassed model, a custom layer) holds
its own weights and its sublayers under the attributes that hold them ("dense1/vars/0"). A layer's own weights are
"<path>/vars/<i>", trainable ones first; a recurrent layer's are its cell's: "layers/lstm/cell/vars/<i>".
The optimizer's are "optimizer/vars/<i>": the iteration count, the learning rate (unless it is a schedule), then
the slots in Keras's order.
"""
import numpy as np

from fastnn._naming import _snake_case
from fastnn.layers.base import _UNTRACKED, Layer
from fastnn.saving._objects import class_name_of

# Keras keeps these layers' weights in a cell sublayer ("layers/lstm/cell/vars/0")
_CELL_LAYERS = frozenset(("SimpleRNN", "LSTM", "GRU"))
# optimizers whose slots Keras creates kind by kind (all velocities, then all momentums...) instead of
# variable by variable (Adam: m and v of the first variable, then of the second...)
_GROUPED_SLOTS = frozenset(("RMSprop",))


def join(*parts):
    return "/".join(p for p in parts if p)


def layer_paths(layer, path="", visited=None):
    """(path, layer) per layer whose own weights go under "<path>/vars/<i>", in Keras's walk order. A layer reached
    twice is saved once, at its first path."""
    visited = set() if visited is None else visited
    if id(layer) in visited:
        return
    visited.add(id(layer))
    if layer._kind == "model" and layer._is_graph:
        children = _ranked(layer.layers, join(path, "layers"))
    else:
        yield path, layer
        children = _attribute_layers(layer, path)
    for child_path, child in children:
        yield from layer_paths(child, child_path, visited)


def _ranked(layers, path):
    seen = {}
    for layer in layers:
        base = _snake_case(class_name_of(layer))
        k = seen.get(base, 0)
        seen[base] = k + 1
        yield join(path, base + (f"_{k}" if k else "")), layer


def _attribute_layers(layer, path):
    """(path, sublayer) for the layers assigned to ``layer``'s attributes, in Keras's order: attribute names
    sorted, private ones last; a list's or dict's layers ranked as in _ranked."""
    for name, value in sorted(vars(layer).items(), key=_private_last):
        if name in _UNTRACKED or value is layer:
            continue
        if isinstance(value, Layer):
            yield join(path, name), value
        elif isinstance(value, (list, tuple, dict)):
            items = value.values() if isinstance(value, dict) else value
            yield from _ranked([item for item in items if isinstance(item, Layer) and item is not layer],
                               join(path, name))


def _private_last(item):
    name = item[0]
    return "~" + name if name.startswith("_") else name


def own_weights(layer):
    """The weights a layer made itself (add_weight), trainable ones first: Keras's save_own_variables order."""
    return [v for v in layer._weights if v.trainable] + [v for v in layer._weights if not v.trainable]


def hooked(layer, name):
    """Whether the layer's class defines Keras's saving hook ``name`` (save_own_variables, load_assets...)."""
    return callable(getattr(type(layer), name, None))


def hooked_layers(model, name):
    """[(path, layer)] of the layers that save their own state through Keras's hook ``name``."""
    return [(path, layer) for path, layer in layer_paths(model) if hooked(layer, name)]


def weight_slots(model):
    """[(file path, Variable, layer)] of every layer's own weights, in Keras's order (a layer with Keras's
    save_own_variables hook writes its own: see hooked_layers)."""
    out = []
    for path, layer in layer_paths(model):
        if hooked(layer, "save_own_variables"):
            continue
        variables = own_weights(layer)
        if variables and type(layer).__name__ in _CELL_LAYERS and not isinstance(getattr(layer, "cell", None), Layer):
            path = join(path, "cell")
        out += [(join(path, f"vars/{i}"), v, layer) for i, v in enumerate(variables)]
    return out


def vars_groups(model):
    """[(group path, object name)] of the "vars" groups Keras writes, one per object even without weights."""
    groups = [("vars", model.name)]
    for path, layer in layer_paths(model):
        if not path:
            continue
        groups.append((join(path, "vars"), layer.name))
        if type(layer).__name__ in _CELL_LAYERS and own_weights(layer) and not isinstance(getattr(layer, "cell", None),
                                                                                         Layer):
            groups.append((join(path, "cell/vars"), f"{_snake_case(type(layer).__name__)}_cell"))
    return groups


def seeded_layers(model):
    """[(path, layer)] of the layers that draw random numbers (Dropout): their state resumes training exactly."""
    return [(path, layer) for path, layer in layer_paths(model) if hasattr(layer, "_offset")]


def optimizer_slots(model, keras_order=True, slots=True):
    """[(file path, shape, kind, getter, setter)] of the optimizer's state, Keras 3's order (fastnn's own earlier
    npz files: no learning rate, slots variable by variable). ``kind``: "i" for the iteration count, "f" else.
    ``slots=False``: the iteration count and learning rate only (what Keras saves of an optimizer not built yet)."""
    opt = model.optimizer
    variables = model.trainable_weights
    entries = [((), "i", lambda: np.array(opt.iterations, dtype=np.int64),
                lambda a: setattr(opt, "iterations", int(a)))]
    from fastnn.optimizers import LearningRateSchedule
    if keras_order and not isinstance(opt._learning_rate, LearningRateSchedule):
        entries.append(((), "f", lambda: np.array(opt.learning_rate, dtype=np.float32),
                        lambda a: setattr(opt, "learning_rate", float(a))))
    if not slots:
        return [(f"optimizer/vars/{i}",) + entry for i, entry in enumerate(entries)]
    opt.build(variables)
    per_var = [[s for s in opt.variables_for(v) if s is not None] for v in variables]
    if keras_order and type(opt).__name__ in _GROUPED_SLOTS:
        slots = [row[k] for k in range(max(map(len, per_var), default=0)) for row in per_var if k < len(row)]
    else:
        slots = [s for row in per_var for s in row]
    for slot in slots:
        entries.append((slot.shape, "f", (lambda s=slot: s), (lambda a, s=slot: s.__setitem__(Ellipsis, a))))
    return [(f"optimizer/vars/{i}",) + entry for i, entry in enumerate(entries)]
