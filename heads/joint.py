"""Classes and valence/arousal from one set of features, the targets told by the classes too.

:class:`JointLinearHead` fits a classifier (default :class:`heads.LogisticHead`) and a
regressor (default :class:`heads.RidgeHead`) on the features, then a small ridge model (the
combiner) that predicts valence and arousal from the regressor's predictions and the
classifier's probabilities. The expression class carries much of valence's sign and of
arousal's level (happy against sad, surprise against neutral), in a way that is not linear
in the features, so a linear regressor alone misses it. The combiner learns from
out-of-fold predictions (``cv`` stratified folds of the training data), which are about as
good as the members' predictions on new faces, not as good as on the faces they were fitted
on, so it weighs them as it should. The folds are plain stratified ones: they do not keep
duplicates or a person's images together, so on data with many near-twins the combiner may
trust the class probabilities somewhat more than it should. Classes come from the classifier alone.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from sklearn.base import BaseEstimator, clone
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from ._common import normalise_rows
from .linear import DEFAULT_CS, LogisticHead, RidgeHead


class JointLinearHead(BaseEstimator):
    """Joint classification and valence/arousal regression by stacking.

    ``fit(X, y)``: y is (n, 3) [class_id, valence, arousal]. ``predict(X)``: the same layout
    [predicted class id, valence, arousal]; ``predict_proba(X)``: the classifier's class
    probabilities. ``classifier`` and ``regressor`` default to :class:`LogisticHead` (C chosen
    from ``Cs`` by ``cv``-fold cross-validation) and :class:`RidgeHead`, each choosing its
    regularisation on the training data; the classifier's choice by cross-validation leaves the
    out-of-fold probabilities the combiner needs, and the out-of-fold regressors reuse the
    alpha chosen on all rows.
    ``match_spread`` and ``clip`` apply to the combiner's predictions as in
    :class:`RidgeHead`. Learned: ``classifier_``, ``regressor_``, ``combiner_`` (a fitted
    RidgeHead on [valence, arousal, class probabilities]), ``classes_``.
    """

    def __init__(
        self,
        classifier: Optional[BaseEstimator] = None,
        regressor: Optional[BaseEstimator] = None,
        *,
        Cs: tuple = DEFAULT_CS,
        cv: int = 3,
        match_spread: bool = True,
        clip: bool = True,
        random_state: Optional[int] = None,
    ) -> None:
        self.classifier = classifier
        self.regressor = regressor
        self.Cs = Cs
        self.cv = cv
        self.match_spread = match_spread
        self.clip = clip
        self.random_state = random_state

    def fit(self, X, y):
        """Fit the classifier and the regressor on all rows, their out-of-fold predictions, and
        the combiner on those. Returns self."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), multi_output=True, y_numeric=True)
        if y.ndim != 2 or y.shape[1] != 3:
            raise ValueError(f"y must be (n, 3) [class_id, valence, arousal], got shape {y.shape}")
        classes, targets = y[:, 0], y[:, 1:]
        if not np.array_equal(classes, np.round(classes)):
            raise ValueError("y's first column must hold integer class ids")
        classes = classes.astype(np.int64)
        check_classification_targets(classes)
        self.classes_ = np.unique(classes)
        if len(self.classes_) < 2:
            raise ValueError("the classifier needs at least 2 classes in y, got 1 class")
        classifier = self.classifier
        if classifier is None:
            classifier = LogisticHead(Cs=self.Cs, cv=self.cv, random_state=self.random_state)
        regressor = self.regressor if self.regressor is not None else RidgeHead()
        self.classifier_ = clone(classifier).fit(X, classes)
        self.regressor_ = clone(regressor).fit(X, targets)
        self.combiner_ = RidgeHead(match_spread=self.match_spread, clip=self.clip).fit(
            self._out_of_fold(X, classes, targets, classifier, regressor), targets)
        return self

    def _out_of_fold(self, X, classes, targets, classifier, regressor) -> np.ndarray:
        """[valence, arousal, class probabilities] of each row from members that never saw it.
        A classifier that chose its C by cross-validation kept them (``cv_proba_``); otherwise,
        and for the regressor, the members are refitted on ``cv`` folds with the regularisation
        chosen on all rows fixed."""
        smallest = int(np.bincount(np.unique(classes, return_inverse=True)[1]).min())
        folds = list(StratifiedKFold(max(2, min(self.cv, smallest)), shuffle=True,
                                     random_state=self.random_state).split(X, classes))
        probabilities = getattr(self.classifier_, "cv_proba_", None)
        if probabilities is None:
            probabilities = np.zeros((len(X), len(self.classes_)))
            fixed = _fixed(classifier, "C", getattr(self.classifier_, "C_", None))
            for train, held in folds:
                member = fixed.fit(X[train], classes[train])
                probabilities[held[:, None], np.searchsorted(self.classes_, member.classes_)] = \
                    member.predict_proba(X[held])
        predicted = np.zeros(targets.shape)
        fixed = _fixed(regressor, "alpha", getattr(self.regressor_, "alpha_", None))
        for train, held in folds:
            predicted[held] = fixed.fit(X[train], targets[train]).predict(X[held])
        return np.column_stack([predicted, probabilities])

    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        return normalise_rows(self.classifier_.predict_proba(X))

    def predict(self, X) -> np.ndarray:
        """(n, 3) [predicted class id, valence, arousal]."""
        probabilities = self.predict_proba(X)
        inputs = np.column_stack([self.regressor_.predict(X), probabilities])
        return np.column_stack([self.classes_[probabilities.argmax(axis=1)], self.combiner_.predict(inputs)])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags



def _fixed(member: BaseEstimator, name: str, chosen) -> BaseEstimator:
    """An unfitted copy of ``member`` with parameter ``name`` fixed to the value its fit on all
    rows chose (when it has that parameter and chose one)."""
    member = clone(member)
    if chosen is not None and name in member.get_params():
        member.set_params(**{name: chosen})
    return member
