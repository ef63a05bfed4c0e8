"""StandardScaler + scikit-learn's multi-layer perceptron, for either task."""

from __future__ import annotations

from typing import Literal, Optional, Union

import numpy as np
from sklearn.compose import TransformedTargetRegressor
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import ClassifierTags, RegressorTags
from sklearn.utils.metaestimators import available_if

from ._pipeline import PipelineHead

TASKS = ("classify", "regress")


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

    Defaults: one hidden layer of 256, L2 ``alpha=1e-3``, early stopping on a
    ``validation_fraction=0.1`` split with ``n_iter_no_change`` epochs of patience, and at
    most ``max_iter=50`` epochs (more rarely helps a head on frozen features, and costs
    time; ``benchmarks/bench_heads.py`` times it). Data too small for that split (a class
    with one member, fewer validation or training rows than classes, or fewer than 2 for
    regression) is fitted without early stopping.

    As a regressor it learns standardised targets (scikit-learn's TransformedTargetRegressor)
    and bounds its predictions to the range of the training targets (``target_min_``,
    ``target_max_``): unscaled targets let Adam's steps overshoot, and a few wild outputs
    far outside [-1, 1] would dominate RMSE and CCC.

    Learned: ``pipeline_`` (its last step is the fitted MLP, or the target transformer
    around it), ``n_iter_``, ``classes_``.
    """

    def __init__(
        self,
        task: Literal["classify", "regress"] = "classify",
        *,
        hidden_layer_sizes: tuple[int, ...] = (256,),
        alpha: float = 1e-3,
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

    def _pipeline(self, X: np.ndarray, y: np.ndarray) -> Pipeline:
        model_class = MLPClassifier if self._is_classifier() else MLPRegressor
        early_stopping = bool(self.early_stopping) and _can_hold_out(y, self.validation_fraction, self._is_classifier())
        model = model_class(
            hidden_layer_sizes=self.hidden_layer_sizes, alpha=self.alpha, learning_rate_init=self.learning_rate_init,
            batch_size=self.batch_size, max_iter=self.max_iter, early_stopping=early_stopping,
            validation_fraction=self.validation_fraction, n_iter_no_change=self.n_iter_no_change,
            random_state=self.random_state,
        )
        if not self._is_classifier():
            model = TransformedTargetRegressor(regressor=model, transformer=StandardScaler())
        return Pipeline([("scale", StandardScaler()), ("mlp", model)])

    def fit(self, X, y):
        """Standardise, fit the MLP (on standardised targets for regression). Returns self."""
        super().fit(X, y)
        if not self._is_classifier():
            targets = np.asarray(y, dtype=np.float64)
            self.target_min_, self.target_max_ = targets.min(axis=0), targets.max(axis=0)
            self.n_iter_ = self.pipeline_[-1].regressor_.n_iter_
        return self

    def predict(self, X) -> np.ndarray:
        """Labels, or targets bounded to the training targets' range."""
        predicted = super().predict(X)
        if self._is_classifier():
            return predicted
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
