"""Linear heads: StandardScaler + LogisticRegression (classes), StandardScaler + Ridge (targets).

Both choose their regularisation on the training data they are given unless it is fixed:
``LogisticHead`` picks C from ``Cs`` by stratified cross-validation (a warm-started path
over the folds, :mod:`heads._logistic_path`), ``RidgeHead`` picks alpha from ``alphas`` by
RidgeCV's efficient leave-one-out, and both refit on all of it; a test part is never used.
``C=`` / ``alpha=`` fixes the value instead. ``LogisticCVHead`` and ``RidgeCVHead`` are the
same heads under their earlier names. The logistic heads fit in the span of the training
rows when the features outnumber them (the same model, faster: :mod:`heads._row_space`).

Both also fit and predict a chunked X (an h5py Dataset, a memmap, a :class:`heads.RowSubset`;
see :mod:`heads.chunked`), read ``chunk_rows`` rows at a time: the solvers of
:mod:`heads.streaming` choose and fit the same model and leave the same fitted ``pipeline_``.
A fixed alpha costs ridge one pass over X (choosing it, two); a fixed C costs logistic
regression one pass per L-BFGS step, and choosing it repeats that for every fold and C, so
fix C for very large data.
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.validation import check_is_fitted

from ._common import finish_targets, normalise_rows, spread_match
from ._logistic_path import LogisticPathCV
from ._pipeline import PipelineHead, check_class_labels
from ._row_space import RowSpace, fold_row_space
from .chunked import (DEFAULT_CHUNK_ROWS, check_chunk_rows, check_chunked_fit, check_chunked_predict, is_chunked,
                      map_blocks)
from .streaming import fit_logistic, fit_ridge

# Frozen CNN features want far stronger L2 than scikit-learn's defaults (C=1, alpha=1);
# the grids span what was chosen on face features with room on both sides.
DEFAULT_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


class _LinearHead(PipelineHead):
    """A PipelineHead that takes a chunked X too: fitted by the chunked solvers into the same
    ``pipeline_``, predicted through it ``chunk_rows`` rows at a time."""

    def _chunked_target(self, X, y) -> np.ndarray:
        """Check ``chunk_rows``, a chunked X and its y (as an in-memory fit checks them); the checked y."""
        check_chunk_rows(self.chunk_rows)
        classify = self._is_classifier()
        y = check_chunked_fit(self, X, y, multi_output=not classify, y_numeric=not classify)
        if classify:
            check_class_labels(y)
        return y

    def _apply(self, X, method: str) -> np.ndarray:
        """``pipeline_``'s ``method`` on X: an in-memory X at once, a chunked X block by block."""
        if not is_chunked(X):
            X = self._checked(X)
            return getattr(self.pipeline_, method)(X)
        check_is_fitted(self)
        check_chunked_predict(self, X)
        return map_blocks(getattr(self.pipeline_, method), X, check_chunk_rows(self.chunk_rows))

    def predict(self, X) -> np.ndarray:
        """Labels (classifiers), or float64 targets shaped like the fitted y (regressors); X may be chunked."""
        predicted = self._apply(X, "predict")
        return predicted if self._is_classifier() else predicted.astype(np.float64, copy=False)


class LogisticHead(ClassifierMixin, _LinearHead):
    """Standardised multinomial logistic regression (lbfgs, L2 penalty with strength 1/C).

    ``C=None`` (the default) chooses C from ``Cs`` by stratified ``cv``-fold cross-validation
    (accuracy) on the training data and refits on all of it; a number fixes it. Learned:
    ``C_`` (the C used) and, when chosen, ``cv_scores_`` (folds, Cs); when chosen on an
    in-memory X also ``cv_proba_``: each training row's class probabilities at ``C_`` (float32)
    from the fold that held it out. ``class_weight``: None,
    "balanced" or {label: weight}. ``max_iter`` bounds lbfgs; the fit stops at ``tol``.
    ``chunk_rows``: rows read at a time from a chunked X. Classification only.
    """

    def __init__(
        self,
        *,
        C: Optional[float] = None,
        Cs: tuple = DEFAULT_CS,
        cv: int = 3,
        class_weight: Union[None, Literal["balanced"], dict] = None,
        max_iter: int = 1000,
        tol: float = 1e-4,
        random_state: Union[None, int] = None,
        chunk_rows: int = DEFAULT_CHUNK_ROWS,
    ) -> None:
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.chunk_rows = chunk_rows

    def _is_classifier(self) -> bool:
        return True

    def _folds(self, y: np.ndarray) -> StratifiedKFold:
        """The cross-validation folds choosing C: ``cv``, at most the smallest class's size, at least 2."""
        folds = min(self.cv, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
        return StratifiedKFold(max(folds, 2), shuffle=True, random_state=self.random_state)

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        if self.C is not None:
            model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, tol=self.tol)
        else:
            model = LogisticPathCV(Cs=self.Cs, cv=self._folds(y), class_weight=self.class_weight,
                                   max_iter=self.max_iter, tol=self.tol)
        return Pipeline([("scale", StandardScaler()), ("row_space", RowSpace()), ("logistic", model)])

    def fit(self, X, y):
        """Standardise, choose C unless fixed, fit the model (in the span of the rows when they
        are fewer than the features: the same model, faster; :mod:`heads._row_space`). A
        chunked X is fitted by :func:`heads.streaming.fit_logistic`. Returns self."""
        if is_chunked(X):
            return self._fit_chunked(X, y)
        super().fit(X, y)
        fitted = self.pipeline_.steps[-1][1]
        if isinstance(fitted, LogisticPathCV):
            self.C_, self.cv_scores_, self.cv_proba_ = fitted.C_, fitted.scores_, fitted.oof_proba_
            fitted = fitted.best_estimator_
        else:
            self.C_ = self.C
        self.pipeline_.steps[-1] = ("logistic", fitted)
        self.pipeline_ = fold_row_space(self.pipeline_)
        self.n_iter_ = fitted.n_iter_
        return self

    def _fit_chunked(self, X, y) -> "LogisticHead":
        y = self._chunked_target(X, y)
        fitted = fit_logistic(X, y, C=self.C, Cs=self.Cs, folds=self._folds(y), class_weight=self.class_weight,
                              max_iter=self.max_iter, tol=self.tol, chunk_rows=self.chunk_rows)
        self.pipeline_ = fitted.pipeline
        self.classes_, self.n_iter_ = self.pipeline_.classes_, self.pipeline_[-1].n_iter_
        if fitted.scores is None:
            self.C_ = self.C
        else:
            self.C_, self.cv_scores_ = fitted.C, fitted.scores
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) probabilities, columns in ``classes_`` order; X may be chunked."""
        return normalise_rows(self._apply(X, "predict_proba"))

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits) of the logistic model; X may be chunked."""
        return self._apply(X, "decision_function")


class LogisticCVHead(LogisticHead):
    """:class:`LogisticHead` under its earlier name (C chosen by cross-validation unless fixed)."""


class RidgeHead(RegressorMixin, _LinearHead):
    """Standardised ridge regression, one or several targets (valence, arousal).

    ``alpha=None`` (the default) chooses alpha per target from ``alphas`` by efficient
    leave-one-out cross-validation on the training data; a number fixes it. Learned:
    ``alpha_`` (the alpha used, one per target when chosen for several).
    ``clip=True`` clips predictions to [-1, 1], the range of valence and arousal.
    ``match_spread=True`` rescales predictions around their training mean so that, on the
    training data, their standard deviation equals the targets' (learned
    ``spread_scale_``): ridge shrinks predictions toward the mean, which the concordance
    correlation (CCC) punishes; matching the spread lifts CCC towards the Pearson
    correlation at some cost in RMSE. ``chunk_rows``: rows read at a time from a chunked X.
    Regression only.
    """

    def __init__(self, *, alpha: Optional[float] = None, alphas: tuple = DEFAULT_ALPHAS, clip: bool = True,
                 match_spread: bool = False, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.clip = clip
        self.match_spread = match_spread
        self.chunk_rows = chunk_rows

    def _is_classifier(self) -> bool:
        return False

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        if self.alpha is not None:
            return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=self.alpha))])
        per_target = np.ndim(y) == 2 and np.shape(y)[1] > 1
        return Pipeline([("scale", StandardScaler()),
                         ("ridge", RidgeCV(alphas=list(self.alphas), alpha_per_target=per_target))])

    def fit(self, X, y):
        """Fit the scaler and the ridge model, alpha chosen by leave-one-out unless fixed (and the
        spread match when asked); a chunked X is fitted by :func:`heads.streaming.fit_ridge`. Returns self."""
        if is_chunked(X):
            y = self._chunked_target(X, y)
            self.pipeline_, self.alpha_ = fit_ridge(X, y, alpha=self.alpha, alphas=self.alphas,
                                                    chunk_rows=self.chunk_rows)
        else:
            super().fit(X, y)
            self.alpha_ = self.pipeline_[-1].alpha_ if self.alpha is None else self.alpha
        if self.match_spread:
            self.spread_scale_, self.fitted_mean_ = spread_match(super().predict(X), y)
        return self

    def predict(self, X) -> np.ndarray:
        """Targets shaped like the fitted y, spread-matched when ``match_spread``, clipped to [-1, 1] when
        ``clip``; X may be chunked."""
        return finish_targets(super().predict(X), self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class RidgeCVHead(RidgeHead):
    """:class:`RidgeHead` under its earlier name (alpha chosen by leave-one-out unless fixed)."""
