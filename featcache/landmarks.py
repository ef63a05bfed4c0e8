"""Facial landmark geometry as a feature group of its own.

AffectNet ships 68 landmarks per face (the iBUG 300-W scheme, x0, y0, x1, y1, ...).
:func:`landmark_features` turns them into pose-normalised geometry: the face is moved so
the midpoint between the eye centres is the origin, rotated so the eyes are level and
scaled so they are one unit apart; the features are these 68 coordinates plus every
pairwise distance between them (2,414 values). :func:`add_landmark_group` stores them in
a cache as the group ``landmarks-<hash>``, read like any backbone's features
(``featcache.load(cache, "landmarks")``) and combinable with them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Union

import numpy as np

from . import __version__
from .store import CacheError, add_view, group_attrs, group_key, now, open_cache, writer_lock

N_POINTS = 68
RIGHT_EYE, LEFT_EYE = slice(36, 42), slice(42, 48)
NO_LANDMARKS = "no landmarks for this record"
CONFIG = {
    "backbone": "landmarks", "weights": "none", "weights_digest": "", "pretrained": False, "input_size": 0,
    "taps": ["aligned coordinates", "pairwise distances"], "pooling": "none", "precision": "float32",
    "preprocessing": "eye midpoint at the origin, eyes level and one unit apart", "version": 1,
}


def landmark_features(landmarks: np.ndarray) -> np.ndarray:
    """(n, 136) landmarks -> (n, 2414) aligned coordinates and pairwise distances (NaN rows stay NaN)."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(len(landmarks), N_POINTS, 2)
    right, left = points[:, RIGHT_EYE].mean(axis=1), points[:, LEFT_EYE].mean(axis=1)
    eyes = left - right
    distance = np.linalg.norm(eyes, axis=1)
    distance[distance == 0] = np.nan  # degenerate annotations: no geometry
    cos, sin = eyes[:, 0] / distance, eyes[:, 1] / distance
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)  # (n, 2, 2): eyes -> +x
    aligned = np.einsum("nij,npj->npi", rotation, points - ((left + right) / 2)[:, None]) / distance[:, None, None]
    first, second = np.triu_indices(N_POINTS, k=1)
    pairwise = np.linalg.norm(aligned[:, first] - aligned[:, second], axis=-1)
    return np.concatenate([aligned.reshape(len(points), -1), pairwise], axis=1).astype(np.float32)


def add_landmark_group(cache: Union[str, Path]) -> str:
    """Store the landmark geometry of every record as a cache group; returns its key.

    Records without landmarks are recorded as failed rows (left out when loading). Adding
    the group again is a no-op. Raises CacheError if the cache has no landmarks at all.
    """
    cache = Path(cache)
    began = time.perf_counter()
    with writer_lock(cache):
        with open_cache(cache) as reader:
            if not reader.has_column("landmarks"):
                raise CacheError(f"{cache}: its dataset has no landmarks (AffectNet's *_lnd.npy); "
                                 "landmark features need them")
            features = landmark_features(reader.column("landmarks"))
            config = {**CONFIG, "feature_dim": int(features.shape[1])}
            key = group_key(config)
            if key in reader.groups():
                return key
        failed = np.flatnonzero(~np.isfinite(features).all(axis=1))
        features[failed] = 0.0
        attrs = group_attrs(config, featcache_version=__version__, tensorflow_version="n/a", keras_version="n/a")
        add_view(cache, key, "original", features, group_attrs=attrs, failed=failed,
                 reasons=[NO_LANDMARKS] * len(failed),
                 stats={"seconds": time.perf_counter() - began, "device": "CPU",
                        "engine": "numpy", "created": now()})
    return key
