"""The store: the one owner of the cache's format on disk.

Everything that reads or writes a cache goes through here: :mod:`.layout` names every
part of the format, :mod:`.reader` reads both formats, :mod:`.writer` changes a cache
(new data in new files, then a new index), :mod:`.partial` keeps an extraction in
progress, :mod:`.shards` splits and merges, :mod:`.upgrade` converts format 1.
"""

from ..errors import CacheError, CacheLocked
from .layout import (
    DTYPES,
    FORMAT,
    GROUP_BY,
    GROUPS_DIGEST,
    Records,
    data_folder,
    group_attrs,
    group_key,
    groups_digest,
    now,
    stored_dtype,
    with_dtype,
)
from .partial import PartialWriter
from .reader import CacheReader, View, cache_format, has_view, merged_from, open_cache
from .shards import MergeResult, Shard, ShardSpec, check_target, merge, parse_shard, shard_attrs, shard_file_name, shard_rows
from .upgrade import Upgraded, upgrade
from .writer import (
    Removed,
    add_split,
    add_view,
    check_dataset,
    check_writable,
    commit_extraction,
    delete_cache,
    remove,
    set_record_groups,
    store_check,
    tidy,
    writer_lock,
    writing_view,
)

__all__ = [
    "CacheError", "CacheLocked", "CacheReader", "DTYPES", "FORMAT", "GROUP_BY", "GROUPS_DIGEST", "MergeResult", "PartialWriter",
    "Records", "Removed", "Shard", "ShardSpec", "Upgraded", "View", "add_split", "add_view", "cache_format",
    "check_dataset", "check_target", "check_writable", "commit_extraction", "data_folder", "delete_cache",
    "group_attrs", "group_key", "groups_digest", "has_view", "merge", "merged_from", "now", "open_cache", "parse_shard", "remove",
    "shard_attrs", "shard_file_name", "shard_rows", "set_record_groups", "store_check", "stored_dtype", "tidy",
    "upgrade", "with_dtype", "writer_lock", "writing_view",
]
