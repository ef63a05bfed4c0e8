"""Reading a cache of either format through one object, :class:`CacheReader`."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import h5py
import numpy as np

from ..errors import CacheError
from .layout import (
    FAILED_INDICES,
    FAILED_REASONS,
    FEATURES,
    FORMAT_ATTR,
    GROUP_BY,
    GROUPS,
    LEFT_OUT,
    MERGED_FROM,
    READABLE,
    RECORD_GROUPS,
    RECORDS,
    SPLITS,
    data_folder,
    group_path,
    split_path,
    view_path,
)

SHARD_ATTRS = ("shard_index", "shard_count", "record_start", "record_stop")


@dataclass(frozen=True)
class View:
    """One stored view of a group: features (left on disk) and the records that failed."""

    key: str
    name: str
    features: h5py.Dataset  # (rows, dim), NaN rows for failed records
    failed_indices: np.ndarray  # (K,) int64 record indices
    failed_reasons: list[str]
    attrs: dict
    file: Optional[Path]  # its own file (format 2); None when it lives in the index (format 1)

    @property
    def shard(self) -> Optional[tuple[int, int]]:
        """``(index, count)`` of the shard it holds, or None for a whole view."""
        if "shard_index" not in self.attrs:
            return None
        return int(self.attrs["shard_index"]), int(self.attrs["shard_count"])

    def source_file(self, index: Path) -> Path:
        """The file that holds this view's data (the index itself in format 1)."""
        return self.file if self.file is not None else index


class CacheReader:
    """An open cache, read through the names of its format (1 or 2 read alike)."""

    def __init__(self, handle: h5py.File, path: Path):
        self.handle = handle
        self.path = path
        self._open: list = []  # the linked parts, held open: a writer may unlink them meanwhile

    # -- the cache's attributes
    @property
    def format(self) -> int:
        return int(self.handle.attrs[FORMAT_ATTR])

    @property
    def fingerprint(self) -> str:
        return str(self.handle.attrs["dataset_fingerprint"])

    @property
    def n_records(self) -> int:
        return int(self.handle.attrs["n_records"])

    @property
    def class_names(self) -> list[str]:
        return json.loads(self.handle.attrs["class_names"])

    @property
    def attrs(self) -> dict:
        return dict(self.handle.attrs)

    @property
    def created(self) -> str:
        return str(self.handle.attrs["created"])

    @property
    def dataset(self) -> dict:
        """The data it was made from: layout, root folder, fingerprint, and what the folder left
        out by reason (:func:`featcache.datasets.left_out_record`; None in caches made before
        featcache recorded it)."""
        attrs = self.handle.attrs
        return {"layout": str(attrs["dataset_layout"]), "root": str(attrs["dataset_root"]),
                "fingerprint": str(attrs["dataset_fingerprint"]),
                "left_out": json.loads(attrs[LEFT_OUT]) if LEFT_OUT in attrs else None}

    @property
    def merged_from(self) -> Optional[list[str]]:
        """The shard files a merged cache reads (relative to it), or None."""
        return json.loads(self.handle.attrs[MERGED_FROM]) if MERGED_FROM in self.handle.attrs else None

    # -- records
    def has_column(self, name: str) -> bool:
        return name in self.handle[RECORDS]

    def column(self, name: str) -> Optional[np.ndarray]:
        """One record column (strings decoded; content hashes as str), or None if not stored."""
        records = self.handle[RECORDS]
        if name not in records:
            return None
        dataset = records[name]
        if name in ("ids", "paths"):
            return dataset.asstr()[()]
        values = dataset[()]
        return values.astype(str) if name == "content_hashes" else values

    def record_groups(self) -> Optional[tuple[np.ndarray, str]]:
        """The group id of every record (str) and how they were made (the ``--group-by`` text),
        or None when none are set."""
        if RECORD_GROUPS not in self.handle:
            return None
        dataset = self.handle[RECORD_GROUPS]
        return dataset.asstr()[()], str(dataset.attrs[GROUP_BY])

    # -- groups and views
    def groups(self) -> dict[str, dict]:
        """Every group key with its configuration."""
        return {key: json.loads(group.attrs["config"]) for key, group in self.handle.get(GROUPS, {}).items()}

    def group_attrs(self, key: str) -> dict:
        return dict(self.handle[group_path(key)].attrs)

    def views(self, key: str) -> list[str]:
        return list(self.handle[group_path(key)]) if group_path(key) in self.handle else []

    def has_view(self, key: str, view: str) -> bool:
        return view_path(key, view) in self.handle

    def view(self, key: str, view: str) -> View:
        node = self.handle[view_path(key, view)]
        link = self.handle[group_path(key)].get(view, getlink=True)
        file = self.path.parent / link.filename if isinstance(link, h5py.ExternalLink) else None
        return View(key=key, name=view, features=node[FEATURES], failed_indices=node[FAILED_INDICES][()],
                    failed_reasons=list(node[FAILED_REASONS].asstr()[()]), attrs=dict(node.attrs), file=file)

    def all_views(self) -> Iterator[View]:
        for key in self.groups():
            for name in self.views(key):
                yield self.view(key, name)

    # -- splits
    def split(self, name: str) -> Optional[tuple[np.ndarray, dict]]:
        """A stored split's parts and attributes, or None."""
        if split_path(name) not in self.handle:
            return None
        node = self.handle[split_path(name)]
        return node[()], dict(node.attrs)

    def splits(self) -> list[str]:
        return list(self.handle.get(SPLITS, {}))

    def split_check(self, name: str) -> Optional[dict]:
        """The stored leakage check of split ``name`` (see :mod:`featcache.leaks`), or None."""
        stored = self.handle[SPLITS].attrs.get(name) if SPLITS in self.handle else None
        return json.loads(stored) if stored is not None else None

    # -- files
    def linked_files(self) -> list[Path]:
        """Every file the index links (format 2; none in format 1)."""
        return [self.path.parent / name for name in self._links()]

    def _links(self) -> Iterator[str]:
        def visit(group: h5py.Group) -> Iterator[str]:
            for name in group:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    yield link.filename
                elif isinstance(link, h5py.HardLink) and isinstance(group[name], h5py.Group):
                    yield from visit(group[name])

        yield from visit(self.handle)

    def check_files(self) -> None:
        """Refuse a cache whose linked files, or merged shards' files, are not where it says; hold
        the linked parts open, so a reader keeps reading what it opened."""
        for name in self._links():
            if not (self.path.parent / name).is_file():
                raise CacheError(
                    f"{self.path}: its file {name} is missing; a cache is its index and the folder "
                    f"{data_folder(self.path).name} beside it, under the names they were made with: put the folder "
                    "back (or rename both back)")
        self._open = [self.handle[RECORDS]] if self.format == 2 else []
        if RECORD_GROUPS in self.handle:
            self._open.append(self.handle[RECORD_GROUPS])
        self._open += [self.handle[split_path(name)] for name in self.splits()]  # regrouping removes splits
        for view in self.all_views():
            self._open.append(view.features)
            if view.features.is_virtual:
                self._check_sources(view.features, view.source_file(self.path).parent)

    def _check_sources(self, features: h5py.Dataset, folder: Path) -> None:
        """Every source of a merged view must be found, or it would read as NaN."""
        for source in features.virtual_sources():
            if source.file_name == ".":
                continue
            try:
                with h5py.File(folder / source.file_name, "r") as handle:
                    handle[source.dset_name].shape
            except (OSError, KeyError):
                raise CacheError(f"{self.path}: its features are in the shard file {source.file_name}, "
                                 "which is missing; put the shard files (and their .data folders) back "
                                 "beside it, or merge again") from None

    def refuse_shard(self) -> None:
        """Refuse an unmerged shard: it holds a slice, not a dataset."""
        for view in self.all_views():
            if view.shard is not None:
                index, count = view.shard
                raise CacheError(
                    f"{self.path} is shard {index}/{count} (records {view.attrs['record_start']}.."
                    f"{view.attrs['record_stop'] - 1}), not a whole cache; join all {count} shards with "
                    "`featcache merge SHARD... --out FILE` and read the merged file")


@contextmanager
def open_cache(cache: Path, *, shards: bool = False) -> Iterator[CacheReader]:
    """Open a committed cache for reading, with a clear error for anything else.

    An unmerged shard (see :mod:`featcache.store.shards`) is refused unless ``shards``, and so
    is a cache whose linked files or shard files are not beside it.
    """
    cache = Path(cache)
    if not cache.is_file():
        raise CacheError(f"{cache}: no such cache file; make one with `featcache extract`")
    try:
        handle = h5py.File(cache, "r")
    except OSError as error:
        raise CacheError(f"{cache}: not a readable HDF5 file ({str(error).splitlines()[0]})") from None
    with handle:
        if handle.attrs.get(FORMAT_ATTR) not in READABLE:
            raise CacheError(f"{cache}: not a featcache cache (format {handle.attrs.get('featcache_format')!r})")
        reader = CacheReader(handle, cache)
        reader.check_files()
        if not shards:
            reader.refuse_shard()
        yield reader


def has_view(cache: Path, key: str, view: str) -> bool:
    """Whether ``cache`` exists and holds view ``view`` of group ``key``."""
    if not cache.exists():
        return False
    with open_cache(cache, shards=True) as reader:
        return reader.has_view(key, view)


def merged_from(cache: Path) -> Optional[list[str]]:
    """The shard files ``cache`` was merged from ([] if it was not merged), read even when they
    are gone (to merge again); None if it is no readable HDF5 file."""
    try:
        with h5py.File(cache, "r") as handle:
            return json.loads(handle.attrs.get(MERGED_FROM, "[]"))
    except OSError:
        return None


def cache_format(cache: Path) -> Optional[int]:
    """The format of the cache at ``cache``, or None when there is none."""
    if not cache.is_file():
        return None
    with open_cache(cache, shards=True) as reader:
        return reader.format
