"""What the Keras heads share: seeding, standardisation, the early-stopping split,
training with history, and batched inference.

Keras (and with it TensorFlow) is imported on first fit or load, never at ``import heads``.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Any, Iterator, Optional

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

PREDICT_BATCH = 4096  # rows per forward pass at inference
STEPS_PER_EXECUTION = 32  # train steps per compiled call: same numbers, ~35% less time at batch 16


def import_keras():
    """Keras 3 on the TensorFlow backend (unless KERAS_BACKEND already says otherwise)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import keras

    return keras


def seed_of(random_state: Any) -> Optional[int]:
    """An int seed for Keras from an sklearn-style random_state (None stays None)."""
    if random_state is None:
        return None
    if isinstance(random_state, (int, np.integer)):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def split_indices(
    n: int, fraction: float, stratify: Optional[np.ndarray], seed: Optional[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) row indices; stratified by ``stratify`` when every class allows it."""
    n_val = int(np.ceil(fraction * n))
    if n_val < 1 or n - n_val < 1:
        raise ValueError(f"validation_fraction={fraction} leaves no training or no validation rows out of "
                         f"n_samples={n}; use more samples, another fraction, or early_stopping=False with "
                         "validation_fraction=0")
    splitters = [ShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)]
    if stratify is not None:
        splitters.insert(0, StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed))
    for splitter in splitters:
        try:
            train, val = next(splitter.split(np.zeros((n, 1)), stratify))
            return np.sort(train), np.sort(val)
        except ValueError:  # a class too small to stratify: fall back to a plain shuffle
            continue
    raise AssertionError("unreachable")


@contextmanager
def seeded(keras, seed: Optional[int]) -> Iterator[None]:
    """Seed Keras, numpy and Python for a fit (when ``seed`` is set), then give the caller's
    global numpy and Python random streams back as they were."""
    saved = (np.random.get_state(), random.getstate())
    try:
        if seed is not None:
            keras.utils.set_random_seed(seed)
        yield
    finally:
        np.random.set_state(saved[0])
        random.setstate(saved[1])


class KerasHead(BaseEstimator):
    """Base of the Keras heads. Subclasses set ``_validate_y``, ``_encode``, ``_build``.

    Parameters shared by every Keras head (declared in each subclass's ``__init__``):
    hidden_units, dropout, learning_rate, batch_size, epochs, validation_fraction,
    early_stopping, patience, standardize, random_state, verbose.

    Learned: ``model_`` (the Keras model), ``mean_``/``scale_`` (standardisation, or
    None), ``history_`` (per-epoch dict of lists), ``best_epoch_`` (1-based epoch whose
    weights were kept), ``n_features_in_``.
    """

    _validate_y: dict = {}  # validate_data options for y (multi_output, y_numeric)

    # -- subclass hooks -------------------------------------------------------------
    def _encode(self, y: np.ndarray) -> tuple[Any, Optional[np.ndarray], Optional[np.ndarray]]:
        """Learn target attributes; return (keras targets, stratify labels, sample weights)."""
        raise NotImplementedError

    def _build(self, keras, n_features: int):
        """A compiled Keras model."""
        raise NotImplementedError

    # -- shared machinery -----------------------------------------------------------
    def _check_params(self) -> None:
        if self.early_stopping and not self.validation_fraction:
            raise ValueError("early_stopping=True needs validation_fraction > 0")
        if not 0 <= (self.validation_fraction or 0) < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")

    def fit(self, X, y):
        """Train a fresh model on (X, y); a ``validation_fraction`` of the rows is held out
        for early stopping and the validation curves. Returns self."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64), **self._validate_y)
        X = np.asarray(X, dtype=np.float32)
        targets, stratify, weights = self._encode(y)
        seed = seed_of(self.random_state)
        keras = import_keras()
        with seeded(keras, seed):
            self._train(keras, X, targets, stratify, weights, seed)
        return self

    def _train(self, keras, X, targets, stratify, weights, seed) -> None:
        if self.validation_fraction:
            train, val = split_indices(len(X), self.validation_fraction, stratify, seed)
        else:
            train, val = np.arange(len(X)), None
        if self.standardize:
            self.mean_ = X[train].mean(axis=0, dtype=np.float64).astype(np.float32)
            std = X[train].std(axis=0, dtype=np.float64)
            self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        else:
            self.mean_ = self.scale_ = None
        X = self._transform(X)
        model = self._build(keras, X.shape[1])
        callbacks = []
        if self.early_stopping:
            callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience,
                                                           restore_best_weights=True))
        validation = None
        if val is not None:
            validation = (X[val], _take(targets, val)) + (() if weights is None else (_take(weights, val),))
        history = model.fit(
            X[train], _take(targets, train), sample_weight=None if weights is None else _take(weights, train),
            batch_size=self.batch_size, epochs=self.epochs, validation_data=validation,
            shuffle=True, callbacks=callbacks, verbose=self.verbose,
        )
        self.model_ = model
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.best_epoch_ = len(self.history_["loss"])
        if self.early_stopping and callbacks[0].best_epoch is not None:
            self.best_epoch_ = int(callbacks[0].best_epoch) + 1

    def _transform(self, X: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            return X
        return (X - self.mean_) / self.scale_

    def _forward(self, X) -> Any:
        """Validated, standardised X through the model in batches, training=False: numpy
        output(s) in float64 (a dict of arrays for a multi-output model)."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float32, np.float64))
        X = self._transform(np.asarray(X, dtype=np.float32))
        keras = import_keras()
        parts = [self.model_(X[i:i + PREDICT_BATCH], training=False) for i in range(0, len(X), PREDICT_BATCH)]
        if isinstance(parts[0], dict):
            return {key: np.concatenate([keras.ops.convert_to_numpy(p[key]) for p in parts]).astype(np.float64)
                    for key in parts[0]}
        return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts]).astype(np.float64)


def _take(values: Any, rows: np.ndarray) -> Any:
    """Rows of an array, or of every array in a dict of arrays."""
    if isinstance(values, dict):
        return {key: value[rows] for key, value in values.items()}
    return values[rows]


def compile_model(keras, model, learning_rate: float, loss, metrics, loss_weights=None):
    """Adam(learning_rate), no XLA (slower to compile than it saves here), several steps per call."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics,
                  loss_weights=loss_weights, jit_compile=False, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def output_layer(keras, units: int, activation: str, name: str, bias: np.ndarray):
    """Dense(units, activation) starting from zero weights and ``bias``: the head's first
    predictions are the training targets' mean (or class prior) for every row.

    Random output weights on standardised features start the reports' slow Adam(1e-4) with
    predictions spread wider than the targets, and 10 epochs do not undo it (valence CCC
    0.125 instead of 0.185 on MobileNetV2 features of the AffectNet subset, one split); from
    zero the output learns the signal only.
    """
    return keras.layers.Dense(units, activation=activation, name=name, kernel_initializer="zeros",
                              bias_initializer=keras.initializers.Constant(np.asarray(bias, np.float32)))


def prior_logits(encoded: np.ndarray, n_classes: int, weights: Optional[np.ndarray]) -> np.ndarray:
    """Log of the (sample-weighted) class frequencies: the softmax bias that predicts the prior."""
    counts = np.bincount(encoded, weights=weights, minlength=n_classes).astype(np.float64)
    return np.log(np.maximum(counts / counts.sum(), 1e-6))


def mean_preactivation(mean: np.ndarray, activation: str) -> np.ndarray:
    """The output bias whose ``activation`` gives ``mean`` (per target column)."""
    mean = np.asarray(mean, np.float64)
    return np.arctanh(np.clip(mean, -0.99, 0.99)) if activation == "tanh" else mean


def hidden_trunk(keras, n_features: int, units: int, dropout: float):
    """Input -> Dense(units, ReLU) -> Dropout: the reference reports' trunk. Returns (input, output)."""
    inputs = keras.Input(shape=(n_features,), name="features")
    hidden = keras.layers.Dense(units, activation="relu", name="hidden")(inputs)
    return inputs, keras.layers.Dropout(dropout, name="dropout")(hidden)
