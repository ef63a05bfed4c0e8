"""heads: light estimators on cached feature arrays, with scikit-learn's API.

Every head is a scikit-learn estimator (``fit(X, y)`` returns self, ``predict``,
``predict_proba`` for classifiers, ``get_params``/``set_params``), so heads are
interchangeable and drop into Pipelines and GridSearchCV. X is (n, n_features) floats.

Tasks: ``"classify"`` (y = class ids; ``classes_`` learned), ``"regress"`` (y = (n, 2)
valence/arousal in [-1, 1], or (n,)), ``"joint"`` (y = (n, 3) [class_id, valence,
arousal], :class:`MultiTaskHead` only).

Heads (``HEADS`` maps each name to its tasks):

- ``keras_dense``: :class:`KerasDenseClassifier` (classify), :class:`KerasDenseRegressor`
  (regress): the reference reports' Dense(256)-Dropout(0.5) head.
- ``logistic``: :class:`LogisticHead` (classify): StandardScaler + LogisticRegression.
- ``ridge``: :class:`RidgeHead` (regress): StandardScaler + Ridge, clipped to [-1, 1].
- ``mlp``: :class:`MLPHead` (classify, regress; ``task`` parameter): StandardScaler + MLP.
- ``multitask``: :class:`MultiTaskHead` (joint): one Keras trunk, class and
  valence/arousal outputs.

``make(name, task, **params)`` builds one, ``names()`` lists them; ``save`` /
``load`` persist fitted heads (see :mod:`heads.io`). Keras is imported only when a Keras
head is fitted or loaded. This package never imports ``featcache``.
"""

from .io import load, save
from .keras_dense import KerasDenseClassifier, KerasDenseRegressor
from .linear import LogisticHead, RidgeHead
from .mlp import MLPHead
from .multitask import MultiTaskHead
from .registry import CLASSIFY, HEADS, JOINT, REGRESS, TASKS, make, names

__all__ = [
    "make",
    "names",
    "HEADS",
    "TASKS",
    "CLASSIFY",
    "REGRESS",
    "JOINT",
    "save",
    "load",
    "KerasDenseClassifier",
    "KerasDenseRegressor",
    "LogisticHead",
    "RidgeHead",
    "MLPHead",
    "MultiTaskHead",
]
