"""Out-of-core linear heads: the standardised ridge and logistic heads, fitted from chunked X.

X may be an in-memory array or any chunked source (an h5py Dataset, a numpy memmap, a
:class:`heads.RowSubset`; see :mod:`heads.chunked`). It is read ``chunk_rows`` rows at a
time, so memory is O(chunk_rows x n_features + n_features^2) whatever the number of rows;
y (labels or targets) is in memory.

- :class:`StreamingRidgeHead` is **exact**: one pass accumulates the centred X^T X and X^T y
  in float64, the standardisation is applied algebraically and the ridge system solved;
  predictions equal :class:`heads.RidgeHead`'s (fitted in memory) to float rounding.
- :class:`StreamingLogisticHead` minimises **the same objective** as :class:`heads.LogisticHead`
  (StandardScaler + scikit-learn's lbfgs LogisticRegression: multinomial, or binomial for two
  classes, unpenalised intercept, L2 strength 1/C, class weights) with full-batch L-BFGS; each
  loss-and-gradient evaluation is one chunked pass. It agrees with the in-memory head to
  the optimiser's tolerance ``tol``.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Union

import numpy as np
from scipy import linalg, optimize
from scipy.special import expit, logsumexp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from .chunked import (DEFAULT_CHUNK_ROWS, centred_gram, check_chunk_rows, check_chunked_fit, check_chunked_predict,
                      column_moments, is_chunked, row_blocks, standard_scale)

FLOATS = (np.float64, np.float32)


class _StreamingHead(BaseEstimator):
    """Input handling shared by the streaming heads: chunked X read as is, anything else validated."""

    def _fit_inputs(self, X: Any, y: Any, classify: bool) -> tuple[Any, np.ndarray]:
        check_chunk_rows(self.chunk_rows)
        if not is_chunked(X):
            return validate_data(self, X, y, dtype=FLOATS, multi_output=not classify, y_numeric=not classify)
        return X, check_chunked_fit(self, X, y, multi_output=not classify, y_numeric=not classify)

    def _predict_input(self, X: Any) -> Any:
        check_is_fitted(self)
        if not is_chunked(X):
            return validate_data(self, X, reset=False, dtype=FLOATS)
        check_chunked_predict(self, X)
        return X

    def _linear(self, X: Any) -> np.ndarray:
        """X @ coef_.T + intercept_ in original feature units, chunk by chunk, float64."""
        X = self._predict_input(X)
        chunk_rows = check_chunk_rows(self.chunk_rows)
        parts = [block @ self.weights_.T + self.bias_ for _, block in row_blocks(X, chunk_rows)]
        return np.concatenate(parts)

    def _unit_weights(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        """Fold the standardisation into the model: weights on the raw features."""
        self.weights_ = coef / self.scale_
        self.bias_ = intercept - self.weights_ @ self.mean_


class StreamingRidgeHead(RegressorMixin, _StreamingHead):
    """:class:`heads.RidgeHead` (StandardScaler + Ridge(alpha), clipped to [-1, 1] when
    ``clip``) fitted from chunked X in one pass, exactly. One or several targets.

    Learned: ``mean_``, ``scale_`` (the standardisation), ``coef_`` (n_targets, n_features)
    or (n_features,) and ``intercept_`` on the standardised features, ``n_features_in_``.
    """

    def __init__(self, *, alpha: float = 1.0, clip: bool = True, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.alpha = alpha
        self.clip = clip
        self.chunk_rows = chunk_rows

    def fit(self, X, y):
        """Accumulate the centred Gram matrices over chunks of X, solve the ridge system. Returns self."""
        X, y = self._fit_inputs(X, y, classify=False)
        alpha = float(self.alpha)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha!r}")
        targets = np.asarray(y, dtype=np.float64)
        Y = targets.reshape(len(targets), -1)
        n, self.mean_, y_mean, xx, xy = centred_gram(X, Y, check_chunk_rows(self.chunk_rows))
        self.scale_ = standard_scale(np.diag(xx) / n, self.mean_, n)
        gram = xx / np.outer(self.scale_, self.scale_)  # Z^T Z of the standardised, centred features
        gram[np.diag_indices_from(gram)] += alpha
        rhs = xy / self.scale_[:, None]
        try:
            coef = linalg.solve(gram, rhs, assume_a="pos")
        except (linalg.LinAlgError, ValueError):  # singular (alpha = 0): least squares, like Ridge
            coef = linalg.lstsq(gram, rhs)[0]
        self.coef_ = coef.T if targets.ndim == 2 else coef[:, 0]
        self.intercept_ = y_mean if targets.ndim == 2 else float(y_mean[0])
        self._unit_weights(coef.T, y_mean)
        return self

    def predict(self, X) -> np.ndarray:
        """Targets shaped like the fitted y, clipped to [-1, 1] when ``clip``; X may be chunked."""
        predicted = self._linear(X)
        predicted = predicted if np.ndim(self.coef_) == 2 else predicted[:, 0]
        return np.clip(predicted, -1.0, 1.0) if self.clip else predicted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class StreamingLogisticHead(ClassifierMixin, _StreamingHead):
    """:class:`heads.LogisticHead` (StandardScaler + lbfgs LogisticRegression, L2 strength 1/C)
    fitted from chunked X: full-batch L-BFGS, one chunked pass per loss-and-gradient.

    Deterministic; matches the in-memory head to the optimiser tolerance ``tol`` (the
    projected-gradient bound, as scikit-learn's). ``max_iter`` bounds the L-BFGS iterations
    (each costs about one pass over X). Learned: ``classes_``, ``mean_``, ``scale_``,
    ``coef_`` (1 or n_classes, n_features) and ``intercept_`` on the standardised features,
    ``n_iter_``, ``n_features_in_``.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        class_weight: Union[None, Literal["balanced"], dict] = None,
        max_iter: int = 1000,
        tol: float = 1e-4,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.chunk_rows = chunk_rows

    def fit(self, X, y):
        """Standardise (one chunked pass), then minimise the penalised log-loss. Returns self."""
        X, y = self._fit_inputs(X, y, classify=True)
        check_classification_targets(y)
        C = float(self.C)
        if C <= 0:
            raise ValueError(f"C must be > 0, got {self.C!r}")
        self.classes_, encoded = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"the classifier needs at least 2 classes in y, got 1 class: {self.classes_[0]!r}")
        weights = np.ones(len(encoded))
        if self.class_weight is not None:
            weights = compute_class_weight(self.class_weight, classes=self.classes_, y=y)[encoded]
        chunk_rows = check_chunk_rows(self.chunk_rows)
        n, self.mean_, variance = column_moments(X, chunk_rows)
        self.scale_ = standard_scale(variance, self.mean_, n)
        loss = _PenalisedLogLoss(X, encoded, weights, len(self.classes_), self.mean_, self.scale_, C, chunk_rows)
        result = optimize.minimize(loss, np.zeros(loss.size), method="L-BFGS-B", jac=True,
                                   options={"maxiter": self.max_iter, "maxls": 50, "gtol": self.tol,
                                            "ftol": 64 * np.finfo(float).eps})
        if result.status != 0:
            warnings.warn(f"lbfgs did not converge in {self.max_iter} iterations ({result.message}); raise "
                          "max_iter or tol", ConvergenceWarning, stacklevel=2)
        self.n_iter_ = np.array([min(int(result.nit), int(self.max_iter))])
        self.coef_, self.intercept_ = loss.unpack(result.x)
        self._unit_weights(self.coef_, self.intercept_)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits): (n,) for two classes (positive = ``classes_[1]``), else (n, n_classes)."""
        scores = self._linear(X)
        return scores[:, 0] if scores.shape[1] == 1 else scores

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) probabilities, columns in ``classes_`` order."""
        scores = self._linear(X)
        if scores.shape[1] == 1:
            positive = expit(scores[:, 0])
            return np.column_stack([1.0 - positive, positive])
        return np.exp(scores - logsumexp(scores, axis=1, keepdims=True))

    def predict_log_proba(self, X) -> np.ndarray:
        """Logarithms of :meth:`predict_proba`."""
        return np.log(self.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most probable label of each row."""
        best = self.predict_proba(X).argmax(axis=1)
        return self.classes_[best]


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
