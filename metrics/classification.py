"""Classification metrics in pure numpy.

Every function takes ``y_true`` (1-D class labels) and a prediction that is either
1-D predicted labels or a 2-D ``(n_samples, n_classes)`` score matrix. A score
matrix is turned into labels by ``argmax`` (the first column wins a tie), and its
column ``j`` stands for class id ``j``, so ``y_true`` must then hold the integer
ids ``0..n_classes - 1``.

Scores need not be probabilities: rows that do not sum to one, and logits, are
accepted as they are. The ranking metrics (``auc_roc``, ``auc_pr``) rank each column
on its own (one-vs-rest), so they are unchanged by any strictly increasing
transform of a column; the label metrics use the row's argmax. (Logits and their
softmax share the argmax but not the per-column ranking, so their AUCs may differ.)

Which classes count (``labels``): by default the classes seen in ``y_true`` or in
the predicted labels, sorted, as in scikit-learn. Pass ``labels`` to fix the set and
order (for example ``range(8)``). A class with neither true nor predicted samples
has undefined precision, recall and F1 (NaN per class) and is left out of the
averages: with an :class:`UndefinedMetricWarning` from the macro mean, silently
from the support-weighted mean, where its weight is zero anyway. A class that has samples on only
one side gets 0.0 for the undefined ratio (precision of a class never predicted,
recall of a class never true), as scikit-learn's default does.
"""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import numpy as np

from ._checks import check_class_ids, check_labels, check_same_length, check_scores, warn_undefined

Average = Optional[Literal["macro", "weighted"]]
KappaWeights = Optional[Literal["linear", "quadratic"]]
AlphaLevel = Literal["nominal", "ordinal", "interval", "ratio"]

_ALPHA_LEVELS = ("nominal", "ordinal", "interval", "ratio")


# --------------------------------------------------------------------------- labels


def predicted_labels(y_pred: object, name: str = "y_pred") -> np.ndarray:
    """Predicted labels: ``y_pred`` itself if 1-D, else the argmax of each score row."""
    array = np.asarray(y_pred)
    if array.ndim == 2 and array.shape[1] > 1:
        return check_scores(array, name).argmax(axis=1)
    return check_labels(array, name)


def _encode(
    y_true: object, y_pred: object, labels: Optional[Sequence] = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(classes, true index, predicted index) with indices into ``classes``."""
    true = check_labels(y_true, "y_true")
    pred = predicted_labels(y_pred)
    check_same_length(true, pred, "y_true", "y_pred")
    if labels is not None:
        classes = np.asarray(labels)
        if classes.ndim != 1 or classes.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D sequence, got {labels!r}")
        if np.unique(classes).size != classes.size:
            raise ValueError("labels contains repeated classes")
        order = np.argsort(classes, kind="stable")
        sorted_classes = classes[order]
        index = []
        for array, name in ((true, "y_true"), (pred, "y_pred")):
            pos = np.clip(np.searchsorted(sorted_classes, array), 0, classes.size - 1)
            found = sorted_classes[pos] == array
            if not found.all():
                raise ValueError(f"{name} holds label {array[~found][0].item()!r}, which is not in labels")
            index.append(order[pos])
        return classes, index[0], index[1]
    if _small_nonnegative_ints(true) and _small_nonnegative_ints(pred):
        size = int(max(true.max(), pred.max())) + 1
        seen = (np.bincount(true, minlength=size) + np.bincount(pred, minlength=size)) > 0
        classes = np.flatnonzero(seen)
        remap = np.cumsum(seen) - 1
        return classes.astype(np.result_type(true, pred)), remap[true], remap[pred]
    classes, inverse = np.unique(np.concatenate([true, pred]), return_inverse=True)
    return classes, inverse[: len(true)], inverse[len(true) :]


def _small_nonnegative_ints(array: np.ndarray) -> bool:
    return np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() < 1 << 20


# ------------------------------------------------------------------- label metrics


def accuracy(y_true: object, y_pred: object) -> float:
    """Fraction of samples whose predicted label equals the true label."""
    true = check_labels(y_true, "y_true")
    pred = predicted_labels(y_pred)
    check_same_length(true, pred, "y_true", "y_pred")
    return float(np.mean(true == pred))


def confusion_matrix(y_true: object, y_pred: object, labels: Optional[Sequence] = None) -> np.ndarray:
    """Counts ``C[i, j]`` of samples of true class ``i`` predicted as class ``j``.

    Rows and columns follow ``labels`` (default: sorted classes seen on either side).
    """
    classes, true, pred = _encode(y_true, y_pred, labels)
    return _counts(true, pred, classes.size)


def _counts(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    flat = np.bincount(true * n_classes + pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator with 0 where the denominator is 0."""
    out = np.zeros(numerator.shape, dtype=np.float64)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix.

    Classes with neither true nor predicted samples get NaN precision, recall and F1.
    """
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    absent = (support + predicted) == 0
    for values in (precision, recall, f1):
        values[absent] = np.nan
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def average_scores(values: np.ndarray, support: np.ndarray, average: Average, what: str) -> float | np.ndarray:
    """Macro or support-weighted mean of per-class values, leaving out NaN classes."""
    if average is None:
        return values
    defined = ~np.isnan(values)
    if average == "macro":
        if not defined.all():
            warn_undefined(f"{what}: {int((~defined).sum())} class(es) with no true or predicted samples "
                           "left out of the macro mean")
        return float(values[defined].mean()) if defined.any() else float("nan")
    if average == "weighted":  # classes with no true samples weigh nothing anyway
        weights = support[defined]
        return float(np.average(values[defined], weights=weights)) if weights.sum() else float("nan")
    raise ValueError(f"average must be 'macro', 'weighted' or None, got {average!r}")


def _prf(y_true: object, y_pred: object, labels: Optional[Sequence], average: Average, key: str):
    classes, true, pred = _encode(y_true, y_pred, labels)
    scores = per_class_scores(_counts(true, pred, classes.size))
    return average_scores(scores[key], scores["support"], average, key)


def precision(y_true: object, y_pred: object, average: Average = "macro", labels: Optional[Sequence] = None):
    """Precision per class (``average=None``), macro or support-weighted mean."""
    return _prf(y_true, y_pred, labels, average, "precision")


def recall(y_true: object, y_pred: object, average: Average = "macro", labels: Optional[Sequence] = None):
    """Recall per class (``average=None``), macro (balanced accuracy) or weighted mean."""
    return _prf(y_true, y_pred, labels, average, "recall")


def f1_score(y_true: object, y_pred: object, average: Average = "macro", labels: Optional[Sequence] = None):
    """F1 per class (``average=None``), macro or support-weighted mean.

    Per class, F1 = 2 TP / (2 TP + FP + FN): the harmonic mean of precision and recall.
    """
    return _prf(y_true, y_pred, labels, average, "f1")


def kappa_from_confusion(cm: np.ndarray, weights: KappaWeights = None) -> float:
    """Cohen's kappa from a confusion matrix; weights use the row/column positions."""
    n_classes = cm.shape[0]
    positions = np.arange(n_classes)
    distance = np.abs(positions[:, None] - positions[None, :]).astype(np.float64)
    if weights is None:
        penalty = (distance > 0).astype(np.float64)
    elif weights == "linear":
        penalty = distance
    elif weights == "quadratic":
        penalty = distance**2
    else:
        raise ValueError(f"weights must be None, 'linear' or 'quadratic', got {weights!r}")
    total = cm.sum()
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / total
    disagreement_expected = float((penalty * expected).sum())
    if disagreement_expected == 0:
        warn_undefined("Cohen's kappa is undefined: chance agreement is perfect (a single class on both sides)")
        return float("nan")
    return 1.0 - float((penalty * cm).sum()) / disagreement_expected


def cohen_kappa(
    y_true: object, y_pred: object, weights: KappaWeights = None, labels: Optional[Sequence] = None
) -> float:
    """Cohen's kappa: agreement of truth and prediction beyond chance.

    ``weights`` None (unweighted), ``"linear"`` or ``"quadratic"``; weighted kappa
    measures disagreement by the distance between the classes' positions in
    ``labels`` (default: sorted classes), so pass ``labels=range(n)`` for ordinal ids.
    Returns NaN (with a warning) when chance agreement is perfect, that is when both
    sides use one and the same single class.
    """
    classes, true, pred = _encode(y_true, y_pred, labels)
    return kappa_from_confusion(_counts(true, pred, classes.size), weights)


# ----------------------------------------------------------------- ranking metrics


def ranking_scores(y_true: object, y_score: object) -> dict[str, np.ndarray]:
    """One-vs-rest AUC-ROC and average precision per score column, from one sort each.

    Returns ``{"auc_roc": (C,), "auc_pr": (C,)}``. A class with no positive sample has
    both NaN; a class with no negative sample has NaN AUC-ROC (its AP is 1.0).
    Ties in the scores are handled exactly as scikit-learn does: tied samples move
    the curve together (a diagonal ROC step; one PR point).
    """
    scores = check_scores(y_score, "y_score")
    true = check_class_ids(check_labels(y_true, "y_true"), scores.shape[1])
    check_same_length(true, scores, "y_true", "y_score")
    n_samples, n_classes = scores.shape
    roc = np.full(n_classes, np.nan)
    pr = np.full(n_classes, np.nan)
    positives = np.bincount(true, minlength=n_classes)
    for c in range(n_classes):
        if positives[c] == 0:
            continue
        column = scores[:, c]
        order = np.argsort(column)[::-1]
        ranked = column[order]
        hits = true[order] == c
        last_of_tie = np.flatnonzero(ranked[1:] != ranked[:-1])
        cut = np.append(last_of_tie, n_samples - 1)
        tps = np.cumsum(hits, dtype=np.int64)[cut]
        fps = cut + 1 - tps
        p, n = int(tps[-1]), int(fps[-1])
        pr[c] = float(np.sum(np.diff(tps, prepend=0) * (tps / (tps + fps)))) / p
        if n > 0:
            # Trapezoids in integer counts: exact, then one division.
            twice_area = np.sum(np.diff(fps, prepend=0) * (tps + np.concatenate(([0], tps[:-1]))))
            roc[c] = float(twice_area) / (2.0 * p * n)
    return {"auc_roc": roc, "auc_pr": pr}


def average_ranking(per_class: np.ndarray, average: Optional[Literal["macro"]], what: str):
    """Macro mean of per-class AUCs over the classes where they are defined."""
    if average is None:
        return per_class
    if average != "macro":
        raise ValueError(f"average must be 'macro' or None, got {average!r}")
    defined = ~np.isnan(per_class)
    if not defined.all():
        missing = np.flatnonzero(~defined).tolist()
        warn_undefined(f"{what} undefined for class(es) {missing} (no positive or no negative sample); "
                       "left out of the macro mean")
    return float(per_class[defined].mean()) if defined.any() else float("nan")


def auc_roc(y_true: object, y_score: object, average: Optional[Literal["macro"]] = "macro"):
    """Area under the ROC curve, one-vs-rest per score column; macro mean by default.

    A class absent from ``y_true`` (or covering every sample) has no ROC curve: it is
    NaN per class and left out of the macro mean with an :class:`UndefinedMetricWarning`.
    """
    return average_ranking(ranking_scores(y_true, y_score)["auc_roc"], average, "AUC-ROC")


def auc_pr(y_true: object, y_score: object, average: Optional[Literal["macro"]] = "macro"):
    """Area under the precision-recall curve as average precision, one-vs-rest.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds (no interpolation),
    scikit-learn's ``average_precision_score``. A class absent from ``y_true`` is NaN
    and left out of the macro mean with an :class:`UndefinedMetricWarning`.
    """
    return average_ranking(ranking_scores(y_true, y_score)["auc_pr"], average, "AUC-PR")


# ------------------------------------------------------------- Krippendorff's alpha


def _distances(values: np.ndarray, counts: np.ndarray, level: AlphaLevel) -> np.ndarray:
    """Squared difference function delta(c, k) of Krippendorff (2011) for each level."""
    if level == "nominal":
        return 1.0 - np.eye(values.size)
    if level == "ordinal":
        cumulative = np.cumsum(counts)
        low = np.minimum.outer(np.arange(values.size), np.arange(values.size))
        high = np.maximum.outer(np.arange(values.size), np.arange(values.size))
        between = cumulative[high] - cumulative[low] + counts[low]
        return (between - (counts[:, None] + counts[None, :]) / 2.0) ** 2
    numeric = values.astype(np.float64)
    difference = numeric[:, None] - numeric[None, :]
    if level == "interval":
        return difference**2
    total = numeric[:, None] + numeric[None, :]
    return _ratio(difference, total) ** 2


def alpha_from_coincidences(coincidences: np.ndarray, values: np.ndarray, level: AlphaLevel) -> float:
    """Krippendorff's alpha = 1 - D_o / D_e from a coincidence matrix over ``values``."""
    if level not in _ALPHA_LEVELS:
        raise ValueError(f"level must be one of {', '.join(_ALPHA_LEVELS)}; got {level!r}")
    if level in ("interval", "ratio") and not np.issubdtype(values.dtype, np.number):
        raise ValueError(f"level={level!r} needs numeric values, got dtype {values.dtype}")
    counts = coincidences.sum(axis=1)
    total = counts.sum()
    delta = _distances(values, counts, level)
    expected = float((np.outer(counts, counts) * delta).sum())
    if expected == 0:
        warn_undefined("Krippendorff's alpha is undefined: every pairable value is the same")
        return float("nan")
    return float(1.0 - (total - 1) * float((coincidences * delta).sum()) / expected)


def krippendorff_alpha(y_true: object, y_pred: object, level: AlphaLevel = "nominal") -> float:
    """Krippendorff's alpha for the agreement of truth and prediction (two coders).

    ``level`` is the scale the labels are measured on: ``"nominal"`` (classes are
    unordered), ``"ordinal"``, ``"interval"`` or ``"ratio"`` (label values used as
    numbers, so integer class ids for affect classes). Returns NaN with a warning
    when all labels on both sides are the same value.
    """
    classes, true, pred = _encode(y_true, y_pred)
    cm = _counts(true, pred, classes.size)
    return alpha_from_coincidences((cm + cm.T).astype(np.float64), classes, level)


def krippendorff_alpha_reliability(reliability_data: object, level: AlphaLevel = "nominal") -> float:
    """Krippendorff's alpha for any number of coders, with missing values.

    ``reliability_data`` is ``(n_coders, n_units)``, numeric, NaN for a missing value.
    Units with fewer than two values are not pairable and are ignored.
    """
    data = np.asarray(reliability_data, dtype=np.float64)
    if data.ndim != 2 or data.size == 0:
        raise ValueError(f"reliability_data must be a non-empty (n_coders, n_units) array, got shape {data.shape}")
    if np.isinf(data).any():
        raise ValueError("reliability_data contains infinite values; use NaN for missing values")
    present = ~np.isnan(data)
    values, inverse = np.unique(data[present], return_inverse=True)
    unit_of_value = np.nonzero(present)[1]
    per_unit = np.zeros((data.shape[1], values.size))
    np.add.at(per_unit, (unit_of_value, inverse), 1.0)
    pairable = per_unit.sum(axis=1)
    keep = pairable >= 2
    if not keep.any():
        raise ValueError("reliability_data has no unit coded by at least two coders")
    per_unit, pairable = per_unit[keep], pairable[keep]
    scaled = per_unit / (pairable - 1)[:, None]
    coincidences = scaled.T @ per_unit - np.diag(scaled.sum(axis=0))
    return alpha_from_coincidences(coincidences, values, level)
