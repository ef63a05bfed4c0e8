"""The reference reports' head: Dense(256, ReLU) -> Dropout(0.5) -> Dense(out), Adam(1e-4),
batch 16, 10 epochs, on (optionally standardised) features; as a classifier and a regressor.
The output layer starts from zero weights at the training targets' mean (class prior), so
the first predictions carry no noise from random output weights (:func:`heads._keras.output_layer`).

Both also fit and predict on chunked X (an h5py Dataset, a memmap, a RowSubset) without
holding it in memory, through the same training loop: see :mod:`heads._keras`."""

from __future__ import annotations

from typing import Any, Literal, Optional, Union

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets

from ._common import normalise_rows
from ._keras import KerasHead, compile_model, hidden_trunk, mean_preactivation, output_layer, prior_logits

ClassWeight = Union[None, Literal["balanced"], dict]


def class_encoding(head: Any, labels: np.ndarray, class_weight: ClassWeight) -> tuple[np.ndarray, Optional[np.ndarray]]:
    """Set ``head.classes_`` and ``head.class_prior_`` (weighted class frequencies); return
    (class indices, per-sample weights or None)."""
    check_classification_targets(labels)
    head.classes_, encoded = np.unique(labels, return_inverse=True)
    if len(head.classes_) < 2:
        raise ValueError(f"the classifier needs at least 2 classes in y, got 1 class: {head.classes_[0]!r}")
    weights = None
    if class_weight is not None:
        per_class = compute_class_weight(class_weight, classes=head.classes_, y=labels)
        weights = per_class[encoded].astype(np.float32)
    head.class_prior_ = np.exp(prior_logits(encoded, len(head.classes_), weights))
    return encoded.astype(np.int32), weights


class ClassesOutput:
    """What a Keras classifier head does with its labels and softmax output (any trunk):
    labels encoded with their prior, probabilities and labels predicted."""

    def _encode(self, y):
        encoded, weights = class_encoding(self, y, self.class_weight)
        return encoded, encoded, weights

    def _output(self, keras, inputs, trunk, name: str):
        """The softmax output on ``trunk``, starting at the class prior; the compiled model."""
        outputs = output_layer(keras, len(self.classes_), "softmax", "classes", np.log(self.class_prior_))(trunk)
        model = keras.Model(inputs, outputs, name=name)
        return compile_model(keras, model, self.learning_rate, "sparse_categorical_crossentropy", ["accuracy"])

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) class probabilities, columns in ``classes_`` order; rows sum to 1."""
        return normalise_rows(self._forward(X))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each row."""
        best = self.predict_proba(X).argmax(axis=1)  # first: NotFittedError before classes_ is read
        return self.classes_[best]


class TargetsOutput:
    """What a Keras regressor head does with its targets and output (any trunk): (n,) or (n, k)
    targets, an output layer starting at their mean, predictions shaped like the fitted y."""

    _validate_y = {"multi_output": True, "y_numeric": True}

    def _encode(self, y):
        if self.output_activation not in ("linear", "tanh"):
            raise ValueError(f"output_activation must be 'linear' or 'tanh', got {self.output_activation!r}")
        y = np.asarray(y, dtype=np.float32)
        self.target_ndim_ = y.ndim
        y = y.reshape(len(y), -1)
        self.n_outputs_ = y.shape[1]
        self.target_mean_ = y.mean(axis=0, dtype=np.float64)
        return y, None, None

    def _output(self, keras, inputs, trunk, name: str):
        """The output layer on ``trunk``, starting at the targets' mean; the compiled model."""
        bias = mean_preactivation(self.target_mean_, self.output_activation)
        outputs = output_layer(keras, self.n_outputs_, self.output_activation, "targets", bias)(trunk)
        return compile_model(keras, keras.Model(inputs, outputs, name=name), self.learning_rate, "mse", ["mae"])

    def predict(self, X) -> np.ndarray:
        """(n, n_targets) predictions, or (n,) when fitted on a 1-D y."""
        out = self._forward(X)
        return out.ravel() if self.target_ndim_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class KerasDenseClassifier(ClassifierMixin, ClassesOutput, KerasHead):
    """Dense(hidden_units, ReLU) -> Dropout(dropout) -> Dense(n_classes, softmax).

    y: class labels (integer ids, or any sortable labels); ``classes_`` holds them sorted.
    ``class_weight``: None, "balanced" or {label: weight}, applied as sample weights.
    ``random_state`` (int) seeds Keras, the split and the shuffling: on CPU two fits with
    the same seed give identical predictions. History keys: loss, accuracy, val_loss,
    val_accuracy.
    """


    def __init__(
        self,
        *,
        hidden_units: int = 256,
        dropout: float = 0.5,
        learning_rate: float = 1e-4,
        batch_size: int = 16,
        epochs: int = 10,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 3,
        standardize: bool = True,
        class_weight: ClassWeight = None,
        random_state: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.dropout = dropout
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
        inputs, trunk = hidden_trunk(keras, n_features, self.hidden_units, self.dropout)
        return self._output(keras, inputs, trunk, "keras_dense_classifier")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True  # the reports' lr 1e-4 x 10 epochs underfits sklearn's 150-row checks
        return tags


class KerasDenseRegressor(RegressorMixin, TargetsOutput, KerasHead):
    """Dense(hidden_units, ReLU) -> Dropout(dropout) -> Dense(n_targets, output_activation).

    y: (n, 2) valence/arousal in [-1, 1] (any (n, k) works), or (n,) for one target;
    predictions have y's shape. ``output_activation``: "linear" (the reports') or
    "tanh" (bounded to [-1, 1]). Loss MSE. History keys: loss, mae, val_loss, val_mae.
    """


    def __init__(
        self,
        *,
        hidden_units: int = 256,
        dropout: float = 0.5,
        learning_rate: float = 1e-4,
        batch_size: int = 16,
        epochs: int = 10,
        validation_fraction: float = 0.1,
        early_stopping: bool = True,
        patience: int = 3,
        standardize: bool = True,
        output_activation: Literal["linear", "tanh"] = "linear",
        random_state: Optional[int] = None,
        verbose: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.dropout = dropout
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
        inputs, trunk = hidden_trunk(keras, n_features, self.hidden_units, self.dropout)
        return self._output(keras, inputs, trunk, "keras_dense_regressor")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.regressor_tags.poor_score = True  # as for the classifier
        return tags
