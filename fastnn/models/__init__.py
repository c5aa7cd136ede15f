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
import os

from fastnn import saving
from fastnn.serialization import weight_budget
from fastnn.models.model import Model
from fastnn.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model"]

# the classes a `.keras` file may name at its top ("Functional": what Keras 3 writes for Model(inputs, outputs))
_MODEL_CLASSES = {"Sequential": Sequential, "Functional": Model, "Model": Model}


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """Load a model file: a Keras 3 `.keras` (fastnn's or Keras's), a legacy tf.keras `.h5`, or fastnn's earlier
    `.keras` files. Same architecture, weights, compile configuration and optimizer state (training resumes where
    it stopped). Custom classes in it must be registered (``fastnn.saving.register_keras_serializable``) or given
    as ``custom_objects`` ({name: class}); ``safe_mode`` refuses a Lambda's bytecode as Keras does (fastnn never
    runs code from a file). HDF5 files need h5py (``pip install fastnn[h5]``). See fastnn.saving."""
    filepath = os.fspath(filepath)
    source = f"load_model({filepath!r})"
    if not os.path.exists(filepath):
        raise FileNotFoundError(f"{source}: no such file")

    # a file holds its weights, deflated at most 64-fold: its config may not make fastnn allocate more
    budget = 64 * os.path.getsize(filepath) + (16 << 20)

    def build(config):
        with saving.custom_object_scope(custom_objects), saving.loading(safe_mode), weight_budget(budget, source):
            return _from_config(config, source)

    if filepath.endswith(".h5") or filepath.endswith(".hdf5"):
        return saving.load_h5_file(filepath, build, compile, source)
    if filepath.endswith(".weights.npz"):
        raise ValueError(f"{source}: a weights-only file: build the model, then call model.load_weights()")
    return saving.load_keras_file(filepath, build, compile, source)


def _from_config(config, source):
    """The model a file's top-level config entry describes, built and ready for its weights."""
    if not isinstance(config.get("config"), dict):
        raise ValueError(f"{source}: config.json does not describe a model (no 'config' object)")
    cls = saving.resolve_class(config, _MODEL_CLASSES, f"{source}: unsupported model class")  # (names it)
    if not issubclass(cls, Model):
        raise ValueError(f"{source}: unsupported model class {config['class_name']!r}: a layer, not a model")
    try:
        model = cls.from_config(config["config"])
        build_config = config.get("build_config") or {}
        _build(model, build_config.get("input_shape") if isinstance(build_config, dict) else None)
    except (KeyError, TypeError, IndexError, AttributeError, RecursionError) as e:
        raise ValueError(f"{source}: config.json does not describe a model ({type(e).__name__}: {e})"[:2000]) from None
    except ValueError as e:
        if source in str(e):
            raise
        raise ValueError(f"{source}: {e}") from None
    return model


def _build(model, input_shape):
    """Create the weights of a model loaded unbuilt, so that the saved ones can be loaded into them: a subclassed
    model runs its call() once (its sublayers build on their first data)."""
    if input_shape is None or model.built:
        return
    if not isinstance(input_shape, (list, tuple)) or len(input_shape) > 16 or \
            not all(d is None or (type(d) is int and 0 < d < 1 << 20) for d in input_shape):
        raise ValueError(f"build_config: input_shape {input_shape!r} is not a shape fastnn will build")
    if model._is_graph:
        model.build(tuple(input_shape))
    else:
        model._maybe_build(tuple(input_shape))
