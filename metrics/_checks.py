"""Input validation shared by the metrics: one clear ValueError naming the argument."""

from __future__ import annotations

import warnings

import numpy as np


class UndefinedMetricWarning(RuntimeWarning):
    """A metric is mathematically undefined for this input and was returned as NaN
    (or left out of an average)."""


def warn_undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


def as_1d(values: object, name: str) -> np.ndarray:
    """A non-empty 1-D array; a column vector (N, 1) is accepted and flattened."""
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    return array


def check_finite(array: np.ndarray, name: str) -> np.ndarray:
    """Numeric and free of NaN and infinity."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
    if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
        bad = int(np.size(array) - np.isfinite(array).sum())
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s); drop or impute them first")
    return array


def check_same_length(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise ValueError(f"{name_a} has {len(a)} samples but {name_b} has {len(b)}; they must match")


def check_labels(values: object, name: str) -> np.ndarray:
    """A non-empty 1-D array of class labels (any sortable dtype; floats must be finite)."""
    array = as_1d(values, name)
    if np.issubdtype(array.dtype, np.inexact):
        check_finite(array, name)
    return array


def check_scores(values: object, name: str) -> np.ndarray:
    """A non-empty finite (n_samples, n_classes) score matrix with at least two columns."""
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty: metrics need at least one sample")
    if array.shape[1] < 2:
        raise ValueError(f"{name} needs at least 2 class columns, got {array.shape[1]}")
    return check_finite(array, name)


def check_class_ids(y_true: np.ndarray, n_classes: int, name: str = "y_true") -> np.ndarray:
    """Integer class ids in [0, n_classes), as needed to index the columns of a score matrix."""
    if not np.issubdtype(y_true.dtype, np.integer):
        as_int = y_true.astype(np.int64) if np.issubdtype(y_true.dtype, np.number) else None
        if as_int is None or not np.array_equal(as_int, y_true):
            raise ValueError(f"{name} must hold integer class ids 0..{n_classes - 1} to match the score columns")
        y_true = as_int
    low, high = int(y_true.min()), int(y_true.max())
    if low < 0 or high >= n_classes:
        raise ValueError(
            f"{name} holds class id {low if low < 0 else high}, outside 0..{n_classes - 1} (the score columns)"
        )
    return y_true.astype(np.int64, copy=False)


def check_targets(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    """Finite float64 arrays of matching shape, (n,) or (n, k), for regression metrics."""
    true = np.asarray(y_true)
    pred = np.asarray(y_pred)
    for array, name in ((true, "y_true"), (pred, "y_pred")):
        if array.ndim not in (1, 2):
            raise ValueError(f"{name} must be (n_samples,) or (n_samples, n_targets), got shape {array.shape}")
        if array.shape[0] == 0:
            raise ValueError(f"{name} is empty: metrics need at least one sample")
        check_finite(array, name)
    if true.shape != pred.shape:
        raise ValueError(f"y_true has shape {true.shape} but y_pred has shape {pred.shape}; they must match")
    return true.astype(np.float64, copy=False), pred.astype(np.float64, copy=False)
