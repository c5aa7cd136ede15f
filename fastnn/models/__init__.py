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
    optimizer state (training resumes exactly where it stopped). Custom classes in it must be registered
    (``fastnn.saving.register_keras_serializable``) or given as ``custom_objects`` ({name: class}). See
    fastnn.saving for the format."""
    config, weights, source = saving.read_model_file(filepath)
    with saving.custom_object_scope(custom_objects):  # nested from_config calls resolve custom classes too
        cls = saving.resolve_class(config, _MODEL_CLASSES, f"{source}: unsupported model class")
        if not issubclass(cls, Model):
            raise ValueError(f"{source}: unsupported model class {config['class_name']!r}: a layer, not a model")
        try:
            model = cls.from_config(config["config"])
            _build(model, (config.get("build_config") or {}).get("input_shape"))
        except (KeyError, TypeError) as e:
            raise ValueError(f"{source}: config.json does not describe a model ({type(e).__name__}: {e})") from None
    return saving.restore_model_state(model, config, weights, source, compile)


def _build(model, input_shape):
    """Create the weights of a model loaded unbuilt, so that the saved ones can be loaded into them: a subclassed
    model runs its call() once (its sublayers build on their first data)."""
    if input_shape is None or model.built:
        return
    if model._is_graph:
        model.build(tuple(input_shape))
    else:
        model._maybe_build(tuple(input_shape))
