"""Chunked X as a batch source for the Keras heads' one training loop (``KerasHead._train``),
and :func:`fit_chunked`, which fits from chunked X with a chosen block size and shuffling.

The training rows' standardisation statistics come from one chunked pass; the rows reach
Keras through a ``keras.utils.PyDataset`` that reads one block of rows at a time and cuts
it into batches, so X is never held in memory.

Shuffling: in memory, Keras reshuffles all rows every epoch. From chunks that would mean
random single-row reads, so ``shuffle=True`` reshuffles the order of the blocks and the rows
within each block (seeded by ``random_state``); ``shuffle=False`` feeds the rows in order,
and then the fit equals an in-memory fit without shuffling to float tolerance.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import numpy as np

from .chunked import DEFAULT_CHUNK_ROWS, RowSubset, check_chunk_rows, column_moments

Transform = Callable[[np.ndarray], np.ndarray]


def fit_chunked(head, X, y, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, shuffle: bool = True):
    """Fit a Keras head from chunked X, reading ``chunk_rows`` rows at a time (rounded to
    whole batches). ``shuffle``: see the module docstring. Returns ``head``."""
    chunk_rows = check_chunk_rows(chunk_rows)
    return head._fit(X, y, chunked=True, chunk_rows=chunk_rows, shuffle=shuffle)


def take_rows(values: Any, rows: np.ndarray) -> Any:
    """Rows of an array, or of every array in a dict of arrays (a multi-output target)."""
    if isinstance(values, dict):
        return {key: value[rows] for key, value in values.items()}
    return values[rows]


class ChunkedRows:
    """A chunked X (see :mod:`heads.chunked`) as the training loop reads it."""

    def __init__(self, X: Any, chunk_rows: int, shuffle: bool) -> None:
        self.X, self.chunk_rows, self.shuffle = X, chunk_rows, shuffle

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.X.shape[0]), int(self.X.shape[1])

    def moments(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation) of every column over ``rows``, float64, in one chunked pass."""
        _, mean, variance = column_moments(RowSubset(self.X, rows), self.chunk_rows)
        return mean, np.sqrt(variance)

    def batches(self, keras, transform: Transform, batch_size: int, targets: Any, weights: Any,
                train: np.ndarray, val: Optional[np.ndarray], seed: Optional[int]) -> tuple[dict, Any]:
        """(``model.fit`` arguments for the training rows, ``validation_data`` or None): PyDatasets
        of transformed blocks; the training one shuffles by blocks when ``shuffle``."""

        def dataset(rows: np.ndarray, order_seed: Optional[int], shuffled: bool):
            return _batches_class(keras)(RowSubset(self.X, rows), take_rows(targets, rows),
                                         None if weights is None else take_rows(weights, rows), transform,
                                         batch_size, self.chunk_rows, shuffled, order_seed)

        validation = None if val is None else dataset(val, None, False)
        return {"x": dataset(train, seed, self.shuffle), "shuffle": False}, validation


_CLASSES: dict = {}


def _batches_class(keras):
    """The PyDataset class (defined on first use: Keras is imported lazily)."""
    if "batches" not in _CLASSES:
        class RowBatches(keras.utils.PyDataset):
            """Batches of transformed rows, read one block (a whole number of batches) at a time.

            Each epoch: full blocks in a (shuffled) order, the partial last block last, rows
            permuted within each block when shuffled; so a batch never spans two blocks.
            """

            def __init__(self, X, targets, weights, transform, batch_size, chunk_rows, shuffle, seed):
                super().__init__(workers=1, use_multiprocessing=False)
                self.X, self.targets, self.weights, self.transform = X, targets, weights, transform
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
                    self.loaded = (block, self.transform(features), rows)
                return self.loaded

            def __getitem__(self, index: int) -> tuple:
                with self.lock:
                    first = index * self.batch_size
                    position, offset = divmod(first, self.block_rows)
                    _, features, rows = self._block(position)
                    take = slice(offset, offset + self.batch_size)
                    batch = (features[take], take_rows(self.targets, rows[take]))
                    return batch if self.weights is None else batch + (take_rows(self.weights, rows[take]),)

        _CLASSES["batches"] = RowBatches
    return _CLASSES["batches"]
