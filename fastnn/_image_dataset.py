"""``fastnn.utils.image_dataset_from_directory``: Keras 3's image folder loader, as a PyDataset that fit,
evaluate and predict take (images decoded with Pillow: ``pip install fastnn[images]``)."""
import math
import os

import numpy as np

from fastnn._pydataset import PyDataset

_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_CHANNELS = {"rgb": 3, "rgba": 4, "grayscale": 1}
_PIL_MODES = {"rgb": "RGB", "rgba": "RGBA", "grayscale": "L"}


def _pillow():
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("image_dataset_from_directory decodes images with Pillow, which is not installed: "
                          "`pip install fastnn[images]` (or `pip install pillow`)") from e
    return Image


def check_directory_args(what, directory, label_mode, subset, validation_split, shuffle, seed):
    """The argument checks Keras's *_dataset_from_directory functions share (their messages)."""
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError(f'`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode!r}")
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset!r}')
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split is None) != (subset is None):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely.")
    if validation_split and shuffle and seed is None:
        raise ValueError("If using `validation_split` and shuffling the data, you must provide a `seed` argument, to "
                         "make sure that there is no overlap between the training and validation subset.")
    if not os.path.isdir(directory):
        raise ValueError(f"{what}: {directory!r} is not a directory")


def _index(directory, labels, class_names, follow_links, formats=_FORMATS):
    """(file paths, integer labels or None, class names) in Keras's order: classes sorted, files sorted; files
    whose names end with one of ``formats``."""
    if labels == "inferred":
        subdirs = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
        if class_names is not None:
            if sorted(class_names) != sorted(subdirs) and set(class_names) - set(subdirs):
                raise ValueError(f"The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs} (or a subset of it), but received: "
                                 f"class_names={class_names}")
            subdirs = list(class_names)
        paths, ints = [], []
        for k, name in enumerate(subdirs):
            found = []
            for root, _, files in os.walk(os.path.join(directory, name), followlinks=follow_links):
                found += [os.path.join(root, f) for f in files if f.lower().endswith(formats)]
            paths += sorted(found)
            ints += [k] * len(found)
        return paths, np.asarray(ints, np.int32), subdirs
    found = []
    for root, _, files in os.walk(directory, followlinks=follow_links):
        found += [os.path.join(root, f) for f in files if f.lower().endswith(formats)]
    paths = sorted(found)
    if labels is None:
        return paths, None, None
    labels = np.asarray(labels)
    if len(labels) != len(paths):
        raise ValueError(f"Expected the lengths of `labels` to match the number of files in the target directory. "
                         f"len(labels) is {len(labels)} while we found {len(paths)} files in directory {directory}.")
    return paths, labels.astype(np.int32), class_names


class ImageDirectoryDataset(PyDataset):
    """Batches ``(images, labels)`` (or images only with ``label_mode=None``) of an image folder: images are
    float32 ``(batch, height, width, channels)`` in [0, 255], resized like ``tf.image.resize``. ``class_names``
    and ``file_paths`` are attributes, as on Keras's dataset; each epoch reshuffles when ``shuffle``."""

    def __init__(self, paths, labels, class_names, label_mode, color_mode, image_size, batch_size, shuffle, seed,
                 interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio):
        super().__init__(workers=1)
        self.file_paths, self._labels, self.class_names = list(paths), labels, class_names
        self.label_mode, self.color_mode, self.image_size = label_mode, color_mode, tuple(image_size)
        self.batch_size, self.shuffle = batch_size, shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self.file_paths))
        from fastnn.layers.preprocessing import Resizing
        self._resize = Resizing(*self.image_size, interpolation=interpolation,
                                crop_to_aspect_ratio=crop_to_aspect_ratio, pad_to_aspect_ratio=pad_to_aspect_ratio)

    def __len__(self):
        return math.ceil(len(self.file_paths) / self.batch_size)

    def _load(self, path):
        Image = _pillow()
        with Image.open(path) as img:
            arr = np.asarray(img.convert(_PIL_MODES[self.color_mode]), np.float32)
        arr = arr.reshape(arr.shape[0], arr.shape[1], _CHANNELS[self.color_mode])
        return self._resize._forward(arr[None], False, False)[0][0]

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range for {len(self)} batches")
        idx = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        images = np.stack([self._load(self.file_paths[i]) for i in idx])
        if self.label_mode is None:
            return images
        labels = self._labels[idx]
        if self.label_mode == "categorical":
            labels = np.eye(len(self.class_names), dtype=np.float32)[labels]
        elif self.label_mode == "binary":
            labels = labels.astype(np.float32).reshape(-1, 1)
        return images, labels

    def on_epoch_end(self):
        if self.shuffle:
            self._order = self._rng.permutation(len(self.file_paths))


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """Image batches from a folder with one subfolder per class (Keras 3's ``image_dataset_from_directory``):
    returns a PyDataset of ``(images, labels)`` batches that ``fit`` takes (``subset="both"``: a (training,
    validation) pair). ``label_mode`` "int" (int32 class ids), "categorical" (one-hot), "binary" (float (B, 1),
    two classes) or None (images only). With ``validation_split``, files are shuffled with ``seed`` (required
    when shuffling) exactly as Keras does, then the last fraction is the validation subset, so the same seed
    selects the same files in both libraries. Decoding needs Pillow (``pip install fastnn[images]``).

    >>> import fastnn
    >>> ds = fastnn.utils.image_dataset_from_directory("photos/", image_size=(64, 64))  # doctest: +SKIP
    """
    _pillow()
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple, np.ndarray)):
        raise ValueError(f"`labels` argument should be a list/tuple of integer labels, of length equal to the "
                         f"number of image files in the target directory. Received: labels={labels!r}")
    check_directory_args("image_dataset_from_directory", directory, label_mode, subset, validation_split, shuffle, seed)
    if labels is None:
        label_mode = None
    if color_mode not in _CHANNELS:
        raise ValueError(f'`color_mode` must be one of {{"rgb", "rgba", "grayscale"}}. Received: '
                         f"color_mode={color_mode!r}")
    if data_format not in (None, "channels_last"):
        raise ValueError(f"image_dataset_from_directory: only data_format='channels_last' is supported, got "
                         f"{data_format!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"image_dataset_from_directory: batch_size must be a positive int (fastnn always batches), "
                         f"got {batch_size!r}")
    paths, ints, class_names = _index(directory, labels, class_names, follow_links)
    if label_mode == "binary" and class_names is not None and len(class_names) != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. Received: '
                         f"class_names={class_names}")
    if shuffle:  # Keras: the same RandomState(seed) shuffle applied to the paths and to the labels
        if seed is None:
            seed = int(np.random.randint(1e6))
        np.random.RandomState(seed).shuffle(paths)
        if ints is not None:
            np.random.RandomState(seed).shuffle(ints)
    if verbose:
        print(f"Found {len(paths)} files" + (f" belonging to {len(class_names)} classes." if class_names else "."))
    if not paths:
        raise ValueError(f"No images found in directory {directory}. Allowed formats: {_FORMATS}")

    def make(which):
        p, y = paths, ints
        if validation_split:
            n_val = int(validation_split * len(paths))
            cut = len(paths) - n_val
            p, y = (paths[:cut], None if ints is None else ints[:cut]) if which == "training" else \
                (paths[cut:], None if ints is None else ints[cut:])
            if verbose:
                print(f"Using {len(p)} files for {which}.")
            if not p:
                raise ValueError(f"image_dataset_from_directory: the {which} subset is empty "
                                 f"(validation_split={validation_split} of {len(paths)} files)")
        return ImageDirectoryDataset(p, y, class_names, label_mode, color_mode, image_size, int(batch_size),
                                     shuffle, seed, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio)
    if subset == "both":
        return make("training"), make("validation")
    return make(subset)
