"""Keras's applications (``keras.applications``): MobileNet, MobileNetV2, ResNet50 and VGG16 built with
Keras's exact layer names, order and weight shapes, so Keras-trained weights map one to one; each module
also has ``preprocess_input`` and ``decode_predictions``."""
from fastnn.applications import imagenet_utils, mobilenet, mobilenet_v2, resnet, vgg16
from fastnn.applications.mobilenet import MobileNet
from fastnn.applications.mobilenet_v2 import MobileNetV2
from fastnn.applications.resnet import ResNet50
from fastnn.applications.vgg16 import VGG16

resnet50 = resnet  # keras.applications.resnet50 is the same module

__all__ = ["MobileNet", "MobileNetV2", "ResNet50", "VGG16", "imagenet_utils", "mobilenet", "mobilenet_v2", "resnet",
           "resnet50", "vgg16"]
