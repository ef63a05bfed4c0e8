"""Train/validation/test splits that every backbone and head shares.

Splits are stratified by class and keep byte-identical images (same content hash)
in the same part, so a duplicate can never sit in training and test at once. They
are seeded, stored in the cache (as a named split) and read back by experiments.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence, Union

import numpy as np

TRAIN, VALIDATION, TEST = 0, 1, 2
PART_NAMES = ("train", "validation", "test")


def _groups(content_hashes: Sequence[str]) -> np.ndarray:
    """Group id per record: records with the same content hash share one."""
    _, group = np.unique(np.asarray(content_hashes), return_inverse=True)
    return group


def _group_labels(labels: np.ndarray, group: np.ndarray) -> np.ndarray:
    """One label per group: its most frequent member label (the smallest on a tie)."""
    n_groups = int(group.max()) + 1
    shifted = labels.astype(np.int64) + 1  # -1 (unknown) becomes a class of its own
    counts = np.zeros((n_groups, int(shifted.max()) + 1), dtype=np.int64)
    np.add.at(counts, (group, shifted), 1)
    return counts.argmax(axis=1) - 1


def stratified_split(
    labels: np.ndarray,
    content_hashes: Sequence[str],
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> np.ndarray:
    """Part per record (0 train, 1 validation, 2 test), stratified, duplicates together.

    Within each class the groups of identical images are shuffled (seeded) and dealt
    out until each part holds its fraction of the class's images.
    """
    labels = np.asarray(labels)
    if len(labels) != len(content_hashes):
        raise ValueError(f"{len(labels)} labels but {len(content_hashes)} content hashes")
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    group = _groups(content_hashes)
    group_label = _group_labels(labels, group)
    group_size = np.bincount(group)
    rng = np.random.default_rng(seed)
    part_of_group = np.empty(len(group_size), dtype=np.int8)
    bounds = np.cumsum(fractions)[:2]
    for label in np.unique(group_label):
        members = rng.permutation(np.flatnonzero(group_label == label))
        filled = np.cumsum(group_size[members]) - group_size[members] / 2  # each group's middle
        position = filled / group_size[members].sum()
        part_of_group[members] = np.searchsorted(bounds, position, side="right")
    return part_of_group[group]


def stratified_folds(labels: np.ndarray, content_hashes: Sequence[str], k: int = 5, seed: int = 0) -> np.ndarray:
    """Fold per record (0..k-1) for k-fold cross-validation, stratified, duplicates together."""
    from sklearn.model_selection import StratifiedGroupKFold

    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    labels = np.asarray(labels)
    folds = np.empty(len(labels), dtype=np.int8)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels, _groups(content_hashes))):
        folds[held_out] = fold
    return folds


def cached_split(
    cache: Union[str, Path],
    name: str = "default",
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> np.ndarray:
    """The split ``name`` stored in the cache (made and stored on first use).

    Every backbone and head evaluated on this cache then shares the same test part.
    Asking for a stored name with other fractions or seed is refused.
    """
    from .store import add_split, open_cache, writer_lock

    cache = Path(cache)
    wanted = {"fractions": [float(f) for f in fractions], "seed": int(seed)}
    with open_cache(cache) as reader:
        stored = reader.split(name)
        labels, hashes = reader.column("labels"), reader.column("content_hashes")
    if stored is None:
        with writer_lock(cache):
            with open_cache(cache) as reader:
                stored = reader.split(name)  # stored meanwhile by another process?
            if stored is None:
                parts = stratified_split(labels, hashes, fractions, seed)
                attrs = {**wanted, "method": "stratified by class, byte-identical images together",
                         "parts": json.dumps(PART_NAMES)}
                add_split(cache, name, parts, attrs)
                stored = parts, attrs
    _check_settings(cache, name, stored[1], wanted)
    return stored[0]


def _check_settings(cache: Path, name: str, attrs: dict, wanted: dict) -> None:
    """Refuse a stored split asked for with other fractions or seed."""
    from .store import CacheError

    settings = {"fractions": [float(f) for f in attrs["fractions"]], "seed": int(attrs["seed"])}
    if settings != wanted:
        raise CacheError(f"{cache}: split {name!r} was made with {settings}, not {wanted}; use another split name")
