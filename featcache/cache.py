"""The HDF5 feature cache: schema, crash-safe writing, reading.

One file per dataset. Records (ids, paths, labels, valence, arousal, landmarks,
content hashes) are stored once; each backbone configuration is a group under
``/groups``, each view of it (``original``, ``flip``, ``crop0.9``, ...) a subgroup with its features.
The schema is documented in README.md ("The cache file").

Safety rules, all tested:

* The cache file itself is never written in place. Work in progress goes to a
  partial file beside it (``<cache>.partial/<group>.h5``); a finished group is
  committed by writing a new copy of the cache and ``os.replace``-ing it, so a kill
  at any moment leaves either the old file or the new one, never a broken one.
* A partial file records ``next_record`` only after the rows before it are flushed,
  so it never claims rows that were not written; a killed run resumes from there
  (an unreadable partial file is discarded: only unfinished work is lost).
* One writer at a time: :func:`writer_lock` holds an exclusive lock file.
* A cache made from other data (fingerprint mismatch) is refused, never mixed.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional, Sequence

import h5py
import numpy as np

from .errors import FeatcacheError

FORMAT_VERSION = 1
_STR = h5py.string_dtype("utf-8")


class CacheError(FeatcacheError, ValueError):
    """A cache cannot be used as asked; the message says which file and what to do."""


class CacheLocked(CacheError):
    """Another process is writing the cache."""


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------------ locking


@contextmanager
def writer_lock(cache: Path) -> Iterator[None]:
    """Exclusive right to write ``cache`` (a lock on ``<cache>.lock``), or CacheLocked."""
    lock_path = cache.with_name(cache.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
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


# ------------------------------------------------------------------ group identity


def group_key(config: dict) -> str:
    """``<backbone>-<10 hex>``: readable, and unique per configuration."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return f"{config['backbone']}-{hashlib.sha256(canonical.encode()).hexdigest()[:10]}"


def group_attrs(config: dict, *, featcache_version: str, tensorflow_version: str, keras_version: str) -> dict:
    """A group's attributes: its configuration as JSON and field by field (lists and dicts as
    JSON), the library versions that made it, and when."""
    return {
        "config": json.dumps(config, sort_keys=True),
        **{k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in config.items()},
        "featcache_version": featcache_version,
        "tensorflow_version": tensorflow_version,
        "keras_version": keras_version,
        "created": now(),
    }


def partial_path(cache: Path, key: str) -> Path:
    return cache.with_name(cache.name + ".partial") / f"{key}.h5"


# ------------------------------------------------------------------------ records


@dataclass(frozen=True)
class Records:
    """What the cache stores once per dataset, aligned by record index."""

    ids: Sequence[str]
    paths: Sequence[str]
    labels: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    landmarks: Optional[np.ndarray]
    content_hashes: Sequence[str]
    class_names: Sequence[str]
    fingerprint: str
    layout: str
    root: str

    def __len__(self) -> int:
        return len(self.ids)


def _write_records(handle: h5py.File, records: Records) -> None:
    handle.attrs.update({
        "featcache_format": FORMAT_VERSION,
        "created": now(),
        "dataset_fingerprint": records.fingerprint,
        "dataset_layout": records.layout,
        "dataset_root": records.root,
        "n_records": len(records),
        "class_names": json.dumps(list(records.class_names)),
    })
    group = handle.create_group("records")
    group.create_dataset("ids", data=list(records.ids), dtype=_STR)
    group.create_dataset("paths", data=list(records.paths), dtype=_STR)
    group.create_dataset("labels", data=np.asarray(records.labels, dtype=np.int16))
    group.create_dataset("valence", data=np.asarray(records.valence, dtype=np.float32))
    group.create_dataset("arousal", data=np.asarray(records.arousal, dtype=np.float32))
    group.create_dataset("content_hashes", data=np.asarray(records.content_hashes, dtype="S64"))
    if records.landmarks is not None:
        group.create_dataset("landmarks", data=np.asarray(records.landmarks, dtype=np.float32))


def check_dataset(cache: Path, fingerprint: str) -> None:
    """Refuse a cache that was made from other data."""
    if not cache.exists():
        return
    with open_cache(cache, shards=True) as handle:
        stored = handle.attrs.get("dataset_fingerprint")
    if stored != fingerprint:
        raise CacheError(
            f"{cache} was made from other data (dataset fingerprint {str(stored)[:12]}, this data {fingerprint[:12]}); "
            "write to another --out, or delete the file to start over"
        )


@contextmanager
def open_cache(cache: Path, *, shards: bool = False) -> Iterator[h5py.File]:
    """Open a committed cache for reading, with a clear error for anything else.

    An unmerged shard (see :mod:`featcache.shards`) is refused unless ``shards``, and so is
    a merged cache whose shard files are not beside it.
    """
    if not cache.is_file():
        raise CacheError(f"{cache}: no such cache file; make one with `featcache extract`")
    try:
        handle = h5py.File(cache, "r")
    except OSError as error:
        raise CacheError(f"{cache}: not a readable HDF5 file ({str(error).splitlines()[0]})") from None
    with handle:
        if handle.attrs.get("featcache_format") != FORMAT_VERSION:
            raise CacheError(f"{cache}: not a featcache cache (format {handle.attrs.get('featcache_format')!r})")
        if not shards:
            from .shards import check_whole

            check_whole(handle, cache)
        yield handle


def has_view(cache: Path, key: str, view: str) -> bool:
    if not cache.exists():
        return False
    with open_cache(cache, shards=True) as handle:
        return f"groups/{key}/{view}" in handle


# ------------------------------------------------------------------ partial files


class PartialWriter:
    """Features of one group being extracted, resumable across crashes.

    ``next_record`` (an attribute) is raised only after the rows before it are
    flushed to disk, so it never claims rows that were not written. ``rows``: the
    records this writer holds (default all; a shard holds a slice), row 0 = ``rows.start``.
    """

    def __init__(self, path: Path, config: dict, fingerprint: str, views: Sequence[str], n_records: int,
                 rows: Optional[range] = None):
        self.path = path
        self.views = tuple(views)
        self.rows = rows if rows is not None else range(n_records)
        self.handle = self._open(path, config, fingerprint, n_records)

    def _open(self, path: Path, config: dict, fingerprint: str, n_records: int) -> h5py.File:
        identity = {"config": json.dumps(config, sort_keys=True), "dataset_fingerprint": fingerprint,
                    "views": json.dumps(list(self.views)), "n_records": n_records,
                    "record_range": json.dumps([self.rows.start, self.rows.stop])}
        if path.exists():
            try:
                handle = h5py.File(path, "a")
                if all(handle.attrs.get(k) == v for k, v in identity.items()):
                    self._forget_failures_after(handle, int(handle.attrs["next_record"]))
                    return handle
                handle.close()
            except (OSError, KeyError, ValueError):
                pass  # unreadable after a crash, or for other work: only unfinished work is lost
            path.unlink()
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = h5py.File(path, "w")
        handle.attrs.update(identity)
        handle.attrs["next_record"] = self.rows.start
        dim = int(config["feature_dim"])
        chunk_rows = max(1, min(len(self.rows), (1 << 20) // (4 * dim)))  # about 1 MiB per chunk
        for view in self.views:
            handle.create_dataset(f"{view}/features", shape=(len(self.rows), dim), dtype=np.float32,
                                  chunks=(chunk_rows, dim), fillvalue=np.nan)
        handle.create_dataset("failed_indices", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        handle.create_dataset("failed_reasons", shape=(0,), maxshape=(None,), dtype=_STR, chunks=(256,))
        handle.flush()
        return handle

    @staticmethod
    def _forget_failures_after(handle: h5py.File, next_record: int) -> None:
        """Drop failures recorded after the last checkpoint: the resumed run finds them again."""
        keep = int(np.sum(handle["failed_indices"][()] < next_record))
        for name in ("failed_indices", "failed_reasons"):
            handle[name].resize((keep,))

    @property
    def next_record(self) -> int:
        return int(self.handle.attrs["next_record"])

    def write(self, view: str, indices: np.ndarray, features: np.ndarray) -> None:
        block = _spread(indices, features)
        first = int(indices[0]) - self.rows.start
        self.handle[f"{view}/features"][first : first + len(block)] = block

    def fail(self, index: int, reason: str) -> None:
        for name, value in (("failed_indices", index), ("failed_reasons", reason)):
            dataset = self.handle[name]
            dataset.resize((dataset.shape[0] + 1,))
            dataset[-1] = value

    def checkpoint(self, next_record: int) -> None:
        """Make every row before ``next_record`` durable, then say so."""
        self.handle.flush()
        self.handle.attrs["next_record"] = next_record
        self.handle.flush()

    def close(self) -> None:
        self.handle.close()


def _spread(indices: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Rows for the index range indices[0]..indices[-1], NaN where a record failed."""
    block = np.full((indices[-1] - indices[0] + 1, features.shape[1]), np.nan, dtype=np.float32)
    block[indices - indices[0]] = features
    return block


# ------------------------------------------------------------------------ commit


@contextmanager
def atomic_replacement(target: Path, *, start_from_target: bool = False) -> Iterator[Path]:
    """A temporary path beside ``target`` (a copy of it when ``start_from_target``); when the
    block succeeds it is fsynced and put in ``target``'s place atomically, else removed."""
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        if start_from_target and target.exists():
            shutil.copyfile(target, temporary)
        yield temporary
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def rewrite(cache: Path, records: Optional[Records] = None) -> Iterator[h5py.File]:
    """Change a copy of the cache, then atomically put it in the cache's place.

    A crash at any moment leaves the old file or the new one, never a broken one. A new
    cache needs ``records``. The caller must hold :func:`writer_lock`.
    """
    with atomic_replacement(cache, start_from_target=True) as temporary:
        with h5py.File(temporary, "a") as handle:
            if "records" not in handle:
                if records is None:
                    raise CacheError(f"{cache}: no such cache file; make one with `featcache extract`")
                _write_records(handle, records)
            yield handle


def commit(cache: Path, partial: Path, key: str, group_attrs: dict, records: Records, stats: dict) -> None:
    """Add the finished partial file's views to the cache, atomically, and drop the partial file."""
    with rewrite(cache, records) as handle, h5py.File(partial, "r") as source:
        group = handle.require_group(f"groups/{key}")
        if not group.attrs:
            group.attrs.update(group_attrs)
        for view in json.loads(source.attrs["views"]):
            target = group.create_group(view)
            source.copy(source[f"{view}/features"], target, name="features")
            target.create_dataset("failed_indices", data=source["failed_indices"][()])
            target.create_dataset("failed_reasons", data=source["failed_reasons"][()], dtype=_STR)
            target.attrs.update({**stats, "n_failed": int(source["failed_indices"].shape[0])})
    partial.unlink()
    try:
        partial.parent.rmdir()
    except OSError:
        pass  # other partial files remain


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
