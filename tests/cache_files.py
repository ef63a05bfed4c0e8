"""A cache as files on disk: its index and data folder, copied and hashed together."""

import hashlib
import shutil
from pathlib import Path

from featcache.store import data_folder, open_cache


def cache_files(cache: Path) -> list[Path]:
    """The committed cache: its index and every file the index links, in a fixed order."""
    with open_cache(cache, shards=True) as reader:
        return [cache, *sorted(reader.linked_files())]


def copy_cache(source: Path, target: Path) -> Path:
    """A copy of a cache (index and data folder) at ``target``."""
    shutil.copyfile(source, target)
    if data_folder(source).is_dir():
        shutil.copytree(data_folder(source), data_folder(target))
    return target


def cache_digest(cache: Path) -> str:
    """SHA-256 over every file of the cache with its name (changes if any byte or file does)."""
    digest = hashlib.sha256()
    for path in cache_files(cache):
        digest.update(path.relative_to(cache.parent).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
