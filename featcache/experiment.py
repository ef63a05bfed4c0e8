"""Experiments: cached features x the shared split x heads -> predictions -> metrics.

Every head is fitted on the training and validation parts of the cache's stored split
(Keras heads carve their own early-stopping set out of it) and scored once on the test
part, which all backbones and heads share. The split keeps each record group (person,
video) on one side; a cache without groups gets the leakage check first
(:mod:`featcache.leaks`). A fitted head becomes a model that predicts on new images
through :mod:`featcache.model`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

import heads
import metrics

from .errors import UsageError
from .leaks import check_split
from .reading import FeatureSet, load
from .record_groups import set_groups
from .splits import TEST, cached_split

TASKS = ("classify", "regress")


def task_list(task: str) -> tuple[str, ...]:
    """``classify``, ``regress`` or ``both``."""
    if task == "both":
        return TASKS
    if task not in TASKS:
        raise UsageError(f"task must be classify, regress or both, got {task!r}")
    return (task,)


def targets(features: FeatureSet, task: str) -> tuple[np.ndarray, np.ndarray]:
    """(y, usable rows) for a task: labelled rows, rows with valence and arousal, or both (joint)."""
    labelled = features.labels >= 0
    targets = features.targets.astype(np.float64)
    rated = np.isfinite(targets).all(axis=1)
    if task == "classify":
        return features.labels.astype(np.int64), labelled
    if task == "regress":
        return targets, rated
    return np.column_stack([features.labels, targets]), labelled & rated  # joint: [class, valence, arousal]


def scoring_split(cache: Union[str, Path], split: str, features: FeatureSet, *,
                  group_by: Optional[str] = None) -> np.ndarray:
    """The stored split heads are scored on: records grouped by ``group_by`` first when given
    (:func:`featcache.record_groups.set_groups`), and, for a cache without groups, its leakage
    check run on ``features`` (stored; ``featcache info`` and the reports show it)."""
    if group_by is not None:
        set_groups(cache, group_by)
    parts = cached_split(cache, split)
    check_split(cache, split, parts, features)
    return parts


def run_head(
    features: FeatureSet,
    parts: np.ndarray,
    head: str,
    task: str,
    *,
    params: Optional[dict] = None,
    seed: int = 0,
) -> list[dict]:
    """Fit one head on the train+validation parts, score it on the test part.

    ``task`` is ``classify``, ``regress`` or ``joint`` (a multi-task head: one fit, scored
    as a classifier and as a regressor). Returns one plain dict per scored task: backbone,
    group, view, config (the features' configuration), head, task, fit_seconds, report (the
    metrics package's report), predictions, scores and truth on the test rows, test record
    indices, the head's training history when it has one, and the fitted estimator.
    """
    check_head(head, task)
    y, usable = targets(features, task)
    part = parts[features.index]
    train = usable & (part != TEST)
    test = usable & (part == TEST)
    if not train.any() or not test.any():
        raise UsageError(f"no usable rows for task {task!r} in the train or test part of group {features.group}")
    estimator = heads.make(head, task, **seeded_params(head, task, params or {}, seed))
    began = time.perf_counter()
    estimator.fit(features.features[train], y[train])
    fit_seconds = time.perf_counter() - began
    common = {"backbone": features.config["backbone"], "group": features.group, "view": features.view,
              "config": features.config, "head": head, "fit_seconds": fit_seconds, "n_train": int(train.sum()),
              "n_test": int(test.sum()),
              "test_index": features.index[test], "history": getattr(estimator, "history_", None),
              "estimator": estimator}
    outputs = []
    joint = task == "joint"
    if task in ("classify", "joint"):
        truth = y[test] if task == "classify" else y[test, 0].astype(np.int64)
        scores = predict_task(estimator, features.features[test], "classify", len(features.class_names))
        report = metrics.classification_report(truth, scores, class_names=features.class_names)
        outputs.append({**common, "task": "classify", "joint": joint, "report": report,
                        "predictions": scores.argmax(axis=1), "scores": scores, "truth": truth})
    if task in ("regress", "joint"):
        predictions = predict_task(estimator, features.features[test], "regress", joint=joint)
        truth = y[test] if task == "regress" else y[test, 1:]
        outputs.append({**common, "task": "regress", "joint": joint,
                        "report": metrics.regression_report(truth, predictions),
                        "predictions": predictions, "scores": None, "truth": truth})
    return outputs


def run_heads(features: FeatureSet, parts: np.ndarray, asked: Mapping[str, tuple[str, Mapping]], *,
              seed: int = 0) -> list[dict]:
    """:func:`run_head` for each task of ``asked`` (task -> (head, parameters)). A head that
    learns both tasks at once (``joint``) is fitted once as such: for a task it cannot do alone
    (its other output is dropped unless asked of it), or for both when both name it with the
    same parameters. Such a head learns and is scored on the rows that have both a class and
    valence/arousal."""
    if len(asked) == 2 and asked["classify"][0] == asked["regress"][0] and asked["classify"] != asked["regress"]:
        raise UsageError(f"head {asked['classify'][0]!r} is named for both tasks with other parameters; a head "
                         "fitted once for both takes one set")
    results: list[dict] = []
    for task, (name, params) in asked.items():
        if any(r["task"] == task for r in results):
            continue  # a multi-task head fitted for the other task already covers it
        check_head(name)
        supported = heads.HEADS[name]
        if task not in supported and "joint" not in supported:
            able = ", ".join(other for other, tasks in heads.HEADS.items() if task in tasks or "joint" in tasks)
            raise UsageError(f"head {name!r} cannot {task}; these can: {able}")
        once = "joint" in supported and (task not in supported or asked.get("classify") == asked.get("regress"))
        fitted = run_head(features, parts, name, "joint" if once else task, params=dict(params), seed=seed)
        results += [r for r in fitted if asked.get(r["task"], ("",))[0] == name]
    return results


def check_head(head: str, task: Optional[str] = None) -> None:
    """A UsageError naming the choices for an unknown head, or a ``task`` the head cannot do."""
    if head not in heads.HEADS:
        raise UsageError(f"unknown head {head!r}; choose one of {', '.join(heads.names())}")
    if task is not None and task not in heads.HEADS[head]:
        raise UsageError(f"head {head!r} cannot {task}; it does {', '.join(heads.HEADS[head])}")


def predict_task(estimator, X: np.ndarray, task: str, n_classes: int = 0, *, joint: bool = False) -> np.ndarray:
    """A fitted head's output for one task: ``classify``, (n, n_classes) probabilities with
    column j for class id j (zero for classes the head never saw); ``regress``, float64
    targets (for a ``joint`` multi-task head, its valence and arousal columns)."""
    if task == "classify":
        scores = np.zeros((len(X), n_classes))
        scores[:, estimator.classes_] = estimator.predict_proba(X)
        return scores
    predictions = np.asarray(estimator.predict(X), dtype=np.float64)
    return predictions[:, 1:] if joint else predictions


def seeded_params(head: str, task: str, params: dict, seed: int) -> dict:
    """Add random_state=seed when the head takes one and the caller did not set it."""
    accepted = heads.make(head, task).get_params()
    return {"random_state": seed, **params} if "random_state" in accepted else params


def fitted_tasks(head: str, wanted: Sequence[str]) -> list[str]:
    """The fits that give ``head``'s results for the ``wanted`` tasks: one "joint" fit for a
    head that only learns both at once (``multitask``), else one per wanted task it supports."""
    supported = heads.HEADS[head]
    if supported == ("joint",):
        return ["joint"]
    return [task for task in wanted if task in supported]


def compare(
    cache: Union[str, Path],
    backbones: Optional[Sequence[str]] = None,
    head_names: Sequence[str] = ("keras_dense", "logistic", "ridge", "mlp"),
    task: str = "both",
    *,
    groups: Optional[Sequence[str]] = None,
    split: str = "default",
    seed: int = 0,
    group_by: Optional[str] = None,
) -> list[dict]:
    """Every head on every chosen backbone group for each task, on the cache's shared split.

    Heads that do not support a task (ridge cannot classify) are left out of that task; a
    head that only learns both at once (``multitask``) is fitted once and appears in both
    tables; one with separate forms too (``cnn``) is fitted per task. ``group_by`` groups the
    records first (see :func:`scoring_split`).
    """
    cache = Path(cache)
    selections: Iterable = [dict(group=g) for g in groups] if groups else [dict(backbone=b) for b in backbones or []]
    wanted = task_list(task)
    for head in head_names:
        check_head(head)
    results = []
    parts = None
    for selection in selections:
        features = load(cache, **selection)
        if parts is None:
            parts = scoring_split(cache, split, features, group_by=group_by)
        for head in head_names:
            for fitted in fitted_tasks(head, wanted):
                results += [r for r in run_head(features, parts, head, fitted, seed=seed) if r["task"] in wanted]
    order = {name: i for i, name in enumerate(head_names)}
    return sorted(results, key=lambda r: (wanted.index(r["task"]), r["backbone"], order[r["head"]]))


def primary_figure(result: dict) -> float:
    """The figure a result is ranked by: accuracy for ``classify``, the mean of the valence and
    arousal CCC for ``regress``."""
    report = result["report"]
    if result["task"] == "classify":
        return float(report["accuracy"])
    return float(np.mean([report[target]["ccc"] for target in ("valence", "arousal")]))


def best_results(results: Sequence[dict]) -> list[dict]:
    """The best result of each task by :func:`primary_figure` (the first of equals, in the order given)."""
    best: dict[str, dict] = {}
    for result in results:
        if result["task"] not in best or primary_figure(result) > primary_figure(best[result["task"]]):
            best[result["task"]] = result
    return [best[task] for task in TASKS if task in best]

