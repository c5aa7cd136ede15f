"""ResNet50 (He et al., 2015) with Keras's exact layer names, order and weights. ``preprocess_input`` is
Keras's "caffe" mode (RGB -> BGR, minus the ImageNet channel means)."""
from fastnn.applications import imagenet_utils
from fastnn.applications.imagenet_utils import decode_predictions

__all__ = ["ResNet50", "preprocess_input", "decode_predictions"]

BASE_WEIGHTS_PATH = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/"
_EPS = 1.001e-5  # Keras's BatchNormalization epsilon in ResNet


def _residual_block_v1(layers, x, filters, kernel_size=3, stride=1, conv_shortcut=True, name=None):
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = layers.BatchNormalization(epsilon=_EPS, name=f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = layers.BatchNormalization(epsilon=_EPS, name=f"{name}_1_bn")(x)
    x = layers.Activation("relu", name=f"{name}_1_relu")(x)
    x = layers.Conv2D(filters, kernel_size, padding="SAME", name=f"{name}_2_conv")(x)
    x = layers.BatchNormalization(epsilon=_EPS, name=f"{name}_2_bn")(x)
    x = layers.Activation("relu", name=f"{name}_2_relu")(x)
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = layers.BatchNormalization(epsilon=_EPS, name=f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return layers.Activation("relu", name=f"{name}_out")(x)


def _stack(layers, x, filters, blocks, stride1=2, name=None):
    x = _residual_block_v1(layers, x, filters, stride=stride1, name=f"{name}_block1")
    for i in range(2, blocks + 1):
        x = _residual_block_v1(layers, x, filters, conv_shortcut=False, name=f"{name}_block{i}")
    return x


def ResNet50(include_top=True, weights="imagenet", input_tensor=None, input_shape=None, pooling=None, classes=1000,
             classifier_activation="softmax", name="resnet50"):
    """ResNet50 as Keras builds it (keras.applications.ResNet50): default input (224, 224, 3), at least 32x32.

    >>> import fastnn
    >>> fastnn.applications.ResNet50(input_shape=(64, 64, 3), classes=7, weights=None).count_params()
    23602055
    """
    from fastnn import layers
    from fastnn.models import Model

    imagenet_utils.check_weights_arg(weights, include_top, classes)
    input_shape = imagenet_utils.obtain_input_shape(input_shape, default_size=224, min_size=32,
                                                    require_flatten=include_top, weights=weights)
    img_input = layers.Input(shape=input_shape) if input_tensor is None else input_tensor
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, use_bias=True, name="conv1_conv")(x)
    x = layers.BatchNormalization(epsilon=_EPS, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = _stack(layers, x, 64, 3, stride1=1, name="conv2")
    x = _stack(layers, x, 128, 4, name="conv3")
    x = _stack(layers, x, 256, 6, name="conv4")
    x = _stack(layers, x, 512, 3, name="conv5")
    x = imagenet_utils.pooled_top(x, layers, include_top, pooling, classes, classifier_activation,
                                  avg_name="avg_pool", max_name="max_pool")
    model = Model(img_input, x, name=name)
    if weights is not None:
        fname = f"resnet50_weights_tf_dim_ordering_tf_kernels{'' if include_top else '_notop'}.h5"
        imagenet_utils.load_weights(model, weights, fname, BASE_WEIGHTS_PATH + fname)
    return model


def preprocess_input(x, data_format=None):
    """RGB -> BGR and minus the ImageNet channel means (Keras's "caffe" mode), pixels in [0, 255]."""
    return imagenet_utils.preprocess_input(x, data_format=data_format, mode="caffe")
