"""Chunked solvers of :class:`heads.RidgeHead` and :class:`heads.LogisticHead`.

A chunked X (an h5py Dataset, a numpy memmap, a :class:`heads.RowSubset`; see
:mod:`heads.chunked`) is read ``chunk_rows`` rows at a time, so memory is
O(chunk_rows x n_features + n_features^2) whatever the number of rows; y is in memory. Each
solver returns the fitted scikit-learn Pipeline an in-memory fit gives (``StandardScaler``,
then ``Ridge`` or ``LogisticRegression``), so the heads predict, save and export it alike.

- Ridge, fixed alpha, is **exact**: one pass accumulates the centred X^T X and X^T y in
  float64, the standardisation is applied algebraically and the ridge system solved.
- Ridge, alpha chosen, is RidgeCV's efficient leave-one-out, **exact**: the Gram matrix
  Z^T Z = V diag(s) V^T of the standardised, centred features Z is eigendecomposed, and a
  second pass gives every row's hat-matrix diagonal h = 1/n + sum_j (Z V)_j^2 / (s_j + alpha)
  and fitted value for every alpha, hence the leave-one-out residuals (y - yhat) / (1 - h).
- Logistic, fixed C, minimises **the same objective** as scikit-learn's lbfgs
  LogisticRegression (multinomial, or binomial for two classes, unpenalised intercept, L2
  strength 1/C, class weights) with full-batch L-BFGS; each loss-and-gradient evaluation is
  one chunked pass. It agrees with an in-memory fit to the optimiser's tolerance ``tol``.
- Logistic, C chosen, follows :class:`heads._logistic_path.LogisticPathCV`: the same folds,
  each fold's training rows a :class:`heads.RowSubset`, its Cs fitted from the strongest
  penalty up, each fit starting from the last one's solution, scored by accuracy on the
  held-out rows; then a refit on all rows at the best C.
"""

from __future__ import annotations

import numbers
import warnings
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit, logsumexp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_scalar
from sklearn.utils.class_weight import compute_class_weight

from .chunked import RowSubset, centred_gram, column_moments, map_blocks, row_blocks, standard_scale

Alpha = Union[float, np.ndarray]


def fitted_scaler(mean: np.ndarray, variance: np.ndarray, n: int) -> StandardScaler:
    """A ``StandardScaler`` as fitting it on the ``n`` rows with these column moments leaves it."""
    scaler = StandardScaler()
    scaler.mean_, scaler.var_ = mean, variance
    scaler.scale_ = standard_scale(variance, mean, n)
    scaler.n_features_in_, scaler.n_samples_seen_ = len(mean), int(n)
    return scaler


# ------------------------------------------------------------------------ ridge


def fit_ridge(X: Any, y: np.ndarray, *, alpha: Optional[float], alphas: Sequence[float],
              chunk_rows: int) -> tuple[Pipeline, Alpha]:
    """(StandardScaler + Ridge pipeline, the alpha used) for chunked X and targets y (1-D or
    2-D): ``alpha`` fixed, or chosen from ``alphas`` by leave-one-out as RidgeCV chooses it
    (one per target for a y of several columns)."""
    targets = np.asarray(y, dtype=np.float64)
    Y = targets.reshape(len(targets), -1)
    n, mean, y_mean, xx, xy = centred_gram(X, Y, chunk_rows)
    scaler = fitted_scaler(mean, np.diag(xx) / n, n)
    gram = xx / np.outer(scaler.scale_, scaler.scale_)  # Z^T Z of the standardised, centred features
    rhs = xy / scaler.scale_[:, None]  # Z^T (Y - mean)
    if alpha is not None:
        chosen: Alpha = _checked_alpha(alpha)
        coef = _ridge_solve(gram, rhs, chosen)
    else:
        per_target = targets.ndim == 2 and Y.shape[1] > 1
        chosen, coef = _leave_one_out(X, Y - y_mean, scaler, gram, rhs, _checked_alphas(alphas), per_target,
                                      chunk_rows)
    return Pipeline([("scale", scaler), ("ridge", _ridge(coef, y_mean, chosen, targets.ndim))]), chosen


def _checked_alpha(alpha: float) -> float:
    if float(alpha) < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha!r}")
    return float(alpha)


def _checked_alphas(alphas: Sequence[float]) -> np.ndarray:
    """``alphas`` as floats, each > 0 (RidgeCV's check and message)."""
    values = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    for index, value in enumerate(values):
        check_scalar(float(value), "alphas" if len(values) == 1 else f"alphas[{index}]", target_type=numbers.Real,
                     min_val=0.0, include_boundaries="neither")
    return values


def _ridge_solve(gram: np.ndarray, rhs: np.ndarray, alpha: float) -> np.ndarray:
    """(Z^T Z + alpha I)^-1 Z^T y: (n_features, n_targets)."""
    penalised = gram.copy()
    penalised[np.diag_indices_from(penalised)] += alpha
    try:
        return linalg.solve(penalised, rhs, assume_a="pos")
    except (linalg.LinAlgError, ValueError):  # singular (alpha = 0): least squares, like Ridge
        return linalg.lstsq(penalised, rhs)[0]


def _leave_one_out(X: Any, centred_y: np.ndarray, scaler: StandardScaler, gram: np.ndarray, rhs: np.ndarray,
                   alphas: np.ndarray, per_target: bool, chunk_rows: int) -> tuple[Alpha, np.ndarray]:
    """(alpha chosen, coefficients (n_features, n_targets) at it): the first of ``alphas`` with
    the least mean squared leave-one-out error, per target when ``per_target``, as RidgeCV."""
    eigenvalues, basis = linalg.eigh(gram)
    eigenvalues = np.maximum(eigenvalues, 0.0)  # rounding can leave a null direction slightly negative
    shrink = 1.0 / (eigenvalues[:, None] + alphas[None, :])  # (n_features, alphas)
    projected = basis.T @ rhs  # (n_features, n_targets)
    errors = _loo_errors(X, centred_y, scaler, basis, projected, shrink, chunk_rows)  # (alphas, targets)
    if per_target:
        best = np.argmin(errors, axis=0)  # the first minimum, in alphas order
        chosen: Alpha = alphas[best]
    else:
        best = np.full(centred_y.shape[1], np.argmin(errors.mean(axis=1)))
        chosen = float(alphas[best[0]])
    return chosen, basis @ (projected * shrink[:, best])


def _loo_errors(X: Any, centred_y: np.ndarray, scaler: StandardScaler, basis: np.ndarray, projected: np.ndarray,
                shrink: np.ndarray, chunk_rows: int) -> np.ndarray:
    """Mean squared leave-one-out residual for every alpha (rows) and target (columns), one chunked pass."""
    n, (d, n_alphas), n_targets = len(centred_y), shrink.shape, centred_y.shape[1]
    weights = (shrink[:, :, None] * projected[:, None, :]).reshape(d, n_alphas * n_targets)
    errors = np.zeros((n_alphas, n_targets))
    for start, block in row_blocks(X, chunk_rows):
        rotated = ((block - scaler.mean_) / scaler.scale_) @ basis  # Z V for these rows
        leverage = 1.0 / n + (rotated ** 2) @ shrink  # (rows, alphas): the hat diagonal, intercept included
        fitted = (rotated @ weights).reshape(len(block), n_alphas, n_targets)
        residual = (centred_y[start:start + len(block), None, :] - fitted) / (1.0 - leverage)[:, :, None]
        errors += np.einsum("iak,iak->ak", residual, residual)
    return errors / n


def _ridge(coef: np.ndarray, intercept: np.ndarray, alpha: Alpha, target_ndim: int) -> Ridge:
    """A fitted ``Ridge`` on standardised features: coef (n_features, n_targets), shaped as
    Ridge shapes it for a 1-D (``target_ndim`` 1) or 2-D y (one column: coef_ 1-D)."""
    model = Ridge(alpha=alpha)
    model.coef_ = coef.T if coef.shape[1] > 1 else coef[:, 0]
    model.intercept_ = intercept if target_ndim == 2 else float(intercept[0])
    model.n_features_in_ = coef.shape[0]
    return model


# --------------------------------------------------------------------- logistic


@dataclass
class LogisticFit:
    """A chunked logistic fit: the pipeline, the C used and, when chosen, the (folds, Cs) accuracies."""

    pipeline: Pipeline
    C: float
    scores: Optional[np.ndarray]


def fit_logistic(X: Any, y: np.ndarray, *, C: Optional[float], Cs: Sequence[float], folds: Any,
                 class_weight: Union[None, str, dict], max_iter: int, tol: float, chunk_rows: int) -> LogisticFit:
    """StandardScaler + LogisticRegression for chunked X and labels y: ``C`` fixed, or chosen
    from ``Cs`` by the cross-validation ``folds`` (a splitter, e.g. StratifiedKFold) and refitted
    on all rows. The standardisation comes from all rows, as in the in-memory pipeline."""
    n, mean, variance = column_moments(X, chunk_rows)
    solver = _LogisticSolver(fitted_scaler(mean, variance, n), class_weight, max_iter, tol, chunk_rows)
    if C is not None:
        return LogisticFit(solver.pipeline(solver.fit(X, y, _checked_C(C))), float(C), None)
    values = np.array([_checked_C(c) for c in Cs])
    scores = _path_scores(solver, X, y, values, folds)
    best = float(values[int(np.argmax(scores.mean(axis=0)))])  # the first of equals, in Cs order
    return LogisticFit(solver.pipeline(solver.fit(X, y, best)), best, scores)


def _checked_C(C: float) -> float:
    if not float(C) > 0:
        raise ValueError(f"C must be > 0, got {C!r}")
    return float(C)


def _path_scores(solver: _LogisticSolver, X: Any, y: np.ndarray, Cs: np.ndarray, folds: Any) -> np.ndarray:
    """(folds, Cs) held-out accuracies; each fold fits the Cs from the smallest up, warm-started."""
    splits = list(folds.split(np.zeros((len(y), 1)), y))  # folds depend on y only
    scores = np.zeros((len(splits), len(Cs)))
    for fold, (train, held) in enumerate(splits):
        X_train, X_held = RowSubset(X, train), RowSubset(X, held)
        model = None
        for i in np.argsort(Cs, kind="stable"):
            model = solver.fit(X_train, y[train], float(Cs[i]), start=model)
            scores[fold, i] = np.mean(solver.predict(model, X_held) == y[held])
    return scores


class _LogisticSolver:
    """Fits scikit-learn's lbfgs LogisticRegression on chunked rows standardised by ``scaler``."""

    def __init__(self, scaler: StandardScaler, class_weight: Union[None, str, dict], max_iter: int, tol: float,
                 chunk_rows: int) -> None:
        self.scaler, self.class_weight, self.max_iter = scaler, class_weight, max_iter
        self.tol, self.chunk_rows = tol, chunk_rows

    def fit(self, X: Any, y: np.ndarray, C: float, start: Optional[LogisticRegression] = None) -> LogisticRegression:
        """The fitted model at ``C``, L-BFGS starting from ``start``'s solution (else zeros)."""
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"the classifier needs at least 2 classes in y, got 1 class: {classes[0]!r}")
        weights = np.ones(len(encoded))
        if self.class_weight is not None:
            weights = compute_class_weight(self.class_weight, classes=classes, y=y)[encoded]
        loss = _PenalisedLogLoss(X, encoded, weights, len(classes), self.scaler.mean_, self.scaler.scale_, C,
                                 self.chunk_rows)
        x0 = np.zeros(loss.size) if start is None else np.column_stack([start.coef_, start.intercept_]).ravel()
        result = optimize.minimize(loss, x0, method="L-BFGS-B", jac=True,
                                   options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                                            "ftol": 64 * np.finfo(float).eps})
        if result.status != 0:
            warnings.warn(f"lbfgs did not converge in {self.max_iter} iterations ({result.message}); raise "
                          "max_iter or tol", ConvergenceWarning, stacklevel=4)
        model = LogisticRegression(C=C, class_weight=self.class_weight, max_iter=self.max_iter, tol=self.tol)
        model.coef_, model.intercept_ = loss.unpack(result.x)
        model.classes_, model.n_features_in_ = classes, len(self.scaler.mean_)
        model.n_iter_ = np.array([min(int(result.nit), int(self.max_iter))], dtype=np.int32)
        return model

    def pipeline(self, model: LogisticRegression) -> Pipeline:
        return Pipeline([("scale", self.scaler), ("logistic", model)])

    def predict(self, model: LogisticRegression, X: Any) -> np.ndarray:
        """Labels of chunked X, block by block."""
        return map_blocks(self.pipeline(model).predict, X, self.chunk_rows)


class _PenalisedLogLoss:
    """scikit-learn's lbfgs objective on standardised features, evaluated chunk by chunk:
    sum_i w_i loss_i / sum(w) + |coef|^2 / (2 C sum(w)), intercept unpenalised.

    Two classes: binomial loss, one coefficient row (positive class = index 1); more:
    multinomial, one row per class. The standardisation is folded into the weights, so
    chunks are used as read.
    """

    def __init__(self, X, encoded, weights, n_classes, mean, scale, C, chunk_rows) -> None:
        self.X, self.encoded, self.weights = X, encoded, weights
        self.rows = 1 if n_classes == 2 else n_classes
        self.mean, self.scale, self.chunk_rows = mean, scale, chunk_rows
        self.weight_sum = float(weights.sum())
        self.l2 = 1.0 / (C * self.weight_sum)
        self.size = self.rows * (len(mean) + 1)

    def unpack(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        table = params.reshape(self.rows, -1)
        return table[:, :-1].copy(), table[:, -1].copy()

    def __call__(self, params: np.ndarray) -> tuple[float, np.ndarray]:
        coef, intercept = self.unpack(params)
        raw = coef / self.scale  # weights on the raw features
        bias = intercept - raw @ self.mean
        loss, grad_raw, grad_bias = 0.0, np.zeros_like(raw), np.zeros_like(intercept)
        for start, block in row_blocks(self.X, self.chunk_rows):
            labels = self.encoded[start:start + len(block)]
            weights = self.weights[start:start + len(block)]
            scores = block @ raw.T + bias
            if self.rows == 1:
                s = scores[:, 0]
                loss += weights @ (np.logaddexp(0.0, s) - labels * s)
                residual = (weights * (expit(s) - labels))[:, None]
            else:
                norm = logsumexp(scores, axis=1)
                loss += weights @ (norm - scores[np.arange(len(labels)), labels])
                residual = np.exp(scores - norm[:, None])
                residual[np.arange(len(labels)), labels] -= 1.0
                residual *= weights[:, None]
            grad_raw += residual.T @ block
            grad_bias += residual.sum(axis=0)
        # back to standardised coordinates: d/dcoef = (grad_raw - grad_bias mean) / scale
        grad_coef = (grad_raw - np.outer(grad_bias, self.mean)) / self.scale
        value = loss / self.weight_sum + 0.5 * self.l2 * float(np.sum(coef ** 2))
        gradient = np.column_stack([grad_coef / self.weight_sum + self.l2 * coef, grad_bias / self.weight_sum])
        return value, gradient.ravel()
