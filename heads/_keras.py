"""What the Keras heads share: seeding, standardisation, the early-stopping split, the one
training loop with its history, and batched inference.

One loop for every X: ``KerasHead._fit`` checks X once (an in-memory array, or a chunked
source; see :mod:`heads.chunked`), and ``_train`` splits the rows,
standardises, builds the model and trains it from a batch source: :class:`ArrayRows` hands
Keras the arrays, :class:`heads._keras_chunked.ChunkedRows` a PyDataset reading blocks of rows.

Keras (and with it TensorFlow) is imported on first fit or load, never at ``import heads``.
"""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from typing import Any, Iterator, Optional, Protocol

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._keras_chunked import ChunkedRows, Transform, take_rows
from .chunked import DEFAULT_CHUNK_ROWS, check_chunked_fit, check_chunked_predict, is_chunked, row_blocks

PREDICT_BATCH = 4096  # rows per forward pass at inference
STEPS_PER_EXECUTION = 32  # train steps per compiled call: same numbers, less per-step overhead at small batches


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


class Rows(Protocol):
    """X as the training loop reads it: :class:`ArrayRows` or :class:`heads._keras_chunked.ChunkedRows`."""

    @property
    def shape(self) -> tuple[int, int]: ...

    def moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of every column over ``rows``, float64."""

    def batches(self, keras, transform: Transform, batch_size: int, targets: Any, weights: Any,
                train: np.ndarray, val: Optional[np.ndarray], seed: Optional[int]) -> tuple[dict, Any]:
        """(``model.fit`` arguments for the training rows, ``validation_data`` or None)."""


class ArrayRows:
    """An in-memory float32 X as the training loop reads it: Keras gets the arrays, batches
    them and reshuffles all training rows every epoch."""

    def __init__(self, X: np.ndarray) -> None:
        self.X = X

    @property
    def shape(self) -> tuple[int, int]:
        return self.X.shape

    def moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of every column over ``rows``, float64."""
        chosen = self.X[rows]
        return chosen.mean(axis=0, dtype=np.float64), chosen.std(axis=0, dtype=np.float64)

    def batches(self, keras, transform: Transform, batch_size: int, targets: Any, weights: Any,
                train: np.ndarray, val: Optional[np.ndarray], seed: Optional[int]) -> tuple[dict, Any]:
        """(``model.fit`` arguments for the training rows, ``validation_data`` or None), as arrays."""
        X = transform(self.X)
        training = {"x": X[train], "y": take_rows(targets, train), "batch_size": batch_size, "shuffle": True,
                    "sample_weight": None if weights is None else take_rows(weights, train)}
        if val is None:
            return training, None
        return training, (X[val], take_rows(targets, val)) + (() if weights is None else (take_rows(weights, val),))


class KerasHead(BaseEstimator):
    """Base of the Keras heads. Subclasses set ``_validate_y``, ``_encode`` and ``_build``; every
    Keras head fits and predicts an in-memory X or a chunked one alike.

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

    # -- fitting --------------------------------------------------------------------
    def _check_params(self) -> None:
        """A ValueError for an early-stopping setup that cannot hold out validation rows."""
        if self.early_stopping and not self.validation_fraction:
            raise ValueError("early_stopping=True needs validation_fraction > 0")
        if not 0 <= (self.validation_fraction or 0) < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")

    def fit(self, X, y):
        """Train a fresh model on (X, y); a ``validation_fraction`` of the rows is held out
        for early stopping and the validation curves. Returns self."""
        return self._fit(X, y, chunked=is_chunked(X))

    def _fit(self, X, y, *, chunked: bool, chunk_rows: int = DEFAULT_CHUNK_ROWS, shuffle: bool = True):
        """Fit from an in-memory X, or from a chunked X read ``chunk_rows`` rows at a time
        (``shuffle``: see :mod:`heads._keras_chunked`). Returns self."""
        self._check_params()
        rows, y = self._fit_rows(X, y, chunked, chunk_rows, shuffle)
        targets, stratify, weights = self._encode(y)
        seed = seed_of(self.random_state)
        keras = import_keras()
        with seeded(keras, seed):
            self._train(keras, rows, targets, stratify, weights, seed)
        return self

    def _fit_rows(self, X, y, chunked: bool, chunk_rows: int, shuffle: bool) -> tuple[Rows, np.ndarray]:
        """Check X and y once; return X as the training loop's batch source, and y."""
        if chunked:
            return ChunkedRows(X, chunk_rows, shuffle), check_chunked_fit(self, X, y, **self._validate_y)
        X, y = validate_data(self, X, y, dtype=(np.float32, np.float64), **self._validate_y)
        return ArrayRows(np.asarray(X, dtype=np.float32)), y

    def _train(self, keras, rows: Rows, targets: Any, stratify: Optional[np.ndarray], weights: Any,
               seed: Optional[int]) -> None:
        """The training loop: split, standardise, build, fit with early stopping, keep the history."""
        train, val = self._split(rows.shape[0], stratify, seed)
        self._standardise(rows, train)
        model = self._build(keras, rows.shape[1])
        callbacks = self._callbacks(keras)
        training, validation = rows.batches(keras, self._transform, self.batch_size, targets, weights,
                                            train, val, seed)
        history = model.fit(**training, epochs=self.epochs, validation_data=validation, callbacks=callbacks,
                            verbose=self.verbose)
        self._record(model, history, callbacks)

    def _split(self, n: int, stratify: Optional[np.ndarray], seed: Optional[int]) -> tuple[np.ndarray, Any]:
        """(training rows, early-stopping rows or None when ``validation_fraction`` is 0)."""
        if self.validation_fraction:
            return split_indices(n, self.validation_fraction, stratify, seed)
        return np.arange(n), None

    def _standardise(self, rows: Rows, train: np.ndarray) -> None:
        """Set ``mean_``/``scale_`` from the training rows (None without ``standardize``)."""
        if not self.standardize:
            self.mean_ = self.scale_ = None
            return
        mean, std = rows.moments(train)
        self.mean_ = mean.astype(np.float32)
        self.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)

    def _callbacks(self, keras) -> list:
        """Early stopping on the validation loss, keeping the best weights (when enabled)."""
        if not self.early_stopping:
            return []
        return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True)]

    def _record(self, model, history, callbacks: list) -> None:
        """Set ``model_``, ``history_`` (floats per epoch) and ``best_epoch_`` (1-based)."""
        self.model_ = model
        self.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
        self.best_epoch_ = len(self.history_["loss"])
        if callbacks and callbacks[0].best_epoch is not None:
            self.best_epoch_ = int(callbacks[0].best_epoch) + 1

    def _transform(self, X: np.ndarray) -> np.ndarray:
        """X standardised with the training rows' ``mean_``/``scale_`` (as is without them)."""
        if self.mean_ is None:
            return X
        return (X - self.mean_) / self.scale_

    # -- inference ------------------------------------------------------------------
    def _forward(self, X) -> Any:
        """Validated, standardised X through the model in batches, training=False: numpy
        output(s) in float64 (a dict of arrays for a multi-output model)."""
        check_is_fitted(self)
        keras = import_keras()
        parts = [self.model_(block[i:i + PREDICT_BATCH], training=False)
                 for block in self._predict_blocks(X) for i in range(0, len(block), PREDICT_BATCH)]
        if isinstance(parts[0], dict):
            return {key: np.concatenate([keras.ops.convert_to_numpy(p[key]) for p in parts]).astype(np.float64)
                    for key in parts[0]}
        return np.concatenate([keras.ops.convert_to_numpy(p) for p in parts]).astype(np.float64)

    def _predict_blocks(self, X) -> Iterator[np.ndarray]:
        """X checked against the fit, standardised, in float32 blocks: all of an in-memory X
        at once, a chunked X ``DEFAULT_CHUNK_ROWS`` rows at a time."""
        if is_chunked(X):
            check_chunked_predict(self, X)
            return (self._transform(block) for _, block in row_blocks(X, DEFAULT_CHUNK_ROWS, np.float32))
        X = validate_data(self, X, reset=False, dtype=(np.float32, np.float64))
        return iter([self._transform(np.asarray(X, dtype=np.float32))])


def compile_model(keras, model, learning_rate: float, loss, metrics, loss_weights=None):
    """Adam(learning_rate), no XLA (slower to compile than it saves here), several steps per call."""
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss, metrics=metrics,
                  loss_weights=loss_weights, jit_compile=False, steps_per_execution=STEPS_PER_EXECUTION)
    return model


def output_layer(keras, units: int, activation: str, name: str, bias: np.ndarray):
    """Dense(units, activation) starting from zero weights and ``bias``: the head's first
    predictions are the training targets' mean (or class prior) for every row.

    Random output weights on standardised features start the reports' slow Adam(1e-4) with
    predictions spread wider than the targets, and 10 epochs do not undo it: the excess spread
    lowers CCC, which punishes it. From zero the output learns the signal only.
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
