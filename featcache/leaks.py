"""The leakage check: near-duplicate images on both sides of a split.

A split by image puts the frames of one video, or a burst of photos of one person, in
training and test at once, and every figure is inflated. When the records have no groups
(:mod:`featcache.record_groups`), featcache looks for near-duplicates across the parts of the
split before scoring: pairs of records whose cached features have a cosine similarity of at
least :data:`THRESHOLD`. When at least :data:`ALARM_SHARE` of the test images have one in
training or validation, it reports a leak; fewer (a dataset's stray re-encoded copies) are
reported as found, without the alarm. It only reports: it never changes a split or a result.

It sees near-identical frames, not the same person in another photo: only record groups
keep those apart. How the threshold and share were chosen, and what the check costs, is
measured by ``benchmarks/bench_leaks.py`` (``benchmarks/results/leaks.md``). On large caches the check
compares a seeded sample of records with every record, so its cost stays a small share of
the heads' and its counts are estimates (it says so).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

import numpy as np

if TYPE_CHECKING:
    from .reading import FeatureSet

THRESHOLD = 0.97  # cosine similarity of a near-duplicate's features; see the module docstring
ALARM_SHARE = 0.02  # share of test images with a near-duplicate in training that is reported as a leak
MAX_PRODUCTS = 4e8  # rows x rows compared at most; above it, a sample of rows is checked
BLOCK_VALUES = 2**24  # similarities computed at once (64 MiB of float32): rows per block = this / rows
HINT = ("group records by person or video to split honestly: --group-by 'S\\d+' (a pattern in the paths), "
        "col:subject (a CSV column) or folder:0 (a folder level)")


def near_duplicates(features: np.ndarray, threshold: float = THRESHOLD, *, queries: Optional[np.ndarray] = None,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j, similarity) of rows whose cosine similarity is at least ``threshold``.

    Every pair i < j once; with ``queries`` (row indices), only pairs with i in it (and j any
    other row). Rows that are not finite (unreadable images) or zero are never paired.
    """
    unit = np.array(features, dtype=np.float32)  # a copy, normalised in place
    unit[~np.isfinite(unit).all(axis=1)] = 0.0
    norms = np.linalg.norm(unit, axis=1, keepdims=True)
    np.divide(unit, norms, out=unit, where=norms > 0)
    everyone = queries is None
    queries = np.arange(len(unit)) if everyone else np.asarray(queries)
    rows = len(unit)
    step = max(1, BLOCK_VALUES // max(rows, 1))
    found_i, found_j, found_s = [], [], []
    for start in range(0, len(queries), step):
        block = queries[start:start + step]
        similarity = unit[block] @ unit.T
        similarity[np.arange(len(block)), block] = -1.0  # not with itself
        if everyone:
            similarity[np.arange(rows)[None, :] <= block[:, None]] = -1.0  # each pair once: i < j
        at, j = np.nonzero(similarity >= threshold)
        found_i.append(block[at])
        found_j.append(j)
        found_s.append(similarity[at, j])
    if not found_i:
        return np.empty(0, int), np.empty(0, int), np.empty(0, np.float32)
    return np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_s)


def check_leaks(features: np.ndarray, parts: np.ndarray, *, content_hashes: Optional[np.ndarray] = None,
                paths: Optional[np.ndarray] = None, threshold: float = THRESHOLD, seed: int = 0) -> dict:
    """Near-duplicates across and within the parts of a split (``parts``: one per row).

    Returns a plain dict: ``rows`` checked, ``sampled`` (True when only a sample of rows was
    compared with all; counts are then scaled-up estimates), ``across`` (rows with a near-
    duplicate in another part), ``test_with_twin`` (test rows with one in training or
    validation), ``pairs_within`` (pairs inside one part), ``identical_within`` (of those,
    byte-identical), up to 5 ``examples`` across parts, ``threshold`` and ``seconds``.
    """
    from .splits import TEST

    began = time.perf_counter()
    n = len(features)
    sampled = n * n > MAX_PRODUCTS
    queries = None
    if sampled:
        size = max(1, int(MAX_PRODUCTS // n))
        queries = np.sort(np.random.default_rng(seed).choice(n, size=size, replace=False))
    i, j, similarity = near_duplicates(features, threshold, queries=queries)
    parts = np.asarray(parts)
    across = parts[i] != parts[j]
    with_twin = np.zeros(n, dtype=bool)
    with_twin[i[across]] = True
    if not sampled:
        with_twin[j[across]] = True
    test_twin = with_twin & (parts == TEST)
    scale = n / len(queries) if sampled else 1.0
    pair_scale = scale / 2 if sampled else 1.0  # a sampled row's pairs reach rows sampled or not
    identical = 0
    if content_hashes is not None:
        hashes = np.asarray(content_hashes)
        identical = int(round(np.sum(~across & (hashes[i] == hashes[j])) * pair_scale))
    order = np.argsort(-similarity[across])[:5]
    examples = [{"a": _name(paths, a), "b": _name(paths, b), "similarity": round(float(s), 4)}
                for a, b, s in zip(i[across][order], j[across][order], similarity[across][order])]
    return {
        "rows": int(n), "sampled": bool(sampled), "checked": int(n if queries is None else len(queries)),
        "across": int(round(with_twin.sum() * scale)), "test": int(np.sum(parts == TEST)),
        "test_with_twin": int(round(test_twin.sum() * scale)),
        "pairs_within": int(round(np.sum(~across) * pair_scale)), "identical_within": identical,
        "examples": examples, "threshold": float(threshold), "seconds": time.perf_counter() - began,
    }


def _name(paths: Optional[np.ndarray], index: int) -> str:
    return str(paths[index]) if paths is not None else f"record {int(index)}"


def leaks(check: dict) -> bool:
    """Whether a check found enough test images with a near-duplicate in training or validation to
    move the figures: :data:`ALARM_SHARE` of the test part, and two at least."""
    return check["test_with_twin"] >= max(2, ALARM_SHARE * check["test"])


def check_line(check: dict) -> str:
    """The check in one line: what it found, and for a leak the ``--group-by`` hint."""
    about = "about " if check["sampled"] else ""
    source = f" ({check['group']} {check['view']})" if "group" in check else ""
    how = f"leak check{source}, cosine >= {check['threshold']:g}"
    if check["sampled"]:
        how += f", {check['checked']:,} of {check['rows']:,} records sampled"
    within = check["pairs_within"]
    inside = (f"; {about}{within} near-duplicate pairs within one part"
              + (f" ({check['identical_within']} byte-identical, kept together)" if check["identical_within"] else "")
              ) if within else ""
    share = check["test_with_twin"] / max(check["test"], 1)
    found = f"{about}{check['test_with_twin']} of {check['test']} test images ({100 * share:.1f}%) have a " \
            "near-duplicate in training or validation"
    if leaks(check):
        return f"LEAK: {how}: {found}, so the figures are likely inflated{inside}; {HINT}"
    if check["test_with_twin"]:
        return f"{how}: no leak: {found}, under the {100 * ALARM_SHARE:g}% that would move the figures{inside}"
    return f"{how}: no leak: no near-duplicates across the parts{inside}"


def check_split(cache: Union[str, Path], split: str, parts: np.ndarray, features: "FeatureSet") -> Optional[dict]:
    """The leakage check of the stored split ``split`` (its ``parts``, one per record) on
    ``features`` (a :class:`featcache.reading.FeatureSet` of the cache), stored with the split
    (``featcache info`` shows it) and returned; None when the cache has record groups (its
    split keeps them apart). A check stored already is returned as it is: it is about the
    records, whichever features found it. A cache that cannot be written now (another writer
    holds it, format 1, read-only) still gets the check, kept for this process
    (:func:`unstored_check`) instead of in the cache."""
    from .store import CacheError, open_cache, store_check, writer_lock

    cache = Path(cache)
    with open_cache(cache) as reader:
        if reader.record_groups() is not None:
            return None
        stored = reader.split_check(split)
    if stored is not None:
        return stored
    check = check_leaks(np.asarray(features.features), parts[features.index],
                        content_hashes=features.content_hashes, paths=features.paths)
    check.update(group=features.group, view=features.view, split=split)
    try:
        with writer_lock(cache):
            store_check(cache, split, json.dumps(check))
    except (CacheError, OSError):
        _UNSTORED[(cache.resolve(), split)] = check
    return check


_UNSTORED: dict[tuple[Path, str], dict] = {}


def unstored_check(cache: Union[str, Path], split: str) -> Optional[dict]:
    """The check of a split this process ran but could not store in the cache, or None."""
    return _UNSTORED.get((Path(cache).resolve(), split))
