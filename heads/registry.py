"""Heads by name: ``make(name, task, **params)``, ``names()``, and the ``HEADS`` task table."""

from __future__ import annotations

from types import MappingProxyType
from typing import Callable, Mapping

from sklearn.base import BaseEstimator

from .cnn import CNNClassifier, CNNMultiTaskHead, CNNRegressor
from .ensemble import BlockEnsembleClassifier, BlockEnsembleRegressor
from .joint import JointLinearHead
from .keras_dense import KerasDenseClassifier, KerasDenseRegressor
from .linear import LogisticCVHead, LogisticHead, RidgeCVHead, RidgeHead
from .mlp import MLPHead
from .multitask import MultiTaskHead

CLASSIFY, REGRESS, JOINT = "classify", "regress", "joint"
TASKS = (CLASSIFY, REGRESS, JOINT)  # joint: y = [class_id, valence, arousal] (MultiTaskHead, JointLinearHead)


def _mlp(task: str) -> Callable[..., BaseEstimator]:
    def build(**params) -> BaseEstimator:
        if params.setdefault("task", task) != task:
            raise ValueError(f"make('mlp', {task!r}) got a conflicting task={params['task']!r}")
        return MLPHead(**params)

    return build


def _ensemble(task: str) -> Callable[..., BaseEstimator]:
    """A block ensemble whose members default to the tuned linear heads."""
    def build(member: BaseEstimator | None = None, **params) -> BaseEstimator:
        if task == CLASSIFY:
            return BlockEnsembleClassifier(member=member if member is not None else LogisticCVHead(), **params)
        return BlockEnsembleRegressor(member=member if member is not None else RidgeCVHead(), **params)

    return build


_FACTORIES: Mapping[str, Mapping[str, Callable[..., BaseEstimator]]] = {
    "keras_dense": {CLASSIFY: KerasDenseClassifier, REGRESS: KerasDenseRegressor},
    "logistic": {CLASSIFY: LogisticHead},
    "ridge": {REGRESS: RidgeHead},
    "logistic_cv": {CLASSIFY: LogisticCVHead},
    "ridge_cv": {REGRESS: RidgeCVHead},
    "mlp": {CLASSIFY: _mlp(CLASSIFY), REGRESS: _mlp(REGRESS)},
    "multitask": {JOINT: MultiTaskHead},
    "ensemble": {CLASSIFY: _ensemble(CLASSIFY), REGRESS: _ensemble(REGRESS)},
    "cnn": {CLASSIFY: CNNClassifier, REGRESS: CNNRegressor, JOINT: CNNMultiTaskHead},
    "joint_linear": {JOINT: JointLinearHead},
}

#: Head name -> the tasks it supports, e.g. ``HEADS["ridge"] == ("regress",)``.
HEADS: Mapping[str, tuple[str, ...]] = MappingProxyType({name: tuple(tasks) for name, tasks in _FACTORIES.items()})


def names() -> tuple[str, ...]:
    """Every head name, in a stable order."""
    return tuple(_FACTORIES)


def make(name: str, task: str, /, **params) -> BaseEstimator:
    """An unfitted head for ``task`` ("classify", "regress" or "joint"), with ``params``
    passed to its constructor. Raises ValueError for an unknown name or a task the head
    does not support, naming the valid choices."""
    if name not in _FACTORIES:
        raise ValueError(f"unknown head {name!r}; choose one of {', '.join(names())}")
    if task not in _FACTORIES[name]:
        valid = " or ".join(repr(t) for t in HEADS[name])
        raise ValueError(f"head {name!r} does not support task {task!r}; valid task(s): {valid}")
    return _FACTORIES[name][task](**params)
