"""VGG16 (Simonyan & Zisserman, 2014) with Keras's exact layer names, order and weights.
``preprocess_input`` is Keras's "caffe" mode."""
from fastnn.applications import imagenet_utils
from fastnn.applications.imagenet_utils import decode_predictions

__all__ = ["VGG16", "preprocess_input", "decode_predictions"]

WEIGHTS_PATH = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                "vgg16_weights_tf_dim_ordering_tf_kernels.h5")
WEIGHTS_PATH_NO_TOP = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                       "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
_BLOCKS = [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]  # (filters, convolutions) of blocks 1..5


def VGG16(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", name="vgg16"):
    """VGG16 as Keras builds it (keras.applications.VGG16): default input (224, 224, 3), at least 32x32."""
    from fastnn import layers
    from fastnn.models import Model

    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                                    require_flatten=include_top, weights=weights)
    x = img_input = layers.Input(shape=input_shape) if input_tensor is None else input_tensor
    for block, (filters, convs) in enumerate(_BLOCKS, start=1):
        for i in range(1, convs + 1):
            x = layers.Conv2D(filters, (3, 3), activation="relu", padding="same", name=f"block{block}_conv{i}")(x)
        x = layers.MaxPooling2D((2, 2), strides=(2, 2), name=f"block{block}_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(4096, activation="relu", name="fc1")(x)
        x = layers.Dense(4096, activation="relu", name="fc2")(x)
        x = layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = imagenet_utils.pooled_top(x, layers, False, pooling, classes, classifier_activation)
    model = Model(img_input, x, name=name)
    if weights is not None:
        url = WEIGHTS_PATH if include_top else WEIGHTS_PATH_NO_TOP
        imagenet_utils.load_weights(model, weights, url.rsplit("/", 1)[1], url)
    return model


def preprocess_input(x, data_format=None):
    """RGB -> BGR and minus the ImageNet channel means (Keras's "caffe" mode), pixels in [0, 255]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")
