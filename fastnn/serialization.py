"""Keras 3's registry of custom classes: what a `.keras` file may name beyond fastnn's own layers and models.

>>> import fastnn
>>> from fastnn.saving import register_keras_serializable, get_registered_name, get_registered_object
>>> @register_keras_serializable(package="MyLayers")
... class Scale(fastnn.layers.Layer):
...     def call(self, x):
...         return x * 2
>>> get_registered_name(Scale)
'MyLayers>Scale'
>>> get_registered_object("MyLayers>Scale") is Scale
True

Files store names only: loading looks a name up here (or in ``custom_objects``) and never imports a module.
"""
import inspect
import threading

# "package>name" -> class or function, and back (Keras's GLOBAL_CUSTOM_OBJECTS / GLOBAL_CUSTOM_NAMES)
_OBJECTS = {}
_NAMES = {}
_SCOPES = threading.local()  # the custom_object_scope dicts open in this thread, innermost last


def register_keras_serializable(package="Custom", name=None):
    """Class (or function) decorator: register it under ``"package>name"`` (name: its ``__name__``), the
    ``registered_name`` its configs are saved with and loaded by. As in Keras 3, registering again under
    the same key replaces the earlier object (re-running a notebook cell redefines the class)."""

    def decorator(arg):
        key = f"{package}>{name if name is not None else arg.__name__}"
        if inspect.isclass(arg) and not hasattr(arg, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        _OBJECTS[key] = arg
        _NAMES[arg] = key
        return arg

    return decorator


def get_registered_name(obj):
    """The name ``obj`` is registered under, or its ``__name__`` if it is not registered (Keras 3)."""
    return _NAMES.get(obj, obj.__name__)


def get_registered_object(name, custom_objects=None):
    """The object ``name`` stands for: from the open custom_object_scopes (innermost first), the registry,
    then ``custom_objects``; None if none has it (Keras 3's lookup order)."""
    for scope in reversed(getattr(_SCOPES, "stack", [])):
        if name in scope:
            return scope[name]
    if name in _OBJECTS:
        return _OBJECTS[name]
    return (custom_objects or {}).get(name)


def get_custom_objects():
    """The live registry dict ({"package>name": object}); scoped objects are not in it (Keras 3)."""
    return _OBJECTS


class CustomObjectScope:
    """``with custom_object_scope({"Scale": Scale}): ...``: while open, loading (``load_model``,
    ``from_config``) also finds these objects by name."""

    def __init__(self, custom_objects):
        self.custom_objects = dict(custom_objects or {})

    def __enter__(self):
        if not hasattr(_SCOPES, "stack"):
            _SCOPES.stack = []
        _SCOPES.stack.append(self.custom_objects)
        return self

    def __exit__(self, *exc):
        _SCOPES.stack.pop()


custom_object_scope = CustomObjectScope


def check_get_config(obj, base):
    """Keras's error for an object that cannot be saved: its class takes ``__init__`` arguments beyond those of
    ``base`` (Layer or Model) but does not override base's ``get_config()``, so its config would not hold them.
    (Keras records the arguments a layer was made with; fastnn does not, so it asks for get_config().)"""
    cls = type(obj)
    if cls.get_config is not base.get_config:
        return
    known = inspect.signature(base.__init__).parameters
    params = [name for name, p in inspect.signature(cls.__init__).parameters.items()
              if name != "self" and name not in known and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if not params:
        return
    raise NotImplementedError(
        f"Object {cls.__name__} was created by passing argument values ({', '.join(params)}) in `__init__()`, "
        f"and therefore the object must override `get_config()` in order to be serializable. Please implement "
        f"`get_config()`.\n\nExample:\n\n"
        "class CustomLayer(fastnn.layers.Layer):\n"
        "    def __init__(self, arg1, arg2, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.arg1 = arg1\n"
        "        self.arg2 = arg2\n\n"
        "    def get_config(self):\n"
        "        config = super().get_config()\n"
        "        config.update({\n"
        "            \"arg1\": self.arg1,\n"
        "            \"arg2\": self.arg2,\n"
        "        })\n"
        "        return config\n")


_BUDGET = threading.local()  # [bytes left, who] while a model file's config is being built


class weight_budget:
    """``with weight_budget(nbytes, source):`` the layers built inside may create at most ``nbytes`` of weights, so a
    file's config cannot make fastnn allocate more than the file could hold (Dense(units=10**9) in a 10 KB file)."""

    def __init__(self, nbytes, source):
        self.state = [int(nbytes), source]

    def __enter__(self):
        self.saved = getattr(_BUDGET, "state", None)
        _BUDGET.state = self.state
        return self

    def __exit__(self, *exc):
        _BUDGET.state = self.saved


def charge_weight(owner, shape):
    """Count a weight about to be created against the open weight_budget (if any); ValueError past it."""
    state = getattr(_BUDGET, "state", None)
    if state is None:
        return
    nbytes = 4
    for d in shape:
        nbytes *= max(int(d), 0)
    if nbytes > state[0]:
        raise ValueError(f"{state[1]}: {owner} would create a weight of shape {tuple(shape)}: the model's weights "
                         f"would exceed what the file can hold")
    state[0] -= nbytes
