"""Format 1, the one-file cache of earlier releases, written as they wrote it.

Format 1 keeps records, views and splits inside one HDF5 file under the same paths the
index of format 2 links (``/records``, ``/groups/<key>/<view>``, ``/splits/<name>``), so
:class:`featcache.store.CacheReader` reads both alike and ``featcache upgrade`` converts it.
Every change rewrote the whole file (a copy, changed, renamed over the old one):
:func:`rewrite`. The tests make format 1 caches with it; ``benchmarks/bench_store.py`` (with
``tests/`` on its path) measures what format 2 saves against it.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import h5py

from featcache.files import atomic_file
from featcache.store.layout import FEATURES, RECORDS, Records, view_path, write_records, write_view_record

FORMAT_1 = 1


@contextmanager
def rewrite(cache: Path, records: Optional[Records] = None) -> Iterator[h5py.File]:
    """Change a copy of the format 1 cache (a new one needs ``records``), then put it in place."""
    cache = Path(cache)
    with atomic_file(cache, start_from=cache if cache.exists() else None) as temporary:
        with h5py.File(temporary, "a") as handle:
            if RECORDS not in handle:
                handle.attrs.update(records.attrs(FORMAT_1))
                write_records(handle.create_group(RECORDS), records)
            yield handle


def add_view(handle: h5py.File, key: str, view: str, group_attrs: dict, features, failed=(), reasons=(),
             stats: Optional[dict] = None) -> None:
    """A view as format 1 stored it, into a file being rewritten."""
    group = handle.require_group(view_path(key, view).rsplit("/", 1)[0])
    if not group.attrs:
        group.attrs.update(group_attrs)
    node = group.create_group(view)
    node.create_dataset(FEATURES, data=features)
    write_view_record(node, failed, reasons, stats or {})
