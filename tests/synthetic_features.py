"""Synthetic cached-feature problems for head tests and benchmarks (no images needed)."""

from __future__ import annotations

import numpy as np


def mixture(n: int = 4000, d: int = 1280, k: int = 8, seed: int = 0):
    """Features, class ids, (n, 2) valence/arousal, and the (n, 3) joint target; the
    mixture (centres, regression weights) is fixed, ``seed`` draws the samples."""
    problem = np.random.default_rng(12345)
    centres = problem.normal(size=(k, d)) * 0.15
    weights = problem.normal(size=(d, 2)) / np.sqrt(d)
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = (centres[y] + rng.normal(size=(n, d))).astype(np.float32)
    va = np.tanh(X @ weights + 0.2 * rng.normal(size=(n, 2)))
    return X, y, va, np.column_stack([y, va])
