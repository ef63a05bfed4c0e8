"""The Keras dense heads fitted from chunked X (see :mod:`heads.chunked`), never holding all of it.

:func:`fit_chunked` follows ``KerasHead.fit`` step by step: the same validation split,
standardisation statistics of the training rows (from one chunked pass), model, callbacks
and seeding; the rows reach Keras through a ``keras.utils.PyDataset`` that reads one block
of rows at a time and cuts it into batches.

Shuffling: in memory, Keras reshuffles all rows every epoch. From chunks that would mean
random single-row reads, so ``shuffle=True`` reshuffles the order of the blocks and the rows
within each block (seeded by ``random_state``); ``shuffle=False`` feeds the rows in order,
and then the fit equals an in-memory fit without shuffling to float tolerance.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

import numpy as np
from sklearn.utils.validation import _check_y

from ._keras import _take, import_keras, seed_of, seeded, split_indices
from .chunked import (DEFAULT_CHUNK_ROWS, RowSubset, check_chunk_rows, check_chunked, column_moments, is_chunked,
                      row_blocks)


class ChunkedFitMixin:
    """Lets a :class:`heads._keras.KerasHead` fit and predict on chunked X; arrays go the usual way."""

    def fit(self, X, y):
        """Train a fresh model on (X, y); a ``validation_fraction`` of the rows is held out for
        early stopping. X may be chunked (h5py Dataset, memmap, RowSubset): see
        :func:`heads.fit_chunked`. Returns self."""
        if is_chunked(X):
            return fit_chunked(self, X, y)
        return super().fit(X, y)

    def _forward(self, X) -> Any:
        if not is_chunked(X):
            return super()._forward(X)
        check_chunked(X)
        return np.concatenate([super(ChunkedFitMixin, self)._forward(block)
                               for _, block in row_blocks(X, DEFAULT_CHUNK_ROWS, np.float32)])


def fit_chunked(head, X, y, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, shuffle: bool = True):
    """Fit a Keras dense head from chunked X, reading ``chunk_rows`` rows at a time
    (rounded to whole batches). ``shuffle``: see the module docstring. Returns ``head``."""
    chunk_rows = check_chunk_rows(chunk_rows)
    head._check_params()
    n, n_features = check_chunked(X)
    y = _check_y(y, **head._validate_y)
    if len(y) != n:
        raise ValueError(f"X has {n} rows but y has {len(y)}")
    head.n_features_in_ = n_features
    if hasattr(head, "feature_names_in_"):
        del head.feature_names_in_
    targets, stratify, weights = head._encode(y)
    seed = seed_of(head.random_state)
    keras = import_keras()
    with seeded(keras, seed):
        _train(head, keras, X, targets, stratify, weights, seed, chunk_rows, shuffle)
    return head


def _train(head, keras, X, targets, stratify, weights, seed, chunk_rows: int, shuffle: bool) -> None:
    n = X.shape[0]
    if head.validation_fraction:
        train, val = split_indices(n, head.validation_fraction, stratify, seed)
    else:
        train, val = np.arange(n), None
    if head.standardize:
        _, mean, variance = column_moments(RowSubset(X, train), chunk_rows)
        std = np.sqrt(variance)
        head.mean_ = mean.astype(np.float32)
        head.scale_ = np.where(std > 1e-12, std, 1.0).astype(np.float32)
    else:
        head.mean_ = head.scale_ = None
    model = head._build(keras, X.shape[1])
    callbacks = []
    if head.early_stopping:
        callbacks.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=head.patience,
                                                       restore_best_weights=True))

    def batches(rows: np.ndarray, order_seed: Optional[int], shuffled: bool):
        return _batches_class(keras)(head, RowSubset(X, rows), _take(targets, rows),
                                     None if weights is None else _take(weights, rows),
                                     head.batch_size, chunk_rows, shuffled, order_seed)

    validation = None if val is None else batches(val, None, False)
    history = model.fit(batches(train, seed, shuffle), epochs=head.epochs, validation_data=validation,
                        shuffle=False, callbacks=callbacks, verbose=head.verbose)
    head.model_ = model
    head.history_ = {key: [float(v) for v in values] for key, values in history.history.items()}
    head.best_epoch_ = len(head.history_["loss"])
    if head.early_stopping and callbacks[0].best_epoch is not None:
        head.best_epoch_ = int(callbacks[0].best_epoch) + 1


_CLASSES: dict = {}


def _batches_class(keras):
    """The PyDataset class (defined on first use: Keras is imported lazily)."""
    if "batches" not in _CLASSES:
        class RowBatches(keras.utils.PyDataset):
            """Batches of standardised rows, read one block (a whole number of batches) at a time.

            Each epoch: full blocks in a (shuffled) order, the partial last block last, rows
            permuted within each block when shuffled; so a batch never spans two blocks.
            """

            def __init__(self, head, X, targets, weights, batch_size, chunk_rows, shuffle, seed):
                super().__init__(workers=1, use_multiprocessing=False)
                self.head, self.X, self.targets, self.weights = head, X, targets, weights
                self.batch_size = int(batch_size)
                self.block_rows = max(1, chunk_rows // self.batch_size) * self.batch_size
                self.n_blocks = -(-X.shape[0] // self.block_rows)
                self.shuffle, self.rng = shuffle, np.random.default_rng(seed)
                self.lock = threading.Lock()
                self._plan_epoch()

            def _plan_epoch(self) -> None:
                full = self.X.shape[0] // self.block_rows
                order = self.rng.permutation(full) if self.shuffle else np.arange(full)
                self.block_order = np.concatenate([order, np.arange(full, self.n_blocks)]).astype(int)
                self.epoch_seed = int(self.rng.integers(2 ** 31)) if self.shuffle else None
                self.loaded: Optional[tuple] = None

            def __len__(self) -> int:
                return -(-self.X.shape[0] // self.batch_size)

            def on_epoch_end(self) -> None:
                self._plan_epoch()

            def _block(self, position: int) -> tuple:
                block = int(self.block_order[position])
                if self.loaded is None or self.loaded[0] != block:
                    start = block * self.block_rows
                    rows = np.arange(start, min(start + self.block_rows, self.X.shape[0]))
                    features = np.asarray(self.X[rows[0]:rows[-1] + 1], dtype=np.float32)
                    if not np.isfinite(features).all():
                        raise ValueError("X has NaN or infinity; leave failed or unknown rows out "
                                         "(featcache.open_features does, or select rows with heads.RowSubset)")
                    if self.shuffle:
                        permutation = np.random.default_rng([self.epoch_seed, block]).permutation(len(rows))
                        features, rows = features[permutation], rows[permutation]
                    self.loaded = (block, self.head._transform(features), rows)
                return self.loaded

            def __getitem__(self, index: int) -> tuple:
                with self.lock:
                    first = index * self.batch_size
                    position, offset = divmod(first, self.block_rows)
                    _, features, rows = self._block(position)
                    take = slice(offset, offset + self.batch_size)
                    batch = (features[take], _take(self.targets, rows[take]))
                    return batch if self.weights is None else batch + (_take(self.weights, rows[take]),)

        _CLASSES["batches"] = RowBatches
    return _CLASSES["batches"]
