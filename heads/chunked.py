"""Chunked feature sources: 2-D arrays read a block of rows at a time.

A *chunked source* is anything 2-D with ``shape``, ``dtype`` and row slicing ``X[a:b]``
that is not already an in-memory numpy array: an h5py Dataset, a numpy memmap, a
:class:`RowSubset` of either. The linear and Keras dense heads read it with :func:`row_blocks`,
so memory stays O(chunk_rows x n_features), whatever the number of rows.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Optional

import numpy as np
from scipy.sparse import issparse
from sklearn.utils import check_array, column_or_1d

DEFAULT_CHUNK_ROWS = 8192


def is_chunked(X: Any) -> bool:
    """True for a 2-D on-disk or lazy array (h5py Dataset, memmap, RowSubset); False for an
    in-memory numpy array, a list, a pandas object or a sparse matrix."""
    if isinstance(X, np.ndarray):
        return isinstance(X, np.memmap)
    if issparse(X) or hasattr(X, "iloc") or not all(hasattr(X, a) for a in ("shape", "dtype", "__getitem__")):
        return False
    return len(X.shape) == 2


def check_chunked(X: Any) -> tuple[int, int]:
    """(n_rows, n_features) of a chunked source, or a ValueError saying what is wrong."""
    if len(X.shape) != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must be 2-D with at least one row and one column, got shape {tuple(X.shape)}")
    if not np.issubdtype(np.dtype(X.dtype), np.number) or np.issubdtype(np.dtype(X.dtype), np.complexfloating):
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    return int(X.shape[0]), int(X.shape[1])


def check_target(y: Any, n_rows: int, *, multi_output: bool = False, y_numeric: bool = False,
                 estimator: Any = None) -> np.ndarray:
    """y checked as scikit-learn's ``validate_data`` checks it next to an in-memory X (same
    messages), and against the ``n_rows`` of a chunked X, which is never read for this."""
    if multi_output:
        y = check_array(y, accept_sparse="csr", ensure_2d=False, dtype=None, input_name="y", estimator=estimator)
    else:
        y = check_array(column_or_1d(y, warn=True), ensure_2d=False, dtype=None, input_name="y", estimator=estimator)
    if y_numeric and y.dtype.kind == "O":
        y = y.astype(np.float64)
    if y.shape[0] != n_rows:
        raise ValueError(f"X has {n_rows} rows but y has {y.shape[0]}")
    return y


def check_chunked_fit(estimator: Any, X: Any, y: Any, *, multi_output: bool = False,
                      y_numeric: bool = False) -> np.ndarray:
    """Check a chunked X and its y before a fit and record ``n_features_in_`` (a chunked X
    has no feature names, so ``feature_names_in_`` is dropped). Returns the checked y."""
    n_rows, n_features = check_chunked(X)
    y = check_target(y, n_rows, multi_output=multi_output, y_numeric=y_numeric, estimator=estimator)
    estimator.n_features_in_ = n_features
    if hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_
    return y


def check_chunked_predict(estimator: Any, X: Any) -> None:
    """Check a chunked X against the fitted ``n_features_in_`` (scikit-learn's message)."""
    _, n_features = check_chunked(X)
    if n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is expecting "
                         f"{estimator.n_features_in_} features as input.")


def check_chunk_rows(chunk_rows: Any) -> int:
    """``chunk_rows`` as an int, or a ValueError unless it is a positive int."""
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    return int(chunk_rows)


def row_blocks(X: Any, chunk_rows: int, dtype=np.float64) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) for consecutive blocks of at most ``chunk_rows`` rows, as ``dtype``.

    A block with NaN or infinity raises ValueError: the failed rows of a feature cache are
    NaN and must be left out (``featcache.open_features`` does).
    """
    for start in range(0, X.shape[0], chunk_rows):
        block = np.asarray(X[start:start + chunk_rows], dtype=dtype)
        if not np.isfinite(block).all():
            bad = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise ValueError(f"X has NaN or infinity in row {bad}; leave failed or unknown rows out "
                             "(featcache.open_features does, or select rows with heads.RowSubset)")
        yield start, block


def block_dtype(X: Any) -> np.dtype:
    """The dtype blocks of X are predicted in: float32 and float64 as stored, anything else
    float64 (what scikit-learn's ``validate_data(dtype=(float64, float32))`` gives an array)."""
    dtype = np.dtype(X.dtype)
    return dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)


def map_blocks(function: Callable[[np.ndarray], np.ndarray], X: Any, chunk_rows: int) -> np.ndarray:
    """``function`` applied to consecutive blocks of X (as :func:`block_dtype`), the results
    joined along the rows: a prediction of a chunked X that never holds more than one block."""
    return np.concatenate([function(block) for _, block in row_blocks(X, chunk_rows, block_dtype(X))])


class RowSubset:
    """A lazy selection of rows of a 2-D source, itself a chunked source.

    ``RowSubset(X, rows)``: ``rows`` are row indices of X (any order, no repeats) or a
    boolean mask. A RowSubset of a RowSubset selects its rows of the first one's source
    (``source`` is never a RowSubset), so a nested selection, such as a fold of the labelled
    rows, reads the source directly. Slicing ``subset[a:b]`` reads the selected rows from X
    in contiguous windows of at most ``b - a`` rows, so a chunked reader never holds more
    than one chunk.
    """

    def __init__(self, source: Any, rows: Any) -> None:
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.shape != (source.shape[0],):
                raise ValueError(f"a boolean row mask must have {source.shape[0]} entries, got shape {rows.shape}")
            rows = np.flatnonzero(rows)
        rows = rows.astype(np.int64).ravel()
        if rows.size and (rows.min() < 0 or rows.max() >= source.shape[0]):
            raise ValueError(f"row indices must be in [0, {source.shape[0]}), got {rows.min()}..{rows.max()}")
        if len(np.unique(rows)) != len(rows):
            raise ValueError("row indices must not repeat")
        if isinstance(source, RowSubset):
            source, rows = source.source, source.rows[rows]
        self.source = source
        self.rows = rows

    @property
    def shape(self) -> tuple[int, int]:
        return (len(self.rows), int(self.source.shape[1]))

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.source.dtype)

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return len(self.rows)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """All selected rows in memory (only for data that fits)."""
        return self._read(self.rows, max(1, len(self.rows))).astype(dtype or self.dtype, copy=False)

    def __getitem__(self, key: Any) -> np.ndarray:
        if isinstance(key, slice):
            selected = self.rows[key]
            step = key.step if key.step is not None else 1
            window = len(selected) if step == 1 else DEFAULT_CHUNK_ROWS
            return self._read(selected, max(1, window))
        if isinstance(key, (int, np.integer)):
            return self._read(self.rows[[key]], 1)[0]
        key = np.asarray(key)
        if key.dtype == bool or key.ndim == 1:
            return self._read(self.rows[key], DEFAULT_CHUNK_ROWS)
        raise TypeError(f"RowSubset takes a slice, an int or a 1-D index array, got {type(key).__name__}")

    def _read(self, selected: np.ndarray, window: int) -> np.ndarray:
        """Rows ``selected`` of the source, reading contiguous spans of at most ``window`` rows."""
        order = np.argsort(selected, kind="stable")
        ordered = selected[order]
        out = np.empty((len(selected), self.shape[1]), dtype=self.dtype)
        done = 0
        while done < len(ordered):
            first = int(ordered[done])
            stop = int(np.searchsorted(ordered, first + window, side="left"))
            span = np.asarray(self.source[first:int(ordered[stop - 1]) + 1])
            out[order[done:stop]] = span[ordered[done:stop] - first]
            done = stop
        return out


def column_moments(X: Any, chunk_rows: int) -> tuple[int, np.ndarray, np.ndarray]:
    """(n, mean, variance) of every column in one chunked pass, float64.

    Sums are taken around the first block's mean (the shifted-data algorithm), which keeps
    them accurate when a column's mean is large against its spread.
    """
    n, shift, total, squares = 0, None, None, None
    for _, block in row_blocks(X, chunk_rows):
        if shift is None:
            shift = block.mean(axis=0)
            total, squares = np.zeros_like(shift), np.zeros_like(shift)
        centred = block - shift
        n += len(block)
        total += centred.sum(axis=0)
        squares += np.einsum("ij,ij->j", centred, centred)
    offset = total / n
    return n, shift + offset, np.maximum(squares / n - offset ** 2, 0.0)


def standard_scale(variance: np.ndarray, mean: np.ndarray, n: int) -> np.ndarray:
    """Standard deviations as scikit-learn's StandardScaler uses them: 1 for constant columns."""
    eps = np.finfo(np.float64).eps
    constant = variance <= n * eps * variance + (n * mean * eps) ** 2
    return np.where(constant, 1.0, np.sqrt(variance))


def centred_gram(X: Any, Y: np.ndarray, chunk_rows: int) -> tuple[int, np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """(n, column means of X, means of Y, centred X^T X, centred X^T Y), one chunked pass, float64.

    ``Y`` is (n, k) in memory. Like :func:`column_moments`, sums are taken around the first
    block's means, then corrected to the exact means.
    """
    n = 0
    shift_x: Optional[np.ndarray] = None
    for start, block in row_blocks(X, chunk_rows):
        targets = Y[start:start + len(block)]
        if shift_x is None:
            shift_x, shift_y = block.mean(axis=0), targets.mean(axis=0)
            sum_x, sum_y = np.zeros_like(shift_x), np.zeros_like(shift_y)
            xx = np.zeros((len(shift_x), len(shift_x)))
            xy = np.zeros((len(shift_x), len(shift_y)))
        block = block - shift_x  # never in place: a float64 block may be the caller's own array
        targets = targets - shift_y
        n += len(block)
        sum_x += block.sum(axis=0)
        sum_y += targets.sum(axis=0)
        xx += block.T @ block
        xy += block.T @ targets
    offset_x, offset_y = sum_x / n, sum_y / n
    xx -= n * np.outer(offset_x, offset_x)
    xy -= n * np.outer(offset_x, offset_y)
    return n, shift_x + offset_x, shift_y + offset_y, xx, xy
