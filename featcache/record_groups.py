"""Record groups: which records belong together (one person, one video), so that no split
puts one of them in training and another in test.

A group id per record comes from a ``--group-by`` text:

``col:NAME``
    the cell of column NAME of the CSV manifest the records come from;
``folder:N``
    the N-th folder of the record's path relative to the dataset's root (0 the first;
    -1 the folder holding the image, -2 the one above it);
``re:PATTERN`` or just ``PATTERN``
    a regular expression searched in the record's relative path: the first capture group
    when the pattern has one, else the whole match (``S\\d+`` gives ``S010`` of
    ``happy/S010_004_00000019.png``).

Every record must get a group: a record the text does not cover is a one-line error naming
it, never a group of its own made up silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import FeatcacheError

if TYPE_CHECKING:
    from .datasets import Dataset

KINDS = ("col", "folder", "re")


class GroupByError(FeatcacheError, ValueError):
    """A ``--group-by`` text that cannot give every record a group."""


@dataclass(frozen=True)
class GroupBy:
    """A parsed ``--group-by``: ``kind`` (col, folder or re) and its argument."""

    kind: str
    argument: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.argument}"

    @property
    def pattern(self) -> re.Pattern:
        return re.compile(self.argument)


def parse_group_by(text: Union[str, GroupBy]) -> GroupBy:
    """``col:NAME``, ``folder:N``, ``re:PATTERN`` or a bare regular expression."""
    if isinstance(text, GroupBy):
        return text
    kind, _, argument = text.partition(":")
    if kind not in KINDS or not _:
        kind, argument = "re", text
    if not argument:
        raise GroupByError(f"--group-by {text!r}: nothing after {kind}:; e.g. col:subject, folder:0 or 'S\\d+'")
    if kind == "folder":
        try:
            int(argument)
        except ValueError:
            raise GroupByError(f"--group-by {text!r}: folder: takes a folder level, e.g. folder:0 (the first "
                               "folder) or folder:-1 (the image's own folder)") from None
    if kind == "re":
        try:
            re.compile(argument)
        except re.error as error:
            raise GroupByError(f"--group-by {text!r}: not a regular expression ({error}); quote it in the "
                               "shell, e.g. --group-by 'S\\d+'") from None
    return GroupBy(kind, argument)


def group_ids(
    group_by: Union[str, GroupBy],
    paths: Sequence[str],
    columns: Optional[Mapping[str, Sequence[str]]] = None,
) -> np.ndarray:
    """The group id (str) of each record, from its relative path or its CSV row (``columns``:
    the manifest's cells by column, as :attr:`featcache.datasets.Dataset.columns`)."""
    spec = parse_group_by(group_by)
    if spec.kind == "col":
        return _column(spec, paths, columns or {})
    found = [_from_path(spec, path) for path in paths]
    missing = [path for path, group in zip(paths, found) if group is None]
    if missing:
        what = (f"no folder level {spec.argument}" if spec.kind == "folder"
                else f"no match of '{spec.argument}'" + (" (or an empty first group)" if spec.pattern.groups else ""))
        raise GroupByError(f"--group-by {spec}: {len(missing)} of {len(paths)} records have {what}, e.g. "
                           f"{missing[0]}; change the pattern so it covers every path (or use col:/folder:)")
    return np.array(found, dtype=str)


def dataset_groups(dataset: "Dataset", group_by: Union[str, GroupBy]) -> tuple[np.ndarray, str]:
    """(group id per record, the ``--group-by`` text as stored) of a dataset about to be extracted."""
    spec = parse_group_by(group_by)
    return group_ids(spec, dataset.paths, dataset.columns), str(spec)


def _from_path(spec: GroupBy, path: str) -> Optional[str]:
    if spec.kind == "folder":
        folders = PurePosixPath(path).parent.parts
        level = int(spec.argument)
        return folders[level] if -len(folders) <= level < len(folders) else None
    match = spec.pattern.search(path)
    if match is None:
        return None
    found = match.group(1) if spec.pattern.groups else match.group(0)
    return found or None


def _column(spec: GroupBy, paths: Sequence[str], columns: Mapping[str, Sequence[str]]) -> np.ndarray:
    if not columns:
        raise GroupByError(f"--group-by {spec}: groups from a column need the records' CSV manifest: extract "
                           f"with --group-by {spec}, or run `featcache groups CACHE --group-by {spec} --data "
                           "MANIFEST.csv` once (or group by a pattern or folder of the paths)")
    if spec.argument not in columns:
        raise GroupByError(f"--group-by {spec}: the manifest has no column {spec.argument!r} (it has "
                           f"{', '.join(columns)})")
    cells = np.array(list(columns[spec.argument]), dtype=str)
    empty = np.flatnonzero(cells == "")
    if empty.size:
        raise GroupByError(f"--group-by {spec}: {empty.size} records have an empty {spec.argument!r}, e.g. "
                           f"{paths[int(empty[0])]}; fill it in the manifest")
    return cells


def group_summary(ids: np.ndarray, group_by: str) -> dict:
    """How records are grouped: ``group_by``, the number of ``groups``, the ``smallest`` and
    ``largest`` group's size, and all of it as one line (``118 groups by col:subject (3 to 14
    records each)``)."""
    _, sizes = np.unique(ids, return_counts=True)
    smallest, largest = int(sizes.min()), int(sizes.max())
    spread = f"{smallest} to {largest} records each" if smallest != largest else \
        f"{smallest} record{'s' if smallest > 1 else ''} each"
    return {"group_by": group_by, "groups": len(sizes), "smallest": smallest, "largest": largest,
            "summary": f"{len(sizes)} groups by {group_by} ({spread})"}


def set_groups(cache: Union[str, Path], group_by: Union[str, GroupBy], data: Union[str, Path, None] = None) -> str:
    """Group the records of a cache (no extraction): their ids from ``group_by`` over the
    paths the cache holds, or over the CSV manifest ``data`` for ``col:NAME``. Stored splits
    made otherwise are removed (they are made again, by group, on next use). Returns one
    line saying what was stored and removed."""
    from .datasets import open_dataset
    from .store import CacheError, open_cache, writer_lock

    cache = Path(cache)
    spec = parse_group_by(group_by)
    with open_cache(cache) as reader:
        paths, ids = reader.column("paths"), reader.column("ids")
    columns = None
    if data is not None:
        dataset = open_dataset(data)
        if list(dataset.ids) != list(ids):
            raise CacheError(f"{data} lists other records than {cache} ({len(dataset)} vs {len(ids)}, or another "
                             "order); pass the manifest the cache was extracted from")
        columns = dataset.columns
    groups = group_ids(spec, paths, columns)
    with writer_lock(cache):
        return store_groups(cache, groups, str(spec))


def store_groups(cache: Path, groups: np.ndarray, group_by: str) -> str:
    """Store record groups unless the cache holds these already; one line saying what was done.
    The caller holds the cache's writer lock."""
    from .store import open_cache, set_record_groups, tidy

    with open_cache(cache, shards=True) as reader:
        stored = reader.record_groups()
    if stored is not None and stored[1] == group_by and np.array_equal(stored[0], groups):
        tidy(cache)  # what a grouping killed before it finished left
        return f"records grouped as before: {group_summary(groups, group_by)['summary']}"
    removed = set_record_groups(cache, groups, group_by)
    dropped = f"; removed the splits made otherwise ({', '.join(removed)}), made again by group on next use" \
        if removed else ""
    return f"records grouped: {group_summary(groups, group_by)['summary']}{dropped}"
