"""What a model file may name, and the conversions between fastnn's objects and Keras 3's serialized form
(``{"module", "class_name", "config", "registered_name"}``; tf.keras 2 wrote ``{"class_name", "config"}``).

Every class a file names is looked up in an explicit registry of the classes fastnn can serialize (its exported
layers and models, initializers, regularizers, losses, metrics, optimizers, learning-rate schedules), then among
custom classes (``register_keras_serializable`` or ``custom_objects``). Nothing is imported, no attribute of a
module is read by a name from a file, and nothing in a file is executed: a Lambda's bytecode is refused.
"""
import inspect
import threading

from fastnn import initializers, layers as layers_module, losses, metrics, optimizers, regularizers
from fastnn.layers.base import Layer
from fastnn.serialization import check_get_config, get_registered_name, get_registered_object

_CONTEXT = threading.local()  # safe_mode of the load_model running in this thread


class loading:
    """``with loading(safe_mode):`` around a load, so nested from_config calls know it."""

    def __init__(self, safe_mode):
        self.safe_mode = bool(safe_mode)

    def __enter__(self):
        self.saved = getattr(_CONTEXT, "safe_mode", True)
        _CONTEXT.safe_mode = self.safe_mode

    def __exit__(self, *exc):
        _CONTEXT.safe_mode = self.saved


# ---- registries: Keras's module of each kind, and the classes fastnn has for it ---------------------------
def _registry(kind):
    if kind == "initializer":
        return initializers._CLASSES
    if kind == "regularizer":
        return {cls.__name__: cls for cls in (regularizers.L1, regularizers.L2, regularizers.L1L2)}
    if kind == "loss":
        return losses._CLASSES
    if kind == "metric":
        return metrics._CLASSES
    if kind == "optimizer":
        return {cls.__name__: cls for cls in optimizers._BY_NAME.values()}
    if kind == "schedule":
        return {name: cls for name, cls in vars(optimizers.schedules).items()
                if isinstance(cls, type) and issubclass(cls, optimizers.LearningRateSchedule)}
    raise AssertionError(kind)


_MODULES = {"initializer": "keras.initializers", "regularizer": "keras.regularizers", "loss": "keras.losses",
            "metric": "keras.metrics", "optimizer": "keras.optimizers", "schedule": "keras.optimizers.schedules",
            "layer": "keras.layers"}
_BASES = {"initializer": initializers.Initializer, "regularizer": regularizers.Regularizer, "loss": losses.Loss,
          "metric": metrics.Metric, "optimizer": optimizers.Optimizer,
          "schedule": optimizers.LearningRateSchedule, "layer": Layer}
_TOP_MODULES = {"Functional": "keras.src.models.functional", "Sequential": "keras"}  # a model's "module"


def _kind_of_key(key):
    """The kind of object a config entry holds, by Keras's argument names (tf.keras 2 configs lack "module")."""
    for suffix, kind in (("_initializer", "initializer"), ("_regularizer", "regularizer"),
                         ("_constraint", "constraint")):
        if key.endswith(suffix):
            return kind
    return {"learning_rate": "schedule", "dtype": "dtype", "activation": "activation",
            "recurrent_activation": "activation"}.get(key)


def _unknown(kind, class_name, where):
    return ValueError(
        f"{where}: unknown {kind} class {class_name!r}: fastnn builds only its own {kind}s and custom classes. "
        f"Decorate a custom class with @fastnn.saving.register_keras_serializable() (and import it before loading) "
        f"or pass it as load_model(..., custom_objects={{{class_name!r}: the class}}).")


def _custom(names, base):
    for obj in (get_registered_object(n) for n in names if isinstance(n, str)):
        if isinstance(obj, type) and issubclass(obj, base):
            return obj
    return None


def resolve_class(entry, model_classes, unknown="Unknown layer class in config:"):
    """The Layer (or model) class an entry names. Without a registered name of its own: fastnn's own (an exported
    layer or one of ``model_classes``); else a custom Layer class by its registered name, then its class name,
    from the open custom_object_scopes (load_model's ``custom_objects``) or the registry. Anything else (a
    function, a module, ``__class__``...) raises a ValueError naming the class."""
    class_name, registered = entry.get("class_name"), entry.get("registered_name")
    if isinstance(class_name, str) and registered in (None, class_name, "Functional"):
        own = model_classes.get(class_name) or (
            getattr(layers_module, class_name) if class_name in layers_module.__all__ else None)
        if isinstance(own, type) and issubclass(own, Layer):
            return own
    cls = _custom((registered, class_name), Layer)
    if cls is None:
        also = f" (registered name {registered!r})" if registered not in (None, class_name) else ""
        raise ValueError(f"{unknown} {class_name!r}{also}. fastnn loads its own layers, {sorted(model_classes)} and custom "
                         f"classes: decorate a custom class with @fastnn.saving.register_keras_serializable() (and "
                         f"import it before loading) or pass it as load_model(..., custom_objects={{{class_name!r}: "
                         f"the class}}).")
    return cls


def deserialize(entry, kind, where):
    """The fastnn object of a serialized Keras object of ``kind``. A string (a built-in's name) passes through
    for the consumer's get() to check against its own table; None stays None."""
    if entry is None or isinstance(entry, str):
        return entry
    if isinstance(entry, (bool, int, float)) and kind == "schedule":
        return entry
    if isinstance(entry, list) and kind in ("loss", "metric"):
        return [deserialize(e, kind, where) for e in entry]
    if isinstance(entry, dict) and "class_name" not in entry and kind in ("loss", "metric"):
        return {k: deserialize(e, kind, where) for k, e in entry.items()}  # per output
    if not (isinstance(entry, dict) and isinstance(entry.get("class_name"), str)):
        raise ValueError(f"{where}: a {kind} must be a name or a serialized object, got {entry!r}")
    class_name, registered, config = entry["class_name"], entry.get("registered_name"), entry.get("config")
    if class_name == "function" and kind in ("loss", "metric", "activation"):
        name = registered if isinstance(registered, str) else config
        fn = get_registered_object(name) if isinstance(name, str) else None
        if callable(fn) and not isinstance(fn, type):
            return fn
        if isinstance(config, str):
            return config  # a built-in function by name
        raise _unknown(kind, name, where)
    if kind in ("constraint", "activation", "dtype"):
        raise ValueError(f"{where}: {kind} {class_name!r} is not supported by fastnn")
    if kind == "metric" and class_name == "MeanMetricWrapper" and isinstance(config, dict) and \
            isinstance(config.get("fn"), str):  # tf.keras 2: a metric function by name ("accuracy" for "acc...")
        return config["name"] if isinstance(config.get("name"), str) else config["fn"]
    if class_name.startswith("Custom>") and get_registered_object(class_name) is None:
        class_name = registered = class_name[len("Custom>"):]  # tf.keras 2.11+ names its own optimizers so
    base = _BASES[kind]
    cls = None
    if registered in (None, class_name):
        cls = _registry(kind).get(class_name)
    cls = cls or _custom((registered, class_name), base)
    if cls is None:
        raise _unknown(kind, class_name, where)
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"{where}: the config of {kind} {class_name!r} is not a dict: {config!r}")
    if _is_own(cls, kind):
        config = fastnn_config(cls, config, f"{where}: {kind} {class_name!r}")
    if kind == "optimizer" and isinstance(config.get("learning_rate"), dict):
        config = {**config, "learning_rate": deserialize(config["learning_rate"], "schedule", where)}
    try:
        return cls.from_config(config)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: cannot build {kind} {class_name!r} from its config ({e})") from None


def _is_own(cls, kind):
    if kind == "layer":
        return cls.__name__ in layers_module.__all__ and getattr(layers_module, cls.__name__) is cls or \
            cls.__module__.startswith("fastnn.models.")
    return _registry(kind).get(cls.__name__) is cls


# ---- Keras configs -> fastnn's constructor arguments ----------------------------------------------------------
# Arguments Keras writes that fastnn's classes do not take, with the value that means "off": dropped when they
# hold it (any other value is refused). None, False and 0 are "off" for every argument (dropout=0.0, warmup_steps=0).
_OFF = {"renorm_momentum": 0.99, "ema_momentum": 0.99, "autocast": True, "reduction": "sum_over_batch_size",
        "dtype": "float32", "input_axes": None, "gain": 1.0, "use_cudnn": "auto",
        # initialization only (a loaded layer's weights come from the file)
        "unit_forget_bias": True}
_IGNORED = frozenset(("shared_object_id",))


def _accepted(cls):
    """Keyword arguments ``cls`` takes: its constructors' parameters up the class chain (each passes **kwargs on)."""
    names = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name != "self"}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    cell = getattr(cls, "_cell_class", None)  # a recurrent layer passes its cell's arguments on to it
    if isinstance(cell, type) and cell is not cls:
        names |= _accepted(cell)
    if not issubclass(cls, Layer):  # (classes made by factories take **kwargs: their config names the arguments)
        try:
            names |= set(cls().get_config())
        except Exception:  # needs arguments: its signature is all there is
            pass
    return names


def _dtype_name(value, where):
    if isinstance(value, dict):  # Keras 3's DTypePolicy
        value = (value.get("config") or {}).get("name") if value.get("class_name") in (
            "DTypePolicy", "FloatDTypePolicy") else value.get("class_name")
    return value


def _is_zero(value):
    return type(value) in (int, float) and value == 0


def fastnn_config(cls, config, where):
    """``config`` (written by Keras or fastnn) as arguments of fastnn's own ``cls``: dtype policies as names,
    nested initializers/regularizers/schedules as objects, Keras-only arguments dropped when they hold their "off"
    value; any other argument fastnn lacks is refused, naming it."""
    accepted = _accepted(cls)
    out = {}
    for key, value in config.items():
        if key in _IGNORED:
            continue
        kind = _kind_of_key(key)
        if kind == "dtype":
            value = _dtype_name(value, where)
        elif isinstance(value, dict) and "class_name" in value and kind is not None:
            value = deserialize(value, kind, f"{where} argument {key!r}")
        if key in accepted:
            out[key] = value
        elif not (value is None or value is False or _is_zero(value) or (key in _OFF and value == _OFF[key])):
            raise ValueError(f"{where}: argument {key}={value!r} is not supported by fastnn")
    return out


def layer_from_entry(entry, model_classes, where="config"):
    """The layer a Keras entry ({"class_name", "config", ...}) describes."""
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict):
        raise ValueError(f"{where}: a layer entry must hold a 'class_name' and a 'config' dict, got {entry!r}"[:500])
    cls = resolve_class(entry, model_classes)
    config = entry["config"]
    name = f"{where}: layer {config.get('name', entry.get('class_name'))!r}"
    if _is_own(cls, "layer") and not cls.__module__.startswith("fastnn.models."):
        _refuse_code(cls, config, name)
        config = fastnn_config(cls, config, name)
    elif isinstance(config.get("dtype"), dict):
        config = {**config, "dtype": _dtype_name(config["dtype"], name)}
    try:
        return cls.from_config(config)
    except (TypeError, ValueError) as e:
        raise (TypeError if isinstance(e, TypeError) else ValueError)(f"{name}: {e}") from None


def _refuse_code(cls, config, where):
    """Keras stores a Python lambda as marshalled bytecode: refused (safe_mode as Keras; fastnn never runs it)."""
    if cls is not layers_module.Lambda:
        return
    for key in ("function", "output_shape"):
        value = config.get(key)
        if isinstance(value, dict) and value.get("class_name") == "__lambda__":
            if getattr(_CONTEXT, "safe_mode", True):
                raise ValueError(
                    f"{where}: Requested the deserialization of a `lambda` object. This carries a potential risk of "
                    f"arbitrary code execution and thus it is disallowed by default. If you trust the source of the "
                    f"saved model, you can pass `safe_mode=False` to the loading function in order to allow `lambda` "
                    f"loading, or call `keras.config.enable_unsafe_deserialization()`.")
            raise ValueError(f"{where}: the {key} is Python bytecode, which fastnn never runs even with "
                             f"safe_mode=False: define the function in your code, register it "
                             f"(@fastnn.saving.register_keras_serializable()) and save the model with it again")


def deserialize_layer(entry, model_classes=None, where="config"):
    """Public hook for layers that hold other layers in their config (wrappers): the layer of a Keras entry."""
    if model_classes is None:
        from fastnn.models import _MODEL_CLASSES as model_classes
    return layer_from_entry(entry, model_classes, where)


# ---- fastnn objects -> Keras 3's serialized form --------------------------------------------------------------
def serialize(obj, kind):
    """A Keras 3 serialized object for a fastnn object of ``kind`` (strings and None pass; lists and dicts per
    output for losses and metrics; a plain function by its registered name or ``__name__``)."""
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [serialize(o, kind) for o in obj]
    if isinstance(obj, dict):
        if "class_name" in obj and "config" in obj:  # a get_config() that nests another's (fastnn's short form)
            return _with_module(obj, kind)
        return {k: serialize(o, kind) for k, o in obj.items()}
    cls = type(obj)
    if hasattr(obj, "get_config") and not isinstance(obj, type):
        config = obj.get_config()
        if kind == "optimizer" and isinstance(getattr(obj, "_learning_rate", None), optimizers.LearningRateSchedule):
            config = {**config, "learning_rate": serialize(obj._learning_rate, "schedule")}
        own = _registry(kind).get(cls.__name__) is cls if kind in _BASES and kind != "layer" else False
        return {"module": _MODULES[kind] if own else cls.__module__, "class_name": cls.__name__,
                "config": keras_config(config), "registered_name": None if own else get_registered_name(cls)}
    name = getattr(obj, "__name__", None)
    if name is None:
        raise ValueError(f"cannot save {obj!r}: it has neither a name nor get_config()")
    return get_registered_name(obj)


def _with_module(entry, kind):
    cls = _registry(kind).get(entry["class_name"]) if kind in _BASES and kind != "layer" else None
    return {"module": _MODULES[kind] if cls is not None else None, "class_name": entry["class_name"],
            "config": keras_config(entry.get("config") or {}),
            "registered_name": None if cls is not None else entry["class_name"]}


def keras_config(config):
    """A fastnn get_config() as Keras 3 writes it: nested initializers/regularizers/schedules in full form, no
    ``batch_input_shape`` (Keras 3's layers refuse it: a Sequential's InputLayer entry carries the shape)."""
    out = {}
    for key, value in config.items():
        if key == "batch_input_shape":
            continue
        kind = _kind_of_key(key)
        if isinstance(value, dict) and "class_name" in value and "module" not in value and kind in _MODULES:
            value = _with_module(value, kind)
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def class_name_of(layer):
    """The class name Keras writes: a graph model is a "Functional" (what keras.Model(inputs, outputs) makes)."""
    name = type(layer).__name__
    return "Functional" if name == "Model" and layer._is_graph else name


def _is_exported(cls):
    if cls.__module__ in ("fastnn.models.model", "fastnn.models.sequential"):
        return True
    return cls.__name__ in layers_module.__all__ and getattr(layers_module, cls.__name__) is cls


def layer_entry(layer):
    """Keras 3's serialized layer: module, class_name, config, registered_name and build_config. A custom class
    has its module (None for __main__) and its registered name ("package>Name", its class name if unregistered),
    which is how loading finds it again. A Sequential lists its layers as entries, an InputLayer first."""
    cls, class_name = type(layer), class_name_of(layer)
    if _is_exported(cls) and (class_name != "Model"):
        module = _TOP_MODULES.get(class_name, "keras.layers")
        registered = "Functional" if class_name == "Functional" else None
    else:
        check_get_config(layer, Layer)
        module = None if cls.__module__ == "__main__" else cls.__module__
        registered = get_registered_name(cls)
    config = keras_config(layer.get_config())
    if layer._kind == "model" and layer._chain:
        config["layers"] = _sequential_entries(layer)
        if layer.built:
            config["build_input_shape"] = list(layer._input_shape)
    entry = {"module": module, "class_name": class_name, "config": config, "registered_name": registered}
    if not isinstance(layer, layers_module.InputLayer):  # Keras writes none for the one layer never built by a call
        build = layer.get_build_config()
        entry["build_config"] = _jsonable(build) if build is not None else None
    return entry


def _sequential_entries(model):
    entries = [layer_entry(sublayer) for sublayer in model.layers]
    if model.built:
        shape = list(model._input_shape)
        entries.insert(0, {"module": "keras.layers", "class_name": "InputLayer",
                           "config": {"batch_shape": shape, "dtype": "float32", "sparse": False, "ragged": False,
                                      "name": getattr(getattr(model, "_input_layer", None), "name", None)
                                      or f"{model.name}_input", "optional": False},
                           "registered_name": None})
    return entries


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
