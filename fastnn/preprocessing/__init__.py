"""Keras's `keras.preprocessing` module paths: `sequence` (pad_sequences), `image` and `text`, each an alias
of the function's home in `fastnn.utils` (as in Keras 3, where `keras.preprocessing.sequence.pad_sequences`
is `keras.utils.pad_sequences`)."""
from fastnn.preprocessing import image, sequence, text
from fastnn.preprocessing._alias import forward_to_utils

__all__ = ["image", "sequence", "text"]

# keras.preprocessing's own dataset helpers, found in fastnn.utils when that defines them
__getattr__, __dir__ = forward_to_utils(
    __name__, ("image_dataset_from_directory", "text_dataset_from_directory", "timeseries_dataset_from_array"),
    ["image", "sequence", "text"])
