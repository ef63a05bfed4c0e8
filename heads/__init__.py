"""heads: light estimators on cached feature arrays, with scikit-learn's API.

Every head is a scikit-learn estimator (``fit(X, y)`` returns self, ``predict``,
``predict_proba`` for classifiers, ``get_params``/``set_params``), so heads are
interchangeable and drop into Pipelines and GridSearchCV. X is (n, n_features) floats.

Tasks: ``"classify"`` (y = class ids; ``classes_`` learned), ``"regress"`` (y = (n, 2)
valence/arousal in [-1, 1], or (n,)), ``"joint"`` (y = (n, 3) [class_id, valence,
arousal]: :class:`MultiTaskHead`, :class:`JointLinearHead`, :class:`CNNMultiTaskHead`).

Heads (``HEADS`` maps each name to its tasks):

- ``keras_dense``: :class:`KerasDenseClassifier` (classify), :class:`KerasDenseRegressor`
  (regress): the reference reports' Dense(256)-Dropout(0.5) head.
- ``logistic``: :class:`LogisticHead` (classify): StandardScaler + LogisticRegression, C
  chosen by cross-validation on the training data unless fixed.
- ``ridge``: :class:`RidgeHead` (regress): StandardScaler + Ridge, alpha chosen by
  leave-one-out unless fixed, clipped to [-1, 1].
- ``logistic_cv`` / ``ridge_cv``: :class:`LogisticCVHead` / :class:`RidgeCVHead`, the same
  heads under their earlier names.
- ``mlp``: :class:`MLPHead` (classify, regress; ``task`` parameter): StandardScaler + MLP, its L2
  penalty chosen on its early-stopping split unless fixed.
- ``multitask``: :class:`MultiTaskHead` (joint): one Keras trunk, class and
  valence/arousal outputs.
- ``joint_linear``: :class:`JointLinearHead` (joint): a logistic and a ridge head, and a
  small ridge combiner predicting valence/arousal from the ridge's predictions and the class
  probabilities (fitted on out-of-fold predictions). See :mod:`heads.joint`.
- ``ensemble``: :class:`BlockEnsembleClassifier` / :class:`BlockEnsembleRegressor`: one
  member head (default ``logistic_cv`` / ``ridge_cv``) per block of columns (``blocks``:
  their widths, e.g. one block per combined feature source), predictions averaged.
- ``cnn``: :class:`CNNClassifier` (classify), :class:`CNNRegressor` (regress),
  :class:`CNNMultiTaskHead` (joint): a small convolutional network trained from scratch on
  flattened images (featcache's ``pixels`` sources); ``image_shape`` or a square grey / RGB
  shape inferred from X. See :mod:`heads.cnn`.

The linear heads (``logistic``, ``ridge`` and their ``_cv`` names) fit and predict a chunked X
too (an h5py Dataset, a memmap, a :class:`RowSubset`), ``chunk_rows`` rows at a time, with the
same defaults and the same fitted model (see :mod:`heads.streaming`).
The Keras heads (``keras_dense``, ``multitask``, ``cnn``) fit and predict a chunked X too
(:func:`fit_chunked` chooses the block size and shuffling).

``make(name, task, **params)`` builds one, ``names()`` lists them; ``save`` /
``load`` persist fitted heads without pickling those of this package (see :mod:`heads.io`);
:func:`heads.network.keras_network` turns a fitted head into a Keras network (for exporting a
model as one network). Keras is imported only when a Keras head is fitted or loaded, or a
network is built. This package never imports ``featcache``.
"""

from ._keras_chunked import fit_chunked
from .chunked import RowSubset, is_chunked
from .io import load, save
from .cnn import CNNClassifier, CNNMultiTaskHead, CNNRegressor
from .ensemble import BlockEnsembleClassifier, BlockEnsembleRegressor
from .joint import JointLinearHead
from .keras_dense import KerasDenseClassifier, KerasDenseRegressor
from .linear import LogisticCVHead, LogisticHead, RidgeCVHead, RidgeHead
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
    "BlockEnsembleClassifier",
    "JointLinearHead",
    "BlockEnsembleRegressor",
    "CNNClassifier",
    "CNNMultiTaskHead",
    "CNNRegressor",
    "KerasDenseClassifier",
    "KerasDenseRegressor",
    "LogisticCVHead",
    "LogisticHead",
    "RidgeCVHead",
    "RidgeHead",
    "MLPHead",
    "MultiTaskHead",
    "RowSubset",
    "is_chunked",
    "fit_chunked",
]
