"""Extraction on a Ray cluster: one shard per worker, then one merge.

:func:`extract_on_ray` starts ``workers`` Ray actors; actor K runs
``featcache.extract(data, ..., shard=(K, N))`` into ``<out stem>.shard-K-of-N.features.h5``
beside ``out`` (a contiguous block of records, decoded by featcache's own pipeline), and
:func:`featcache.merge` then joins the N shard files into ``out``. Every shard is a normal
featcache shard: idempotent and resumable, so a killed or failed run continues where each
worker stopped when it is run again with the same ``workers``.

Resources: each actor asks for one GPU when the cluster has GPUs, and for ``CPUs // workers``
CPUs, which is also the thread count it gives TensorFlow (intra- and inter-op), OpenMP
(``OMP_NUM_THREADS``) and the ONNX Runtime / OpenVINO engines (``FEATCACHE_THREADS``), so
workers sharing a machine do not oversubscribe its cores. Without ``address`` a local Ray
instance is started on this machine's cores (and stopped afterwards); with one, the data
folder and ``out``'s folder must be the same paths on every node (a shared file system), and
featcache must be installed there.

Install Ray with ``pip install "featcache[ray]"``.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional, Union

from .datasets import Dataset, open_dataset
from .engines import EngineError, resolve_precision
from .errors import UsageError
from .extraction import ExtractResult, default_cache_path, warn_left_out
from .record_groups import dataset_groups, store_groups
from .store import Shard, has_view, merge, merged_from, shard_file_name, writer_lock
from .views import view_names

RAY_INSTALL = 'pip install "featcache[ray]"'


def extract_on_ray(
    data: Union[str, Path, Dataset],
    backbone: str = "efficientnet_lite0",
    out: Union[str, Path, None] = None,
    *,
    workers: Optional[int] = None,
    address: Optional[str] = None,
    **options: Any,
) -> ExtractResult:
    """:func:`featcache.extract` spread over ``workers`` Ray actors, merged into ``out``.

    ``options`` are those of :func:`featcache.extract` (``weights``, ``taps``, ``engine`` for
    the workers, ``batch_size``, ``flip``, ...) except ``shard``. ``workers`` defaults to the
    cluster's GPUs, else its nodes; ``address`` (e.g. ``ray://head:10001`` or ``auto``) joins
    a running cluster, None starts Ray on this machine (an already initialised Ray is reused).
    ``out`` may exist only as the merge of a previous run with the same ``workers``; then
    only what is missing is extracted and it is merged again. ``precision="auto"`` is resolved
    on this machine, so that every worker computes the same one. The result's ``seconds`` is the
    wall time from starting the workers to the merged file, excluding Ray's own start.
    """
    if "shard" in options:
        raise UsageError("extract_on_ray makes one shard per worker itself; drop shard=")
    if options.get("precision") == "auto":  # every shard of one group computes one precision: decided here
        options = {**options, "precision": resolve_precision("auto", options.get("engine", "auto"))}
    ray = _import_ray()
    dataset = data if isinstance(data, Dataset) else open_dataset(data, options.get("layout", "auto"))
    warn_left_out(dataset)  # the workers' warnings stay in their logs
    source = data if isinstance(data, Dataset) else str(Path(data).resolve())
    out = (Path(out) if out is not None else default_cache_path(dataset)).resolve()
    group_by = options.pop("group_by", None)  # stored on the merged cache, once, below
    grouping = None if group_by is None else dataset_groups(dataset, group_by)
    with _connected(ray, address):
        workers, gpus, threads = _plan(ray, workers, len(dataset))
        shards = shard_paths(out, workers)
        _check_out(out, shards)
        began = time.perf_counter()
        results = _run_workers(ray, source, backbone, shards, options, gpus, threads)
        views = view_names(options.get("flip", False), options.get("crops", ()))
        if not all(has_view(out, results[0].group, view) for view in views):  # new, or a new configuration
            _merge_into(shards, out)
        result = _combined(out, results, workers, time.perf_counter() - began)
        if grouping is not None:
            with writer_lock(out):
                result.grouped = store_groups(out, *grouping)
        return result


def shard_paths(out: Path, workers: int) -> list[Path]:
    """The shard files of ``out`` for ``workers`` workers: ``<stem>.shard-K-of-N.features.h5`` beside it."""
    stem = out.name.removesuffix(".h5").removesuffix(".features")
    return [out.with_name(shard_file_name(stem, Shard(k, workers))) for k in range(1, workers + 1)]


def _import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError(f"--engine ray needs Ray; {RAY_INSTALL}") from None
    return ray


@contextmanager
def _connected(ray, address: Optional[str]) -> Iterator[None]:
    """A Ray connection: the one already open, the cluster at ``address``, or a local instance we stop after."""
    if ray.is_initialized():
        yield
        return
    if address:
        try:
            ray.init(address=address, log_to_driver=False)  # workers' output stays in the cluster's logs
        except ConnectionError as error:
            raise EngineError(f"cannot reach the Ray cluster at {address} ({error}); check --address") from None
    else:
        ray.init(address="local", num_cpus=os.cpu_count() or 1, log_to_driver=False, include_dashboard=False,
                 logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def _plan(ray, workers: Optional[int], n_records: int) -> tuple[int, int, int]:
    """``(workers, GPUs per worker, CPU threads per worker)`` for this cluster."""
    resources = ray.cluster_resources()
    cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    nodes = [node for node in ray.nodes() if node.get("Alive")]
    if workers is None:
        workers = gpus or len(nodes)
    if workers < 1:
        raise UsageError(f"workers must be at least 1, got {workers}")
    if workers > n_records:
        raise UsageError(f"{workers} workers for {n_records} records; use at most {n_records}")
    if gpus and workers > gpus:
        raise UsageError(f"{workers} workers but the cluster has {gpus} GPUs (one per worker); use at most {gpus}")
    smallest = min((int(n["Resources"].get("CPU", 0)) for n in nodes if n["Resources"].get("CPU")), default=cpus)
    return workers, 1 if gpus else 0, max(1, min(cpus // workers, smallest))  # an actor fits on any node


def _check_out(out: Path, shards: list[Path]) -> None:
    """``out`` must be new, or the merge of exactly these shard files (then it is merged again)."""
    if not out.exists():
        return
    made_from = merged_from(out)
    if made_from != [path.name for path in shards]:
        raise UsageError(f"{out} exists and is not the merge of {len(shards)} Ray workers' shards "
                         f"({shards[0].name}, ...); write to another --out, or run with the --workers that made it")


def _run_workers(ray, source, backbone: str, shards: list[Path], options: dict, gpus: int,
                 threads: int) -> list[ExtractResult]:
    """One actor per shard, each running featcache.extract on its block; their results in shard order."""
    count = len(shards)
    environment = {"OMP_NUM_THREADS": str(threads), "FEATCACHE_THREADS": str(threads), "TF_CPP_MIN_LOG_LEVEL": "2"}
    worker = ray.remote(ShardWorker).options(num_cpus=threads, num_gpus=gpus,
                                             runtime_env={"env_vars": environment})
    actors = [worker.remote(threads) for _ in shards]
    try:
        calls = [actor.extract.remote(source, backbone, str(path), (k, count), options)
                 for k, (actor, path) in enumerate(zip(actors, shards), start=1)]
        return _gather(ray, calls, options.get("progress", False))
    finally:
        for actor in actors:
            ray.kill(actor)


def _gather(ray, calls: list, progress: bool) -> list[ExtractResult]:
    """Wait for every call; a worker's exception is raised as itself (one line), not Ray's wrapper."""
    from ray.exceptions import RayActorError, RayTaskError

    pending = list(calls)
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            result = ray.get(done[0])
            if progress:
                print(f"worker {calls.index(done[0]) + 1}/{len(calls)}: {result.summary()}",
                      file=sys.stderr, flush=True)
        return ray.get(calls)
    except RayTaskError as error:
        if isinstance(error.cause, BaseException):
            raise error.cause from None
        raise
    except RayActorError as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise EngineError(f"a Ray worker died ({first_line}); run again: finished shards are kept, "
                          "the others resume") from None


def _merge_into(shards: list[Path], out: Path) -> None:
    """Merge the shards into ``out``; an existing ``out`` (their previous merge) is replaced atomically."""
    merge(shards, out, replace=out.exists())


def _combined(out: Path, results: list[ExtractResult], workers: int, seconds: float) -> ExtractResult:
    """The workers' results as one: images and failures summed, wall time, engines named."""
    engines = ", ".join(dict.fromkeys(result.engine for result in results if result.engine))
    return ExtractResult(
        path=out, group=results[0].group,
        views=tuple(dict.fromkeys(view for result in results for view in result.views)),
        images=sum(result.images for result in results),
        failed=[failure for result in results for failure in result.failed],
        seconds=seconds if any(result.views for result in results) else 0.0,
        device=", ".join(dict.fromkeys(result.device for result in results)),
        engine=f"ray x{workers} ({engines or 'nothing run'})",
        left_out=results[0].left_out,
    )


class ShardWorker:
    """A Ray actor that extracts shards with ``threads`` CPU threads (set before TensorFlow starts)."""

    def __init__(self, threads: int) -> None:
        os.environ["OMP_NUM_THREADS"] = os.environ["FEATCACHE_THREADS"] = str(threads)
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

    def extract(self, source, backbone: str, out: str, shard: tuple[int, int], options: dict) -> ExtractResult:
        from .extraction import extract

        return extract(source, backbone, out, shard=shard, **{**options, "progress": False})
