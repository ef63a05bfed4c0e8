"""Train/validation/test splits and k folds that every backbone and head shares.

Splits are stratified by class and keep together the records that belong together: byte-
identical images (same content hash) always, and the records of one group (a person, a
video: :mod:`featcache.record_groups`) when the cache has groups. So a duplicate, or a second
frame of the same face, can never sit in training and test at once. They are seeded,
stored in the cache (as a named split, with what they were grouped by) and read back by
experiments.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from .errors import UsageError

TRAIN, VALIDATION, TEST = 0, 1, 2
PART_NAMES = ("train", "validation", "test")


def together(content_hashes: Sequence[str], groups: Optional[Sequence[str]] = None) -> np.ndarray:
    """Component id per record: records sharing a content hash or a group id, directly or through
    others, share one (a duplicated image filed under two people joins the two)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    _, by_content = np.unique(np.asarray(content_hashes), return_inverse=True)
    if groups is None:
        return by_content
    if len(groups) != len(content_hashes):
        raise UsageError(f"{len(groups)} group ids but {len(content_hashes)} records")
    _, by_group = np.unique(np.asarray(groups), return_inverse=True)
    n, offset = len(by_content), int(by_content.max()) + 1
    nodes = offset + int(by_group.max()) + 1  # content nodes, then group nodes; one edge per record
    graph = coo_matrix((np.ones(n), (by_content, offset + by_group)), shape=(nodes, nodes))
    _, component = connected_components(graph, directed=False)
    _, relabelled = np.unique(component[by_content], return_inverse=True)
    return relabelled


def _class_counts(labels: np.ndarray, component: np.ndarray) -> np.ndarray:
    """(components, classes + 1) record counts; column 0 counts unknown labels (-1)."""
    shifted = labels.astype(np.int64) + 1
    counts = np.zeros((int(component.max()) + 1, int(shifted.max()) + 1), dtype=np.int64)
    np.add.at(counts, (component, shifted), 1)
    return counts


def _check_fractions(fractions: Sequence[float]) -> np.ndarray:
    fractions = np.asarray(fractions, dtype=float)
    if fractions.shape != (3,) or (fractions < 0).any() or not np.isclose(fractions.sum(), 1.0):
        raise UsageError(f"fractions must be three non-negative numbers summing to 1, got {list(fractions)}")
    return fractions


def stratified_split(
    labels: np.ndarray,
    content_hashes: Sequence[str],
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 0,
    groups: Optional[Sequence[str]] = None,
) -> np.ndarray:
    """Part per record (0 train, 1 validation, 2 test), stratified, what belongs together together.

    Without groups (or groups that join nothing duplicates did not), or when every component
    (see :func:`together`) holds one class, each
    component counts as its most frequent class (the smallest on a tie); the components of
    each class are shuffled (seeded) and dealt out until each part holds its fraction of the
    class. Groups that mix classes (people with several expressions) are placed one by one,
    largest first, in the part whose class counts that brings closest to their targets:
    stratified as well as the groups allow (:func:`unstratified` says what could not be).
    """
    labels = np.asarray(labels)
    if len(labels) != len(content_hashes):
        raise UsageError(f"{len(labels)} labels but {len(content_hashes)} content hashes")
    fractions = _check_fractions(fractions)
    component = together(content_hashes, groups)
    counts = _class_counts(labels, component)
    rng = np.random.default_rng(seed)
    joined = groups is not None and component.max() < together(content_hashes).max()  # groups joined records
    if not joined or (np.count_nonzero(counts, axis=1) == 1).all():
        part_of = _deal_per_class(counts, fractions, rng)
    else:
        part_of = _balance(counts, fractions, rng)
    return part_of[component]


def _deal_per_class(counts: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Components by their most frequent class, shuffled within it and cut at the fractions."""
    label_of, size = counts.argmax(axis=1), counts.sum(axis=1)
    part_of = np.empty(len(size), dtype=np.int8)
    bounds = np.cumsum(fractions)[:2]
    for label in np.unique(label_of):
        members = rng.permutation(np.flatnonzero(label_of == label))
        filled = np.cumsum(size[members]) - size[members] / 2  # each component's middle
        position = filled / size[members].sum()
        part_of[members] = np.searchsorted(bounds, position, side="right")
    return part_of


def _balance(counts: np.ndarray, fractions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mixed components, largest first (ties in seeded order), each into the part where the
    squared shortfall of every class, relative to the class's size, drops the most."""
    totals = np.maximum(counts.sum(axis=0), 1).astype(float)
    target = fractions[:, None] * totals[None, :]  # (parts, classes)
    held = np.zeros_like(target)
    open_parts = np.flatnonzero(fractions > 0)
    order = rng.permutation(len(counts))
    order = order[np.argsort(-counts.sum(axis=1)[order], kind="stable")]
    part_of = np.empty(len(counts), dtype=np.int8)
    for component in order:
        adds = counts[component]
        before = ((held[open_parts] - target[open_parts]) / totals) ** 2
        after = ((held[open_parts] + adds - target[open_parts]) / totals) ** 2
        chosen = open_parts[int(np.argmin((after - before).sum(axis=1)))]
        part_of[component] = chosen
        held[chosen] += adds
    return part_of


def stratified_folds(
    labels: np.ndarray,
    content_hashes: Sequence[str],
    k: int = 5,
    seed: int = 0,
    groups: Optional[Sequence[str]] = None,
) -> np.ndarray:
    """Fold per record (0..k-1) for k-fold cross-validation, stratified, what belongs together
    (duplicates, and each group when ``groups`` are given) in one fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    if k < 2:
        raise UsageError(f"k must be at least 2, got {k}")
    labels = np.asarray(labels)
    component = together(content_hashes, groups)
    if component.max() + 1 < k:
        raise UsageError(f"{component.max() + 1} groups cannot make {k} folds; use k <= {component.max() + 1}")
    folds = np.empty(len(labels), dtype=np.int8)
    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels, component)):
        folds[held_out] = fold
    return folds


def unstratified(labels: np.ndarray, parts: np.ndarray, part_names: Sequence[str],
                 class_names: Sequence[str] = ()) -> list[str]:
    """One line per class that a part (or fold) lacks although it holds records: what
    grouping, or too few records, left out."""
    labels = np.asarray(labels)
    notes = []
    for label in np.unique(labels[labels >= 0]):
        present = set(np.unique(parts[labels == label]).tolist())
        absent = [name for index, name in enumerate(part_names) if index not in present and (parts == index).any()]
        if absent:
            name = class_names[label] if label < len(class_names) else str(label)
            notes.append(f"class {name!r} ({int(np.sum(labels == label))} records) has none in {', '.join(absent)}: "
                         "too few records, or groups, of it to stratify")
    return notes


def cached_split(
    cache: Union[str, Path],
    name: str = "default",
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> np.ndarray:
    """The split ``name`` stored in the cache (made and stored on first use), by the cache's
    record groups when it has them.

    Every backbone and head evaluated on this cache then shares the same test part.
    Asking for a stored name with other fractions or seed is refused, and so is a stored split
    made with other groups than the cache now has.
    """
    from .store import GROUP_BY, GROUPS_DIGEST, add_split, groups_digest, open_cache, writer_lock

    cache = Path(cache)
    wanted = {"fractions": [float(f) for f in fractions], "seed": int(seed)}
    with open_cache(cache) as reader:
        stored = reader.split(name)
        labels, hashes = reader.column("labels"), reader.column("content_hashes")
        grouped = reader.record_groups()
        class_names = reader.class_names
    group_by = grouped[1] if grouped is not None else ""
    digest = groups_digest(None if grouped is None else grouped[0])
    if stored is None:
        with writer_lock(cache):
            with open_cache(cache) as reader:
                stored = reader.split(name)  # stored meanwhile by another process?
            if stored is None:
                parts = stratified_split(labels, hashes, fractions, seed, None if grouped is None else grouped[0])
                method = f"by groups ({group_by}) and " if group_by else ""
                attrs = {**wanted, GROUP_BY: group_by, GROUPS_DIGEST: digest, "parts": json.dumps(PART_NAMES),
                         "method": f"stratified by class, {method}byte-identical images together",
                         "notes": json.dumps(unstratified(labels, parts, PART_NAMES, class_names))}
                add_split(cache, name, parts, attrs)
                stored = parts, attrs
    _check_settings(cache, name, stored[1], wanted, group_by, digest)
    return stored[0]


def split_digest(parts: np.ndarray) -> str:
    """A short digest of a split's parts: whether two splits are the same, record for record."""
    return hashlib.sha256(np.asarray(parts, dtype=np.int8).tobytes()).hexdigest()[:16]


def split_details(reader, name: str) -> Optional[dict]:
    """What a stored split is (a plain dict): its part sizes, what it was grouped by, what could
    not be stratified, and its leakage check (:mod:`featcache.leaks`) when one was run.
    ``reader``: an open :class:`featcache.store.CacheReader`."""
    from .leaks import unstored_check
    from .store import GROUP_BY

    stored = reader.split(name)
    if stored is None:
        return None
    parts, attrs = stored
    return {"parts": {part: int(np.sum(parts == i)) for i, part in enumerate(PART_NAMES)},
            "group_by": str(attrs.get(GROUP_BY, "")), "notes": json.loads(attrs.get("notes", "[]")),
            "check": reader.split_check(name) or unstored_check(reader.path, name)}


def split_lines(name: str, details: dict) -> list[str]:
    """:func:`split_details` as lines to print."""
    from .leaks import check_line

    counts = ", ".join(f"{part} {count}" for part, count in details["parts"].items())
    grouped = f"by record groups ({details['group_by']})" if details["group_by"] else "by image (no record groups)"
    lines = [f"split {name!r}: {counts}; {grouped}"]
    lines += [f"  {note}" for note in details["notes"]]
    if details["check"] is not None:
        lines.append(f"  {check_line(details['check'])}")
    return lines


def split_summary(cache: Union[str, Path], name: str = "default") -> list[str]:
    """The lines of :func:`split_lines` for the stored split ``name`` of a cache."""
    from .store import open_cache

    with open_cache(Path(cache)) as reader:
        details = split_details(reader, name)
    return split_lines(name, details) if details is not None else [f"split {name!r}: not made yet"]


def _check_settings(cache: Path, name: str, attrs: dict, wanted: dict, group_by: str, digest: str) -> None:
    """Refuse a stored split asked for with other fractions or seed, or made with other groups."""
    from .store import GROUP_BY, GROUPS_DIGEST, CacheError

    settings = {"fractions": [float(f) for f in attrs["fractions"]], "seed": int(attrs["seed"])}
    if settings != wanted:
        raise CacheError(f"{cache}: split {name!r} was made with {settings}, not {wanted}; use another split name")
    made_by = str(attrs.get(GROUP_BY, ""))
    if str(attrs.get(GROUPS_DIGEST, "")) != digest:
        made = f"by other groups ({made_by})" if made_by else "without record groups"
        now = f"groups its records by {group_by}" if group_by else "has no record groups"
        raise CacheError(f"{cache}: split {name!r} was made {made} but the cache now {now}; use another split "
                         "name (or set the groups again with `featcache groups`)")
