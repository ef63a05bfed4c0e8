"""Nested evaluation: choose among configurations inside each training part, score its test part once.

Comparing configurations on the test faces whose figures are then reported makes the winner
look better than it is (selection bias). :func:`nested_evaluate` keeps the choice away from the
test faces. For each of ``splits`` seeded outer splits (:func:`featcache.splits.stratified_split`,
its training and validation parts against its test part; duplicates and record groups kept
on one side) it

1. scores every :class:`Candidate` by ``inner``-fold cross-validation on the outer training
   part only (:func:`featcache.splits.stratified_folds`, duplicates and groups kept in one fold),
   pooling the out-of-fold predictions into one figure: accuracy, or the mean of the valence and
   arousal CCC;
2. refits the best candidate on the whole outer training part (heads that tune themselves, such
   as logistic C or ridge alpha, tune on those rows alone);
3. scores it once on the outer test part.

Hyper-parameters are candidates like any other choice: a grid of C values is a list of
candidates with ``params={"C": c}``. The mean of the outer figures estimates what the whole
procedure (selection included) achieves on new faces.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

import heads
import metrics

from .errors import UsageError
from .experiment import check_head, predict_task, primary_figure, seeded_params, targets
from .feature_sets import on_common_records as _common_feature_records
from .reading import FeatureSet
from .splits import TEST, stratified_folds, stratified_split

CLASSIFY, REGRESS = "classify", "regress"


@dataclass(frozen=True)
class Candidate:
    """One configuration to choose from: a feature set (all candidates on the same records, in
    the same order), a head name (:func:`heads.make`) and its parameters."""

    name: str
    features: FeatureSet
    head: str
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OuterSplit:
    """One outer split: the candidates' inner scores, the one chosen, and its test report
    (:func:`metrics.classification_report` or :func:`metrics.regression_report`).
    ``reports`` holds every candidate's test report when asked for (``score_every``):
    figures for the table, never used to choose."""

    seed: int
    inner_scores: dict[str, float]
    chosen: str
    report: dict
    fit_seconds: float
    n_train: int
    n_test: int
    reports: dict[str, dict] = field(default_factory=dict)
    fit_seconds_every: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class NestedResult:
    """Every outer split of one task's nested evaluation."""

    task: str
    splits: list[OuterSplit]

    def figures(self, key: str, name: Optional[str] = None) -> np.ndarray:
        """One figure per outer split, of the chosen candidates (or of candidate ``name``, when
        every candidate was scored): ``"accuracy"``, ``"valence_ccc"``, ... (:func:`figure`)."""
        reports = [split.report if name is None else split.reports[name] for split in self.splits]
        return np.array([figure(report, key) for report in reports])


def on_common_records(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates with each feature set cut to the records all of them hold (groups that
    could not read the same images hold different records)."""
    if all(np.array_equal(c.features.index, candidates[0].features.index) for c in candidates):
        return list(candidates)  # nothing to cut (and no copies of shared feature sets)
    features = _common_feature_records([candidate.features for candidate in candidates])
    return [replace(candidate, features=cut) for candidate, cut in zip(candidates, features)]


def figure(report: dict, key: str) -> float:
    """A figure of a metrics report: a classification key (``"accuracy"``) or ``target_key``
    of a regression report (``"valence_ccc"``)."""
    if key in report:
        return float(report[key])
    target, _, name = key.partition("_")
    return float(report[target][name])


def nested_evaluate(
    candidates: Sequence[Candidate],
    task: str,
    *,
    splits: int = 5,
    inner: int = 3,
    seed: int = 0,
    groups: Optional[Sequence[str]] = None,
    score_every: bool = False,
    progress: Optional[Callable[[str], None]] = None,
) -> NestedResult:
    """Nested evaluation of ``candidates`` for ``task`` (``"classify"`` or ``"regress"``) over
    ``splits`` outer splits (seeds ``seed`` ...), choosing by ``inner``-fold cross-validation
    inside each outer training part. ``groups``: each record's group (person, video) kept on one
    side of every split and in one fold. ``score_every`` also scores every candidate on each
    outer test part (for reporting; the choice never sees them). ``progress`` receives a line
    per outer split."""
    rows, y, labels, hashes, group_ids = _shared_rows(candidates, task, groups)
    by_name = {candidate.name: candidate for candidate in candidates}
    outer = []
    for split_seed in range(seed, seed + splits):
        test = stratified_split(labels, hashes, seed=split_seed, groups=group_ids) == TEST
        train_rows, test_rows = rows[~test], rows[test]
        inner_scores = inner_cv_scores(candidates, task, train_rows, y[~test], labels[~test], hashes[~test],
                                       k=inner, seed=split_seed,
                                       groups=None if group_ids is None else group_ids[~test])
        chosen = max(inner_scores, key=inner_scores.get)  # the first of equals, in the candidates' order
        reports, seconds = {}, {}
        for candidate in candidates if score_every else [by_name[chosen]]:
            predicted, seconds[candidate.name] = fit_predict(candidate, task, train_rows, y[~test], test_rows,
                                                             seed=split_seed, labels=labels[~test])
            reports[candidate.name] = _report(task, y[test], predicted, candidate.features.class_names)
        outer.append(OuterSplit(split_seed, inner_scores, chosen, reports[chosen], seconds[chosen],
                                len(train_rows), len(test_rows), reports if score_every else {},
                                seconds if score_every else {}))
        if progress is not None:
            progress(f"{task} split {split_seed}: chose {chosen} (inner {inner_scores[chosen]:.3f}), "
                     f"test {primary_figure({'task': task, 'report': reports[chosen]}):.3f}")
    return NestedResult(task, outer)


def inner_cv_scores(
    candidates: Sequence[Candidate],
    task: str,
    rows: np.ndarray,
    y: np.ndarray,
    labels: np.ndarray,
    hashes: np.ndarray,
    *,
    k: int = 3,
    seed: int = 0,
    groups: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """Each candidate's ``k``-fold cross-validated figure on ``rows`` alone (out-of-fold
    predictions pooled; :func:`primary`). ``labels``: the rows' class ids, which stratify the
    folds and are the class targets of joint heads."""
    folds = stratified_folds(labels, hashes, k=k, seed=seed, groups=groups)
    scores = {}
    for candidate in candidates:
        pooled = np.empty((len(rows), *np.shape(y)[1:])) if task == REGRESS else np.empty(len(rows), np.int64)
        for fold in range(k):
            held = folds == fold
            predicted, _ = fit_predict(candidate, task, rows[~held], y[~held], rows[held], seed=seed,
                                       labels=labels[~held])
            pooled[held] = predicted if task == REGRESS else predicted.argmax(axis=1)
        scores[candidate.name] = primary(task, y, pooled)
    return scores


def fit_predict(candidate: Candidate, task: str, train_rows: np.ndarray, y_train: np.ndarray,
                predict_rows: np.ndarray, *, seed: int = 0,
                labels: Optional[np.ndarray] = None) -> tuple[np.ndarray, float]:
    """Fit the candidate's head on ``train_rows`` of its features and predict ``predict_rows``:
    class probabilities (columns by class id) or targets; and the fit's seconds. A head that
    learns both tasks at once (``joint`` only) is fitted on ``labels`` (the training rows'
    class ids) beside ``y_train``."""
    joint = task not in heads.HEADS[candidate.head]
    fitted_as = "joint" if joint else task
    if joint:
        y_train = np.column_stack([labels, y_train])
    estimator = heads.make(candidate.head, fitted_as, **seeded_params(candidate.head, fitted_as,
                                                                      dict(candidate.params), seed))
    X = candidate.features.features
    began = time.perf_counter()
    estimator.fit(X[train_rows], y_train)
    seconds = time.perf_counter() - began
    predicted = predict_task(estimator, X[predict_rows], task, len(candidate.features.class_names), joint=joint)
    return predicted, seconds


def primary(task: str, truth: np.ndarray, predicted: np.ndarray) -> float:
    """The figure candidates are chosen by: accuracy of predicted labels, or the mean of the
    valence and arousal CCC."""
    if task == CLASSIFY:
        return float(metrics.accuracy(truth, predicted))
    return float(np.mean(metrics.ccc(truth, predicted)))


def _report(task: str, truth: np.ndarray, predicted: np.ndarray, class_names: Sequence[str]) -> dict:
    if task == CLASSIFY:
        return metrics.classification_report(truth, predicted, class_names=class_names)
    return metrics.regression_report(truth, predicted)


def _shared_rows(candidates: Sequence[Candidate], task: str, groups: Optional[Sequence[str]]):
    """The rows usable for ``task`` (on which every candidate agrees), their targets, class labels
    (which stratify the splits), content hashes and groups."""
    if task not in (CLASSIFY, REGRESS):
        raise UsageError(f"task must be {CLASSIFY} or {REGRESS}, got {task!r}")
    if not candidates:
        raise UsageError("nested evaluation needs at least one candidate")
    names = [candidate.name for candidate in candidates]
    if len(set(names)) != len(names):
        raise UsageError(f"candidate names must differ: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    first = candidates[0].features
    for candidate in candidates:
        if task == CLASSIFY or "joint" not in heads.HEADS.get(candidate.head, ()):
            check_head(candidate.head, task)  # a joint head is scored on what it regresses
        if not np.array_equal(candidate.features.index, first.index):
            raise UsageError(f"candidate {candidate.name!r} holds other records than {candidates[0].name!r}; "
                             "cut them to the same records first (on_common_records)")
    y, usable = targets(first, task)
    if any(task not in heads.HEADS[candidate.head] for candidate in candidates):
        usable &= first.labels >= 0  # a joint head learns the classes too
    rows = np.flatnonzero(usable)
    if groups is not None and len(groups) != len(first):
        raise UsageError(f"{len(groups)} groups for {len(first)} records")
    group_ids = None if groups is None else np.asarray(groups)[rows]
    labels = first.labels[rows]
    strata = labels if (labels >= 0).all() else np.zeros_like(labels)  # unlabelled rows: splits unstratified
    return rows, y[rows], strata, np.asarray(first.content_hashes)[rows], group_ids
