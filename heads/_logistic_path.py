"""Choosing the logistic penalty C by cross-validation along a warm-started path, in float32."""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression


class LogisticPathCV(ClassifierMixin, BaseEstimator):
    """Fits ``LogisticRegression`` at the C of ``Cs`` with the best mean held-out accuracy over the
    folds of ``cv``, refitted on all rows; learned ``C_``, ``scores_`` (folds, Cs),
    ``best_estimator_`` and ``oof_proba_``: each row's class probabilities (columns in
    ``classes_`` order) from the fold that held it out, at ``C_``, free by-products of the
    choice that a stacked model can learn from (:class:`heads.JointLinearHead`).

    Each fold fits the Cs from the strongest penalty up, each fit starting from the last
    one's solution. Unlike scikit-learn's ``LogisticRegressionCV``, float32 features stay
    float32 (it converts them to float64): the solver's matrix products, which dominate its
    time on thousands of features, read half the bytes.
    """

    def __init__(
        self,
        *,
        Cs: Sequence[float],
        cv,
        class_weight: Union[None, str, dict] = None,
        max_iter: int = 1000,
        tol: float = 1e-4,
    ) -> None:
        self.Cs = Cs
        self.cv = cv
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.tol = tol

    def _model(self, C: float, warm_start: bool = False) -> LogisticRegression:
        return LogisticRegression(C=C, class_weight=self.class_weight, max_iter=self.max_iter, tol=self.tol,
                                  warm_start=warm_start)

    def fit(self, X: np.ndarray, y: np.ndarray) -> "LogisticPathCV":
        Cs = np.asarray(self.Cs, dtype=np.float64)
        folds = list(self.cv.split(X, y))
        self.classes_ = np.unique(y)
        self.scores_ = np.zeros((len(folds), len(Cs)))
        held_out = np.zeros((len(Cs), len(y), len(self.classes_)), dtype=np.float32)
        for fold, (train, held) in enumerate(folds):
            X_train, y_train = X[train], y[train]
            model = self._model(Cs.min(), warm_start=True)
            for i in np.argsort(Cs, kind="stable"):
                model.set_params(C=float(Cs[i])).fit(X_train, y_train)
                columns = np.searchsorted(self.classes_, model.classes_)
                held_out[i, held[:, None], columns] = model.predict_proba(X[held])
                self.scores_[fold, i] = np.mean(self.classes_[held_out[i, held].argmax(axis=1)] == y[held])
        best = int(np.argmax(self.scores_.mean(axis=0)))  # the first of equals, in Cs order
        self.C_, self.oof_proba_ = float(Cs[best]), held_out[best]
        self.best_estimator_ = self._model(self.C_).fit(X, y)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.predict(X)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.predict_proba(X)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.best_estimator_.decision_function(X)
