"""An extraction in progress: its features written straight into their final view files.

The progress file ``<cache>.partial/<key>.h5`` names the view files it fills (in the cache's
data folder, not yet linked by the index, so not yet data), how far they are written
(``next_record``) and which records failed. ``next_record`` is raised only after the rows
before it are flushed, so it never claims rows that were not written; a killed run resumes
from there. Committing links the view files into the index: their features are never copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence

import h5py
import numpy as np

from ..errors import CacheError
from .layout import (
    FAILED_INDICES,
    FAILED_REASONS,
    FEATURES,
    STR,
    VIEW_ROOT,
    data_folder,
    new_file_name,
    partial_folder,
    partial_path,
    stored_dtype,
    write_view_record,
)



class PartialWriter:
    """Features of one group being extracted, resumable across crashes.

    ``rows``: the records this writer holds (default all; a shard holds a slice), row 0 =
    ``rows.start``. Features are stored as the configuration's ``dtype`` (float32 unless it says
    float16).
    """

    def __init__(self, cache: Path, key: str, config: dict, fingerprint: str, views: Sequence[str],
                 n_records: int, rows: Optional[range] = None):
        self.cache = Path(cache)
        self.key = key
        self.path = partial_path(self.cache, key)
        self.views = tuple(views)
        self.rows = rows if rows is not None else range(n_records)
        self.dtype = np.dtype(stored_dtype(config))
        self._features: dict[str, h5py.Dataset] = {}
        self.handle = self._resumed(config, fingerprint, n_records) or self._new(config, fingerprint, n_records)
        self.view_files = json.loads(self.handle.attrs["view_files"])
        folder = data_folder(self.cache)
        try:
            for view, name in self.view_files.items():
                self._features[view] = h5py.File(folder / name, "a")[f"{VIEW_ROOT}/{FEATURES}"]
        except (OSError, KeyError):
            self.close()
            raise

    def _identity(self, config: dict, fingerprint: str, n_records: int) -> dict:
        return {"config": json.dumps(config, sort_keys=True), "dataset_fingerprint": fingerprint,
                "views": json.dumps(list(self.views)), "n_records": n_records,
                "record_range": json.dumps([self.rows.start, self.rows.stop])}

    def _resumed(self, config: dict, fingerprint: str, n_records: int) -> Optional[h5py.File]:
        """The progress file of this very work, if one is there and whole, else None (discarded:
        only unfinished work is lost; its view files are then orphans, which tidy() removes)."""
        if not self.path.exists():
            return None
        identity = self._identity(config, fingerprint, n_records)
        handle = None
        try:
            handle = h5py.File(self.path, "a")
            if all(handle.attrs.get(k) == v for k, v in identity.items()) and self._files_present(handle):
                self._forget_failures_after(handle, int(handle.attrs["next_record"]))
                return handle
        except (OSError, KeyError, ValueError):
            pass  # unreadable after a crash, or written by an earlier featcache
        if handle is not None:
            handle.close()
        self.path.unlink()
        return None

    def _new(self, config: dict, fingerprint: str, n_records: int) -> h5py.File:
        identity = self._identity(config, fingerprint, n_records)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        files = {view: self._new_view_file(view, config) for view in self.views}
        handle = h5py.File(self.path, "w")
        handle.attrs.update(identity)
        handle.attrs["view_files"] = json.dumps(files)
        handle.attrs["next_record"] = self.rows.start
        handle.create_dataset(FAILED_INDICES, shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(256,))
        handle.create_dataset(FAILED_REASONS, shape=(0,), maxshape=(None,), dtype=STR, chunks=(256,))
        handle.flush()
        return handle

    def _files_present(self, handle: h5py.File) -> bool:
        folder = data_folder(self.cache)
        return all((folder / name).is_file() for name in json.loads(handle.attrs["view_files"]).values())

    def _new_view_file(self, view: str, config: dict) -> str:
        """An empty view file (NaN rows) in the data folder, named fresh."""
        name = new_file_name(self.key, view)
        path = data_folder(self.cache) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        dim, dtype = int(config["feature_dim"]), np.dtype(stored_dtype(config))
        chunk_rows = max(1, min(len(self.rows), (1 << 20) // (dtype.itemsize * dim)))  # about 1 MiB per chunk
        with h5py.File(path, "w") as handle:
            handle.create_dataset(f"{VIEW_ROOT}/{FEATURES}", shape=(len(self.rows), dim), dtype=dtype,
                                  chunks=(chunk_rows, dim), fillvalue=np.nan)
        return name

    @staticmethod
    def _forget_failures_after(handle: h5py.File, next_record: int) -> None:
        """Drop failures recorded after the last checkpoint: the resumed run finds them again."""
        keep = int(np.sum(handle[FAILED_INDICES][()] < next_record))
        for name in (FAILED_INDICES, FAILED_REASONS):
            handle[name].resize((keep,))

    def features(self, view: str) -> h5py.Dataset:
        """The view's features as written so far (rows of this writer's records, NaN until written)."""
        return self._features[view]

    @property
    def next_record(self) -> int:
        return int(self.handle.attrs["next_record"])

    def write(self, view: str, indices: np.ndarray, features: np.ndarray) -> None:
        block = _spread(indices, features)
        if self.dtype != block.dtype:  # numpy rounds (to nearest even) as predict() does; HDF5 would not
            with np.errstate(over="ignore"):  # checked just below
                stored = block.astype(self.dtype)
            if np.isinf(stored).sum() != np.isinf(block).sum():
                raise CacheError(f"{self.cache}: features of view {view} exceed {self.dtype}'s range "
                                 f"(largest {np.nanmax(np.abs(features)):.4g}); extract with --dtype float32")
            block = stored
        first = int(indices[0]) - self.rows.start
        self._features[view][first : first + len(block)] = block

    def fail(self, index: int, reason: str) -> None:
        for name, value in ((FAILED_INDICES, index), (FAILED_REASONS, reason)):
            dataset = self.handle[name]
            dataset.resize((dataset.shape[0] + 1,))
            dataset[-1] = value

    def checkpoint(self, next_record: int) -> None:
        """Make every row before ``next_record`` durable, then say so."""
        for features in self._features.values():
            features.file.flush()
        self.handle.flush()
        self.handle.attrs["next_record"] = next_record
        self.handle.flush()

    def close(self) -> None:
        for features in self._features.values():
            features.file.close()
        self._features = {}
        if getattr(self, "handle", None) is not None:
            self.handle.close()


def _spread(indices: np.ndarray, features: np.ndarray) -> np.ndarray:
    """Rows for the index range indices[0]..indices[-1], NaN where a record failed."""
    if len(indices) == indices[-1] - indices[0] + 1:  # none failed: the rows as they are
        return np.asarray(features, dtype=np.float32)
    block = np.full((indices[-1] - indices[0] + 1, features.shape[1]), np.nan, dtype=np.float32)
    block[indices - indices[0]] = features
    return block


def finish_view_files(cache: Path, key: str, stats: dict) -> dict[str, str]:
    """Write the failures and ``stats`` into each view file of the finished extraction of
    ``key``; their names (view -> file)."""
    with h5py.File(partial_path(cache, key), "r") as progress:
        files = json.loads(progress.attrs["view_files"])
        failed = progress[FAILED_INDICES][()]
        reasons = progress[FAILED_REASONS].asstr()[()]
    for name in files.values():
        path = data_folder(cache) / name
        with h5py.File(path, "a") as handle:
            write_view_record(handle[VIEW_ROOT], failed, reasons, stats)
    return files


def forget(cache: Path, key: str) -> None:
    """Drop the progress file of a committed extraction."""
    partial_path(cache, key).unlink(missing_ok=True)
    try:
        partial_folder(cache).rmdir()
    except OSError:
        pass  # other extractions are in progress


def files_in_progress(cache: Path) -> dict[str, dict[str, str]]:
    """The view files each readable progress file names (key -> view -> file)."""
    found = {}
    folder = partial_folder(cache)
    for path in sorted(folder.glob("*.h5")) if folder.is_dir() else ():
        try:
            with h5py.File(path, "r") as handle:
                found[path.stem] = json.loads(handle.attrs["view_files"])
        except (OSError, KeyError, ValueError):
            continue  # unreadable: discarded by the next extraction of its group
    return found
