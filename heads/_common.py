"""Small helpers shared by the Keras and scikit-learn heads."""

from __future__ import annotations

import numpy as np


def normalise_rows(probabilities: np.ndarray) -> np.ndarray:
    """Probabilities (float32 inside a model) in float64, renormalised so rows sum to 1."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    return probabilities / probabilities.sum(axis=1, keepdims=True)
