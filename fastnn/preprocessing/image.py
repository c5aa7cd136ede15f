"""`keras.preprocessing.image`: aliases of the image helpers' homes in `fastnn.utils`."""
from fastnn.preprocessing._alias import forward_to_utils

__getattr__, __dir__ = forward_to_utils(
    __name__, ("array_to_img", "img_to_array", "load_img", "save_img", "smart_resize"))
