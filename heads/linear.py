"""Linear heads: StandardScaler + LogisticRegression (classes), StandardScaler + Ridge (targets).

Both choose their regularisation on the training data they are given unless it is fixed:
``LogisticHead`` picks C from ``Cs`` by stratified cross-validation (a warm-started path
over the folds, :mod:`heads._logistic_path`), ``RidgeHead`` picks alpha from ``alphas`` by
RidgeCV's efficient leave-one-out, and both refit on all of it; a test part is never used.
``C=`` / ``alpha=`` fixes the value instead. ``LogisticCVHead`` and ``RidgeCVHead`` are the
same heads under their earlier names. The logistic heads fit in the span of the training
rows when the features outnumber them (the same model, faster: :mod:`heads._row_space`).
"""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ._common import finish_targets, spread_match
from ._logistic_path import LogisticPathCV
from ._pipeline import PipelineHead
from ._row_space import RowSpace, fold_row_space

# Frozen CNN features want far stronger L2 than scikit-learn's defaults (C=1, alpha=1);
# the grids span what was chosen on face features with room on both sides.
DEFAULT_CS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-1, 5, 13))


class LogisticHead(ClassifierMixin, PipelineHead):
    """Standardised multinomial logistic regression (lbfgs, L2 penalty with strength 1/C).

    ``C=None`` (the default) chooses C from ``Cs`` by stratified ``cv``-fold cross-validation
    (accuracy) on the training data and refits on all of it; a number fixes it. Learned:
    ``C_`` (the C used) and, when chosen, ``cv_scores_`` (folds, Cs). ``class_weight``: None,
    "balanced" or {label: weight}. ``max_iter`` bounds lbfgs; the fit stops at ``tol``.
    Classification only.
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
    ) -> None:
        self.C = C
        self.Cs = Cs
        self.cv = cv
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _is_classifier(self) -> bool:
        return True

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        if self.C is not None:
            model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, tol=self.tol)
        else:
            folds = min(self.cv, int(np.bincount(np.unique(y, return_inverse=True)[1]).min()))
            splitter = StratifiedKFold(max(folds, 2), shuffle=True, random_state=self.random_state)
            model = LogisticPathCV(Cs=self.Cs, cv=splitter, class_weight=self.class_weight, max_iter=self.max_iter,
                                   tol=self.tol)
        return Pipeline([("scale", StandardScaler()), ("row_space", RowSpace()), ("logistic", model)])

    def fit(self, X, y):
        """Standardise, choose C unless fixed, fit the model (in the span of the rows when they
        are fewer than the features: the same model, faster; :mod:`heads._row_space`). Returns self."""
        super().fit(X, y)
        fitted = self.pipeline_.steps[-1][1]
        if isinstance(fitted, LogisticPathCV):
            self.C_, self.cv_scores_ = fitted.C_, fitted.scores_
            fitted = fitted.best_estimator_
        else:
            self.C_ = self.C
        self.pipeline_.steps[-1] = ("logistic", fitted)
        self.pipeline_ = fold_row_space(self.pipeline_)
        self.n_iter_ = fitted.n_iter_
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) probabilities, columns in ``classes_`` order."""
        return self._proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits) of the logistic model."""
        X = self._checked(X)
        return self.pipeline_.decision_function(X)


class LogisticCVHead(LogisticHead):
    """:class:`LogisticHead` under its earlier name (C chosen by cross-validation unless fixed)."""


class RidgeHead(RegressorMixin, PipelineHead):
    """Standardised ridge regression, one or several targets (valence, arousal).

    ``alpha=None`` (the default) chooses alpha per target from ``alphas`` by efficient
    leave-one-out cross-validation on the training data; a number fixes it. Learned:
    ``alpha_`` (the alpha used, one per target when chosen for several).
    ``clip=True`` clips predictions to [-1, 1], the range of valence and arousal.
    ``match_spread=True`` rescales predictions around their training mean so that, on the
    training data, their standard deviation equals the targets' (learned
    ``spread_scale_``): ridge shrinks predictions toward the mean, which the concordance
    correlation (CCC) punishes; matching the spread lifts CCC towards the Pearson
    correlation at some cost in RMSE. Regression only.
    """

    def __init__(self, *, alpha: Optional[float] = None, alphas: tuple = DEFAULT_ALPHAS, clip: bool = True,
                 match_spread: bool = False) -> None:
        self.alpha = alpha
        self.alphas = alphas
        self.clip = clip
        self.match_spread = match_spread

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
        spread match when asked). Returns self."""
        super().fit(X, y)
        self.alpha_ = self.pipeline_[-1].alpha_ if self.alpha is None else self.alpha
        if self.match_spread:
            self.spread_scale_, self.fitted_mean_ = spread_match(PipelineHead.predict(self, X), y)
        return self

    def predict(self, X) -> np.ndarray:
        """Targets shaped like the fitted y, spread-matched when ``match_spread``, clipped to [-1, 1] when ``clip``."""
        return finish_targets(super().predict(X), self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


class RidgeCVHead(RidgeHead):
    """:class:`RidgeHead` under its earlier name (alpha chosen by leave-one-out unless fixed)."""
