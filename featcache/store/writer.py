"""Writing a cache: each change writes its own data file, then a new index (format 2).

Safety rules, all tested:

* Nothing linked is ever changed: new data goes to a fresh file in the data folder, and only
  a new index, put in the old one's place atomically, makes it part of the cache. A kill at any
  moment leaves the old cache or the new one; a file written but not yet linked is not data,
  and :func:`tidy` deletes it under the next writer's lock.
* One writer at a time: :func:`writer_lock` holds an exclusive lock file.
* A cache made from other data (fingerprint mismatch) is refused, never mixed.
* A format 1 cache (earlier releases) is read as before but never written: ``featcache
  upgrade`` converts it once, on request.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import h5py
import numpy as np

from ..errors import CacheError, CacheLocked
from ..files import leftovers, sync_directory, sync_file
from .index import Index, read_index, write_index
from .layout import (
    FEATURES,
    FORMAT,
    GROUPS_DIGEST,
    RECORD_GROUPS,
    RECORDS_ROOT,
    SPLIT_ROOT,
    SPLITS,
    VIEW_ROOT,
    Records,
    check_name,
    data_folder,
    groups_digest,
    lock_path,
    new_file_name,
    partial_folder,
    write_record_groups,
    write_records,
    write_view_record,
)
from .partial import files_in_progress, finish_view_files, forget
from .reader import cache_format, open_cache


@contextmanager
def writer_lock(cache: Path) -> Iterator[None]:
    """Exclusive right to write ``cache`` (a lock on ``<cache>.lock``), or CacheLocked."""
    path = lock_path(Path(cache))
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CacheLocked(
                f"{cache} is being written by {holder}; wait for it to finish or write to another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"featcache pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the lock


def check_dataset(cache: Path, fingerprint: str) -> None:
    """Refuse a cache that was made from other data."""
    if not cache.exists():
        return
    with open_cache(cache, shards=True) as reader:
        stored = reader.fingerprint
    if stored != fingerprint:
        raise CacheError(
            f"{cache} was made from other data (dataset fingerprint {str(stored)[:12]}, this data {fingerprint[:12]}); "
            "write to another --out, or delete the file to start over"
        )


def check_writable(cache: Path) -> None:
    """Refuse, in one line, to write a format 1 cache (it is read as before)."""
    if cache_format(cache) == 1:
        raise CacheError(f"{cache} is a format 1 cache (from an earlier featcache): it reads as before, but to add "
                         f"to it run `featcache upgrade {cache}` once")


# ------------------------------------------------------------------------------ data files


def write_data_file(cache: Path, name: str, fill: Callable[[h5py.File], None]) -> str:
    """A new file ``name`` in the data folder, filled and made durable (not yet linked)."""
    path = data_folder(cache) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        fill(handle)
    make_durable(cache, path)
    return name


def make_durable(cache: Path, path: Path) -> None:
    """A data file, and its entries in the data folder, safely on disk before an index links it."""
    sync_file(path)
    for folder in {path.parent, data_folder(cache)}:
        sync_directory(folder)


@contextmanager
def writing_view(cache: Path, key: str, view: str, shape: tuple[int, int], dtype, *, group_attrs: dict,
                 failed: Sequence[int] = (), reasons: Sequence[str] = (), stats: Optional[dict] = None,
                 records: Optional[Records] = None, chunks: Optional[tuple[int, int]] = None) -> Iterator[h5py.Dataset]:
    """A new view of group ``key`` (made with ``group_attrs`` if new) whose features the block
    fills; linked when the block succeeds. A new cache needs ``records``. The caller holds the lock."""
    check_name("view", view)
    index = _current_index(cache, records).changed()
    if view in index.views.get(key, {}):
        raise CacheError(f"{cache}: group {key} already has a {view!r} view; remove it first "
                         f"(`featcache remove {cache} --group {key} --view {view}`)")
    name = new_file_name(key, view)
    path = data_folder(cache) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        node = handle.create_group(VIEW_ROOT)
        yield node.create_dataset(FEATURES, shape=shape, dtype=dtype, chunks=chunks)
        write_view_record(node, failed, reasons, stats or {})
    make_durable(cache, path)
    index.groups.setdefault(key, group_attrs)
    index.views.setdefault(key, {})[view] = name
    publish(cache, index)


def add_view(cache: Path, key: str, view: str, features: np.ndarray, **options) -> None:
    """Store computed features as a new view: :func:`writing_view` with them."""
    with writing_view(cache, key, view, features.shape, features.dtype, **options) as dataset:
        dataset[...] = features


def _current_index(cache: Path, records: Optional[Records]) -> Index:
    """The cache's index, or a new one (its records file written) for a cache not made yet."""
    if cache.exists():
        check_writable(cache)
        return read_index(cache)
    if records is None:
        raise CacheError(f"{cache}: no such cache file; make one with `featcache extract`")
    name = write_data_file(cache, new_file_name(RECORDS_ROOT),
                           lambda handle: write_records(handle.create_group(RECORDS_ROOT), records))
    return Index(attrs=records.attrs(FORMAT), records=name)


# ------------------------------------------------------------------------------ changes


def publish(cache: Path, index: Index) -> int:
    """Make ``index`` the cache's, then delete what it no longer links; the bytes freed."""
    write_index(cache, index)
    return tidy(cache)


def commit_extraction(cache: Path, key: str, group_attrs: dict, records: Records, stats: dict) -> None:
    """Link the finished extraction of ``key`` (its view files, written in place) into the
    cache, creating the cache if needed, and drop its progress file. The caller holds the lock."""
    files = finish_view_files(cache, key, stats)
    for name in files.values():
        make_durable(cache, data_folder(cache) / name)
    index = _current_index(cache, records).changed()
    index.attrs.update(records.left_out_attrs())  # as this extraction found the dataset folder
    index.groups.setdefault(key, group_attrs)
    index.views.setdefault(key, {}).update(files)
    publish(cache, index)
    forget(cache, key)


def add_split(cache: Path, name: str, parts: np.ndarray, attrs: dict) -> None:
    """Store a split (part per record). The caller holds the lock."""
    check_name("split", name)
    index = _current_index(cache, None).changed()
    if name in index.splits:
        raise CacheError(f"{cache}: split {name!r} is stored already; use another name")

    def fill(handle: h5py.File) -> None:
        handle.create_dataset(SPLIT_ROOT, data=parts, dtype=np.int8).attrs.update(attrs)

    index.splits[name] = write_data_file(cache, new_file_name(SPLITS, name), fill)
    publish(cache, index)


def set_record_groups(cache: Path, ids: Sequence[str], group_by: str) -> list[str]:
    """Store a group id per record, replacing any stored before; the stored splits made with other
    groups (they may put one group on both sides) are removed and their names returned. The
    caller holds the lock."""
    index = _current_index(cache, None).changed()
    digest = groups_digest(ids)
    with open_cache(cache, shards=True) as reader:
        stale = [name for name in index.splits if (reader.split(name) or ({}, {}))[1].get(GROUPS_DIGEST, "") != digest]
    for name in stale:
        del index.splits[name]
        index.checks.pop(name, None)
    index.record_groups = write_data_file(cache, new_file_name(RECORD_GROUPS),
                                          lambda handle: write_record_groups(handle, ids, group_by))
    publish(cache, index)
    return stale


def store_check(cache: Path, split: str, check: str) -> None:
    """Keep the leakage check (JSON) of a stored split in the index. The caller holds the lock."""
    index = _current_index(cache, None).changed()
    if split not in index.splits:
        raise CacheError(f"{cache}: no split {split!r} to keep a check for")
    index.checks[split] = check
    publish(cache, index)


@dataclass(frozen=True)
class Removed:
    """What :func:`remove` deleted."""

    path: Path
    group: str
    views: tuple[str, ...]
    bytes: int

    def summary(self) -> str:
        return (f"{self.path}: removed {self.group} ({', '.join(self.views)}), "
                f"{self.bytes / 2**20:,.1f} MiB freed")


def remove(cache, group: str, view: Optional[str] = None) -> Removed:
    """Delete a group (every view) or one view of it, and free its disk."""
    cache = Path(cache)
    with writer_lock(cache):
        check_writable(cache)
        freed = tidy(cache)  # what an earlier removal, killed, left
        with open_cache(cache, shards=True) as reader:
            if group not in reader.groups():
                raise CacheError(f"{cache} has no group {group!r}; `featcache info {cache}` lists them")
            held = reader.views(group)
        if view is not None and view not in held:
            raise CacheError(f"{cache}: group {group} has no {view!r} view (it has {', '.join(held)})")
        index = read_index(cache).changed()
        gone = [view] if view is not None else held
        for name in gone:
            del index.views[group][name]
        if not index.views[group]:
            del index.views[group], index.groups[group]
        freed += publish(cache, index)
    return Removed(cache, group, tuple(gone), freed)


def delete_cache(cache) -> None:
    """Delete a whole cache: its index first (then it is gone for every reader), then its data
    and unfinished work."""
    cache = Path(cache)
    with writer_lock(cache):  # its lock file stays: another writer may be waiting on it
        cache.unlink(missing_ok=True)
        for folder in (data_folder(cache), partial_folder(cache)):
            shutil.rmtree(folder, ignore_errors=True)


def tidy(cache: Path) -> int:
    """Delete the data files nothing refers to (left by a crash, or unlinked), and progress files
    of extractions already committed; the bytes freed. The caller holds the lock."""
    for path in leftovers(cache):  # an index being written when a process was killed
        path.unlink()
    folder = data_folder(cache)
    if not folder.is_dir() or not cache.exists():  # without its index nothing is known to be unlinked
        return 0
    index = read_index(cache) if cache_format(cache) == FORMAT else None  # format 1 links nothing
    linked = index.files() if index is not None else set()
    in_progress = files_in_progress(cache)
    for key, files in in_progress.items():
        if index is not None and files and all(index.views.get(key, {}).get(v) == f for v, f in files.items()):
            forget(cache, key)  # committed; only its progress file was left
    kept = linked | {f for files in in_progress.values() for f in files.values()}
    freed = 0
    for path in sorted(folder.rglob("*.h5")):
        if path.relative_to(folder).as_posix() not in kept:
            freed += path.stat().st_size
            path.unlink()
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    if partial_folder(cache).is_dir() and not any(partial_folder(cache).iterdir()):
        partial_folder(cache).rmdir()
    return freed
