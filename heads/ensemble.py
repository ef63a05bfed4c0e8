"""An ensemble over column blocks: one head per feature source, predictions averaged.

Side-by-side features of several sources (backbones, taps, landmarks) are better used by
one head per source than by one head over the concatenation, whose single regularisation
strength lets the widest source dominate. :class:`BlockEnsemble` fits ``member`` on each
block of columns (``blocks`` gives their widths, in order) and averages the members' class
probabilities (soft voting) or targets. For targets, ``match_spread`` is applied to the
average (see :class:`heads.RidgeHead`).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._common import finish_targets, normalise_rows, spread_match


def _slices(blocks: Optional[Sequence[int]], n_features: int) -> list[slice]:
    widths = list(blocks) if blocks else [n_features]
    if sum(widths) != n_features or min(widths) < 1:
        raise ValueError(f"blocks {widths} must be positive widths summing to the {n_features} features of X")
    edges = np.cumsum([0, *widths])
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


class _BlockEnsemble(BaseEstimator):
    def _fit_members(self, X, y) -> None:
        if self.member is None:
            raise ValueError("BlockEnsemble needs a member estimator, e.g. member=heads.LogisticCVHead()")
        self.slices_ = _slices(self.blocks, X.shape[1])
        self.estimators_ = [clone(self.member).fit(X[:, part], y) for part in self.slices_]

    def _checked(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=(np.float64, np.float32))


class BlockEnsembleClassifier(ClassifierMixin, _BlockEnsemble):
    """One classifier per column block; class probabilities averaged (soft voting)."""

    def __init__(self, member: Optional[BaseEstimator] = None, blocks: Optional[Sequence[int]] = None) -> None:
        self.member = member
        self.blocks = blocks

    def fit(self, X, y):
        """Fit a clone of ``member`` on each block. Returns self."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32))
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ValueError("the classifier needs at least 2 classes in y, got 1 class")
        self._fit_members(X, y)
        return self

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) mean of the members' probabilities, columns in ``classes_`` order."""
        X = self._checked(X)
        return normalise_rows(np.mean([m.predict_proba(X[:, part]) for m, part in zip(self.estimators_, self.slices_)],
                                      axis=0))

    def predict(self, X) -> np.ndarray:
        """The label with the highest mean probability."""
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class BlockEnsembleRegressor(RegressorMixin, _BlockEnsemble):
    """One regressor per column block; predictions averaged, then (``match_spread``)
    rescaled so their spread on the training data equals the targets'; clipped to [-1, 1]
    when ``clip``."""

    def __init__(self, member: Optional[BaseEstimator] = None, blocks: Optional[Sequence[int]] = None, *,
                 match_spread: bool = False, clip: bool = True) -> None:
        self.member = member
        self.blocks = blocks
        self.match_spread = match_spread
        self.clip = clip

    def fit(self, X, y):
        """Fit a clone of ``member`` on each block (and the spread match). Returns self."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True, y_numeric=True)
        self._fit_members(X, y)
        if self.match_spread:
            self.spread_scale_, self.fitted_mean_ = spread_match(self._average(X), y)
        return self

    def _average(self, X: np.ndarray) -> np.ndarray:
        return np.mean([np.asarray(m.predict(X[:, part]), dtype=np.float64)
                        for m, part in zip(self.estimators_, self.slices_)], axis=0)

    def predict(self, X) -> np.ndarray:
        """The members' mean prediction (spread-matched, clipped as configured)."""
        return finish_targets(self._average(self._checked(X)), self)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
