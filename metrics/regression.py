"""Regression metrics for continuous affect (valence, arousal) in pure numpy.

Every function takes ``y_true`` and ``y_pred`` of equal shape, either ``(n,)``,
giving a float, or ``(n, k)`` such as valence/arousal columns, giving one value
per column as an array of shape ``(k,)``. NaN or infinite inputs are refused.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ._checks import check_targets, warn_undefined


class Targets:
    """Validated targets as (true, pred) column pairs; moments computed once, on demand.

    Columns stay views of the caller's arrays and every kernel works one column at a
    time: large temporaries, not arithmetic, dominate the cost at a million samples.
    """

    def __init__(self, y_true: object, y_pred: object) -> None:
        true, pred = check_targets(y_true, y_pred)
        self.one_d = true.ndim == 1
        if self.one_d:
            true, pred = true[:, None], pred[:, None]
        self.columns = [(true[:, j], pred[:, j]) for j in range(true.shape[1])]
        self.n = true.shape[0]
        self._moments: tuple[np.ndarray, ...] | None = None

    def result(self, values: np.ndarray) -> float | np.ndarray:
        """A float for 1-D input, else one value per target column."""
        return float(values[0]) if self.one_d else values

    def moments(self) -> tuple[np.ndarray, ...]:
        """Means, population variances and covariance of each target."""
        if self._moments is None:
            rows = []
            for true, pred in self.columns:
                mean_true, mean_pred = _exact_mean(true), _exact_mean(pred)
                dev_true, dev_pred = true - mean_true, pred - mean_pred
                rows.append((mean_true, mean_pred, np.dot(dev_true, dev_true) / self.n,
                             np.dot(dev_pred, dev_pred) / self.n, np.dot(dev_true, dev_pred) / self.n))
            self._moments = tuple(np.array(column) for column in zip(*rows))
        return self._moments


def _exact_mean(values: np.ndarray) -> float:
    """The mean, exactly the value itself for a constant column (so its variance is 0.0,
    not a rounding residue that would make CORR and CCC of constant input look defined)."""
    first = values[0]
    return float(first) if not (values != first).any() else float(values.mean())


def _rmse(t: Targets) -> np.ndarray:
    values = []
    for true, pred in t.columns:
        error = true - pred
        values.append(np.sqrt(np.dot(error, error) / t.n))
    return np.array(values)


def _mae(t: Targets) -> np.ndarray:
    values = []
    for true, pred in t.columns:
        error = true - pred
        values.append(np.abs(error, out=error).mean())
    return np.array(values)


def _pearson(t: Targets) -> np.ndarray:
    _, _, var_true, var_pred, covariance = t.moments()
    denominator = np.sqrt(var_true * var_pred)
    if np.any(denominator == 0):
        warn_undefined("Pearson correlation is undefined where y_true or y_pred is constant; returned NaN")
    corr = np.full(denominator.shape, np.nan)
    np.divide(covariance, denominator, out=corr, where=denominator > 0)
    return np.clip(corr, -1.0, 1.0)


def _sagr(t: Targets) -> np.ndarray:
    return np.array([np.mean(np.sign(true) == np.sign(pred)) for true, pred in t.columns])


def _ccc(t: Targets) -> np.ndarray:
    mean_true, mean_pred, var_true, var_pred, covariance = t.moments()
    denominator = var_true + var_pred + (mean_true - mean_pred) ** 2
    if np.any(denominator == 0):
        warn_undefined("CCC is undefined where y_true and y_pred are the same constant; returned NaN")
    value = np.full(denominator.shape, np.nan)
    np.divide(2 * covariance, denominator, out=value, where=denominator > 0)
    return value


def _evaluate(kernel: Callable[[Targets], np.ndarray], y_true: object, y_pred: object) -> float | np.ndarray:
    targets = Targets(y_true, y_pred)
    return targets.result(kernel(targets))


def rmse(y_true: object, y_pred: object) -> float | np.ndarray:
    """Root mean squared error."""
    return _evaluate(_rmse, y_true, y_pred)


def mae(y_true: object, y_pred: object) -> float | np.ndarray:
    """Mean absolute error."""
    return _evaluate(_mae, y_true, y_pred)


def pearson(y_true: object, y_pred: object) -> float | np.ndarray:
    """Pearson correlation coefficient (CORR).

    Undefined, and returned as NaN with an :class:`UndefinedMetricWarning`, where
    either side is constant (for example a head that predicts one value for all).
    """
    return _evaluate(_pearson, y_true, y_pred)


def sagr(y_true: object, y_pred: object) -> float | np.ndarray:
    """Sign agreement: the fraction of samples whose prediction has the true sign.

    Signs are those of ``np.sign``, so zero is a sign of its own: a true value of
    exactly 0 agrees only with a prediction of exactly 0, and vice versa (the
    Kronecker-delta form of AffectNet's SAGR).
    """
    return _evaluate(_sagr, y_true, y_pred)


def ccc(y_true: object, y_pred: object) -> float | np.ndarray:
    """Lin's (1989) concordance correlation coefficient with population moments.

    CCC = 2 cov / (var_true + var_pred + (mean_true - mean_pred)^2). A constant
    prediction gives 0.0 whenever ``y_true`` varies; CCC is NaN (with an
    :class:`UndefinedMetricWarning`) only when both sides are the same constant.
    """
    return _evaluate(_ccc, y_true, y_pred)


KERNELS: dict[str, Callable[[Targets], np.ndarray]] = {
    "rmse": _rmse,
    "mae": _mae,
    "corr": _pearson,
    "sagr": _sagr,
    "ccc": _ccc,
}
