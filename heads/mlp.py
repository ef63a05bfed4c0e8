"""StandardScaler + scikit-learn's multi-layer perceptron, for either task."""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import ClassifierTags, RegressorTags, check_random_state
from sklearn.utils.metaestimators import available_if

from ._pipeline import PipelineHead

TASKS = ("classify", "regress")
DEFAULT_ALPHAS = (1.0, 10.0, 100.0)  # decades around what frozen CNN features need


def _mlp(pipeline: Pipeline):
    """The fitted MLPClassifier / MLPRegressor of a fitted pipeline (inside the target transformer)."""
    model = pipeline[-1]
    return model.regressor_ if isinstance(model, TransformedTargetRegressor) else model


def _classifies(head: "MLPHead") -> bool:
    return head.task == "classify"


def _can_hold_out(y: np.ndarray, fraction: float, classify: bool) -> bool:
    """Whether sklearn's early-stopping split of y (stratified for classes) is possible."""
    n = len(y)
    n_val = int(np.ceil(fraction * n))
    if classify:
        counts = np.unique(y, return_counts=True)[1]
        return bool(counts.min() >= 2 and min(n_val, n - n_val) >= len(counts))
    return min(n_val, n - n_val) >= 2


class MLPHead(PipelineHead):
    """Standardised MLP (Adam, ReLU) as a classifier (``task="classify"``) or a regressor
    of one or several targets (``task="regress"``). The task decides the estimator type
    (sklearn tags), the default score (accuracy or R^2) and whether ``predict_proba`` exists.

    The L2 penalty is chosen on the training data unless fixed: with ``alpha=None`` (the
    default) one MLP is fitted per value of ``alphas`` and the one with the best score on
    the early-stopping split (accuracy, or R^2) is kept; every candidate holds out the same
    rows. On a few thousand rows of frozen CNN features an MLP memorises them unless its
    penalty is orders of magnitude above scikit-learn's default, by how much depends on the
    data, hence the choice. ``alpha=`` a number fixes it (one fit).

    Other defaults: one hidden layer of 64 (a few thousand rows do not support more
    weights; wider layers fit slower and score no better), early stopping on a
    ``validation_fraction=0.1`` split with ``n_iter_no_change`` epochs of patience, the
    best epoch's weights kept, at most ``max_iter=50`` epochs of batches of 200 rows
    (``batch_size="auto"``: fewer on data under 2,000 rows, so that an epoch is ten steps). Data too small for that
    split (a class with one member, fewer validation or training rows than classes, or
    fewer than 2 for regression) is fitted without early stopping, at the middle of ``alphas``.

    As a regressor it learns standardised targets (scikit-learn's TransformedTargetRegressor)
    and bounds its predictions to the range of the training targets (``target_min_``,
    ``target_max_``): unscaled targets let Adam's steps overshoot, and a few wild outputs
    far outside [-1, 1] would dominate RMSE and CCC.

    Learned: ``pipeline_`` (its last step is the fitted MLP, or the target transformer
    around it), ``alpha_`` (the penalty used), ``validation_scores_`` (per value of
    ``alphas`` when chosen), ``n_iter_``, ``classes_``.
    """

    def __init__(
        self,
        task: Literal["classify", "regress"] = "classify",
        *,
        hidden_layer_sizes: tuple[int, ...] = (64,),
        alpha: Optional[float] = None,
        alphas: tuple[float, ...] = DEFAULT_ALPHAS,
        learning_rate_init: float = 1e-3,
        batch_size: Union[int, Literal["auto"]] = "auto",
        max_iter: int = 50,
        early_stopping: bool = True,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state: Optional[int] = None,
    ) -> None:
        self.task = task
        self.hidden_layer_sizes = hidden_layer_sizes
        self.alpha = alpha
        self.alphas = alphas
        self.learning_rate_init = learning_rate_init
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state

    def _is_classifier(self) -> bool:
        if self.task not in TASKS:
            raise ValueError(f"MLPHead task must be one of {TASKS}, got {self.task!r}")
        return self.task == "classify"

    def _early_stopping(self, y: np.ndarray) -> bool:
        return bool(self.early_stopping) and _can_hold_out(y, self.validation_fraction, self._is_classifier())

    def _batch_size(self, n_rows: int) -> int:
        """``batch_size``, or for "auto" scikit-learn's 200 rows made smaller on small data so
        that an epoch is at least ten steps (patience counts epochs)."""
        if self.batch_size == "auto":
            return int(np.clip(n_rows // 10, 1, 200))
        return self.batch_size

    def _pipeline(self, X: np.ndarray, y: np.ndarray, alpha: Optional[float] = None, seed=None) -> Pipeline:
        model_class = MLPClassifier if self._is_classifier() else MLPRegressor
        model = model_class(
            hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha if alpha is None else alpha,
            learning_rate_init=self.learning_rate_init, batch_size=self._batch_size(len(X)), max_iter=self.max_iter,
            early_stopping=self._early_stopping(y), validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change, random_state=self.random_state if seed is None else seed,
        )
        if not self._is_classifier():
            model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
        return Pipeline([("scale", StandardScaler()), ("mlp", model)])

    def _fit_pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        """One fit at a fixed ``alpha``; else one per value of ``alphas`` on the same
        early-stopping split, the best on it kept. Class labels reach the MLP as indices into
        ``classes_`` (scikit-learn before 1.9 cannot early-stop on string labels)."""
        if self._is_classifier():
            y = np.unique(y, return_inverse=True)[1]
        self.validation_scores_ = None
        if self.alpha is not None:
            self.alpha_ = float(self.alpha)
            return self._pipeline(X, y).fit(X, y)
        alphas = [float(a) for a in self.alphas]
        if not alphas or min(alphas) < 0:
            raise ValueError(f"alphas must be non-negative numbers, at least one, got {self.alphas!r}")
        if not self._early_stopping(y):  # no held-out rows to choose with
            self.alpha_ = float(np.sort(alphas)[len(alphas) // 2])
            return self._pipeline(X, y, self.alpha_).fit(X, y)
        seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))  # one split for all
        fitted = [self._pipeline(X, y, alpha, seed).fit(X, y) for alpha in alphas]
        self.validation_scores_ = np.array([_mlp(pipeline).best_validation_score_ for pipeline in fitted])
        best = int(np.argmax(self.validation_scores_))  # the first of equals, in alphas order
        self.alpha_ = alphas[best]
        return fitted[best]

    def _classes(self, y: np.ndarray) -> np.ndarray:
        return np.unique(y)  # the pipeline learned their indices

    def fit(self, X, y):
        """Standardise, fit the MLP (on standardised targets for regression), its penalty
        chosen on the early-stopping split unless fixed. Returns self."""
        super().fit(X, y)
        self.n_iter_ = _mlp(self.pipeline_).n_iter_
        if not self._is_classifier():
            targets = np.asarray(y, dtype=np.float64)
            self.target_min_, self.target_max_ = targets.min(axis=0), targets.max(axis=0)
        return self

    def predict(self, X) -> np.ndarray:
        """Labels, or targets bounded to the training targets' range."""
        predicted = super().predict(X)
        if self._is_classifier():
            return self.classes_[predicted]
        return np.clip(predicted, self.target_min_, self.target_max_)

    @available_if(_classifies)
    def predict_proba(self, X) -> np.ndarray:
        """(n, n_classes) probabilities, columns in ``classes_`` order (classification only)."""
        return self._proba(X)

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classify) or R^2 (regress), as scikit-learn's mixins define them."""
        scorer = accuracy_score if _classifies(self) else r2_score
        return float(scorer(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if _classifies(self):
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags()
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.target_tags.multi_output = True
        return tags
