"""Shards and merge: one extraction split over several processes or machines, then joined.

``extract(..., shard="K/N")`` extracts the K-th of N contiguous blocks of records (the
blocks of ``np.array_split(range(n), N)``, in the dataset's record order) into a cache
of its own: a normal, resumable, idempotent cache holding every record's metadata but
features only for its block. Each view of a shard has ``(stop - start, dim)`` features
and the attrs ``shard_index``, ``shard_count``, ``record_start``, ``record_stop``.

An unmerged shard is refused by :func:`featcache.load` and :func:`featcache.info` (it
holds a slice, not a dataset). :func:`merge` joins complete shards into one cache whose
features are HDF5 virtual datasets that point at the shards' feature files by relative
path: no feature is copied, so the shard files (and their data folders) must stay beside
the merged file (a merged cache whose shard files are gone is refused rather than read as NaN).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

import h5py
import numpy as np

from ..errors import CacheError, UsageError
from .index import Index
from .layout import (
    COMPLETE,
    FAILED_INDICES,
    FAILED_REASONS,
    FEATURES,
    FORMAT,
    FORMAT_ATTR,
    MERGED_FROM,
    RECORD_GROUPS,
    RECORDS,
    RECORDS_ROOT,
    STR,
    VIEW_ROOT,
    data_folder,
    new_file_name,
    now,
    partial_folder,
    write_record_groups,
)
from .reader import SHARD_ATTRS, View, open_cache
from .writer import publish, write_data_file, writer_lock
ShardSpec = Union[str, tuple[int, int], "Shard", None]


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def rows(self, n_records: int) -> range:
        """This shard's contiguous block of record indices (the blocks of np.array_split)."""
        if self.count > n_records:
            raise UsageError(f"--shard {self}: {n_records} records cannot make {self.count} shards; "
                             f"use at most {n_records}")
        size, extra = divmod(n_records, self.count)
        start = (self.index - 1) * size + min(self.index - 1, extra)
        return range(start, start + size + (self.index <= extra))

    def attrs(self, n_records: int) -> dict:
        """What a shard's views record about it."""
        rows = self.rows(n_records)
        return {"shard_index": self.index, "shard_count": self.count,
                "record_start": rows.start, "record_stop": rows.stop}


def parse_shard(value: ShardSpec) -> Optional[Shard]:
    """``"K/N"``, ``(K, N)`` or a :class:`Shard` with 1 <= K <= N; None means no sharding."""
    if value is None or isinstance(value, Shard):
        return value
    try:
        index, count = (int(part) for part in (value.split("/") if isinstance(value, str) else value))
    except (ValueError, TypeError, AttributeError):
        index, count = 0, 0
    if not 1 <= index <= count:
        raise UsageError(f"shard must be K/N with 1 <= K <= N, e.g. 2/3; got {value!r}")
    return Shard(index, count)


def shard_rows(shard: Optional[Shard], n_records: int) -> range:
    """The records an extraction covers: the shard's block, or all of them."""
    return shard.rows(n_records) if shard is not None else range(n_records)


def shard_attrs(shard: Optional[Shard], n_records: int) -> dict:
    return shard.attrs(n_records) if shard is not None else {}


def shard_file_name(stem: str, shard: Shard) -> str:
    """``<stem>.shard-K-of-N.features.h5``, the default output of a shard."""
    return f"{stem}.shard-{shard.index}-of-{shard.count}.features.h5"


# ------------------------------------------------------------------ shard views


def view_shard(view: View) -> Optional[Shard]:
    """The shard a view holds, or None for a whole view."""
    return Shard(*view.shard) if view.shard is not None else None


def _describe(shard: Optional[Shard]) -> str:
    return f"shard {shard}" if shard is not None else "the whole dataset"


def check_target(cache: Path, shard: Optional[Shard]) -> None:
    """Refuse to extract ``shard`` (None: the whole dataset) into a cache that holds another one."""
    if not cache.exists():
        return
    with open_cache(cache, shards=True) as reader:
        held = {view_shard(view) for view in reader.all_views()} - {shard}
    if held:
        raise CacheError(f"{cache} holds {_describe(held.pop())}; write {_describe(shard)} to another --out")


# ------------------------------------------------------------------------ merge


@dataclass(frozen=True)
class ShardFile:
    """What :func:`merge` needs to know about one committed shard file."""

    path: Path
    shard: Shard
    rows: range
    n_records: int
    fingerprint: str
    views: dict[str, tuple[str, ...]]  # group key -> its views
    configs: dict[str, dict]  # group key -> its configuration
    sources: dict[tuple[str, str], tuple[Path, str]]  # (key, view) -> file and dataset of its features


@dataclass(frozen=True)
class MergeResult:
    """What one :func:`merge` call made."""

    path: Path
    shards: tuple[Path, ...]
    records: int
    groups: tuple[str, ...]

    def summary(self) -> str:
        """One line for people."""
        return (f"{self.path}: {len(self.shards)} shards merged, {self.records} records, groups "
                f"{', '.join(self.groups)}; keep the shard files beside it (its features are read from them)")


def merge(shards: Sequence[Union[str, Path]], out: Union[str, Path], *, replace: bool = False) -> MergeResult:
    """Join every shard of one ``--shard K/N`` split into the new cache ``out``.

    The merged cache reads exactly like an unsharded one (same group keys, same features
    row for row). Its features are HDF5 virtual datasets pointing at the shard files by
    relative path: keep the shard files beside it. The shards are never modified; ``out``
    must not exist (unless ``replace``: a merge of the same shards, done again) and appears
    atomically. Shards that disagree (data, configuration,
    split) or are incomplete, duplicated or missing are refused with a CacheError.
    """
    paths = [Path(path) for path in shards]
    out = Path(out)
    _check_paths(paths, out)
    with ExitStack() as locks:
        for path in [*paths, out]:
            locks.enter_context(writer_lock(path))
        if out.exists() and not replace:
            raise CacheError(f"{out} exists; merge into a new --out, or delete it first")
        files = sorted((read_shard(path) for path in paths), key=lambda file: file.shard.index)
        check_together(files)
        grouped = _record_groups(files)
        if grouped is None and out.exists():  # merged again: keep the groups set on the merged cache
            with open_cache(out, shards=True) as previous:
                grouped = previous.record_groups()
        index = _merged_index(out, files)
        if grouped is not None:
            index.record_groups = write_data_file(out, new_file_name(RECORD_GROUPS),
                                                  lambda handle: write_record_groups(handle, *grouped))
        publish(out, index)
    return MergeResult(out, tuple(file.path for file in files), files[0].n_records, tuple(files[0].views))


def _check_paths(paths: list[Path], out: Path) -> None:
    """Refuse no shards, a shard passed twice, or an --out that is a shard, before any lock."""
    if not paths:
        raise UsageError("merge needs shard files: pass every shard of one --shard K/N split")
    seen: dict[Path, Path] = {}
    for path in [*paths, out]:
        resolved = path.resolve()
        if resolved in seen:
            raise CacheError(f"{path} is passed twice; pass each shard once, and --out a new file")
        seen[resolved] = path
    for path in paths:
        unfinished = partial_folder(path)
        if unfinished.exists():
            state = "has an unfinished extraction" if path.exists() else "is not finished"
            raise CacheError(f"{path} {state} ({unfinished}/); finish it by running its "
                             "`featcache extract --shard K/N` again")
        if not path.is_file():
            raise CacheError(f"{path}: no such shard file; make it with `featcache extract --shard K/N`")


def read_shard(path: Path) -> ShardFile:
    """The committed shard in ``path``, or a CacheError saying why it cannot be merged."""
    with open_cache(path, shards=True) as reader:
        views = list(reader.all_views())
        if not views:
            raise CacheError(f"{path} holds no committed features; run its `featcache extract --shard K/N` again")
        held = {view_shard(view) for view in views}
        if None in held:
            raise CacheError(f"{path} is not a shard (made without --shard); pass only files of "
                             "`featcache extract --shard K/N`")
        if len(held) > 1:
            raise CacheError(f"{path} mixes shards {', '.join(sorted(map(str, held)))}; extract each shard "
                             "into its own file")
        shard, n_records = held.pop(), reader.n_records
        for view in views:
            _check_view(path, view, shard, n_records)
        configs = reader.groups()
        return ShardFile(
            path=path, shard=shard, rows=shard.rows(n_records), n_records=n_records,
            fingerprint=reader.fingerprint,
            views={key: tuple(sorted(reader.views(key))) for key in configs},
            configs=configs,
            sources={(view.key, view.name): (view.source_file(path), view.features.name) for view in views},
        )


def _check_view(path: Path, view: View, shard: Shard, n_records: int) -> None:
    """A shard's view must be complete and hold exactly its block of records."""
    name = f"{view.key}/{view.name}"
    if not view.attrs.get(COMPLETE, False):
        raise CacheError(f"{path}: view {name} is incomplete; run its `featcache extract --shard {shard}` again")
    rows = shard.rows(n_records)
    held = (int(view.attrs["record_start"]), int(view.attrs["record_stop"]), view.features.shape[0])
    if held != (rows.start, rows.stop, len(rows)):
        raise CacheError(f"{path}: view {name} holds records {held[0]}..{held[1] - 1} ({held[2]} rows) but shard "
                         f"{shard} of {n_records} records is {rows.start}..{rows.stop - 1}; extract it again")


def check_together(files: list[ShardFile]) -> None:
    """Refuse shards of other data, another configuration or split, duplicates and gaps."""
    first = files[0]
    for file in files[1:]:
        if file.fingerprint != first.fingerprint:
            raise CacheError(f"{file.path} was made from other data than {first.path} (dataset fingerprint "
                             f"{file.fingerprint[:12]} vs {first.fingerprint[:12]}); merge shards of one dataset")
        if file.shard.count != first.shard.count:
            raise CacheError(f"{file.path} is shard {file.shard} but {first.path} is shard {first.shard}; "
                             "merge the shards of one --shard K/N split")
        if file.views != first.views or file.configs != first.configs:
            raise CacheError(f"{file.path} holds {_groups(file)} but {first.path} holds {_groups(first)}; "
                             "extract every shard with the same options")
    for before, after in zip(files, files[1:]):
        if before.shard == after.shard:
            raise CacheError(f"{before.path} and {after.path} are both shard {after.shard}; pass each shard once")
    missing = sorted(set(range(1, first.shard.count + 1)) - {file.shard.index for file in files})
    if missing:
        wanted = ", ".join(f"{k}/{first.shard.count}" for k in missing)
        got = ", ".join(f"{file.path} ({file.shard})" for file in files)
        raise CacheError(f"shard {wanted} is missing (got {got}); extract it with "
                         f"`featcache extract --shard {missing[0]}/{first.shard.count}` and pass it too")


def _record_groups(files: list[ShardFile]) -> Optional[tuple[np.ndarray, str]]:
    """The record groups the shards carry (each the same), or None; shards that differ are refused."""
    held = []
    for file in files:
        with open_cache(file.path, shards=True) as reader:
            held.append(reader.record_groups())
    first = held[0]
    for file, groups in zip(files, held):
        same = groups is None if first is None else (
            groups is not None and groups[1] == first[1] and np.array_equal(groups[0], first[0]))
        if not same:
            raise CacheError(f"{file.path} and {files[0].path} group their records differently; extract every "
                             "shard with the same --group-by (or none, and set it on the merged cache with "
                             "`featcache groups`)")
    return first


def _groups(file: ShardFile) -> str:
    """Each group with its views and the options people set, for error messages."""
    return "; ".join(
        f"{key} ({'+'.join(file.views[key])}: taps {', '.join(cfg.get('taps', []))}, pool {cfg.get('pooling')}, "
        f"weights {cfg.get('weights')})" for key, cfg in file.configs.items())


def _merged_index(out: Path, files: list[ShardFile]) -> Index:
    """The merged cache's records (copied from the first shard) and, per view, a view file whose
    features are a virtual dataset over the shards' features."""
    with open_cache(files[0].path, shards=True) as first:
        attrs = {**first.attrs, FORMAT_ATTR: FORMAT, "created": now(),
                 MERGED_FROM: json.dumps([_relative(file.path, out.parent) for file in files])}
        records = write_data_file(out, new_file_name(RECORDS_ROOT),
                                  lambda handle: handle.copy(first.handle[RECORDS], handle, name=RECORDS_ROOT))
        index = Index(attrs=attrs, records=records, groups={key: first.group_attrs(key) for key in files[0].views})
    for key, views in files[0].views.items():
        for view in views:
            name = new_file_name(key, view)
            folder = (data_folder(out) / name).parent
            write_data_file(out, name, lambda handle, key=key, view=view: _merge_view(handle, key, view, files, folder))
            index.views.setdefault(key, {})[view] = name
    return index


def _merge_view(handle: h5py.File, key: str, view: str, files: list[ShardFile], folder: Path) -> None:
    """One view: a virtual features dataset over the shards, their failures joined, their stats summed."""
    n_records = files[0].n_records
    layout, failed, reasons, stats = None, [], [], []
    for file in files:
        with open_cache(file.path, shards=True) as reader:
            part = reader.view(key, view)
            rows, dim = part.features.shape
            dtype = part.features.dtype
            if layout is None:
                layout = h5py.VirtualLayout(shape=(n_records, dim), dtype=dtype)
            source, dataset = file.sources[(key, view)]
            layout[file.rows.start : file.rows.stop] = h5py.VirtualSource(
                _relative(source, folder), dataset, shape=(rows, dim), dtype=dtype)
            failed.append(part.failed_indices)
            reasons.extend(part.failed_reasons)
            stats.append(part.attrs)
    node = handle.create_group(VIEW_ROOT)
    node.create_virtual_dataset(FEATURES, layout, fillvalue=np.nan)
    node.create_dataset(FAILED_INDICES, data=np.concatenate(failed).astype(np.int64))
    node.create_dataset(FAILED_REASONS, data=np.array(reasons, dtype=object), dtype=STR)
    node.attrs.update(_merged_stats(stats, n_records))


def _merged_stats(stats: list[dict], n_records: int) -> dict:
    """The first shard's view attrs, with times and failures summed over the shards."""
    merged = {name: value for name, value in stats[0].items() if name not in SHARD_ATTRS}
    seconds = sum(float(entry.get("seconds", 0.0)) for entry in stats)
    n_failed = sum(int(entry.get("n_failed", 0)) for entry in stats)
    merged.update(seconds=seconds, n_failed=n_failed, created=now(), shards=len(stats),
                  images_per_second=(n_records - n_failed) / seconds if seconds else 0.0)
    for name in ("device", "engine"):
        if name in merged:
            merged[name] = ", ".join(dict.fromkeys(str(entry[name]) for entry in stats if name in entry))
    return merged


def _relative(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder``: what a virtual dataset in ``folder`` names its source by."""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
