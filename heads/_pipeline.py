"""Base of the scikit-learn heads: validate, fit an internal Pipeline (``pipeline_``), delegate."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._common import normalise_rows

FLOATS = (np.float64, np.float32)


def check_class_labels(y: np.ndarray) -> None:
    """ValueError unless y holds class labels of at least two classes."""
    check_classification_targets(y)
    if len(np.unique(y)) < 2:
        raise ValueError("the classifier needs at least 2 classes in y, got 1 class")


class PipelineHead(BaseEstimator):
    """Subclasses define ``_pipeline(X, y)`` (an unfitted Pipeline) and ``_is_classifier()``.

    Learned: ``pipeline_``, ``n_features_in_``, ``classes_`` for classifiers, and
    ``n_iter_`` when the final model has one.
    """

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        """The unfitted Pipeline for this (validated) training data."""
        raise NotImplementedError

    def _is_classifier(self) -> bool:
        raise NotImplementedError

    def _fit_pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        """The fitted Pipeline: ``_pipeline`` fitted on (X, y), unless a head chooses among several."""
        return self._pipeline(X, y).fit(X, y)

    def _classes(self, y: np.ndarray) -> np.ndarray:
        """A fitted classifier's ``classes_``: the labels its pipeline learned."""
        return self.pipeline_.classes_

    def fit(self, X, y):
        """Fit the scaler and the model on (X, y). Returns self."""
        classify = self._is_classifier()
        X, y = validate_data(self, X, y, dtype=FLOATS, multi_output=not classify, y_numeric=not classify)
        # float32 features stay float32 (half the memory, faster BLAS); outputs are float64
        if classify:
            check_class_labels(y)
        self.pipeline_ = self._fit_pipeline(X, y)
        if classify:
            self.classes_ = self._classes(y)
        if getattr(self.pipeline_[-1], "n_iter_", None) is not None:  # Ridge's direct solvers have none
            self.n_iter_ = self.pipeline_[-1].n_iter_
        return self

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=FLOATS)

    def predict(self, X) -> np.ndarray:
        """Labels (classifiers), or float64 targets shaped like the fitted y (regressors)."""
        X = self._checked(X)
        predicted = self.pipeline_.predict(X)
        return predicted if self._is_classifier() else predicted.astype(np.float64, copy=False)

    def _proba(self, X) -> np.ndarray:
        """Float64 class probabilities (float32 features give float32 inside the pipeline)."""
        X = self._checked(X)
        return normalise_rows(self.pipeline_.predict_proba(X))
