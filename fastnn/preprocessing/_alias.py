"""Module-level `__getattr__`/`__dir__` that forward a fixed set of names to `fastnn.utils` on first use.

Looked up lazily (PEP 562) so that `fastnn.utils` may import from `fastnn.preprocessing` without a cycle, and
so that a name appears here as soon as `fastnn.utils` defines it."""
import importlib


def forward_to_utils(module_name, names, own=()):
    names = tuple(names)

    def __getattr__(name):
        if name in names:
            utils = importlib.import_module("fastnn.utils")
            if hasattr(utils, name):
                return getattr(utils, name)
            raise AttributeError(f"{module_name}.{name} (an alias of fastnn.utils.{name}) is not available: "
                                 f"this fastnn has no fastnn.utils.{name}")
        raise AttributeError(f"module {module_name!r} has no attribute {name!r}")

    def __dir__():
        utils = importlib.import_module("fastnn.utils")
        return sorted(set(own) | {n for n in names if hasattr(utils, n)})

    return __getattr__, __dir__
