"""A small convolutional network trained from scratch on cached pixels (featcache's ``pixels`` sources).

The rows are flattened images (row-major (row, column, channel), as the ``pixels`` sources store
them). Inside the model, after the per-pixel standardisation every Keras head applies, they are
reshaped to ``image_shape`` and go through: [random horizontal flip and shift, in training only]
-> per entry of ``filters``: Conv2D(3 x 3) -> BatchNorm -> ReLU -> MaxPool(2) -> global average
pooling -> Dropout -> Dense output (zero weights, starting at the targets' mean or class prior, as in
the dense heads). Three blocks of 32, 64 and 128 filters keep an epoch of 48 x 48 faces short on a
CPU (benchmarks/results/heads_fit_time.md); the head is for a from-scratch baseline beside frozen
backbones, not for state-of-the-art.

``image_shape=None`` infers it from the number of features n by one rule: a square grey image when
n is a perfect square (``side * side == n``), else a square RGB image when n / 3 is (the two never
both hold). Any other n, or an explicit shape that does not hold n values, is a ValueError.

Three heads share the trunk: :class:`CNNClassifier`, :class:`CNNRegressor` and
:class:`CNNMultiTaskHead`, which learns classes and valence/arousal together (the ``multitask``
head's y and outputs) at the cost of one fit.
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Sequence

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin

from ._keras import KerasHead
from .keras_dense import ClassesOutput, ClassWeight, TargetsOutput
from .multitask import MultiTaskHead

ImageShape = Optional[Sequence[int]]
SHIFT = 0.1  # largest random shift in training, as a fraction of the height and width
# Batch norm's running statistics follow the weights within tens of steps, not Keras' default hundreds:
# with 0.99 the early-stopping loss of a small training set lags the weights and stops too soon.
BN_MOMENTUM = 0.9


def infer_image_shape(n_features: int, image_shape: ImageShape = None) -> tuple[int, int, int]:
    """(height, width, channels) of rows of ``n_features`` values: ``image_shape`` checked, or
    inferred (square grey if n is a perfect square, else square RGB if n / 3 is)."""
    if image_shape is not None:
        shape = tuple(image_shape)
        if len(shape) != 3 or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(f"image_shape={image_shape!r}: give (height, width, channels) as positive integers")
        if math.prod(shape) != n_features:
            raise ValueError(f"image_shape={shape} holds {math.prod(shape)} values but X has {n_features} features "
                             "per row; give the shape the pixels were extracted at")
        return tuple(int(d) for d in shape)  # type: ignore[return-value]
    for channels in (1, 3):
        side = math.isqrt(n_features // channels)
        if side * side * channels == n_features:
            return side, side, channels
    raise ValueError(f"X has {n_features} features per row, neither side * side (grey) nor side * side * 3 (RGB) "
                     "pixels; pass image_shape=(height, width, channels)")


def _check_trunk_params(head: KerasHead) -> None:
    if not isinstance(head.augment, bool):
        raise ValueError(f"augment must be True or False, got {head.augment!r}")
    if not head.filters or not all(isinstance(f, (int, np.integer)) and f > 0 for f in head.filters):
        raise ValueError(f"filters must be a non-empty sequence of positive integers, got {head.filters!r}")


def conv_trunk(keras, n_features: int, image_shape: tuple[int, int, int], filters: Sequence[int], dropout: float,
               augment: bool):
    """Standardised pixels -> image -> conv blocks -> pooled, dropped-out vector. Returns (input, output)."""
    inputs = keras.Input(shape=(n_features,), name="features")
    x = keras.layers.Reshape(image_shape, name="image")(inputs)
    if augment:  # active only with training=True: predictions see the image as it is
        x = keras.layers.RandomFlip("horizontal", name="random_flip")(x)
        x = keras.layers.RandomTranslation(SHIFT, SHIFT, fill_mode="nearest", name="random_shift")(x)
    for i, width in enumerate(filters, start=1):
        x = keras.layers.Conv2D(int(width), 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
        x = keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="global_pool")(x)
    return inputs, keras.layers.Dropout(dropout, name="dropout")(x)


class _CNNHead(KerasHead):
    """What the CNN classifier and regressor share: the trunk's parameters, checks and image shape."""

    def _check_params(self) -> None:
        super()._check_params()
        _check_trunk_params(self)

    def _trunk(self, keras, n_features: int):
        self.image_shape_ = infer_image_shape(n_features, self.image_shape)
        return conv_trunk(keras, n_features, self.image_shape_, self.filters, self.dropout, self.augment)


class CNNClassifier(ClassifierMixin, ClassesOutput, _CNNHead):
    """A small CNN classifying flattened images; see the module docstring for the architecture.

    y: class labels (``classes_`` holds them sorted). ``class_weight``: None, "balanced" or
    {label: weight}. Defaults suit 48 x 48 grey faces on a CPU: Adam(1e-3), batch 64, up to 30
    epochs, early stopping (patience 5) on a 10% validation split. Learned: ``image_shape_`` besides
    the Keras heads' attributes. History keys: loss, accuracy, val_loss, val_accuracy.
    """

    def __init__(
        self,
        *,
        image_shape: ImageShape = None,
        filters: Sequence[int] = (32, 64, 128),
        dropout: float = 0.3,
        augment: bool = True,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 30,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 5,
        standardize: bool = True,
        class_weight: ClassWeight = None,
        random_state: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        self.image_shape = image_shape
        self.filters = filters
        self.dropout = dropout
        self.augment = augment
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.standardize = standardize
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, keras, n_features: int):
        inputs, trunk = self._trunk(keras, n_features)
        return self._output(keras, inputs, trunk, "cnn_classifier")


class CNNRegressor(RegressorMixin, TargetsOutput, _CNNHead):
    """A small CNN regressing targets (valence/arousal, or any (n, k) or (n,) y) from flattened images.

    ``output_activation``: "linear" or "tanh" (bounded to [-1, 1]). Loss MSE; other defaults as
    :class:`CNNClassifier`. History keys: loss, mae, val_loss, val_mae.
    """

    def __init__(
        self,
        *,
        image_shape: ImageShape = None,
        filters: Sequence[int] = (32, 64, 128),
        dropout: float = 0.3,
        augment: bool = True,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 30,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 5,
        standardize: bool = True,
        output_activation: Literal["linear", "tanh"] = "linear",
        random_state: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        self.image_shape = image_shape
        self.filters = filters
        self.dropout = dropout
        self.augment = augment
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.standardize = standardize
        self.output_activation = output_activation
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, keras, n_features: int):
        inputs, trunk = self._trunk(keras, n_features)
        return self._output(keras, inputs, trunk, "cnn_regressor")


class CNNMultiTaskHead(_CNNHead, MultiTaskHead):
    """Joint classification and valence/arousal regression from flattened images: the CNN trunk
    under :class:`heads.MultiTaskHead`'s two outputs (softmax classes, tanh valence/arousal).

    y, ``predict``, ``predict_proba``, ``score``, ``loss_weights`` and ``class_weight`` as
    :class:`heads.MultiTaskHead`; trunk and training defaults as :class:`CNNClassifier`.
    History keys: loss, classes_loss, va_loss, classes_accuracy, va_mae and their val_ forms.
    """

    def __init__(
        self,
        *,
        image_shape: ImageShape = None,
        filters: Sequence[int] = (32, 64, 128),
        dropout: float = 0.3,
        augment: bool = True,
        learning_rate: float = 1e-3,
        batch_size: int = 64,
        epochs: int = 30,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 5,
        standardize: bool = True,
        loss_weights: Sequence[float] = (1.0, 1.0),
        class_weight: ClassWeight = None,
        random_state: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        self.image_shape = image_shape
        self.filters = filters
        self.dropout = dropout
        self.augment = augment
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.epochs = epochs
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.patience = patience
        self.standardize = standardize
        self.loss_weights = loss_weights
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose
