"""The index of a format 2 cache: attributes and links, read whole and written whole.

Every change to a cache (a committed view, a group, a split, a removal) writes its own
data file first and then a new index in the old one's place, atomically: a crash leaves the
old index or the new one. The index holds no data, so writing it costs the same whatever
the cache holds.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

import h5py

from ..errors import CacheError, UsageError
from ..files import atomic_file
from typing import Optional

from .layout import (
    FORMAT,
    FORMAT_ATTR,
    GROUPS,
    RECORD_GROUPS,
    RECORDS,
    RECORDS_ROOT,
    SPLIT_ROOT,
    SPLITS,
    VIEW_ROOT,
    data_folder,
)


@dataclass
class Index:
    """What a format 2 index says: the cache's attributes and the data file of each part
    (file names relative to the data folder)."""

    attrs: dict
    records: str
    groups: dict[str, dict] = field(default_factory=dict)  # key -> the group's attributes
    views: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> view -> file
    splits: dict[str, str] = field(default_factory=dict)  # name -> file
    record_groups: Optional[str] = None  # the file of the records' group ids, when set
    checks: dict[str, str] = field(default_factory=dict)  # split name -> its leakage check (JSON)

    def files(self) -> set[str]:
        """Every data file the index links."""
        return {self.records, *self.splits.values(), *(f for views in self.views.values() for f in views.values()),
                *([self.record_groups] if self.record_groups else [])}

    def changed(self) -> "Index":
        """A copy to change (the read index stays as it was)."""
        return copy.deepcopy(self)


def read_index(cache: Path) -> Index:
    """The index of the format 2 cache ``cache`` (its links, never followed)."""
    prefix = data_folder(cache).name + "/"

    def link(group: h5py.Group, name: str) -> str:
        target = group.get(name, getlink=True).filename
        if not target.startswith(prefix):  # an index copied or renamed without its data folder
            raise CacheError(f"{cache} links {target}, outside its own {prefix} folder: a cache is its index and "
                             "the data folder it was made with; move or copy both together under their own names "
                             "(or rename them back)")
        return target.removeprefix(prefix)

    with h5py.File(cache, "r") as handle:
        groups = handle.get(GROUPS, {})
        return Index(
            attrs=dict(handle.attrs),
            records=link(handle, RECORDS),
            groups={key: dict(group.attrs) for key, group in groups.items()},
            views={key: {view: link(group, view) for view in group} for key, group in groups.items()},
            splits={name: link(handle[SPLITS], name) for name in handle.get(SPLITS, {})},
            record_groups=link(handle, RECORD_GROUPS) if RECORD_GROUPS in handle else None,
            checks={name: str(value) for name, value in handle[SPLITS].attrs.items()} if SPLITS in handle else {},
        )


def write_index(cache: Path, index: Index) -> None:
    """Put ``index`` in the cache's place, atomically."""
    if index.attrs.get(FORMAT_ATTR) != FORMAT:
        raise UsageError(f"an index is format {FORMAT}, got {index.attrs.get('featcache_format')!r}")
    prefix = data_folder(cache).name + "/"
    with atomic_file(cache) as temporary, h5py.File(temporary, "w") as handle:
        handle.attrs.update(index.attrs)
        handle[RECORDS] = h5py.ExternalLink(prefix + index.records, "/" + RECORDS_ROOT)
        for key, attrs in index.groups.items():
            group = handle.create_group(f"{GROUPS}/{key}")
            group.attrs.update(attrs)
            for view, name in index.views.get(key, {}).items():
                group[view] = h5py.ExternalLink(prefix + name, "/" + VIEW_ROOT)
        for name, file in index.splits.items():
            handle[f"{SPLITS}/{name}"] = h5py.ExternalLink(prefix + file, "/" + SPLIT_ROOT)
            if name in index.checks:
                handle[SPLITS].attrs[name] = index.checks[name]
        if index.record_groups:
            handle[RECORD_GROUPS] = h5py.ExternalLink(prefix + index.record_groups, "/" + RECORD_GROUPS)
