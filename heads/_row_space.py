"""Fitting an L2-penalised linear model in the span of its training rows, exactly.

With fewer training rows ``n`` than features ``d`` (thousands of faces, several thousand
pooled features), the optimum ``w`` of any loss of ``X @ w + b`` plus ``||w||^2 / 2C`` lies in
the row space of ``X``: a component outside it changes no prediction and only adds to the
penalty. So the model can be fitted on ``n`` coordinates ``X @ Q`` (``Q`` an orthonormal
basis of that space, from one QR factorisation) and mapped back, ``coef = coef_q @ Q.T``:
the same model for every C, at the cost of ``n`` columns instead of ``d`` in every solver
iteration. Cross-validation folds are subsets of the rows, so one basis serves them all.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline


class RowSpace(TransformerMixin, BaseEstimator):
    """``X -> X @ basis_``: coordinates in the span of the training rows when they are fewer
    than the features (``basis_`` (d, n) orthonormal); otherwise ``basis_`` is None and X
    passes unchanged."""

    def fit(self, X: np.ndarray, y=None) -> "RowSpace":
        self.fit_transform(X)
        return self

    def fit_transform(self, X: np.ndarray, y=None) -> np.ndarray:
        """Fit, and the training rows' coordinates: ``X @ basis_`` is ``R.T`` of the
        factorisation ``X.T = basis_ R``, so it is not multiplied out again."""
        rows, columns = X.shape
        self.n_features_in_ = columns
        self.basis_: Optional[np.ndarray] = None
        if rows >= columns:
            return X
        self.basis_, upper = scipy.linalg.qr(np.asarray(X).T, mode="economic", check_finite=False)
        return np.ascontiguousarray(upper.T)

    def transform(self, X: np.ndarray) -> np.ndarray:
        return X if self.basis_ is None else X @ self.basis_


def fold_row_space(pipeline: Pipeline, step: str = "row_space") -> Pipeline:
    """The fitted ``pipeline`` without its :class:`RowSpace` step: the linear model after it
    gets ``coef_`` mapped back to the original features, so the fitted head is as small and as
    readable as one fitted on them directly."""
    names = [name for name, _ in pipeline.steps]
    if step not in names:
        return pipeline
    basis = pipeline.named_steps[step].basis_
    steps = [(name, estimator) for name, estimator in pipeline.steps if name != step]
    if basis is None:
        return Pipeline(steps)
    model = steps[-1][1]
    model.coef_ = model.coef_.astype(np.float64) @ basis.T
    model.n_features_in_ = basis.shape[0]
    return Pipeline(steps)
