"""`keras.preprocessing.text` (tf.keras's module path; Keras 3 keeps text handling in
`keras.layers.TextVectorization`): aliases of the text helpers' homes in `fastnn.utils`."""
from fastnn.preprocessing._alias import forward_to_utils

__getattr__, __dir__ = forward_to_utils(__name__, ("text_dataset_from_directory",))
