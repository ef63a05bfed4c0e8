"""The cache format: every name the cache has on disk, and the records it stores once.

Format 2 (docs/cache.md, "The cache file")::

    faces.h5                the index: attributes and links only, replaced whole by every change
      attrs                 featcache_format=2, created, dataset_fingerprint, dataset_layout,
                            dataset_root, n_records, class_names (JSON), dataset_left_out (JSON:
                            what the dataset folder left out by reason, as of the last extraction)
      /records              external link -> faces.h5.data/records-<token>.h5 : /records
      /record_groups        external link -> faces.h5.data/record_groups-<token>.h5 : /record_groups
                            (optional) a group id per record, attrs group_by (how they were made)
      /groups/<key>         attrs: the configuration (JSON and field by field), library versions
      /groups/<key>/<view>  external link -> faces.h5.data/<key>/<view>-<token>.h5 : /view
      /splits/<name>        external link -> faces.h5.data/splits/<name>-<token>.h5 : /split
                            (attrs fractions, seed, group_by, method, notes); the /splits group's
                            attribute <name> holds that split's leakage check (JSON), once run
    faces.h5.data/          files written once; never changed after the index links them
    faces.h5.partial/       extractions in progress (not data until committed)
    faces.h5.lock           held by the one writer

Format 1 (earlier releases) kept the same paths inside one file; readers see both alike,
because h5py follows external links.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

import h5py
import numpy as np

from ..errors import UsageError

FORMAT = 2
READABLE = (1, 2)
STR = h5py.string_dtype("utf-8")
DTYPES = ("float32", "float16")  # how features may be stored; float32 is the default

RECORDS, GROUPS, SPLITS = "records", "groups", "splits"
FORMAT_ATTR = "featcache_format"  # the cache's attribute naming its format
COMPLETE, MERGED_FROM = "complete", "merged_from"  # a view's attribute; a merged cache's
FEATURES, FAILED_INDICES, FAILED_REASONS = "features", "failed_indices", "failed_reasons"
VIEW_ROOT, SPLIT_ROOT, RECORDS_ROOT = "view", "split", "records"  # the group in each linked file
RECORD_GROUPS = "record_groups"  # the index's link to the record groups, and that file's dataset
GROUP_BY = "group_by"  # how record groups were made (record groups' and splits' attribute)
GROUPS_DIGEST = "groups_digest"  # which record groups a split kept apart (a split's attribute)
LEFT_OUT = "dataset_left_out"  # the cache's attribute: featcache.datasets.left_out_record as JSON


def check_name(kind: str, name: str) -> str:
    """A split or view name that can be a path part: not empty, no ``/``, not ``.`` or ``..``."""
    if not name or "/" in name or name in (".", ".."):
        raise UsageError(f"{kind} name {name!r}: use a plain name without '/' (e.g. fold1)")
    return name


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------- files beside the index


def data_folder(cache: Path) -> Path:
    """Where a format 2 cache keeps its records, views and splits."""
    return cache.with_name(cache.name + ".data")


def partial_folder(cache: Path) -> Path:
    return cache.with_name(cache.name + ".partial")


def partial_path(cache: Path, key: str) -> Path:
    """The progress file of an extraction of group ``key`` in progress."""
    return partial_folder(cache) / f"{key}.h5"


def lock_path(cache: Path) -> Path:
    return cache.with_name(cache.name + ".lock")


def new_file_name(*parts: str) -> str:
    """A fresh file name in the data folder (``<parts>/...-<token>.h5``): a file once linked is
    never overwritten, and one left by a crash never collides with new data."""
    *folders, stem = parts
    return "/".join([*folders, f"{stem}-{uuid.uuid4().hex[:12]}.h5"])


# ------------------------------------------------------------------------- paths in the index


def group_path(key: str) -> str:
    return f"{GROUPS}/{key}"


def view_path(key: str, view: str) -> str:
    return f"{GROUPS}/{key}/{view}"


def split_path(name: str) -> str:
    return f"{SPLITS}/{name}"


# ---------------------------------------------------------------------------- group identity


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


def with_dtype(config: dict, dtype: str) -> dict:
    """A configuration stored as ``dtype``: float16 is part of the group identity; float32, the
    default, adds nothing (so every earlier group keeps its key)."""
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    return {**config, "dtype": dtype} if dtype != "float32" else dict(config)


def stored_dtype(config: dict) -> str:
    return config.get("dtype", "float32")


# ------------------------------------------------------------------------------- records


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
    left_out: Optional[dict] = None  # what the dataset folder left out, by reason (not known: None)

    def __len__(self) -> int:
        return len(self.ids)

    def attrs(self, format: int) -> dict:
        """The cache's own attributes."""
        return {
            FORMAT_ATTR: format,
            "created": now(),
            "dataset_fingerprint": self.fingerprint,
            "dataset_layout": self.layout,
            "dataset_root": self.root,
            "n_records": len(self),
            "class_names": json.dumps(list(self.class_names)),
            **self.left_out_attrs(),
        }

    def left_out_attrs(self) -> dict:
        """The attribute saying what the dataset left out (none when not known)."""
        return {LEFT_OUT: json.dumps(self.left_out)} if self.left_out is not None else {}


def write_view_record(node: h5py.Group, failed: Sequence[int], reasons: Sequence[str], stats: dict) -> None:
    """Beside a view's features: the records that failed and why, and the view's attributes
    (written again in full when a killed commit is repeated)."""
    for name in (FAILED_INDICES, FAILED_REASONS):
        if name in node:
            del node[name]
    node.create_dataset(FAILED_INDICES, data=np.asarray(failed, dtype=np.int64))
    node.create_dataset(FAILED_REASONS, data=np.array(list(reasons), dtype=object), dtype=STR)
    node.attrs.update({**stats, COMPLETE: True, "n_failed": len(failed)})


def groups_digest(ids: Optional[Sequence[str]]) -> str:
    """A short digest of the record groups (the ids, record by record); "" for none."""
    if ids is None:
        return ""
    return hashlib.sha256("\n".join(map(str, ids)).encode()).hexdigest()[:16]


def write_record_groups(handle: h5py.File, ids: Sequence[str], group_by: str) -> None:
    """A group id per record into a new record groups file."""
    dataset = handle.create_dataset(RECORD_GROUPS, data=np.array(list(ids), dtype=object), dtype=STR)
    dataset.attrs[GROUP_BY] = group_by


def write_records(group: h5py.Group, records: Records) -> None:
    """The record columns into ``group`` (``/records`` of either format)."""
    group.create_dataset("ids", data=list(records.ids), dtype=STR)
    group.create_dataset("paths", data=list(records.paths), dtype=STR)
    group.create_dataset("labels", data=np.asarray(records.labels, dtype=np.int16))
    group.create_dataset("valence", data=np.asarray(records.valence, dtype=np.float32))
    group.create_dataset("arousal", data=np.asarray(records.arousal, dtype=np.float32))
    group.create_dataset("content_hashes", data=np.asarray(records.content_hashes, dtype="S64"))
    if records.landmarks is not None:
        group.create_dataset("landmarks", data=np.asarray(records.landmarks, dtype=np.float32))
