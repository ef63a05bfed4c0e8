"""Whole reports as plain dicts: every figure of the reference reports' tables.

``CLASSIFICATION_COLUMNS`` and ``REGRESSION_COLUMNS`` map the tables' column titles
to report keys; :func:`table_row` picks them out in order.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from ._checks import check_scores
from .classification import (
    _counts,
    _encode,
    alpha_from_coincidences,
    average_ranking,
    average_scores,
    kappa_from_confusion,
    per_class_scores,
    ranking_scores,
)
from .regression import KERNELS, Targets

CLASSIFICATION_COLUMNS: dict[str, str] = {
    "Accuracy": "accuracy",
    "F1-Score": "f1_macro",
    "Cohen's Kappa": "cohen_kappa",
    "AUC (ROC)": "auc_roc",
    "AUC (PR)": "auc_pr",
    "Krippendorff's alpha": "krippendorff_alpha",
}

REGRESSION_COLUMNS: dict[str, str] = {"RMSE": "rmse", "CORR": "corr", "SAGR": "sagr", "CCC": "ccc"}


def classification_report(
    y_true: object,
    y_pred: object,
    *,
    class_names: Optional[Sequence[str]] = None,
) -> dict:
    """Every classification figure for one set of predictions.

    ``y_pred`` is 1-D predicted labels or an ``(n, C)`` score matrix. With scores, the
    classes are the columns ``0..C-1``, the label figures use the argmax and the
    ranking figures (``auc_roc``, ``auc_pr``, macro one-vs-rest) are filled in; with
    labels only they are ``None``. With ``class_names`` (one per class id) and label
    input, the classes are ``0..len(class_names)-1``.

    Keys: ``accuracy``, ``precision_macro``, ``recall_macro`` (balanced accuracy),
    ``f1_macro``, ``f1_weighted``, ``cohen_kappa`` (unweighted), ``cohen_kappa_linear``,
    ``cohen_kappa_quadratic``, ``auc_roc``, ``auc_pr``, ``krippendorff_alpha``
    (nominal), ``krippendorff_alpha_ordinal``, ``krippendorff_alpha_interval``,
    ``n_samples``, ``classes``, ``confusion_matrix`` (nested lists, rows true) and
    ``per_class`` (name -> precision, recall, f1, support, auc_roc, auc_pr).
    The edge-case rules are those of :mod:`metrics.classification`.
    """
    scores = np.asarray(y_pred)
    has_scores = scores.ndim == 2 and scores.shape[1] > 1
    labels = None
    if has_scores:
        labels = np.arange(check_scores(scores, "y_pred").shape[1])
    elif class_names is not None:
        labels = np.arange(len(class_names))
    if class_names is not None and labels is not None and len(class_names) != labels.size:
        raise ValueError(f"class_names has {len(class_names)} names but y_pred has {labels.size} score columns")

    classes, true_index, pred_index = _encode(y_true, y_pred, labels)
    cm = _counts(true_index, pred_index, classes.size)
    per_class = per_class_scores(cm)
    coincidences = (cm + cm.T).astype(np.float64)
    ranked = ranking_scores(y_true, scores) if has_scores else None
    if ranked is not None:
        roc, pr = ranked["auc_roc"], ranked["auc_pr"]
        auc_roc_macro = average_ranking(roc, "macro", "AUC-ROC")
        auc_pr_macro = average_ranking(pr, "macro", "AUC-PR")
    names = list(class_names) if class_names is not None else [str(c) for c in classes.tolist()]

    report = {
        "n_samples": int(cm.sum()),
        "accuracy": float(np.trace(cm) / cm.sum()),
        "precision_macro": average_scores(per_class["precision"], per_class["support"], "macro", "precision"),
        "recall_macro": average_scores(per_class["recall"], per_class["support"], "macro", "recall"),
        "f1_macro": average_scores(per_class["f1"], per_class["support"], "macro", "F1"),
        "f1_weighted": average_scores(per_class["f1"], per_class["support"], "weighted", "F1"),
        "cohen_kappa": kappa_from_confusion(cm),
        "cohen_kappa_linear": kappa_from_confusion(cm, "linear"),
        "cohen_kappa_quadratic": kappa_from_confusion(cm, "quadratic"),
        "auc_roc": auc_roc_macro if ranked is not None else None,
        "auc_pr": auc_pr_macro if ranked is not None else None,
        "krippendorff_alpha": alpha_from_coincidences(coincidences, classes, "nominal"),
        "krippendorff_alpha_ordinal": alpha_from_coincidences(coincidences, classes, "ordinal"),
        "krippendorff_alpha_interval": _interval_alpha(coincidences, classes),
        "classes": names,
        "confusion_matrix": cm.tolist(),
        "per_class": {
            name: {
                "precision": float(per_class["precision"][i]),
                "recall": float(per_class["recall"][i]),
                "f1": float(per_class["f1"][i]),
                "support": int(per_class["support"][i]),
                "auc_roc": float(roc[i]) if ranked is not None else None,
                "auc_pr": float(pr[i]) if ranked is not None else None,
            }
            for i, name in enumerate(names)
        },
    }
    return report


def _interval_alpha(coincidences: np.ndarray, classes: np.ndarray) -> Optional[float]:
    """Interval alpha on numeric class ids; None for non-numeric labels."""
    if not np.issubdtype(classes.dtype, np.number):
        return None
    return alpha_from_coincidences(coincidences, classes, "interval")


def regression_report(
    y_true: object,
    y_pred: object,
    *,
    names: Sequence[str] = ("valence", "arousal"),
) -> dict:
    """RMSE, MAE, CORR (Pearson), SAGR and CCC for each target column.

    ``y_true`` and ``y_pred`` are ``(n, k)`` with one name per column (default
    valence and arousal), or ``(n,)`` with one name. Returns
    ``{"n_samples": n, name: {"rmse", "mae", "corr", "sagr", "ccc"}, ...}``.
    """
    true, pred = np.asarray(y_true), np.asarray(y_pred)
    if true.ndim == 1:
        true = true[:, None]
        pred = pred[:, None] if pred.ndim == 1 else pred
    names = list(names)
    if true.ndim == 2 and true.shape[1] != len(names):
        raise ValueError(f"names has {len(names)} entries but y_true has {true.shape[1]} target column(s)")
    targets = Targets(true, pred)
    figures = {key: kernel(targets) for key, kernel in KERNELS.items()}
    report: dict = {"n_samples": targets.n}
    for j, name in enumerate(names):
        report[name] = {key: float(values[j]) for key, values in figures.items()}
    return report


def table_row(report: dict, columns: dict[str, str], target: Optional[str] = None) -> dict[str, Optional[float]]:
    """The report's figures under the tables' column titles, in table order.

    For a regression report pass ``target`` (for example ``"valence"``).
    """
    source = report[target] if target is not None else report
    return {title: source[key] for title, key in columns.items()}


__all__ = [
    "CLASSIFICATION_COLUMNS",
    "REGRESSION_COLUMNS",
    "classification_report",
    "regression_report",
    "table_row",
]
