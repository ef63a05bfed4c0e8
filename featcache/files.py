"""Files that appear whole or not at all.

Everything featcache writes for keeps (cache files, exported networks, converted weights,
prediction CSVs) is written to a temporary file beside its target and renamed over it
once complete and synced, so a killed process never leaves a truncated file in its place.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional, Union

PathLike = Union[str, os.PathLike]


def _umask() -> int:
    """The process's umask, read without changing it (os.umask would, for every thread)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        return 0o022


@contextmanager
def atomic_file(target: PathLike, *, start_from: Optional[PathLike] = None) -> Iterator[Path]:
    """A temporary path beside ``target`` (``.<name>.<random>.tmp``; a copy of ``start_from`` when
    given) to write; when the block succeeds it is fsynced and renamed to ``target`` atomically,
    else removed (a killed process leaves it: :func:`leftovers` finds it)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        if start_from is not None:
            shutil.copyfile(start_from, temporary)
        yield temporary
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it 0600; a new file's usual mode
        sync_file(temporary)
        os.replace(temporary, target)
        sync_directory(target.parent)
    finally:
        temporary.unlink(missing_ok=True)


def leftovers(target: PathLike) -> list[Path]:
    """Temporary files of :func:`atomic_file` for ``target`` that a killed process left."""
    target = Path(target)
    return sorted(target.parent.glob(f".{target.name}.*.tmp"))


def replace_folder(new: Path, target: Path) -> None:
    """Put the folder ``new`` in ``target``'s place; what was at ``target`` is removed only after,
    and put back if the new one cannot take its place."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.{os.getpid()}.{id(new):x}.old")
        os.replace(target, old)
    try:
        os.replace(new, target)
    except OSError:
        if old is not None:
            os.replace(old, target)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)


def sync_file(path: PathLike) -> None:
    """Make a written file durable (a directory: its entries)."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def sync_directory(directory: PathLike) -> None:
    """Make renames and removals in ``directory`` durable."""
    sync_file(directory)
