"""Keras-compatible layers (channels_last). See ``fastnn.layers.base.Layer`` for the common API."""
from fastnn.layers.activation import Activation, LeakyReLU, ReLU, Softmax
from fastnn.layers.base import Layer, Variable
from fastnn.layers.convolutional import AveragePooling2D, Conv2D, GlobalAveragePooling2D, MaxPooling2D
from fastnn.layers.core import Dense, Dropout, Flatten, Input, InputLayer, Reshape
from fastnn.layers.lambdas import Identity, Lambda
from fastnn.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                                   concatenate, dot, maximum, minimum, multiply, subtract)
from fastnn.layers.normalization import BatchNormalization
# vision layers (issue #15)
from fastnn.layers.activation import ELU, PReLU
from fastnn.layers.convolutional import Conv2DTranspose, DepthwiseConv2D, GlobalMaxPooling2D, SeparableConv2D
from fastnn.layers.noise import GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D
from fastnn.layers.normalization import GroupNormalization, LayerNormalization
from fastnn.layers.padding import Cropping2D, UpSampling2D, ZeroPadding2D

# Keras aliases
MaxPool2D, AvgPool2D, GlobalAvgPool2D, Convolution2D = MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, Conv2D

__all__ = ["Layer", "Variable", "Input", "InputLayer", "Dense", "Activation", "Dropout", "Flatten", "Reshape",
           "Conv2D", "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "BatchNormalization", "Softmax",
           "ReLU", "LeakyReLU", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot",
           "add", "subtract", "multiply", "average", "maximum", "minimum", "concatenate", "dot", "Lambda", "Identity",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "Convolution2D"]
__all__ += ["ELU", "PReLU", "Conv2DTranspose", "DepthwiseConv2D", "GlobalMaxPooling2D", "SeparableConv2D",
            "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "GroupNormalization",
            "LayerNormalization", "Cropping2D", "UpSampling2D", "ZeroPadding2D", "GlobalMaxPool2D",
            "Convolution2DTranspose", "SeparableConvolution2D"]
GlobalMaxPool2D, Convolution2DTranspose, SeparableConvolution2D = GlobalMaxPooling2D, Conv2DTranspose, SeparableConv2D
