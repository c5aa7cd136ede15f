"""Keras-compatible layers (channels_last). See ``fastnn.layers.base.Layer`` for the common API."""
from fastnn.layers.activation import Activation, LeakyReLU, ReLU, Softmax
from fastnn.layers.base import Layer, Variable
from fastnn.layers.convolutional import AveragePooling2D, Conv2D, GlobalAveragePooling2D, MaxPooling2D
from fastnn.layers.core import Dense, Dropout, Flatten, Input, InputLayer, Reshape
from fastnn.layers.lambdas import Identity, Lambda
from fastnn.layers.merging import (Add, Average, Concatenate, Dot, Maximum, Minimum, Multiply, Subtract, add, average,
                                   concatenate, dot, maximum, minimum, multiply, subtract)
from fastnn.layers.normalization import BatchNormalization
from fastnn.layers.conv1d import Conv1D
from fastnn.layers.masking import Masking
from fastnn.layers.pooling1d import AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D
from fastnn.layers.reshaping import Permute, RepeatVector
from fastnn.layers.wrappers import TimeDistributed
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

# sequence layers (issue #14: recurrent core and Embedding)
from fastnn.layers.bidirectional import Bidirectional  # noqa: E402
from fastnn.layers.embedding import Embedding  # noqa: E402
from fastnn.layers.recurrent import GRU, LSTM, GRUCell, LSTMCell, SimpleRNN, SimpleRNNCell  # noqa: E402

__all__ += ["Embedding", "SimpleRNN", "LSTM", "GRU", "SimpleRNNCell", "LSTMCell", "GRUCell", "Bidirectional"]

# text (issue #14)
from fastnn.layers.text_vectorization import TextVectorization  # noqa: E402

__all__ += ["TextVectorization"]

# preprocessing and augmentation (issue #15)
from fastnn.layers.augmentation import (RandomBrightness, RandomContrast, RandomCrop, RandomFlip,  # noqa: E402
                                        RandomRotation, RandomTranslation, RandomZoom)
from fastnn.layers.preprocessing import CenterCrop, Normalization, Rescaling, Resizing  # noqa: E402

__all__ += ["Rescaling", "Normalization", "Resizing", "CenterCrop", "RandomFlip", "RandomRotation", "RandomZoom",
            "RandomTranslation", "RandomCrop", "RandomContrast", "RandomBrightness"]

# sequences (Conv1D, 1-D pooling, masking, TimeDistributed)
MaxPool1D, AvgPool1D, GlobalAvgPool1D, GlobalMaxPool1D, Convolution1D = (MaxPooling1D, AveragePooling1D,
                                                                          GlobalAveragePooling1D, GlobalMaxPooling1D,
                                                                          Conv1D)
__all__ += ["Conv1D", "MaxPooling1D", "AveragePooling1D", "GlobalAveragePooling1D", "GlobalMaxPooling1D", "Masking",
            "RepeatVector", "Permute", "TimeDistributed", "MaxPool1D", "AvgPool1D", "GlobalAvgPool1D",
            "GlobalMaxPool1D", "Convolution1D"]
__all__ += ["ELU", "PReLU", "Conv2DTranspose", "DepthwiseConv2D", "GlobalMaxPooling2D", "SeparableConv2D",
            "GaussianDropout", "GaussianNoise", "SpatialDropout1D", "SpatialDropout2D", "GroupNormalization",
            "LayerNormalization", "Cropping2D", "UpSampling2D", "ZeroPadding2D", "GlobalMaxPool2D",
            "Convolution2DTranspose", "SeparableConvolution2D"]
GlobalMaxPool2D, Convolution2DTranspose, SeparableConvolution2D = GlobalMaxPooling2D, Conv2DTranspose, SeparableConv2D
