"""Synthetic problems for the heads, and heads fitted once per session.

``blobs``: 8 Gaussian classes in 64-d, unit-variance noise, class centres at pairwise
distance ``SEPARATION`` = 4 (8 orthogonal directions), labels 1, 3, ..., 15 (not
contiguous). The Bayes (nearest true centre) accuracy is ~0.90 (measured in
test_heads_learning). ``va``: valence/arousal = clip(X @ W + noise, -1, 1) with X the
same features, a linear target (noise-free predictions score CCC 0.98).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import heads

N_CLASSES, N_FEATURES, SEPARATION = 8, 64, 4.0
LABELS = np.arange(1, 2 * N_CLASSES, 2)  # 1, 3, ..., 15


@dataclass
class Problem:
    X: np.ndarray
    labels: np.ndarray  # (n,) class ids from LABELS
    va: np.ndarray  # (n, 2) valence, arousal in [-1, 1]
    centres: np.ndarray  # (N_CLASSES, N_FEATURES), row j is the centre of LABELS[j]

    @property
    def joint(self) -> np.ndarray:
        """(n, 3) [class_id, valence, arousal]: the MultiTaskHead's y."""
        return np.column_stack([self.labels, self.va])

    def target(self, task: str) -> np.ndarray:
        return {"classify": self.labels, "regress": self.va, "joint": self.joint}[task]


def make_problem(n: int, seed: int) -> Problem:
    """Samples of the fixed problem (centres and W come from seed 2024; ``seed`` draws rows)."""
    fixed = np.random.default_rng(2024)
    directions = np.linalg.qr(fixed.normal(size=(N_FEATURES, N_CLASSES)))[0].T  # orthonormal rows
    centres = directions * SEPARATION / np.sqrt(2)  # |c_i - c_j| = SEPARATION
    W = fixed.normal(size=(N_FEATURES, 2)) * 0.06
    rng = np.random.default_rng(seed)
    index = rng.integers(0, N_CLASSES, n)
    X = centres[index] + rng.normal(size=(n, N_FEATURES))
    va = np.clip(X @ W + 0.1 * rng.normal(size=(n, 2)), -1, 1)
    return Problem(X.astype(np.float32), LABELS[index], va, centres)


@pytest.fixture(scope="session")
def train() -> Problem:
    return make_problem(800, seed=1)


@pytest.fixture(scope="session")
def test() -> Problem:
    return make_problem(1000, seed=2)


HEAD_TASKS = [(name, task) for name in heads.names() for task in heads.HEADS[name]]


@pytest.fixture(scope="session")
def fitted(train):
    """``fitted(name, task)``: the head fitted on ``train`` (random_state=0 where it takes one).

    Keras heads get learning_rate=1e-3 (10x their default): the defaults are the reference
    reports', made for tens of thousands of images, and would underfit 800 rows in 10
    epochs. Fitted lazily, once per session: the Keras heads cost a second or two each."""
    cache: dict = {}

    def get(name: str, task: str):
        if (name, task) not in cache:
            head = heads.make(name, task)
            if "random_state" in head.get_params():
                head.set_params(random_state=0)
            if "learning_rate" in head.get_params():
                head.set_params(learning_rate=1e-3)
            with warnings.catch_warnings():  # the MLP regressor may use all 50 epochs on 800 rows
                warnings.simplefilter("ignore", ConvergenceWarning)
                assert head.fit(train.X, train.target(task)) is head
            cache[name, task] = head
        return cache[name, task]

    return get
