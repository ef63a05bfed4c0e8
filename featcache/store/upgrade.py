"""``featcache upgrade CACHE``: a format 1 cache converted to format 2, in place, once.

Each view's features are copied once into their own file (a merged cache's virtual features
are re-pointed at the same shard files instead), then the new index takes the old file's
place atomically: a kill before that leaves the format 1 cache as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import h5py

from ..errors import CacheError
from .index import Index
from .layout import (
    FAILED_INDICES,
    FAILED_REASONS,
    FEATURES,
    FORMAT,
    FORMAT_ATTR,
    RECORDS,
    RECORDS_ROOT,
    SPLIT_ROOT,
    SPLITS,
    VIEW_ROOT,
    data_folder,
    new_file_name,
    now,
    split_path,
)
from .reader import CacheReader, View, open_cache
from .writer import publish, tidy, write_data_file, writer_lock


@dataclass(frozen=True)
class Upgraded:
    """What :func:`upgrade` did."""

    path: Path
    views: int
    was: int

    def summary(self) -> str:
        if self.was == FORMAT:
            return f"{self.path}: format {FORMAT} already, nothing to do"
        return f"{self.path}: format {self.was} -> {FORMAT}, {self.views} views, one file each in {data_folder(self.path)}"


def upgrade(cache: Union[str, Path]) -> Upgraded:
    """Convert the cache at ``cache`` to format 2 (a format 2 cache is left as it is)."""
    cache = Path(cache)
    with writer_lock(cache):
        tidy(cache)  # files of an upgrade that was killed
        with open_cache(cache, shards=True) as reader:
            if reader.format == FORMAT:
                return Upgraded(cache, 0, FORMAT)
            index = _convert(cache, reader)
        publish(cache, index)
    return Upgraded(cache, sum(len(views) for views in index.views.values()), 1)


def _convert(cache: Path, reader: CacheReader) -> Index:
    """Every part of the format 1 cache written to its own file; the index that links them."""
    handle = reader.handle
    records = write_data_file(cache, new_file_name(RECORDS_ROOT),
                              lambda target: handle.copy(handle[RECORDS], target, name=RECORDS_ROOT))
    index = Index(attrs={**reader.attrs, FORMAT_ATTR: FORMAT, "upgraded": now()}, records=records)
    for key in reader.groups():
        index.groups[key] = reader.group_attrs(key)
        for name in reader.views(key):
            file = new_file_name(key, name)
            folder = (data_folder(cache) / file).parent
            view = reader.view(key, name)
            write_data_file(cache, file, lambda target, view=view, folder=folder: _copy_view(cache, view, target, folder))
            index.views.setdefault(key, {})[name] = file
    for name in reader.splits():
        node = handle[split_path(name)]
        index.splits[name] = write_data_file(cache, new_file_name(SPLITS, name),
                                             lambda target, node=node: handle.copy(node, target, name=SPLIT_ROOT))
    return index


def _copy_view(cache: Path, view: View, target: h5py.File, folder: Path) -> None:
    node = target.create_group(VIEW_ROOT)
    source = view.features.parent
    if view.features.is_virtual:
        _repoint(view.features, node, cache.parent, folder)
    else:
        source.file.copy(view.features, node, name=FEATURES)
    for name in (FAILED_INDICES, FAILED_REASONS):
        source.file.copy(source[name], node, name=name)
    node.attrs.update(view.attrs)


def _data_of(file: Path, dataset: str) -> tuple[Path, str]:
    """The file and dataset that hold ``dataset`` of ``file``, following links (a shard upgraded
    to format 2 holds its features in its data folder)."""
    try:
        with h5py.File(file, "r") as handle:
            found = handle[dataset]
            holder = Path(found.file.filename)
            return (holder if holder.is_absolute() else file.parent / holder), found.name
    except (OSError, KeyError):
        raise CacheError(f"{file}: the shard file a merged view reads is missing or lacks {dataset}; put it back "
                         "beside the cache before upgrading") from None


def _repoint(features: h5py.Dataset, node: h5py.Group, was: Path, folder: Path) -> None:
    """A virtual dataset like ``features`` (sources relative to ``was``), its sources relative to ``folder``."""
    layout = h5py.VirtualLayout(shape=features.shape, dtype=features.dtype)
    for mapping in features.virtual_sources():
        start, end = mapping.vspace.get_select_bounds()  # merge maps each whole source onto a block of rows
        shape = tuple(int(stop - first + 1) for first, stop in zip(start, end))
        file, dataset = _data_of(was / mapping.file_name, mapping.dset_name)
        path = os.path.relpath(os.path.abspath(file), os.path.abspath(folder))
        layout[start[0] : end[0] + 1] = h5py.VirtualSource(path, dataset, shape=shape, dtype=features.dtype)
    node.create_virtual_dataset(FEATURES, layout, fillvalue=features.fillvalue)
