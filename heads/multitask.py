"""One Keras model for both tasks: a shared Dense(256, ReLU) -> Dropout(0.5) trunk with a
softmax class output and a tanh valence/arousal output."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

import metrics

from ._common import normalise_rows
from ._keras import KerasHead, compile_model, hidden_trunk, mean_preactivation, output_layer
from .keras_dense import ClassWeight, class_encoding


class MultiTaskHead(KerasHead):
    """Joint classification and valence/arousal regression.

    ``fit(X, y)``: y is an (n, 3) array whose columns are [class_id, valence, arousal];
    class ids must be integer-valued (they are learned as ``classes_``), valence and
    arousal are in [-1, 1]. ``predict(X)`` returns the same (n, 3) layout
    [predicted class id, valence, arousal]; ``predict_proba(X)`` the (n, n_classes) class
    probabilities. Loss = loss_weights[0] * cross-entropy + loss_weights[1] * MSE;
    ``class_weight`` reweights samples in the classification loss only. Training options
    are those of the dense heads. History keys: loss, classes_loss, va_loss,
    classes_accuracy, va_mae and their val_ forms. ``score`` is the mean of accuracy and
    the mean valence/arousal CCC.
    """

    _validate_y = {"multi_output": True, "y_numeric": True}

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
        loss_weights: Sequence[float] = (1.0, 1.0),
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
        self.loss_weights = loss_weights
        self.class_weight = class_weight
        self.random_state = random_state
        self.verbose = verbose

    def _encode(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] != 3:
            raise ValueError(f"MultiTaskHead needs y of shape (n, 3) = [class_id, valence, arousal], got {y.shape}")
        ids = y[:, 0]
        if not np.array_equal(ids, np.round(ids)):
            raise ValueError("y[:, 0] must hold integer class ids")
        if len(tuple(self.loss_weights)) != 2:
            raise ValueError(f"loss_weights must be two numbers (classes, valence/arousal), got {self.loss_weights!r}")
        encoded, weights = class_encoding(self, ids.astype(np.int64), self.class_weight)
        targets = {"classes": encoded, "va": y[:, 1:].astype(np.float32)}
        self.target_mean_ = targets["va"].mean(axis=0, dtype=np.float64)
        if weights is not None:
            weights = {"classes": weights, "va": np.ones(len(y), np.float32)}
        return targets, encoded, weights

    def _trunk(self, keras, n_features: int):
        """The shared layers below the two outputs: Dense(hidden_units, ReLU) -> Dropout. Returns (input, output)."""
        return hidden_trunk(keras, n_features, self.hidden_units, self.dropout)

    def _build(self, keras, n_features: int):
        inputs, trunk = self._trunk(keras, n_features)
        outputs = {
            "classes": output_layer(keras, len(self.classes_), "softmax", "classes", np.log(self.class_prior_))(trunk),
            "va": output_layer(keras, 2, "tanh", "va", mean_preactivation(self.target_mean_, "tanh"))(trunk),
        }
        model = keras.Model(inputs, outputs, name="multitask")
        classes_weight, va_weight = (float(w) for w in self.loss_weights)
        return compile_model(
            keras, model, self.learning_rate,
            loss={"classes": "sparse_categorical_crossentropy", "va": "mse"},
            metrics={"classes": ["accuracy"], "va": ["mae"]},
            loss_weights={"classes": classes_weight, "va": va_weight},
        )

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) class probabilities, columns in ``classes_`` order."""
        return normalise_rows(self._forward(X)["classes"])

    def predict(self, X) -> np.ndarray:
        """(n, 3) float array: [predicted class id, valence, arousal]."""
        out = self._forward(X)
        labels = self.classes_[normalise_rows(out["classes"]).argmax(axis=1)]
        return np.column_stack([labels.astype(np.float64), out["va"]])

    def score(self, X, y) -> float:
        """(accuracy + mean CCC of valence and arousal) / 2 on y = [class_id, valence, arousal]."""
        y = np.asarray(y, dtype=np.float64)
        predicted = self.predict(X)
        accuracy = metrics.accuracy(y[:, 0].astype(np.int64), predicted[:, 0].astype(np.int64))
        return float((accuracy + np.mean(metrics.ccc(y[:, 1:], predicted[:, 1:]))) / 2)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        return tags
