"""Optimizers with Keras 3's defaults and update rules (``keras/src/optimizers/*.py``).

>>> import fastnn
>>> opt = fastnn.optimizers.Adam()
>>> opt.learning_rate
0.001
"""
from fastnn.optimizers import schedules
from fastnn.optimizers.adafactor import Adafactor
from fastnn.optimizers.base import Optimizer
from fastnn.optimizers.rules import (SGD, Adadelta, Adagrad, Adam, Adamax, AdamW, Ftrl, Lion, Nadam,  # noqa: F401
                                     RMSprop)
from fastnn.optimizers.schedules import LearningRateSchedule  # noqa: F401

_BY_NAME = {cls.__name__.lower(): cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Nadam, Adamax, Lion,
                                                  Ftrl, Adafactor)}


def get(identifier):
    """Resolve a name ("adam", "sgd", "nadam", ... any case), a config dict or an Optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, str) and identifier.lower() in _BY_NAME:
        return _BY_NAME[identifier.lower()]()
    if isinstance(identifier, dict) and str(identifier.get("class_name", "")).lower() in _BY_NAME:
        return _BY_NAME[identifier["class_name"].lower()].from_config(identifier.get("config", {}))
    raise ValueError(f"Could not interpret optimizer identifier: {identifier!r}. Known: {sorted(_BY_NAME)}")
