"""Cache operations killed at chosen points, for the crash-safety tests of the store.

Each operation works on a folder made by :func:`prepare` (no TensorFlow: features are
synthetic). ``python store_operations.py OPERATION TEMPLATE OUT SEED N`` counts the events of
one uninterrupted run (Python calls into featcache, and calls of C functions: every h5py
write, fsync, rename and unlink is one), picks N of them with the seed, and for each one
copies TEMPLATE to OUT/<k> and runs the operation there in a forked child that SIGKILLs
itself at that event. The test then checks each folder: the cache holds the old state or the
new one, and running the operation again gives the same cache as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Callable, Optional

import numpy as np

import featcache
from featcache.landmarks import add_landmark_group
from featcache.record_groups import set_groups
from featcache.splits import cached_split
from featcache.store import (
    PartialWriter,
    Records,
    Shard,
    commit_extraction,
    data_folder,
    group_attrs,
    merge,
    open_cache,
    remove,
    tidy,
    writer_lock,
)

N, DIM = 60, 12
VIEWS = ("original", "flip")
CACHE = "faces.h5"
SHARDS = ("faces.shard-1-of-2.features.h5", "faces.shard-2-of-2.features.h5")
MERGED = "merged.h5"
OPERATIONS = ("extract", "split", "landmarks", "remove", "merge", "groups")


def records() -> Records:
    rng = np.random.default_rng(0)
    landmarks = rng.normal(size=(N, 136)).astype(np.float32)
    landmarks[5] = np.nan  # a record without landmarks
    return Records(ids=[f"r{i}" for i in range(N)], paths=[f"images/{i}.jpg" for i in range(N)],
                   labels=rng.integers(0, 3, N).astype(np.int16), valence=rng.uniform(-1, 1, N),
                   arousal=rng.uniform(-1, 1, N), landmarks=landmarks,
                   content_hashes=[f"{i:064x}" for i in range(N)], class_names=["a", "b", "c"],
                   fingerprint="synthetic-faces", layout="synthetic", root="/faces")


def config(name: str) -> dict:
    return {"backbone": name, "taps": ["last"], "weights": "none", "weights_digest": "", "pooling": "avg",
            "input_size": 8, "feature_dim": DIM, "precision": "float32", "pretrained": False}


def features(indices: np.ndarray, view: str, name: str) -> np.ndarray:
    """What the synthetic backbone ``name`` gives records ``indices`` in ``view``."""
    seed = int(hashlib.sha256(f"{name}/{view}".encode()).hexdigest()[:8], 16)
    table = np.random.default_rng(seed).normal(size=(N, DIM)).astype(np.float32)
    return table[indices]


def extract(cache: Path, name: str, shard: Optional[Shard] = None) -> None:
    """A resumable extraction through the store, as :func:`featcache.extract` makes one: the
    progress file resumed, the rows not yet written written, the views committed."""
    rows = shard.rows(N) if shard is not None else range(N)
    cfg = config(name)
    key = f"{name}-0"
    with writer_lock(cache):
        tidy(cache)
        if cache.exists():
            with open_cache(cache, shards=True) as reader:
                if all(reader.has_view(key, view) for view in VIEWS):
                    return
        writer = PartialWriter(cache, key, cfg, "synthetic-faces", VIEWS, N, rows)
        for start in range(writer.next_record, rows.stop, 16):
            indices = np.arange(start, min(start + 16, rows.stop))
            for view in VIEWS:
                writer.write(view, indices, features(indices, view, name))
            writer.checkpoint(int(indices[-1]) + 1)
        writer.close()
        stats = {"complete": True, "seconds": 1.0, "device": "CPU", "engine": "synthetic",
                 **(shard.attrs(N) if shard is not None else {})}
        commit_extraction(cache, key, group_attrs(cfg, featcache_version="test", tensorflow_version="n/a",
                                                  keras_version="n/a"), records(), stats)


def prepare(operation: str, folder: Path) -> None:
    """The state an operation starts from."""
    folder.mkdir(parents=True, exist_ok=True)
    if operation == "merge":
        for k, name in enumerate(SHARDS, start=1):
            extract(folder / name, "synthetic", Shard(k, 2))
        return
    extract(folder / CACHE, "first")
    if operation == "groups":  # a split by image, which grouping replaces
        cached_split(folder / CACHE)
    if operation == "remove":
        extract(folder / CACHE, "second")
    if operation == "extract":  # a finished extraction of a second group, waiting for its commit
        cache = folder / CACHE
        writer = PartialWriter(cache, "second-0", config("second"), "synthetic-faces", VIEWS, N)
        for view in VIEWS:
            writer.write(view, np.arange(N), features(np.arange(N), view, "second"))
        writer.checkpoint(N)
        writer.close()


def run(operation: str, folder: Path) -> None:
    """The operation itself."""
    if operation == "extract":
        extract(folder / CACHE, "second")
    elif operation == "split":
        cached_split(folder / CACHE, "other", seed=3)
    elif operation == "landmarks":
        add_landmark_group(folder / CACHE)
    elif operation == "remove":
        try:
            remove(folder / CACHE, "second-0")
        except featcache.CacheError as error:  # removed already: what is left of it was freed
            assert "has no group 'second-0'" in str(error)
    elif operation == "merge":
        merge([folder / name for name in SHARDS], folder / MERGED, replace=(folder / MERGED).exists())
    elif operation == "groups":
        set_groups(folder / CACHE, r"images/(\d)")  # ten groups (records by their id's first digit); the split goes
    else:
        raise ValueError(operation)


def target(operation: str, folder: Path) -> Path:
    """The cache an operation changes."""
    return folder / (MERGED if operation == "merge" else CACHE)


def snapshot(cache: Path) -> Optional[dict]:
    """What a reader of ``cache`` sees (None: no cache), as digests."""
    if not cache.exists():
        return None
    def digest(values) -> str:
        values = np.asarray(values)
        data = json.dumps(values.tolist()).encode() if values.dtype == object else values.tobytes()
        return hashlib.sha256(data).hexdigest()

    with open_cache(cache, shards=True) as reader:
        return {
            "records": {name: digest(reader.column(name)) for name in ("labels", "valence", "arousal", "ids")},
            "groups": {key: {view: [digest(v.features[()]), digest(v.failed_indices), v.failed_reasons]
                             for view in reader.views(key) for v in [reader.view(key, view)]}
                       for key in reader.groups()},
            "splits": {name: digest(reader.split(name)[0]) for name in reader.splits()},
            "record_groups": None if (grouped := reader.record_groups()) is None else [digest(grouped[0]), grouped[1]],
        }


def stray_files(cache: Path) -> list[str]:
    """Files in the data folder the index does not link (none once a run completed)."""
    folder = data_folder(cache)
    if not folder.is_dir():
        return []
    linked = set()
    if cache.exists():
        with open_cache(cache, shards=True) as reader:
            linked = {path.resolve() for path in reader.linked_files()}
    return sorted(str(p) for p in folder.rglob("*.h5") if p.resolve() not in linked)


def counted(call: Callable[[], None], stop_at: Optional[int] = None) -> int:
    """Run ``call`` counting events; at event ``stop_at`` the process kills itself."""
    count = 0
    root = str(Path(featcache.__file__).parent)

    def hook(frame, event, arg):
        nonlocal count
        if event == "c_call" or (event == "call" and frame.f_code.co_filename.startswith(root)):
            count += 1
            if count == stop_at:
                os.kill(os.getpid(), signal.SIGKILL)

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return count


def main(operation: str, template: Path, out: Path, seed: int, n: int) -> None:
    warm = out / "warm-up"  # the first run imports and caches what later runs find ready
    shutil.copytree(template, warm)
    run(operation, warm)
    shutil.rmtree(warm)
    dry = out / "uninterrupted"
    shutil.copytree(template, dry)
    total = counted(lambda: run(operation, dry))
    points = sorted(np.random.default_rng(seed).choice(np.arange(1, total + 1), size=n, replace=False).tolist())
    for k, point in enumerate(points):
        folder = out / f"killed-{k}"
        shutil.copytree(template, folder)
        pid = os.fork()
        if pid == 0:  # the child: run until the chosen event
            try:
                counted(lambda: run(operation, folder), stop_at=point)
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
        (folder / "kill.json").write_text(json.dumps({"event": point, "of": total, "killed": killed}))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
