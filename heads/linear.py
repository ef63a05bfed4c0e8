"""Linear heads: StandardScaler + LogisticRegression (classes), StandardScaler + Ridge (targets)."""

from __future__ import annotations

from typing import Literal, Union

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ._pipeline import PipelineHead


class LogisticHead(ClassifierMixin, PipelineHead):
    """Standardised multinomial logistic regression (lbfgs, L2 penalty with strength 1/C).

    ``class_weight``: None, "balanced" or {label: weight}. ``max_iter`` bounds lbfgs;
    the fit stops at ``tol``. Classification only.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        class_weight: Union[None, Literal["balanced"], dict] = None,
        max_iter: int = 1000,
        tol: float = 1e-4,
    ) -> None:
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol

    def _is_classifier(self) -> bool:
        return True

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        model = LogisticRegression(C=self.C, class_weight=self.class_weight, max_iter=self.max_iter, tol=self.tol)
        return Pipeline([("scale", StandardScaler()), ("logistic", model)])

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) probabilities, columns in ``classes_`` order."""
        return self._proba(X)

    def decision_function(self, X) -> np.ndarray:
        """Class scores (logits) of the logistic model."""
        X = self._checked(X)
        return self.pipeline_.decision_function(X)


class RidgeHead(RegressorMixin, PipelineHead):
    """Standardised ridge regression, one or several targets (valence, arousal).

    ``clip=True`` clips predictions to [-1, 1], the range of valence and arousal.
    Regression only.
    """

    def __init__(self, *, alpha: float = 1.0, clip: bool = True) -> None:
        self.alpha = alpha
        self.clip = clip

    def _is_classifier(self) -> bool:
        return False

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        return Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=self.alpha))])

    def predict(self, X) -> np.ndarray:
        """Targets shaped like the fitted y, clipped to [-1, 1] when ``clip``."""
        predicted = super().predict(X)
        return np.clip(predicted, -1.0, 1.0) if self.clip else predicted

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
