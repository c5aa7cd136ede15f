"""Models: ``Model`` (graphs of layer calls, Keras's Functional API), ``Sequential`` (a chain of layers on the
same engine), ``load_model``. Package layout: ``plan`` (how every model runs), ``training`` (compile, fit,
evaluate, predict for every model), ``model``, ``sequential``, ``summary``, ``data`` (argument handling).

>>> import numpy as np, fastnn
>>> from fastnn.layers import Dense
>>> model = fastnn.models.Sequential([Dense(8, activation="relu", input_shape=(4,)), Dense(3, activation="softmax")])
>>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
>>> history = model.fit(np.random.rand(64, 4), np.random.randint(0, 3, 64), epochs=2, verbose=0)
>>> sorted(history.history)
['accuracy', 'loss']
"""
from fastnn import saving
from fastnn.models.model import Model
from fastnn.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]

# the classes a `.keras` file may name at its top ("Functional": what Keras 3 writes for Model(inputs, outputs))
_MODEL_CLASSES = {"Sequential": Sequential, "Functional": Model, "Model": Model}


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model saved by `model.save(path)`: same architecture, weights, compile configuration and
    optimizer state (training resumes exactly where it stopped). See fastnn.saving for the format."""
    config, weights, source = saving.read_model_file(filepath, custom_objects)
    name = config.get("class_name")
    cls = _MODEL_CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"{source}: unsupported model class {name!r} (fastnn loads Sequential "
                         f"and Functional models)")
    try:
        model = cls.from_config(config["config"])
        shape = (config.get("build_config") or {}).get("input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
    except (KeyError, TypeError) as e:
        raise ValueError(f"{source}: config.json does not describe a model ({type(e).__name__}: {e})") from None
    return saving.restore_model_state(model, config, weights, source, compile)
