"""Small helpers shared by the Keras and scikit-learn heads."""

from __future__ import annotations

import numpy as np


def normalise_rows(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities (float32 inside a model) in float64, renormalised so rows sum to 1."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)


def spread_match(fitted: np.ndarray, y) -> tuple[np.ndarray, np.ndarray]:
    """(scale, centre) that make ``fitted`` predictions as spread as the targets ``y`` (per column)."""
    spread = np.std(fitted, axis=0)
    target = np.std(np.asarray(y, dtype=np.float64), axis=0)
    return np.where(spread > 0, target / np.where(spread > 0, spread, 1.0), 1.0), np.mean(fitted, axis=0)


def finish_targets(predicted: np.ndarray, head) -> np.ndarray:
    """Apply a fitted head's spread match (``match_spread``) and clipping (``clip``) to its predictions."""
    if head.match_spread:
        predicted = (predicted - head.fitted_mean_) * head.spread_scale_ + head.fitted_mean_
    return np.clip(predicted, -1.0, 1.0) if head.clip else predicted
