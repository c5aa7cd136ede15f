"""``fastnn.keras.<module>`` import paths: ``from fastnn.keras import layers`` and ``from fastnn.keras.models
import Sequential`` (what ``from tensorflow.keras import layers`` becomes when only the package name changes)
import the real ``fastnn.<module>`` (one module object, never a second copy)."""
import importlib
import importlib.abc
import importlib.util
import sys

_PREFIX = "fastnn.keras"


class _KerasAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == _PREFIX or name.startswith(_PREFIX + "."):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("fastnn" + spec.name[len(_PREFIX):])

    def exec_module(self, module):
        """The real module was executed when it was imported."""


def install():
    if not any(isinstance(f, _KerasAlias) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasAlias())  # before PathFinder, which would load a second copy
