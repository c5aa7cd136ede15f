"""The op set as autograd Functions, one module per op group (basic, linear, activation, ...)."""
import importlib


def _optional(modname):
    """The module `modname`, or None while it does not exist (op groups land independently)."""
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as e:
        if e.name != modname:
            raise
        return None
