"""Scale: out-of-core heads on a cache far larger than the data the heads keep.

Writes a synthetic featcache cache of 1,000,000 x 1,280 float16 features (2.4 GiB; a few
rows marked failed, NaN in the file) in a temporary folder outside the repository, then
fits ``heads.RidgeHead(alpha=1.0)`` and ``heads.LogisticHead(C=1e-3)`` from it through
``featcache.open_features`` (regularisation fixed: one pass over the rows for ridge, one per
L-BFGS step for logistic regression), each in a fresh subprocess so that the peak resident
memory (VmHWM) of one fit does not mix with another's or with the writer's. The file
is removed afterwards.

    python benchmarks/bench_scale.py                      # the full size (~10 minutes on 2 cores)
    python benchmarks/bench_scale.py --rows 20000 --logistic-iter 5   # a quick smoke run
    python benchmarks/bench_scale.py --only ray           # only the Ray engine's throughput (~3 minutes)

The Ray part (skipped when Ray is not installed) times ``featcache extract --engine ray``
with 1 and 2 workers against the plain ``featcache.extract`` on the first 1,000 JPEGs of
../shared's AffectNet subset. ``--only PART`` keeps the other part's results in the files.

Writes ``benchmarks/results/scale.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import command_line, peak_rss_mib, write_results  # noqa: E402

N_CLASSES = 8
FAILED_ROWS = (0, 123_457, 500_001)  # failed extractions: NaN rows the cache marks, left out by open_features
MEMORY_TARGET_MIB = 2048


# ---------------------------------------------------------------- the cache file


def write_synthetic_cache(path: Path, rows: int, dim: int, block: int = 16384, seed: int = 0) -> None:
    """A featcache cache (one group, float16 features) of a Gaussian mixture with a linear
    valence/arousal target (made in memory: 2 bytes per value), stored in 256-row chunks."""
    from featcache.store import Records, writer_lock, writing_view

    fixed = np.random.default_rng(12345)
    centres = fixed.normal(size=(N_CLASSES, dim)) * 0.15
    weights = fixed.normal(size=(dim, 2)) / np.sqrt(dim)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, rows).astype(np.int16)
    targets = np.empty((rows, 2), dtype=np.float32)
    failed = np.array([r for r in FAILED_ROWS if r < rows], dtype=np.int64)
    features = np.empty((rows, dim), dtype=np.float16)
    for start in range(0, rows, block):
        stop = min(start + block, rows)
        X = centres[labels[start:stop]] + rng.normal(size=(stop - start, dim))
        targets[start:stop] = np.tanh(X @ weights + 0.2 * rng.normal(size=(stop - start, 2)))
        X = X.astype(np.float16)
        X[failed[(failed >= start) & (failed < stop)] - start] = np.nan
        features[start:stop] = X
    records = Records(ids=[f"r{i}" for i in range(rows)], paths=[f"synthetic/{i}.jpg" for i in range(rows)],
                      labels=labels, valence=targets[:, 0], arousal=targets[:, 1], landmarks=None,
                      content_hashes=[""] * rows, class_names=[f"class{k}" for k in range(N_CLASSES)],
                      fingerprint="synthetic-scale", layout="synthetic", root="/synthetic")
    config = {"backbone": "synthetic", "taps": ["last"], "weights": "none", "feature_dim": dim, "dtype": "float16"}
    with writer_lock(path), writing_view(path, "synthetic-scale", "original", features.shape, np.float16,
                                         group_attrs={"config": json.dumps(config)}, failed=failed,
                                         reasons=["synthetic failure"] * len(failed), records=records,
                                         chunks=(256, dim)) as dataset:
        for start in range(0, rows, block):
            dataset[start : start + block] = features[start : start + block]


# ------------------------------------------------------------ one fit, measured


def fit_one(head_name: str, cache: Path, chunk_rows: int, logistic_iter: int) -> dict:
    """Fit one linear head from the chunked cache (run in a fresh process): time, memory, a sanity score."""
    import warnings

    import featcache
    import heads

    baseline = peak_rss_mib()
    with featcache.open_features(cache, "synthetic") as features:
        start = time.perf_counter()
        if head_name == "ridge":
            head = heads.RidgeHead(alpha=1.0, chunk_rows=chunk_rows).fit(features.features, features.targets)
        else:
            head = heads.LogisticHead(C=1e-3, max_iter=logistic_iter, chunk_rows=chunk_rows)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                head.fit(features.features, features.labels)
        seconds = time.perf_counter() - start
        fit_peak = peak_rss_mib()  # before the sanity score below reads 50,000 rows into memory
        sample = features.features[:50_000]  # a sanity score on the first rows
        if head_name == "ridge":
            truth = features.targets[:50_000]
            residual = ((head.predict(sample) - truth) ** 2).sum(axis=0)
            score = {"r2_first_50k": [float(v) for v in 1 - residual / ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)]}
        else:
            score = {"accuracy_first_50k": float(np.mean(head.predict(sample) == features.labels[:50_000])),
                     "lbfgs_iterations": int(head.n_iter_[0]), "converged": not caught}
        rows = int(features.features.shape[0])
    return {"head": repr(head), "rows": rows, "seconds": round(seconds, 1),
            "peak_rss_mib": round(fit_peak, 1), "rss_before_fit_mib": round(baseline, 1), **score}


def measure_in_subprocess(head_name: str, cache: Path, chunk_rows: int, logistic_iter: int) -> dict:
    command = [sys.executable, __file__, "--worker", head_name, "--cache", str(cache),
               "--chunk-rows", str(chunk_rows), "--logistic-iter", str(logistic_iter)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {head_name} worker failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------- Ray engine throughput

AFFECTNET_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "affectnet-subset" / "images"


def linked_faces(folder: Path, n: int) -> Path:
    """A class-folder dataset of symbolic links to the first ``n`` AffectNet JPEGs (nothing copied)."""
    images = sorted(AFFECTNET_IMAGES.glob("*.jpg"), key=lambda p: int(p.stem))[:n]
    if len(images) < n:
        sys.exit(f"{AFFECTNET_IMAGES} holds {len(images)} JPEGs; --ray-images {n} needs more")
    target = folder / "faces" / "all"
    target.mkdir(parents=True)
    for image in images:
        (target / image.name).symlink_to(image)
    return target.parent


def shard_seconds(out: Path, workers: int) -> list[float]:
    """Each worker's own extraction-loop time, as its shard file records it."""
    from featcache.ray_engine import shard_paths
    from featcache.store import open_cache

    seconds = []
    for path in shard_paths(out, workers):
        with open_cache(path, shards=True) as reader:
            (key,) = reader.groups()
            seconds.append(float(reader.view(key, "original").attrs["seconds"]))
    return seconds


def ray_engine_throughput(images: int = 1000, backbone: str = "mobilenet_v2", repeats: int = 2,
                          worker_counts: tuple[int, ...] = (1, 2)) -> Optional[dict]:
    """img/s of ``extract_on_ray`` with 1 and 2 workers against the plain ``featcache.extract``, on
    one machine (a local Ray instance on every core), interleaved, medians of ``repeats``.

    Wall img/s times the whole library call (model building, for Ray also starting the actors
    and the merge; Ray's own start is timed apart); loop img/s is images over the slowest
    worker's extraction loop. None when Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        print('Ray is not installed (pip install "featcache[ray]"): no Ray engine results', flush=True)
        return None
    import statistics

    import featcache
    from featcache.engines import choose_engine
    from featcache.ray_engine import extract_on_ray

    options = {"weights": None, "batch_size": 32}  # random weights: speed does not depend on their values
    cores = os.cpu_count() or 1
    folder = Path(tempfile.mkdtemp(prefix="featcache-ray-bench-"))
    runs: dict[str, list[dict]] = {"plain": [], **{f"ray-{n}": [] for n in worker_counts}}
    load = os.getloadavg()[0]
    try:
        data = linked_faces(folder, images)
        featcache.extract(data, backbone, folder / "warm-up.h5", **options)  # the engine's ONNX export, once
        began = time.perf_counter()
        ray.init(address="local", num_cpus=cores, include_dashboard=False, log_to_driver=False,
                 logging_level="WARNING")
        ray_start = time.perf_counter() - began
        for repeat in range(repeats):
            out = folder / f"plain-{repeat}.h5"
            began = time.perf_counter()
            result = featcache.extract(data, backbone, out, **options)
            wall = time.perf_counter() - began
            runs["plain"].append({"wall_s": wall, "loop_s": result.seconds, "images": result.images})
            print(f"plain: {result.images / wall:.1f} img/s wall, {result.images_per_second:.1f} loop", flush=True)
            for workers in worker_counts:
                out = folder / f"ray-{workers}-{repeat}" / "faces.h5"
                began = time.perf_counter()
                result = extract_on_ray(data, backbone, out, workers=workers, **options)
                wall = time.perf_counter() - began
                loops = shard_seconds(out, workers)
                runs[f"ray-{workers}"].append({"wall_s": wall, "loop_s": max(loops), "worker_loop_s": loops,
                                               "images": result.images})
                print(f"ray x{workers}: {result.images / wall:.1f} img/s wall, "
                      f"{result.images / max(loops):.1f} loop", flush=True)
    finally:
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)

    def summary(name: str, workers: int) -> dict:
        done = runs[name]
        wall, loop = (statistics.median(run[key] for run in done) for key in ("wall_s", "loop_s"))
        n = done[0]["images"]
        return {"method": name, "workers": workers, "threads_per_worker": max(1, cores // workers),
                "images": n, "wall_s": round(wall, 2), "wall_img_s": round(n / wall, 1),
                "loop_img_s": round(n / loop, 1), "loop_img_s_per_worker": round(n / loop / workers, 1),
                "runs": done}

    return {
        "config": {"images": images, "backbone": backbone, "weights": "random", "batch_size": 32,
                   "engine": choose_engine("auto"), "repeats": repeats, "cores": cores,
                   "ray_version": ray.__version__, "ray_start_s": round(ray_start, 1),
                   "command": command_line(), "load_average_at_start": round(load, 2)},
        "results": [summary("plain", 1), *(summary(f"ray-{n}", n) for n in worker_counts)],
    }


def markdown_ray(results: Optional[dict]) -> str:
    """The markdown section of :func:`ray_engine_throughput`'s results."""
    if not results:
        return ""
    config = results["config"]
    lines = [
        "",
        "## Ray engine",
        "",
        f"`featcache extract --engine ray` (`featcache.ray_engine.extract_on_ray`) on this one machine (a local Ray "
        f"instance on its {config['cores']} cores) against the plain `featcache.extract`: the first "
        f"{config['images']:,} AffectNet JPEGs (224 px, symbolic links), {config['backbone']} with random weights, "
        f"batch {config['batch_size']}, engine `auto` ({config['engine']}) in every worker; medians of "
        f"{config['repeats']} interleaved runs. Command: `{config['command']}`. Wall = the whole call (model "
        f"building; for Ray also starting the workers and the merge; Ray's own start, "
        f"{config['ray_start_s']} s, not included); loop = images over the slowest worker's extraction loop. "
        f"Each worker gets cores // workers threads. Load average at start: {config['load_average_at_start']}.",
        "",
        "| method | workers | threads each | wall (s) | wall img/s | loop img/s | loop img/s per worker |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["results"]:
        name = "`featcache.extract`" if row["method"] == "plain" else "`extract_on_ray`"
        workers = "-" if row["method"] == "plain" else row["workers"]
        lines.append(f"| {name} | {workers} | {row['threads_per_worker']} | {row['wall_s']:.1f} | "
                     f"{row['wall_img_s']:.1f} | {row['loop_img_s']:.1f} | {row['loop_img_s_per_worker']:.1f} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ main


def markdown_table(config: dict, fits: list[dict], write_seconds: float) -> str:
    lines = [
        "## Out-of-core heads",
        "",
        f"A synthetic featcache cache of {config['rows']:,} x {config['dim']:,} float16 features "
        f"({config['file_gib']:.2f} GiB on disk, {config['failed_rows']} failed rows left out by "
        f"`featcache.open_features`), written in {write_seconds:.0f} s; each head fitted from it in a "
        f"fresh process, reading {config['chunk_rows']:,} rows at a time. Peak resident memory is "
        f"the process's own peak, `VmHWM` (Python, numpy, h5py, scikit-learn and scipy included; "
        f"target < {MEMORY_TARGET_MIB} MiB).",
        "",
        "| head | rows | fit (s) | peak RSS (MiB) | RSS before fit (MiB) | notes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for fit in fits:
        if "r2_first_50k" in fit:
            notes = "exact, one pass; R² (valence, arousal) on the first 50k rows: " + ", ".join(
                f"{v:.3f}" for v in fit["r2_first_50k"])
        else:
            notes = (f"L-BFGS, {fit['lbfgs_iterations']} iterations (about one pass each)"
                     f"{'' if fit['converged'] else ' (capped by --logistic-iter, not converged)'}; "
                     f"accuracy on the first 50k rows: {fit['accuracy_first_50k']:.3f}")
        lines.append(f"| `{fit['head']}` | {fit['rows']:,} | {fit['seconds']:.1f} | {fit['peak_rss_mib']:.0f} | "
                     f"{fit['rss_before_fit_mib']:.0f} | {notes} |")
    return "\n".join(lines) + "\n"


def disk_bytes(cache: Path) -> int:
    """Bytes on disk of a cache: its index and every file of its data folder."""
    from featcache.store.layout import data_folder

    data = data_folder(cache)
    return cache.stat().st_size + sum(f.stat().st_size for f in data.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--chunk-rows", type=int, default=8192)
    parser.add_argument("--logistic-iter", type=int, default=20, help="L-BFGS iterations of the logistic head")
    parser.add_argument("--folder", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the temporary cache goes (outside the repository)")
    parser.add_argument("--only", choices=("out-of-core", "ray"),
                        help="run one part; its results are merged into the existing scale.json/.md")
    parser.add_argument("--ray-images", type=int, default=1000, help="images of the Ray engine part")
    parser.add_argument("--ray-repeats", type=int, default=2, help="interleaved runs of the Ray engine part")
    parser.add_argument("--worker", choices=("ridge", "logistic"), help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(fit_one(args.worker, args.cache, args.chunk_rows, args.logistic_iter)))
        return

    payload = previous_payload() if args.only else {}
    if args.only != "ray":
        payload["out_of_core"] = out_of_core(args)
    if args.only != "out-of-core":
        ray = ray_engine_throughput(args.ray_images, repeats=args.ray_repeats)
        if ray is not None:
            payload["ray_engine"] = ray
    markdown = ""
    if "out_of_core" in payload:
        part = payload["out_of_core"]
        markdown = markdown_table(part["config"], part["fits"], part["write_seconds"])
        if args.only == "ray":  # measured by another command: say which
            markdown += f"\nMeasured by `{part.get('command')}` on {part.get('date')}.\n"
    json_path, md_path = write_results("scale", payload, markdown + markdown_ray(payload.get("ray_engine")))
    print(f"wrote {json_path} and {md_path}")


def previous_payload() -> dict:
    """The parts already in results/scale.json (each keeps the command that measured it)."""
    from _common import RESULTS

    path = RESULTS / "scale.json"
    if not path.is_file():
        return {}
    previous = json.loads(path.read_text())
    parts = {name: previous[name] for name in ("out_of_core", "ray_engine") if name in previous}
    if "out_of_core" in parts:
        parts["out_of_core"].setdefault("command", previous.get("command"))
        parts["out_of_core"].setdefault("date", previous.get("date"))
    return parts


def out_of_core(args: argparse.Namespace) -> dict:
    """Write the synthetic cache, fit both linear heads from it, remove it."""
    needed = args.rows * args.dim * 2 * 1.2 + (1 << 30)
    free = shutil.disk_usage(args.folder).free
    if free < needed:
        sys.exit(f"{args.folder} has {free / 2**30:.1f} GiB free; this run needs {needed / 2**30:.1f} GiB "
                 "(use --folder or fewer --rows)")
    folder = Path(tempfile.mkdtemp(prefix="featcache-scale-", dir=args.folder))
    try:
        cache = folder / "scale.h5"
        start = time.perf_counter()
        write_synthetic_cache(cache, args.rows, args.dim)
        write_seconds = time.perf_counter() - start
        config = {"rows": args.rows, "dim": args.dim, "dtype": "float16", "chunk_rows": args.chunk_rows,
                  "logistic_iter": args.logistic_iter, "file_gib": round(disk_bytes(cache) / 2**30, 2),
                  "failed_rows": sum(r < args.rows for r in FAILED_ROWS)}
        print(f"wrote {cache} ({config['file_gib']} GiB) in {write_seconds:.0f} s", flush=True)
        fits = []
        for head_name in ("ridge", "logistic"):
            fits.append(measure_in_subprocess(head_name, cache, args.chunk_rows, args.logistic_iter))
            print(json.dumps(fits[-1]), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"config": config, "write_seconds": round(write_seconds, 1), "fits": fits,
            "memory_target_mib": MEMORY_TARGET_MIB, "command": command_line()}


if __name__ == "__main__":
    main()
