"""The cache at full-dataset scale: what each change costs, format 2 against format 1.

For each ``--sizes`` (records), a synthetic cache of that many records x 2,048 float32
features in two views (written directly, no network run) is made in both formats. Then,
``--repeats`` times each, on a fresh hard-linked copy of it (neither format changes a file
in place, so the copy shares the base's bytes):

* **split**: a new stored split (one int8 per record);
* **landmarks**: a landmark-sized group (records x 2,414 float32, computed beforehand);
* **view**: a new 2,048-wide view of the group, written as an extraction writes it (its
  rows streamed to disk, then committed).

Each is timed whole and beside a plain write of the same number of bytes (``tofile`` +
fsync, same folder, same repeat): the difference is what the change costs beyond writing
its own bytes. A thread samples the cache folder's size every few milliseconds: its peak
growth beyond the change's own bytes is the free disk the change needs on top.

Also: ``featcache.load`` of one view of the largest cache against ``np.fromfile`` of a
file of the same bytes (both from the page cache, medians of ``--repeats``), and the peak
resident memory of ``featcache extract`` (``fer_minixception``, a flat folder of synthetic
64 px JPEGs) at each of ``--images``, each in a fresh process.

    python benchmarks/bench_store.py [--sizes 45000 450000] [--repeats 3] [--images 4000 40000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # format1: the old writer

import h5py  # noqa: E402
import numpy as np  # noqa: E402

import featcache  # noqa: E402
import format1  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.files import sync_file  # noqa: E402
from featcache.store import (  # noqa: E402
    PartialWriter,
    Records,
    add_split,
    add_view,
    commit_extraction,
    group_attrs,
    writer_lock,
)
from featcache.store.layout import FEATURES, write_view_record  # noqa: E402

DIM, LANDMARK_DIM, BLOCK = 2048, 2414, 8192
KEY, LANDMARKS = "synthetic-0123456789", "landmarks-0123456789"
CONFIG = {"backbone": "synthetic", "taps": ["last"], "weights": "none", "weights_digest": "", "pooling": "avg",
          "input_size": 224, "feature_dim": DIM, "precision": "float32", "pretrained": False}
ATTRS = group_attrs(CONFIG, featcache_version="bench", tensorflow_version="n/a", keras_version="n/a")
LANDMARK_ATTRS = group_attrs({**CONFIG, "backbone": "landmarks", "feature_dim": LANDMARK_DIM},
                             featcache_version="bench", tensorflow_version="n/a", keras_version="n/a")
STATS = {"complete": True, "seconds": 1.0, "device": "CPU", "engine": "synthetic"}
OPERATIONS = ("split", "landmarks", "view")


def records(n: int) -> Records:
    rng = np.random.default_rng(0)
    return Records(ids=[f"{i}" for i in range(n)], paths=[f"images/{i}.jpg" for i in range(n)],
                   labels=rng.integers(0, 8, n).astype(np.int16), valence=rng.uniform(-1, 1, n),
                   arousal=rng.uniform(-1, 1, n), landmarks=None, content_hashes=[f"{i:064x}" for i in range(n)],
                   class_names=[f"class{k}" for k in range(8)], fingerprint=f"synthetic-{n}", layout="synthetic",
                   root="/synthetic")


def blocks(n: int, dim: int, seed: int):
    """Synthetic features, BLOCK rows at a time: (first row, block)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, BLOCK):
        yield start, rng.standard_normal((min(BLOCK, n - start), dim), dtype=np.float32)


# ------------------------------------------------------------------ the two base caches


def base_format2(cache: Path, n: int) -> None:
    """Two views written as extraction writes them, then committed."""
    with writer_lock(cache):
        writer = PartialWriter(cache, KEY, CONFIG, f"synthetic-{n}", ("original", "flip"), n)
        for view, seed in (("original", 1), ("flip", 2)):
            for start, block in blocks(n, DIM, seed):
                writer.write(view, np.arange(start, start + len(block)), block)
        writer.checkpoint(n)
        writer.close()
        commit_extraction(cache, KEY, ATTRS, records(n), STATS)


def base_format1(cache: Path, n: int) -> None:
    """The same two views in one file, as format 1 stored them."""
    with format1.rewrite(cache, records(n)) as handle:
        group = handle.create_group(f"groups/{KEY}")
        group.attrs.update(ATTRS)
        for view, seed in (("original", 1), ("flip", 2)):
            node = group.create_group(view)
            dataset = node.create_dataset(FEATURES, shape=(n, DIM), dtype=np.float32, chunks=(128, DIM))
            for start, block in blocks(n, DIM, seed):
                dataset[start : start + len(block)] = block
            write_view_record(node, [], [], STATS)


# ------------------------------------------------------------------ the changes, per format


def inputs_for(operation: str, n: int) -> dict:
    """What a change writes, made before it is timed (and dropped after, to leave memory to the
    page cache): a split, landmark-sized features, or a view's features."""
    made = {"n": n, "records": records(n)}
    if operation == "split":
        made["parts"] = np.random.default_rng(n).integers(0, 3, n).astype(np.int8)
    elif operation == "landmarks":
        made["landmarks"] = np.full((n, LANDMARK_DIM), 0.5, dtype=np.float32)
    else:
        made["view"] = np.full((n, DIM), 0.25, dtype=np.float32)
    return made


def change(fmt: int, operation: str, cache: Path, inputs: dict) -> int:
    """Make one change to ``cache``; the bytes it owns."""
    n = inputs["n"]
    if operation == "split":
        if fmt == 2:
            with writer_lock(cache):
                add_split(cache, "new", inputs["parts"], {"seed": 1})
        else:
            with format1.rewrite(cache) as handle:
                handle.create_dataset("splits/new", data=inputs["parts"]).attrs["seed"] = 1
        return inputs["parts"].nbytes
    if operation == "landmarks":
        features = inputs["landmarks"]
        if fmt == 2:
            with writer_lock(cache):
                add_view(cache, LANDMARKS, "original", features, group_attrs=LANDMARK_ATTRS, stats=STATS)
        else:
            with format1.rewrite(cache) as handle:
                format1.add_view(handle, LANDMARKS, "original", LANDMARK_ATTRS, features, stats=STATS)
        return features.nbytes
    features = inputs["view"]
    if fmt == 2:  # rows streamed into their own file, then linked
        with writer_lock(cache):
            writer = PartialWriter(cache, KEY, CONFIG, f"synthetic-{n}", ("crop0.9",), n)
            for start in range(0, n, BLOCK):
                writer.write("crop0.9", np.arange(start, min(start + BLOCK, n)), features[start : start + BLOCK])
            writer.checkpoint(n)
            writer.close()
            commit_extraction(cache, KEY, ATTRS, inputs["records"], STATS)
    else:  # rows streamed into a partial file, then copied into a copy of the cache
        partial = cache.with_name(cache.name + ".partial.h5")
        with h5py.File(partial, "w") as handle:
            dataset = handle.create_dataset(FEATURES, shape=(n, DIM), dtype=np.float32, chunks=(128, DIM))
            for start in range(0, n, BLOCK):
                dataset[start : start + BLOCK] = features[start : start + BLOCK]
        with format1.rewrite(cache) as handle, h5py.File(partial, "r") as source:
            node = handle.create_group(f"groups/{KEY}/crop0.9")
            source.copy(source[FEATURES], node, name=FEATURES)
            write_view_record(node, [], [], STATS)
        partial.unlink()
    return features.nbytes


def plain_write(folder: Path, data: np.ndarray) -> float:
    """Seconds to write and fsync ``data`` (the change's own bytes, from the same memory) to a new
    file in ``folder``."""
    path = folder / "plain-write.bin"
    os.sync()  # start from a clean page cache, as the change does
    began = time.perf_counter()
    data.tofile(path)
    sync_file(path)
    seconds = time.perf_counter() - began
    path.unlink()
    return seconds


class FolderPeak:
    """The largest total size of a folder's files while the block runs (sampled every 5 ms)."""

    def __init__(self, folder: Path):
        self.folder, self.peak, self._stop = folder, 0, threading.Event()

    def size(self) -> int:
        total = 0
        for root, _, files in os.walk(self.folder):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size
                except FileNotFoundError:
                    pass
        return total

    def __enter__(self) -> "FolderPeak":
        self.start = self.peak = self.size()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.size())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.size())


def measure_changes(work: Path, n: int, repeats: int) -> list[dict]:
    """Every change on both formats at one size: medians of the interleaved repeats."""
    bases = {}
    for fmt, make in ((1, base_format1), (2, base_format2)):
        folder = work / f"base-{n}-format{fmt}"
        folder.mkdir(parents=True)
        began = time.perf_counter()
        make(folder / "faces.h5", n)
        bases[fmt] = folder
        print(f"{n} records, format {fmt}: base written in {time.perf_counter() - began:.0f} s", flush=True)
    runs: dict[tuple, list] = {}
    for repeat in range(repeats):
        for operation in OPERATIONS:
            for fmt in (1, 2):
                folder = work / f"run-{n}-format{fmt}-{operation}-{repeat}"
                shutil.copytree(bases[fmt], folder, copy_function=os.link)  # shares the base's bytes
                inputs = inputs_for(operation, n)
                data = inputs[{"split": "parts", "landmarks": "landmarks", "view": "view"}[operation]]
                own = data.nbytes
                before = plain_write(folder, data)
                os.sync()  # no writeback of earlier work inside the timed change
                with FolderPeak(folder) as peak:
                    began = time.perf_counter()
                    change(fmt, operation, folder / "faces.h5", inputs)
                    seconds = time.perf_counter() - began
                reference = (before + plain_write(folder, data)) / 2  # just before and just after
                del inputs, data
                runs.setdefault((operation, fmt), []).append(
                    {"seconds": seconds, "own_bytes": own, "plain_write_s": reference,
                     "beyond_own_s": seconds - reference, "peak_growth": peak.peak - peak.start,
                     "extra_disk": peak.peak - peak.start - own})
                shutil.rmtree(folder)
                print(f"  {n} {operation} format {fmt}: {seconds:.2f} s (own bytes {reference:.2f} s), "
                      f"extra disk {(peak.peak - peak.start - own) / 2**20:,.0f} MiB", flush=True)
    rows = []
    for (operation, fmt), entries in runs.items():
        median = lambda name: statistics.median(e[name] for e in entries)  # noqa: E731
        rows.append({"records": n, "operation": operation, "format": fmt, "seconds": median("seconds"),
                     "plain_write_s": median("plain_write_s"), "beyond_own_s": median("beyond_own_s"),
                     "own_bytes": entries[0]["own_bytes"], "extra_disk": max(e["extra_disk"] for e in entries),
                     "runs": entries})
    return rows


# ------------------------------------------------------------------------- load, memory


def measure_load(work: Path, n: int, repeats: int) -> dict:
    """featcache.load of one view against np.fromfile of a file of the same bytes."""
    cache = work / f"base-{n}-format2" / "faces.h5"
    raw = work / "raw.bin"
    featcache.load(cache, group=KEY).features.tofile(raw)
    nbytes = raw.stat().st_size
    times = {"load": [], "fromfile": []}
    for _ in range(repeats + 1):  # the first of each warms the page cache
        for name, read in (("load", lambda: featcache.load(cache, group=KEY).features),
                           ("fromfile", lambda: np.fromfile(raw, dtype=np.float32))):
            began = time.perf_counter()
            read()
            times[name].append(time.perf_counter() - began)
    raw.unlink()
    load_s, raw_s = statistics.median(times["load"][1:]), statistics.median(times["fromfile"][1:])
    return {"records": n, "bytes": nbytes, "load_s": load_s, "fromfile_s": raw_s,
            "load_gib_s": nbytes / load_s / 2**30, "fromfile_gib_s": nbytes / raw_s / 2**30,
            "fraction": raw_s / load_s}


RSS_CHILD = """
import sys, featcache
featcache.extract(sys.argv[1], "fer_minixception", sys.argv[2], weights=None, layout="flat")
print(next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")))
"""  # VmHWM: this process's own peak (ru_maxrss would keep the benchmark's, inherited at fork)


def measure_memory(work: Path, counts: list[int]) -> list[dict]:
    """Peak RSS of extracting the first n of max(counts) synthetic 64 px JPEGs, each in a fresh process."""
    from PIL import Image

    images = work / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(max(counts)):
        pixels = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
        Image.fromarray(pixels).save(images / f"{i:06d}.jpg", quality=90)
    rows = []
    for count in counts:
        folder = work / f"first-{count}"
        folder.mkdir()
        for path in sorted(images.iterdir())[:count]:
            (folder / path.name).symlink_to(path)
        cache = work / f"memory-{count}.h5"
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", RSS_CHILD, str(folder), str(cache)], capture_output=True,
                              text=True, check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        rows.append({"images": count, "peak_rss_mib": int(done.stdout.split()[-1]) / 1024,
                     "seconds": time.perf_counter() - began})
        print(f"extract {count} images: peak RSS {rows[-1]['peak_rss_mib']:.0f} MiB", flush=True)
    return rows


# ------------------------------------------------------------------------------ report


def markdown(changes: list[dict], load: dict, memory: list[dict], sizes: list[int], repeats: int) -> str:
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    lines = [
        "# The cache at scale: what a change costs, format 2 against format 1\n",
        f"Synthetic caches of {' and '.join(f'{n:,}' for n in sizes)} records x {DIM:,} float32 features in two "
        f"views; each change made {repeats} times on a fresh hard-linked copy, medians. *Beyond own bytes*: the "
        "change's time minus a plain `tofile` + fsync of the bytes it adds (the mean of one just before and one "
        "just after it); `os.sync()` before each timed write. *Extra disk*: peak "
        "growth of the cache folder beyond those bytes (largest of the repeats).\n",
        "| change | records | format | time | own bytes (plain write) | beyond own bytes | extra disk |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in sorted(changes, key=lambda r: (OPERATIONS.index(r["operation"]), r["records"], r["format"])):
        lines.append(f"| {row['operation']} | {row['records']:,} | {row['format']} | {row['seconds']:.2f} s | "
                     f"{mib(row['own_bytes'])} ({row['plain_write_s']:.2f} s) | **{row['beyond_own_s']:.2f} s** | "
                     f"{mib(row['extra_disk'])} |")
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        lines += ["", f"Time beyond own bytes, {large:,} against {small:,} records (format 2 should be flat):", "",
                  "| change | format 1 | format 2 |", "|---|---:|---:|"]
        pick = {(r["operation"], r["format"], r["records"]): r["beyond_own_s"] for r in changes}
        for operation in OPERATIONS:
            cells = [f"{pick[(operation, f, small)]:.2f} s -> {pick[(operation, f, large)]:.2f} s" for f in (1, 2)]
            lines.append(f"| {operation} | {cells[0]} | {cells[1]} |")
    lines += ["", f"`featcache.load` of one view ({load['records']:,} x {DIM:,}, {mib(load['bytes'])}): "
                  f"{load['load_s']:.2f} s ({load['load_gib_s']:.2f} GiB/s) against `np.fromfile` of the same bytes "
                  f"{load['fromfile_s']:.2f} s ({load['fromfile_gib_s']:.2f} GiB/s): **{load['fraction']:.2f}** of "
                  "a plain read (both from the page cache).", "",
              "| `featcache extract` (fer_minixception, 64 px JPEGs, flat folder) | peak RSS |", "|---|---:|"]
    for row in memory:
        lines.append(f"| {row['images']:,} images | {row['peak_rss_mib']:,.0f} MiB |")
    if len(memory) > 1:
        growth = memory[-1]["peak_rss_mib"] / memory[0]["peak_rss_mib"] - 1
        lines.append(f"\nPeak RSS from {memory[0]['images']:,} to {memory[-1]['images']:,} images: {growth:+.1%}.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[45000, 450000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, nargs="+", default=[4000, 40000])
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="featcache-store-", dir=args.work))
    try:
        changes = [row for n in args.sizes for row in measure_changes(work, n, args.repeats)]
        for folder in work.glob("base-*"):  # leave the page cache to the one cache that load reads
            if folder.name != f"base-{max(args.sizes)}-format2":
                shutil.rmtree(folder)
        load = measure_load(work, max(args.sizes), args.repeats)
        for folder in work.glob("base-*"):
            shutil.rmtree(folder)
        memory = measure_memory(work, sorted(args.images))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    payload = {"sizes": args.sizes, "repeats": args.repeats, "dim": DIM, "changes": changes, "load": load,
               "memory": memory}
    text = markdown(changes, load, memory, args.sizes, args.repeats)
    write_results("store", json.loads(json.dumps(payload)), text)
    print(text)


if __name__ == "__main__":
    main()
