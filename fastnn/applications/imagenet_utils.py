"""What Keras's applications share: the input-shape rules, ``correct_pad``, ``preprocess_input`` (modes
"tf", "torch", "caffe"), ``decode_predictions``, and fetching/loading ``weights`` (None, "imagenet" or a file).

Pretrained files are Keras's own (same URLs), cached under ``$FASTNN_HOME/models`` (default
``~/.fastnn/models``); offline, the error names the URL and the path to save the file at.
"""
import json
import os
import warnings

import numpy as np

from fastnn import ops
from fastnn._graph import KerasTensor
from fastnn.datasets import _download
from fastnn.tensor import Tensor

CLASS_INDEX_URL = "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json"
_CLASS_INDEX = None


class WeightsUnavailableError(OSError):
    """A pretrained weights file is neither cached nor downloadable; the message says where to put it."""


def models_dir():
    """The pretrained-weights cache folder: ``$FASTNN_HOME/models``, else ``~/.fastnn/models``."""
    home = os.environ.get("FASTNN_HOME") or os.path.join(os.path.expanduser("~"), ".fastnn")
    return os.path.join(home, "models")


def get_weights_file(fname, origin):
    """Path of the cached copy of ``origin`` (downloaded into ``models_dir()/fname`` when missing). Keras
    publishes no sha256 for these files, so a cached file is trusted as is (as Keras does without a hash)."""
    path = os.path.join(models_dir(), fname)
    if os.path.isfile(path):
        return path
    hint = (f"To use it offline, download {origin} yourself and save it as\n    {path}\n(or set FASTNN_HOME to a "
            f"folder that holds models/{fname}).")
    _download.download_to(origin, path, hint, WeightsUnavailableError, "weights")
    return path


def check_weights_arg(weights, include_top, classes):
    """Keras's argument checks on ``weights`` (None, "imagenet" or an existing file) and ``classes``."""
    if not (weights in {"imagenet", None} or (isinstance(weights, (str, os.PathLike)) and os.path.exists(weights))):
        raise ValueError("The `weights` argument should be either `None` (random initialization), `imagenet` "
                         "(pre-training on ImageNet), or the path to the weights file to be loaded.  Received "
                         f"`weights={weights}`")
    if weights == "imagenet" and include_top and classes != 1000:
        raise ValueError('If using `weights="imagenet"` with `include_top` as true, `classes` should be 1000. '
                         f"Received `classes={classes}`")


def load_weights(model, weights, fname=None, origin=None):
    """Load ``weights`` into ``model`` as Keras's applications do (``model.load_weights``): "imagenet" fetches
    Keras's file ``fname`` from ``origin`` first. Keras's pretrained files are legacy Keras-2 HDF5 weight files
    (a group per layer named after it, its "weight_names" attribute listing its datasets); they load by the
    order of the layers with weights, checked layer by layer against the file's layer names and weight shapes.
    A ``.weights.h5``, ``.keras`` or ``.weights.npz`` file loads as ``model.load_weights`` reads it."""
    if weights is None:
        return
    path = get_weights_file(fname, origin) if weights == "imagenet" else os.fspath(weights)
    if path.endswith(".h5") and not path.endswith(".weights.h5"):
        _check_layer_names(model, path)
    model.load_weights(path)


def _check_layer_names(model, path):
    """A legacy file's layers with weights must be ``model``'s, by name and in order (Keras loads by order
    only; a file of another architecture or width would otherwise fail later on a shape, or not at all)."""
    from fastnn.saving import _h5
    h5py = _h5.h5py_module(f"loading {path}")
    source = f"weights file {path!r}"
    try:
        with h5py.File(path, "r") as f:
            group = f["model_weights"] if "model_weights" in f else f
            names = [n for n in _h5.name_list(group, "layer_names") if n in group and
                     _h5.name_list(group[n], "weight_names")]
    except OSError as e:
        raise ValueError(f"{source}: not a readable HDF5 file ({e})") from None
    expected = [layer.name for layer in model.layers if layer.weights]
    if names != expected:
        extra = [n for n in names if n not in expected][:5]
        missing = [n for n in expected if n not in names][:5]
        raise ValueError(f"{source} does not hold the weights of model '{model.name}': {len(names)} layers with "
                         f"weights in the file, {len(expected)} in the model; in the file only: {extra}, in the "
                         f"model only: {missing} (a file for another alpha, input size or include_top?)")


def obtain_input_shape(input_shape, default_size, min_size, require_flatten, weights=None):
    """Keras's ``imagenet_utils.obtain_input_shape`` for channels_last: the (H, W, C) the model is built for."""
    if weights != "imagenet" and input_shape and len(input_shape) == 3:
        if input_shape[-1] not in {1, 3}:
            warnings.warn(f"This model usually expects 1 or 3 input channels. However, it was passed an "
                          f"input_shape with {input_shape[-1]} input channels.", stacklevel=3)
        default_shape = (default_size, default_size, input_shape[-1])
    else:
        default_shape = (default_size, default_size, 3)
    if weights == "imagenet" and require_flatten:
        if input_shape is not None and tuple(input_shape) != default_shape:
            raise ValueError(f"When setting `include_top=True` and loading `imagenet` weights, `input_shape` should "
                             f"be {default_shape}.  Received: input_shape={input_shape}")
        return default_shape
    if input_shape:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError("`input_shape` must be a tuple of three integers.")
        if input_shape[-1] != 3 and weights == "imagenet":
            raise ValueError(f"The input must have 3 channels; Received `input_shape={input_shape}`")
        if any(d is not None and d < min_size for d in input_shape[:2]):
            raise ValueError(f"Input size must be at least {min_size}x{min_size}; Received: "
                             f"input_shape={input_shape}")
    else:
        input_shape = default_shape if require_flatten else (None, None, 3)
    if require_flatten and None in input_shape:
        raise ValueError(f"If `include_top` is True, you should specify a static `input_shape`. Received: "
                         f"input_shape={input_shape}")
    return input_shape


def correct_pad(inputs, kernel_size):
    """((top, bottom), (left, right)) zero padding before a stride-2 'valid' convolution (Keras)."""
    size = inputs.shape[1:3]
    if isinstance(kernel_size, int):
        kernel_size = (kernel_size, kernel_size)
    adjust = (1, 1) if size[0] is None else (1 - size[0] % 2, 1 - size[1] % 2)
    correct = (kernel_size[0] // 2, kernel_size[1] // 2)
    return ((correct[0] - adjust[0], correct[0]), (correct[1] - adjust[1], correct[1]))


def preprocess_input(x, data_format=None, mode="caffe"):
    """Keras's ``imagenet_utils.preprocess_input`` on numpy arrays (channels_last): "tf" scales to [-1, 1],
    "torch" to [0, 1] then ImageNet mean/std per channel, "caffe" RGB -> BGR then minus the ImageNet mean.
    Float arrays are changed in place (as Keras); others are converted to float32 first."""
    if data_format not in (None, "channels_last"):
        raise ValueError(f"preprocess_input: only data_format='channels_last' is supported, got {data_format!r}")
    if mode not in {"caffe", "tf", "torch"}:
        raise ValueError(f"Expected mode to be one of `caffe`, `tf` or `torch`. Received: mode={mode}")
    if isinstance(x, (KerasTensor, Tensor)):  # inside a model (Input -> preprocess_input -> base): recorded ops
        return _preprocess_symbolic(x, mode)
    x = np.asarray(x)
    if not issubclass(x.dtype.type, np.floating):
        x = x.astype(np.float32)
    if mode == "tf":
        x /= 127.5
        x -= 1.0
        return x
    if mode == "torch":
        x /= 255.0
        mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    else:
        x = x[..., ::-1]
        mean, std = [103.939, 116.779, 123.68], None
    for c in range(3):
        x[..., c] -= mean[c]
        if std is not None:
            x[..., c] /= std[c]
    return x


def _preprocess_symbolic(x, mode):
    """preprocess_input on a KerasTensor or Tensor, as arithmetic the graph records (never in place)."""
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return ops.take(x, np.array([2, 1, 0]), axis=-1) - np.array([103.939, 116.779, 123.68], np.float32)  # RGB -> BGR


def decode_predictions(preds, top=5):
    """Top ``top`` (class_id, name, score) per row of ImageNet predictions (N, 1000), best first; the class
    index is Keras's imagenet_class_index.json (downloaded into the weights cache on first use)."""
    global _CLASS_INDEX
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != 1000:
        raise ValueError("`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
                         f"(samples, 1000)). Received array with shape: {preds.shape}")
    if _CLASS_INDEX is None:
        with open(get_weights_file("imagenet_class_index.json", CLASS_INDEX_URL)) as f:
            _CLASS_INDEX = json.load(f)
    results = []
    for pred in preds:
        best = pred.argsort()[-top:][::-1]
        result = [tuple(_CLASS_INDEX[str(i)]) + (pred[i],) for i in best]
        result.sort(key=lambda r: r[2], reverse=True)
        results.append(result)
    return results


def pooled_top(x, layers, include_top, pooling, classes, classifier_activation, top_name="predictions",
               avg_name=None, max_name=None):
    """The common ending: GlobalAveragePooling2D + Dense(classes) with include_top, else the optional
    global pooling ("avg"/"max"); None names take Keras's automatic names."""
    if include_top:
        x = layers.GlobalAveragePooling2D(name=avg_name)(x)
        return layers.Dense(classes, activation=classifier_activation, name=top_name)(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=avg_name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=max_name)(x)
    return x
