"""Keras-compatible layers (channels_last). See ``fastnn.layers.base.Layer`` for the common API."""
from fastnn.layers.activation import Activation, LeakyReLU, ReLU, Softmax
from fastnn.layers.base import Layer, Variable
from fastnn.layers.convolutional import AveragePooling2D, Conv2D, GlobalAveragePooling2D, MaxPooling2D
from fastnn.layers.core import Dense, Dropout, Flatten, Input, InputLayer, Reshape
from fastnn.layers.normalization import BatchNormalization

# Keras aliases
MaxPool2D, AvgPool2D, GlobalAvgPool2D, Convolution2D = MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Conv2D

__all__ = ["Layer", "Variable", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Flatten", "Reshape",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization", "Softmax",
           "ReLU", "LeakyReLU",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Convolution2D"]
