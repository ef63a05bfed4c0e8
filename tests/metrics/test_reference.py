"""Every metric against a reference implementation, on seeded random cases.

References: scikit-learn (label and ranking metrics, RMSE, MAE), scipy (Pearson),
the ``krippendorff`` package (alpha), and formulas written out here (CCC, SAGR).
The edge-case rules checked are those of the docstrings in :mod:`metrics`.

Each test loops over ``N_SEEDS`` cases from a case generator that deliberately mixes
ties in the scores (rounded, few distinct values, constant columns), heavy class
imbalance, classes missing from ``y_true``, classes never predicted, tiny and
moderate ``n``, 2 to 10 classes, float32 and float64, int and str labels. Every
disagreement is collected (not only the first one) and reported with the seed, so a
failing case is reproduced with ``label_case(seed)`` / ``target_case(seed)`` /
``reliability_case(seed)``. Each test also asserts that at least ``MIN_COMPARED``
cases were compared against the reference (not skipped as degenerate).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace
from fractions import Fraction

import krippendorff
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics as skm

import metrics
from metrics import UndefinedMetricWarning

N_SEEDS = 240
MIN_COMPARED = 200
ATOL = 1e-9
SEEDS = range(N_SEEDS)
RELIABILITY_SEEDS = range(260)  # about 1 in 12 is degenerate (alpha undefined), on purpose

# Not in alphabetical order of their class ids, so sorting str labels matters.
WORDS = np.array(["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt", "calm", "bored"])


# ------------------------------------------------------------------------ helpers


def quiet(function, *args, **kwargs):
    """A reference call, its warnings silenced (they are the reference's business)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def recording(function, *args, **kwargs):
    """(result, warning categories) of one of our calls."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = function(*args, **kwargs)
    return value, [w.category for w in caught]


class Disagreements:
    """Collects every failed comparison of a test, each with the case that shows it."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.failures: list[str] = []
        self.compared: dict[str, int] = {}

    def count(self, metric: str) -> None:
        self.compared[metric] = self.compared.get(metric, 0) + 1

    def close(self, case, metric: str, ours, reference, count: bool = True) -> None:
        """ours == reference to ATOL (NaN only matches NaN)."""
        if count:
            self.count(metric)
        ours_array = np.asarray(ours, dtype=np.float64)
        reference_array = np.asarray(reference, dtype=np.float64)
        try:
            np.testing.assert_allclose(ours_array, reference_array, rtol=0, atol=ATOL, equal_nan=True)
        except AssertionError:
            self.failures.append(f"{case}: {metric}: ours={_show(ours)} reference={_show(reference)}")

    def equal(self, case, metric: str, ours, reference, count: bool = True) -> None:
        """Exact equality, for integer results and structure."""
        if count:
            self.count(metric)
        try:
            np.testing.assert_array_equal(np.asarray(ours), np.asarray(reference))
            if np.asarray(ours).shape != np.asarray(reference).shape:
                raise AssertionError("shape")
        except AssertionError:
            self.failures.append(f"{case}: {metric}: ours={_show(ours)} reference={_show(reference)}")

    def check(self, case, metric: str, condition: bool, message: str) -> None:
        if not condition:
            self.failures.append(f"{case}: {metric}: {message}")

    def guard(self, case, metric: str, function, *args, **kwargs):
        """Run one case's checks; an unexpected exception is recorded as a failure."""
        try:
            function(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - reported with the case, test fails below
            self.failures.append(f"{case}: {metric}: raised {type(error).__name__}: {error}")

    def assert_none(self, minimum: dict[str, int] | None = None) -> None:
        short = [metric for metric, least in (minimum or {}).items() if self.compared.get(metric, 0) < least]
        lines = self.failures[:25]
        more = len(self.failures) - len(lines)
        assert not self.failures, (
            f"{self.what}: {len(self.failures)} disagreement(s) with the reference"
            + "".join(f"\n  {line}" for line in lines)
            + (f"\n  ... and {more} more" if more > 0 else "")
        )
        assert not short, f"{self.what}: too few cases compared: " + ", ".join(
            f"{metric} {self.compared.get(metric, 0)} < {minimum[metric]}" for metric in short
        )


def _show(value) -> str:
    array = np.asarray(value)
    if array.ndim == 0:
        return repr(value)
    return np.array2string(array, precision=17, threshold=30, separator=", ")


# ------------------------------------------------------------ classification cases


@dataclass
class LabelCase:
    seed: int
    n: int
    n_classes: int
    true_ids: np.ndarray  # (n,) int class ids 0..C-1
    scores: np.ndarray  # (n, C) float32 or float64
    kind: str  # "int" (ids), "int_sparse" (ids * 7 - 12, negatives), "str" (WORDS)
    int_dtype: type
    pred_as_scores: bool  # our label metrics get the score matrix instead of labels
    ties: str
    imbalance: str
    form: str  # "logits" or "probs"

    @property
    def pred_ids(self) -> np.ndarray:
        # The documented rule: argmax of the row, the first column winning a tie.
        return self.scores.argmax(axis=1)

    def labels_of(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if self.kind == "int":
            return ids.astype(self.int_dtype)
        if self.kind == "int_sparse":
            return ids.astype(np.int64) * 7 - 12
        return WORDS[ids]

    @property
    def y_true(self) -> np.ndarray:
        return self.labels_of(self.true_ids)

    @property
    def y_pred_labels(self) -> np.ndarray:
        return self.labels_of(self.pred_ids)

    @property
    def y_pred_arg(self):
        """What our label metrics are given: the scores themselves or the labels."""
        return self.scores if self.pred_as_scores else self.y_pred_labels

    @property
    def all_labels(self) -> list:
        """Every class of the score columns, in class-id order (not sorted for str)."""
        return self.labels_of(np.arange(self.n_classes)).tolist()

    @property
    def present(self) -> list:
        """Sorted union of the classes in y_true and in the predicted labels."""
        return np.unique(np.concatenate([self.y_true, self.y_pred_labels])).tolist()

    @property
    def absent_from_truth(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.n_classes), self.true_ids)

    @property
    def never_predicted(self) -> np.ndarray:
        return np.setdiff1d(np.arange(self.n_classes), self.pred_ids)

    def __str__(self) -> str:
        text = (
            f"label_case({self.seed}) [n={self.n} C={self.n_classes} labels={self.kind} "
            f"scores={self.scores.dtype}/{self.form}/{self.ties} prior={self.imbalance} "
            f"pred={'scores' if self.pred_as_scores else 'labels'}]"
        )
        if self.n <= 5:
            text += f" y_true={self.y_true.tolist()} y_pred={self.y_pred_labels.tolist()}"
        return text


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sample_size(rng: np.random.Generator, seed: int, tiny_every: int = 4) -> int:
    if seed % tiny_every == 0:
        return int(rng.integers(1, 6))  # tiny n: 1..5
    if seed % 20 == 1:
        return 2000
    return int(round(math.exp(rng.uniform(math.log(6), math.log(2000)))))


def label_case(seed: int, all_classes: bool = False) -> LabelCase:
    """A classification case; ``all_classes`` makes every class appear in y_true."""
    rng = np.random.default_rng([seed, 101, int(all_classes)])
    n_classes = int(rng.integers(2, 11))
    n = _sample_size(rng, seed)
    if all_classes:
        n = max(n, n_classes)

    imbalance = str(rng.choice(["uniform", "dirichlet", "dominant"], p=[0.3, 0.3, 0.4]))
    if imbalance == "uniform":
        prior = np.full(n_classes, 1.0 / n_classes)
    elif imbalance == "dirichlet":
        prior = rng.dirichlet(np.full(n_classes, 0.7))
    else:  # one class holds 90 % or more
        major = int(rng.integers(n_classes))
        prior = np.zeros(n_classes)
        rest = rng.dirichlet(np.ones(n_classes - 1))
        share = rng.uniform(0.9, 0.995)
        prior[np.arange(n_classes) != major] = (1 - share) * rest
        prior[major] = share
    if not all_classes and rng.random() < 0.45:
        # Classes with a score column but no true sample.
        keeper = int(np.argmax(prior))
        others = np.setdiff1d(np.arange(n_classes), [keeper])
        dropped = rng.choice(others, size=int(rng.integers(1, n_classes)), replace=False)
        prior[dropped] = 0.0
    prior = prior / prior.sum()
    true_ids = rng.choice(n_classes, size=n, p=prior)
    if all_classes:
        true_ids[:n_classes] = np.arange(n_classes)
        rng.shuffle(true_ids)

    signal = rng.uniform(0.0, 3.0)
    logits = rng.normal(size=(n, n_classes)) + signal * np.eye(n_classes)[true_ids]
    if rng.random() < 0.35:
        # Classes never predicted (never the argmax) whose columns still rank samples.
        never = rng.choice(n_classes, size=int(rng.integers(1, n_classes)), replace=False)
        logits[:, never] -= 20.0
    form = str(rng.choice(["logits", "probs"]))
    scores = _softmax(logits) if form == "probs" else logits

    ties = str(rng.choice(["none", "round1", "round2", "few", "constant"]))
    if ties == "round1":
        scores = np.round(scores, 1)
    elif ties == "round2":
        scores = np.round(scores, 2)
    elif ties == "few":
        scores = np.clip(np.floor(logits), -1, 2) / 2.0  # values in {-0.5, 0, 0.5, 1}
    elif ties == "constant":
        columns = rng.choice(n_classes, size=int(rng.integers(1, n_classes + 1)), replace=False)
        scores = np.round(scores, 2)
        value = float(rng.choice([scores.min(), scores.max(), 0.0, 0.5]))
        scores[:, columns] = value
    dtype = np.float32 if rng.random() < 0.5 else np.float64
    scores = np.ascontiguousarray(scores, dtype=dtype)

    kind = str(rng.choice(["int", "int", "int_sparse", "str"]))
    int_dtype = np.int32 if rng.random() < 0.3 else np.int64
    pred_as_scores = kind == "int" and bool(rng.random() < 0.5)
    return LabelCase(seed, n, n_classes, true_ids, scores, kind, int_dtype, pred_as_scores, ties, imbalance, form)


# ------------------------------------------------------------- regression cases


@dataclass
class TargetCase:
    seed: int
    y_true: np.ndarray  # (n,) or (n, k)
    y_pred: np.ndarray
    modes: list

    def columns(self):
        """(true, pred) float64 column pairs."""
        true = self.y_true.astype(np.float64)
        pred = self.y_pred.astype(np.float64)
        if true.ndim == 1:
            return [(true, pred)]
        return [(true[:, j], pred[:, j]) for j in range(true.shape[1])]

    def __str__(self) -> str:
        text = f"target_case({self.seed}) [shape={self.y_true.shape} {self.y_true.dtype}/{self.y_pred.dtype} modes={self.modes}]"
        if self.y_true.shape[0] <= 5:
            text += f" y_true={self.y_true.tolist()} y_pred={self.y_pred.tolist()}"
        return text


TARGET_MODES = ["continuous", "round1", "few", "zeros", "const_true", "const_pred", "const_same", "identical"]
CONSTANTS = [0.0, 0.1, 0.3, -0.7, 0.5, 0.25, -0.2, 0.9]


def target_case(seed: int) -> TargetCase:
    rng = np.random.default_rng([seed, 202])
    n = _sample_size(rng, seed)
    k = int(rng.choice([1, 2, 2, 3]))
    true = np.empty((n, k))
    pred = np.empty((n, k))
    modes = []
    for j in range(k):
        mode = str(rng.choice(TARGET_MODES, p=[0.25, 0.15, 0.12, 0.12, 0.09, 0.09, 0.09, 0.09]))
        modes.append(mode)
        t = rng.uniform(-1, 1, n)
        p = rng.uniform(-0.5, 1.5) * t + rng.normal(0, 0.3) + rng.normal(0, rng.uniform(0.01, 1.0), n)
        if mode == "round1":
            t, p = np.round(t, 1), np.round(p, 1)
        elif mode == "few":
            levels = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
            t = rng.choice(levels, n)
            p = np.where(rng.random(n) < 0.6, t, rng.choice(levels, n))
        elif mode == "zeros":
            t[rng.random(n) < 0.3] = 0.0
            p[rng.random(n) < 0.3] = 0.0
            both = rng.random(n) < 0.2
            t[both] = p[both] = 0.0
        elif mode == "const_true":
            t = np.full(n, rng.choice(CONSTANTS))
        elif mode == "const_pred":
            p = np.full(n, rng.choice(CONSTANTS))
        elif mode == "const_same":
            t = np.full(n, rng.choice(CONSTANTS))
            p = t.copy()
        elif mode == "identical":
            p = t.copy()
        true[:, j], pred[:, j] = t, p
    if k == 1:
        true, pred = true[:, 0], pred[:, 0]
    true_dtype = np.float32 if rng.random() < 0.3 else np.float64
    pred_dtype = np.float32 if rng.random() < 0.4 else np.float64
    return TargetCase(seed, true.astype(true_dtype), pred.astype(pred_dtype), modes)


# ----------------------------------------------------------- reliability cases


def reliability_case(seed: int) -> tuple[np.ndarray, str]:
    """(n_coders, n_units) ratings with NaN for missing values, positive where present."""
    rng = np.random.default_rng([seed, 303])
    n_coders = int(rng.integers(2, 7))
    n_units = int(rng.integers(1, 5)) if seed % 5 == 0 else int(rng.integers(5, 301))
    mode = str(rng.choice(["int", "int", "float", "binary"]))
    if mode == "float":
        domain = np.round(rng.uniform(0.5, 5.0, int(rng.integers(2, 8))), 1)
    elif mode == "binary":
        domain = np.array([1.0, 2.0])
    else:
        domain = np.arange(1.0, int(rng.integers(2, 8)) + 1)
    if seed % 25 == 0:
        mode, domain = "single", domain[:1]  # one value only: alpha undefined
    weights = rng.dirichlet(np.full(domain.size, 0.8))
    truth = rng.choice(domain, size=n_units, p=weights)
    agree = rng.uniform(0.0, 1.0)
    data = np.where(rng.random((n_coders, n_units)) < agree, truth, rng.choice(domain, size=(n_coders, n_units)))
    missing_rate = float(rng.choice([0.0, 0.1, 0.3, 0.6, 0.9]))
    data[rng.random(data.shape) < missing_rate] = np.nan
    if rng.random() < 0.2:
        data[int(rng.integers(n_coders))] = np.nan  # a coder who coded nothing
    if rng.random() < 0.2:
        data[:, rng.random(n_units) < 0.2] = np.nan  # units nobody coded
    if seed % 25 == 5:
        # Exactly one coder per unit: nothing is pairable.
        coder = rng.integers(n_coders, size=n_units)
        keep = np.zeros(data.shape, dtype=bool)
        keep[coder, np.arange(n_units)] = True
        data = np.where(keep, np.where(np.isnan(data), domain[0], data), np.nan)
        mode += "+unpairable"
    description = f"reliability_case({seed}) [coders={n_coders} units={n_units} values={mode} missing={missing_rate}]"
    if n_units <= 4:
        description += f" data={data.tolist()}"
    return data, description


# ------------------------------------------------------------------- references


def reference_prf(case: LabelCase, labels: list):
    """sklearn precision, recall, F1 per class over ``labels`` (zero_division=0)."""
    p, r, f, s = quiet(
        skm.precision_recall_fscore_support, case.y_true, case.y_pred_labels, labels=labels, zero_division=0
    )
    return {"precision": p, "recall": r, "f1": f, "support": s}


def reference_average(case: LabelCase, key: str, average: str) -> float:
    function = {"precision": skm.precision_score, "recall": skm.recall_score, "f1": skm.f1_score}[key]
    return quiet(function, case.y_true, case.y_pred_labels, labels=case.present, average=average, zero_division=0)


def reference_ranking(true_ids: np.ndarray, scores: np.ndarray):
    """sklearn AUC-ROC and AP per one-vs-rest column; NaN where our rules say undefined."""
    n_classes = scores.shape[1]
    roc = np.full(n_classes, np.nan)
    pr = np.full(n_classes, np.nan)
    for c in range(n_classes):
        positive = true_ids == c
        if not positive.any():
            continue  # documented: a class absent from y_true is NaN for both
        pr[c] = quiet(skm.average_precision_score, positive, scores[:, c])
        roc[c] = quiet(skm.roc_auc_score, positive, scores[:, c])  # sklearn: NaN if no negative
    return roc, pr


def reference_alpha(case: LabelCase, level: str):
    """krippendorff.alpha on the two rows (truth, prediction); None if it raises."""
    if level == "ratio":
        data = np.vstack([case.true_ids + 1, case.pred_ids + 1]).astype(float)
        domain = None
    elif level == "interval" and case.kind == "str":
        data = np.vstack([case.true_ids, case.pred_ids]).astype(float)
        domain = None
    elif case.kind == "str":
        data = np.vstack([case.y_true, case.y_pred_labels])
        domain = np.unique(data)
    else:
        data = np.vstack([case.y_true, case.y_pred_labels]).astype(float)
        domain = None
    try:
        return quiet(krippendorff.alpha, reliability_data=data, value_domain=domain, level_of_measurement=level)
    except ValueError:
        return None


def exact_moments(x: np.ndarray, y: np.ndarray):
    """n^2 cov, n^2 var_x, n^2 var_y, n^2 (mean_x - mean_y)^2 in exact rational arithmetic."""
    n = len(x)
    fx = [Fraction(v) for v in x.tolist()]
    fy = [Fraction(v) for v in y.tolist()]
    sx, sy = sum(fx), sum(fy)
    sxx = sum(v * v for v in fx)
    syy = sum(v * v for v in fy)
    sxy = sum(a * b for a, b in zip(fx, fy))
    return n * sxy - sx * sy, n * sxx - sx * sx, n * syy - sy * sy, (sx - sy) ** 2


def lin_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin (1989) with population moments, exactly: 2 s_xy / (s_x^2 + s_y^2 + (mx - my)^2)."""
    cov, var_x, var_y, gap = exact_moments(x, y)
    denominator = var_x + var_y + gap
    return float("nan") if denominator == 0 else float(2 * cov / denominator)


def scipy_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """CCC as 2 r s_x s_y / (s_x^2 + s_y^2 + (mx - my)^2): r from scipy, s from np.cov(bias=True).

    Both sides are shifted by x[0] first (CCC is unchanged by a common shift) so that a
    constant column has exactly zero variance.
    """
    shift = x[0]
    cov = np.cov(np.vstack([x - shift, y - shift]), bias=True)
    var_x, var_y = cov[0, 0], cov[1, 1]
    gap = (np.mean(x - shift) - np.mean(y - shift)) ** 2
    denominator = var_x + var_y + gap
    if denominator == 0:
        return float("nan")
    if len(x) < 2 or np.all(x == x[0]) or np.all(y == y[0]):
        return 0.0  # no covariance with a constant side
    r = quiet(scipy.stats.pearsonr, x, y).statistic
    return float(2 * r * np.sqrt(var_x * var_y) / denominator)


def reference_pearson(x: np.ndarray, y: np.ndarray) -> float:
    if len(x) < 2:
        return float("nan")  # scipy refuses n < 2: undefined
    return float(quiet(scipy.stats.pearsonr, x, y).statistic)


def reference_targets(case: TargetCase) -> dict[str, np.ndarray]:
    true = case.y_true.astype(np.float64)
    pred = case.y_pred.astype(np.float64)
    multi = "raw_values" if true.ndim == 2 else "uniform_average"
    columns = case.columns()
    return {
        "rmse": np.atleast_1d(skm.root_mean_squared_error(true, pred, multioutput=multi)),
        "mae": np.atleast_1d(skm.mean_absolute_error(true, pred, multioutput=multi)),
        "corr": np.array([reference_pearson(t, p) for t, p in columns]),
        "sagr": np.array([np.mean(np.sign(t) == np.sign(p)) for t, p in columns]),
        "ccc": np.array([lin_ccc(t, p) for t, p in columns]),
        "ccc_scipy": np.array([scipy_ccc(t, p) for t, p in columns]),
    }


# ------------------------------------------------------------- the generators


def test_case_generators_cover_the_edge_cases():
    cases = [label_case(seed) for seed in SEEDS]
    counts = {
        "tiny n (1..5)": sum(c.n <= 5 for c in cases),
        "n == 1": sum(c.n == 1 for c in cases),
        "n >= 1000": sum(c.n >= 1000 for c in cases),
        "2 classes": sum(c.n_classes == 2 for c in cases),
        "10 classes": sum(c.n_classes == 10 for c in cases),
        "one class >= 90 % of n >= 50": sum(c.n >= 50 and np.bincount(c.true_ids).max() >= 0.9 * c.n for c in cases),
        "class absent from y_true": sum(c.absent_from_truth.size > 0 for c in cases),
        "class never predicted": sum(c.never_predicted.size > 0 for c in cases),
        "class absent from both sides": sum(np.intersect1d(c.absent_from_truth, c.never_predicted).size > 0
                                            for c in cases),
        "tied scores within a column": sum(any(np.unique(c.scores[:, j]).size < c.n for j in range(c.n_classes))
                                           for c in cases if c.n > 5),
        "constant column": sum(any(np.ptp(c.scores[:, j]) == 0 for j in range(c.n_classes))
                               for c in cases if c.n > 5),
        "float32": sum(c.scores.dtype == np.float32 for c in cases),
        "float64": sum(c.scores.dtype == np.float64 for c in cases),
        "int labels": sum(c.kind == "int" for c in cases),
        "negative int labels": sum(c.kind == "int_sparse" for c in cases),
        "str labels": sum(c.kind == "str" for c in cases),
        "scores given to label metrics": sum(c.pred_as_scores for c in cases),
    }
    targets = [target_case(seed) for seed in SEEDS]
    counts.update({
        "targets: tiny n": sum(t.y_true.shape[0] <= 5 for t in targets),
        "targets: (n, k) arrays": sum(t.y_true.ndim == 2 for t in targets),
        "targets: exact zeros on both sides": sum(
            any(((a == 0) & (b == 0)).any() for a, b in t.columns()) for t in targets),
        "targets: ties": sum(any(np.unique(a).size < a.size for a, _ in t.columns()) for t in targets
                             if t.y_true.shape[0] > 5),
        "targets: constant column": sum(any(np.ptp(a) == 0 or np.ptp(b) == 0 for a, b in t.columns())
                                        for t in targets if t.y_true.shape[0] > 5),
        "targets: float32": sum(t.y_true.dtype == np.float32 or t.y_pred.dtype == np.float32 for t in targets),
    })
    too_rare = {name: count for name, count in counts.items() if count < 8}
    assert not too_rare, f"the case generators hardly cover: {too_rare}"


# --------------------------------------------------------- classification tests


def test_accuracy_precision_recall_f1_match_sklearn():
    dis = Disagreements("accuracy/precision/recall/f1")

    def one(case: LabelCase) -> None:
        y_true, y_pred, labels = case.y_true, case.y_pred_arg, case.present
        dis.close(case, "accuracy", metrics.accuracy(y_true, y_pred), skm.accuracy_score(y_true, case.y_pred_labels))
        in_both = np.isin(case.all_labels, labels)
        ours_functions = {"precision": metrics.precision, "recall": metrics.recall, "f1": metrics.f1_score}
        per_class = reference_prf(case, labels)
        per_class_all = reference_prf(case, case.all_labels)
        for key, ours_function in ours_functions.items():
            # Default classes: the sorted union of y_true and the predictions.
            dis.close(case, f"{key} per class", ours_function(y_true, y_pred, average=None), per_class[key])
            for average in ("macro", "weighted"):
                ours, caught = recording(ours_function, y_true, y_pred, average=average)
                dis.close(case, f"{key} {average}", ours, reference_average(case, key, average))
                dis.check(case, f"{key} {average}", UndefinedMetricWarning not in caught,
                          "warned although every default class has samples")
            # labels = every class: NaN where a class has no sample on either side ...
            expected = np.where(in_both, per_class_all[key], np.nan)
            ours = ours_function(y_true, y_pred, average=None, labels=case.all_labels)
            dis.close(case, f"{key} per class, labels=all", ours, expected)
            dis.check(case, f"{key} per class, labels=all", np.array_equal(np.isnan(ours), ~in_both),
                      f"NaN exactly for classes absent from both sides expected, got {ours}")
            # ... and such classes are left out of the averages; the macro mean warns.
            # (A weighted mean gives them weight 0 whatever happens: its warning is not checked.)
            for average in ("macro", "weighted"):
                ours, caught = recording(ours_function, y_true, y_pred, average=average, labels=case.all_labels)
                dis.close(case, f"{key} {average}, labels=all", ours, reference_average(case, key, average))
                if average == "macro":
                    dis.check(case, f"{key} macro, labels=all", (UndefinedMetricWarning in caught) == (not in_both.all()),
                              f"UndefinedMetricWarning expected iff a class is absent from both sides; got {caught}")
            if not in_both.all():
                dis.count(f"{key} with a class absent from both sides")

    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "label metrics", one, case)
    least = {f"{key} {avg}": MIN_COMPARED for key in ("precision", "recall", "f1") for avg in ("macro", "weighted")}
    least.update({"accuracy": MIN_COMPARED, "f1 with a class absent from both sides": 20})
    dis.assert_none(least)


def test_confusion_matrix_matches_sklearn():
    dis = Disagreements("confusion_matrix")

    def one(case: LabelCase) -> None:
        ours = metrics.confusion_matrix(case.y_true, case.y_pred_arg)
        dis.equal(case, "confusion_matrix", ours, quiet(skm.confusion_matrix, case.y_true, case.y_pred_labels))
        dis.check(case, "confusion_matrix dtype", np.issubdtype(ours.dtype, np.integer), f"dtype {ours.dtype}")
        order = np.random.default_rng(case.seed).permutation(case.n_classes)
        shuffled = [case.all_labels[i] for i in order]
        dis.equal(case, "confusion_matrix labels=shuffled",
                  metrics.confusion_matrix(case.y_true, case.y_pred_arg, labels=shuffled),
                  quiet(skm.confusion_matrix, case.y_true, case.y_pred_labels, labels=shuffled))

    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "confusion_matrix", one, case)
    dis.assert_none({"confusion_matrix": MIN_COMPARED, "confusion_matrix labels=shuffled": MIN_COMPARED})


def test_cohen_kappa_matches_sklearn():
    dis = Disagreements("cohen_kappa")

    def one(case: LabelCase) -> None:
        for weights in (None, "linear", "quadratic"):
            for labels in (None, case.all_labels):
                name = f"kappa {weights} labels={'default' if labels is None else 'all'}"
                reference = quiet(skm.cohen_kappa_score, case.y_true, case.y_pred_labels, weights=weights,
                                  labels=labels)
                ours, caught = recording(metrics.cohen_kappa, case.y_true, case.y_pred_arg, weights=weights,
                                         labels=labels)
                if np.isnan(reference):
                    dis.count(f"{name} undefined")
                    dis.check(case, name, np.isnan(ours) and UndefinedMetricWarning in caught,
                              f"reference NaN; expected NaN with UndefinedMetricWarning, got {ours!r}, {caught}")
                else:
                    dis.close(case, name, ours, reference)

    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "cohen_kappa", one, case)
    least = {f"kappa {w} labels={l}": MIN_COMPARED for w in (None, "linear", "quadratic") for l in ("default", "all")}
    least["kappa None labels=default undefined"] = 5
    dis.assert_none(least)


def _check_ranking(dis: Disagreements, case: LabelCase, name: str, ours_function, reference_index: int) -> None:
    true_ids, scores = case.true_ids, case.scores
    reference = reference_ranking(true_ids, scores)[reference_index]
    absent = case.absent_from_truth
    ours = ours_function(true_ids, scores, average=None)
    dis.close(case, f"{name} per class", ours, reference)
    dis.check(case, f"{name} per class", bool(np.isnan(np.asarray(ours)[absent]).all()),
              f"classes {absent.tolist()} absent from y_true must be NaN, got {ours}")
    if absent.size:
        dis.count(f"{name} with a class absent from y_true")
    ours_macro, caught = recording(ours_function, true_ids, scores, average="macro")
    defined = ~np.isnan(reference)
    expected = reference[defined].mean() if defined.any() else np.nan
    dis.close(case, f"{name} macro", ours_macro, expected)
    dis.check(case, f"{name} macro", (UndefinedMetricWarning in caught) == (not defined.all()),
              f"UndefinedMetricWarning expected iff a class is undefined; got {caught}")


def test_auc_roc_matches_sklearn_per_class():
    dis = Disagreements("auc_roc")
    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "auc_roc", _check_ranking, dis, case, "auc_roc", metrics.auc_roc, 0)
    dis.assert_none({"auc_roc per class": MIN_COMPARED, "auc_roc macro": MIN_COMPARED,
                     "auc_roc with a class absent from y_true": 50})


def test_auc_pr_matches_sklearn_average_precision_per_class():
    dis = Disagreements("auc_pr")
    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "auc_pr", _check_ranking, dis, case, "auc_pr", metrics.auc_pr, 1)
    dis.assert_none({"auc_pr per class": MIN_COMPARED, "auc_pr macro": MIN_COMPARED,
                     "auc_pr with a class absent from y_true": 50})


def test_auc_roc_macro_matches_sklearn_multiclass_ovr():
    """With every class present and rows that sum to one, sklearn's own OvR macro mean."""
    dis = Disagreements("auc_roc vs roc_auc_score(multi_class='ovr')")

    def one(case: LabelCase) -> None:
        probabilities = case.scores if case.form == "probs" and case.ties == "none" else _softmax(
            case.scores.astype(np.float64))
        probabilities = probabilities.astype(case.scores.dtype)
        if case.n_classes == 2:
            # sklearn's binary form: the positive column; both OvR AUCs equal it when rows sum to 1.
            reference = skm.roc_auc_score(case.true_ids, probabilities[:, 1])
            ours = metrics.auc_roc(case.true_ids, probabilities, average=None)[1]
        else:
            reference = skm.roc_auc_score(case.true_ids, probabilities, multi_class="ovr", average="macro")
            ours = metrics.auc_roc(case.true_ids, probabilities)
        dis.close(case, "auc_roc macro (ovr)", ours, reference)

    for seed in SEEDS:
        case = label_case(seed, all_classes=True)
        dis.guard(case, "auc_roc ovr", one, case)
    dis.assert_none({"auc_roc macro (ovr)": MIN_COMPARED})


def test_absent_class_is_nan_left_out_and_warned():
    """The documented rule on one explicit case, with pytest.warns."""
    seed = 0
    case = label_case(seed)
    # The first case with n >= 50, a class absent from y_true and at least two classes present.
    while case.n < 50 or case.absent_from_truth.size == 0 or case.n_classes - case.absent_from_truth.size < 2:
        seed += 1
        case = label_case(seed)
    present = np.setdiff1d(np.arange(case.n_classes), case.absent_from_truth)
    for function, reference_index in ((metrics.auc_roc, 0), (metrics.auc_pr, 1)):
        reference = reference_ranking(case.true_ids, case.scores)[reference_index]
        with pytest.warns(UndefinedMetricWarning):
            macro = function(case.true_ids, case.scores)
        per_class = function(case.true_ids, case.scores, average=None)
        assert np.isnan(per_class[case.absent_from_truth]).all(), str(case)
        np.testing.assert_allclose(per_class[present], reference[present], rtol=0, atol=ATOL, err_msg=str(case))
        np.testing.assert_allclose(macro, np.mean(reference[present]), rtol=0, atol=ATOL, err_msg=str(case))


def test_krippendorff_alpha_two_coders_matches_package():
    dis = Disagreements("krippendorff_alpha")

    def one(case: LabelCase) -> None:
        for level in ("nominal", "ordinal", "interval", "ratio"):
            if level == "ratio":
                args = (case.true_ids + 1, case.pred_ids + 1)  # positive labels
            elif level == "interval" and case.kind == "str":
                args = (case.true_ids, case.pred_ids)  # numeric class ids for str labels
            else:
                args = (case.y_true, case.y_pred_arg)
            reference = reference_alpha(case, level)
            ours, caught = recording(metrics.krippendorff_alpha, *args, level=level)
            if reference is None or np.isnan(reference):
                # The package raises when there is one value only: alpha is undefined.
                dis.count(f"alpha {level} undefined")
                dis.check(case, f"alpha {level}", np.isnan(ours) and UndefinedMetricWarning in caught,
                          f"reference undefined; expected NaN with UndefinedMetricWarning, got {ours!r}, {caught}")
            else:
                dis.close(case, f"alpha {level}", ours, reference)

    for seed in SEEDS:
        case = label_case(seed)
        dis.guard(case, "krippendorff_alpha", one, case)
    least = {f"alpha {level}": MIN_COMPARED for level in ("nominal", "ordinal", "interval", "ratio")}
    least["alpha nominal undefined"] = 5
    dis.assert_none(least)


def test_krippendorff_alpha_reliability_matches_package():
    dis = Disagreements("krippendorff_alpha_reliability")

    def one(data: np.ndarray, description: str) -> None:
        pairable = (np.sum(~np.isnan(data), axis=0) >= 2).any()
        for level in ("nominal", "ordinal", "interval", "ratio"):
            try:
                reference = quiet(krippendorff.alpha, reliability_data=data, level_of_measurement=level)
            except ValueError:
                reference = None
            if reference is None and not pairable:
                # Package: "at least one unit with values assigned by at least two coders". Ours raises too.
                dis.count(f"alpha {level} no pairable unit")
                try:
                    ours = metrics.krippendorff_alpha_reliability(data, level)
                except ValueError as error:
                    dis.check(description, f"alpha {level}", "at least two coders" in str(error),
                              f"unexpected ValueError message: {error}")
                else:
                    dis.check(description, f"alpha {level}", False,
                              f"no pairable unit: expected ValueError, got {ours!r}")
                continue
            ours, caught = recording(metrics.krippendorff_alpha_reliability, data, level)
            if reference is None or np.isnan(reference):
                # Package raises on a single value (or gives 0/0): ours is NaN with a warning.
                dis.count(f"alpha {level} undefined")
                dis.check(description, f"alpha {level}", np.isnan(ours) and UndefinedMetricWarning in caught,
                          f"reference undefined; expected NaN with UndefinedMetricWarning, got {ours!r}, {caught}")
            else:
                dis.close(description, f"alpha {level}", ours, reference)

    for seed in RELIABILITY_SEEDS:
        data, description = reliability_case(seed)
        dis.guard(description, "krippendorff_alpha_reliability", one, data, description)
    least = {f"alpha {level}": MIN_COMPARED for level in ("nominal", "ordinal", "interval", "ratio")}
    least.update({"alpha nominal undefined": 3, "alpha nominal no pairable unit": 3})
    dis.assert_none(least)


# ------------------------------------------------------------- regression tests


def test_regression_metrics_match_references():
    dis = Disagreements("rmse/mae/pearson/ccc/sagr")

    def one(case: TargetCase) -> None:
        reference = reference_targets(case)
        one_d = case.y_true.ndim == 1
        for key, function in (("rmse", metrics.rmse), ("mae", metrics.mae), ("corr", metrics.pearson),
                              ("sagr", metrics.sagr), ("ccc", metrics.ccc)):
            ours, caught = recording(function, case.y_true, case.y_pred)
            dis.check(case, key, isinstance(ours, float) if one_d else np.shape(ours) == (case.y_true.shape[1],),
                      f"a float for (n,), a (k,) array for (n, k) expected, got {ours!r}")
            dis.close(case, key, ours, reference[key])
            if key == "ccc":
                dis.close(case, "ccc (scipy/np.cov form)", ours, reference["ccc_scipy"])
            if key in ("corr", "ccc"):
                undefined = bool(np.isnan(reference[key]).any())
                dis.check(case, key, (UndefinedMetricWarning in caught) == undefined,
                          f"UndefinedMetricWarning expected iff a column is undefined; got {caught}")

    for seed in SEEDS:
        case = target_case(seed)
        dis.guard(case, "regression metrics", one, case)
    dis.assert_none({key: MIN_COMPARED for key in ("rmse", "mae", "corr", "sagr", "ccc", "ccc (scipy/np.cov form)")})


def test_constant_column_is_undefined_even_when_its_mean_is_inexact():
    """np.mean([0.1, 0.1, 0.1]) is 0.10000000000000002, not 0.1: the column is still constant.

    scipy.stats.pearsonr gives NaN for a constant input; Lin's CCC of two equal constants
    is 0/0. Both are documented as NaN with an UndefinedMetricWarning.
    """
    constant = np.full(3, 0.1)
    varying = np.array([0.0, 1.0, 2.0])
    assert np.isnan(reference_pearson(constant, varying))
    assert np.isnan(reference_pearson(constant, constant))
    assert np.isnan(lin_ccc(constant, constant)) and np.isnan(scipy_ccc(constant, constant))
    found = {}
    for name, function, args in (("pearson([0.1]*3, [0, 1, 2])", metrics.pearson, (constant, varying)),
                                 ("pearson([0.1]*3, [0.1]*3)", metrics.pearson, (constant, constant)),
                                 ("ccc([0.1]*3, [0.1]*3)", metrics.ccc, (constant, constant))):
        value, caught = recording(function, *args)
        found[name] = (value, UndefinedMetricWarning in caught)
    wrong = {name: result for name, result in found.items() if not (np.isnan(result[0]) and result[1])}
    assert not wrong, f"expected NaN with UndefinedMetricWarning; got (value, warned): {wrong}"


# ---------------------------------------------------------------- report tests


def test_classification_report_matches_single_metric_references():
    dis = Disagreements("classification_report")

    def one(case: LabelCase, with_names: bool) -> None:
        class_names = [f"class {i}" for i in range(case.n_classes)] if with_names else None
        report = quiet(metrics.classification_report, case.y_true, case.y_pred_arg, class_names=class_names)
        fixed = case.pred_as_scores or with_names
        labels = case.all_labels if fixed else case.present
        in_both = np.isin(labels, case.present)
        per_class = reference_prf(case, labels)

        dis.equal(case, "n_samples", report["n_samples"], case.n)
        dis.close(case, "accuracy", report["accuracy"], skm.accuracy_score(case.y_true, case.y_pred_labels))
        for key, figure in (("precision", "precision_macro"), ("recall", "recall_macro"), ("f1", "f1_macro")):
            dis.close(case, figure, report[figure], reference_average(case, key, "macro"))
        dis.close(case, "f1_weighted", report["f1_weighted"], reference_average(case, "f1", "weighted"))
        for weights, figure in ((None, "cohen_kappa"), ("linear", "cohen_kappa_linear"),
                                ("quadratic", "cohen_kappa_quadratic")):
            reference = quiet(skm.cohen_kappa_score, case.y_true, case.y_pred_labels, weights=weights, labels=labels)
            dis.close(case, figure, report[figure], reference)
        for level, figure in (("nominal", "krippendorff_alpha"), ("ordinal", "krippendorff_alpha_ordinal"),
                              ("interval", "krippendorff_alpha_interval")):
            if level == "interval" and case.kind == "str":
                dis.check(case, figure, report[figure] is None, f"None expected for str labels, got {report[figure]}")
                continue
            reference = reference_alpha(case, level)
            dis.close(case, figure, report[figure], np.nan if reference is None else reference)
        dis.equal(case, "confusion_matrix", np.array(report["confusion_matrix"]),
                  quiet(skm.confusion_matrix, case.y_true, case.y_pred_labels, labels=labels))
        names = class_names if with_names else [str(label) for label in labels]
        dis.equal(case, "classes", report["classes"], names)
        dis.equal(case, "per_class keys", list(report["per_class"]), names)

        if case.pred_as_scores:
            roc, pr = reference_ranking(case.true_ids, case.scores)
            for figure, reference in (("auc_roc", roc), ("auc_pr", pr)):
                defined = ~np.isnan(reference)
                dis.close(case, figure, report[figure], reference[defined].mean() if defined.any() else np.nan)
        else:
            roc = pr = [None] * len(labels)
            dis.check(case, "auc", report["auc_roc"] is None and report["auc_pr"] is None,
                      "labels only: auc_roc and auc_pr must be None")
        ours_rows = [report["per_class"][name] for name in names]
        for key in ("precision", "recall", "f1"):
            dis.close(case, f"per_class {key}", [row[key] for row in ours_rows],
                      np.where(in_both, per_class[key], np.nan))
        dis.equal(case, "per_class support", [row["support"] for row in ours_rows], per_class["support"])
        if case.pred_as_scores:
            dis.close(case, "per_class auc_roc", [row["auc_roc"] for row in ours_rows], roc)
            dis.close(case, "per_class auc_pr", [row["auc_pr"] for row in ours_rows], pr)

    for seed in SEEDS:
        case = label_case(seed)
        # Each case twice: with its score matrix (classes 0..C-1, AUCs filled in) and with
        # 1-D labels of its own kind (int, negative int or str; default classes).
        as_scores = replace(case, kind="int", pred_as_scores=True)
        as_labels = replace(case, pred_as_scores=False)
        dis.guard(as_scores, "classification_report", one, as_scores, seed % 3 == 0)
        dis.guard(as_labels, "classification_report", one, as_labels, case.kind == "int" and seed % 3 == 1)
    least = {figure: 2 * MIN_COMPARED for figure in ("accuracy", "f1_macro", "f1_weighted", "cohen_kappa",
                                                      "krippendorff_alpha", "confusion_matrix", "per_class f1")}
    least.update({"auc_roc": MIN_COMPARED, "auc_pr": MIN_COMPARED, "per_class auc_roc": MIN_COMPARED,
                  "per_class auc_pr": MIN_COMPARED})
    dis.assert_none(least)


def test_regression_report_matches_single_metric_references():
    dis = Disagreements("regression_report")

    def one(case: TargetCase) -> None:
        k = 1 if case.y_true.ndim == 1 else case.y_true.shape[1]
        names = ["valence", "arousal", "dominance"][:k]
        report = quiet(metrics.regression_report, case.y_true, case.y_pred, names=names)
        reference = reference_targets(case)
        dis.equal(case, "n_samples", report["n_samples"], case.y_true.shape[0])
        dis.equal(case, "keys", sorted(report), sorted(["n_samples", *names]))
        for key in ("rmse", "mae", "corr", "sagr", "ccc"):
            dis.close(case, key, [report[name][key] for name in names], reference[key])

    for seed in SEEDS:
        case = target_case(seed)
        dis.guard(case, "regression_report", one, case)
    dis.assert_none({key: MIN_COMPARED for key in ("rmse", "mae", "corr", "sagr", "ccc")})
