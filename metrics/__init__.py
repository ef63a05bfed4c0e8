"""metrics: the figures of affect-recognition reports, in pure numpy.

Classification (labels or score matrices): :func:`accuracy`, :func:`precision`,
:func:`recall`, :func:`f1_score`, :func:`confusion_matrix`, :func:`cohen_kappa`,
:func:`auc_roc`, :func:`auc_pr`, :func:`krippendorff_alpha`.
Regression (per target, or (n, k) valence/arousal arrays): :func:`rmse`, :func:`mae`,
:func:`pearson` (CORR), :func:`sagr`, :func:`ccc`.
Whole reports as plain dicts: :func:`classification_report`, :func:`regression_report`.

This package imports numpy only and knows nothing of heads or caches.
"""

from ._checks import UndefinedMetricWarning
from .classification import (
    accuracy,
    auc_pr,
    auc_roc,
    cohen_kappa,
    confusion_matrix,
    f1_score,
    krippendorff_alpha,
    krippendorff_alpha_reliability,
    precision,
    recall,
)
from .regression import ccc, mae, pearson, rmse, sagr
from .reports import (
    CLASSIFICATION_COLUMNS,
    REGRESSION_COLUMNS,
    classification_report,
    regression_report,
    table_row,
)

corr = pearson  # the reference reports' name for it

__all__ = [
    "UndefinedMetricWarning",
    "accuracy",
    "precision",
    "recall",
    "f1_score",
    "confusion_matrix",
    "cohen_kappa",
    "auc_roc",
    "auc_pr",
    "krippendorff_alpha",
    "krippendorff_alpha_reliability",
    "rmse",
    "mae",
    "pearson",
    "corr",
    "sagr",
    "ccc",
    "classification_report",
    "regression_report",
    "table_row",
    "CLASSIFICATION_COLUMNS",
    "REGRESSION_COLUMNS",
]
