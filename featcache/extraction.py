"""Extraction: dataset -> pipeline -> frozen backbone -> cache, once per configuration.

:func:`extract` is idempotent (a configuration already cached costs no extraction),
resumable (a killed run continues where its last checkpoint stopped) and safe (see
:mod:`featcache.store.writer`).
"""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Union

import numpy as np

from . import __version__
from .store import (
    DTYPES,
    PartialWriter,
    Records,
    Shard,
    ShardSpec,
    check_dataset,
    check_target,
    check_writable,
    commit_extraction,
    group_attrs,
    group_key,
    has_view,
    now,
    parse_shard,
    shard_attrs,
    shard_file_name,
    shard_rows,
    tidy,
    with_dtype,
    writer_lock,
)
from .datasets import IMAGE_SUFFIXES, Dataset, LeftOutWarning, describe_left_out, left_out_record, open_dataset
from .engine_cache import Request, library_version, lookup
from .engines import (CPU_ENGINES, Engine, build_engine, cached_engine, choose_engine, race_winner, raced,
                      resolve_precision)
from .errors import FeatcacheError, UsageError
from .progress import progress_bar
from .record_groups import dataset_groups, store_groups
from .views import view_crops, view_names, view_pixels

# How often a running extraction makes its progress durable (a killed run resumes from
# the last checkpoint); FEATCACHE_CHECKPOINT_SECONDS=0 checkpoints after every batch.
CHECKPOINT_SECONDS = float(os.environ.get("FEATCACHE_CHECKPOINT_SECONDS", "1.0"))
ON_ERROR = ("skip", "fail")


class ExtractionError(FeatcacheError, RuntimeError):
    """An image could not be read and ``on_error="fail"`` was asked for."""


@dataclass
class ExtractResult:
    """What one :func:`extract` call did."""

    path: Path
    group: str
    views: tuple[str, ...]  # views extracted by this call (empty: all were cached already)
    images: int = 0  # images run through the backbone by this call
    failed: list[tuple[str, str]] = field(default_factory=list)  # (relative path, reason)
    seconds: float = 0.0
    device: str = ""
    engine: str = ""
    grouped: str = ""  # what --group-by stored, in one line
    # files and folders of the dataset folder that are not records, by reason (Dataset.left_out)
    left_out: dict[str, list[str]] = field(default_factory=dict)

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One line for people."""
        notes = "".join(f"; {note}" for note in (self.grouped, describe_left_out(self.left_out)) if note)
        if not self.views:
            return f"{self.path} [{self.group}]: already cached, nothing to do{notes}"
        failed = f", {len(self.failed)} unreadable (recorded in the cache)" if self.failed else ""
        return (f"{self.path} [{self.group}]: {self.images} images{failed}, views {'+'.join(self.views)}, "
                f"{self.seconds:.1f} s ({self.images_per_second:.0f} img/s, {self.engine} on {self.device}){notes}")


def default_cache_path(dataset: Dataset, shard: Optional[Shard] = None) -> Path:
    """``<dataset folder name>.features.h5`` (a shard: ``.shard-K-of-N.features.h5``) in the current folder."""
    stem = dataset.root.name or "dataset"
    return Path(shard_file_name(stem, shard) if shard is not None else f"{stem}.features.h5")


def _records(dataset: Dataset) -> Records:
    fingerprint = dataset.fingerprint()
    return Records(
        ids=dataset.ids, paths=dataset.paths, labels=dataset.labels, valence=dataset.valence,
        arousal=dataset.arousal, landmarks=dataset.landmarks, content_hashes=fingerprint.content_hashes,
        class_names=dataset.class_names, fingerprint=fingerprint.digest, layout=dataset.layout,
        root=str(dataset.root), left_out=left_out_record(dataset.left_out),
    )


def warn_left_out(dataset: Dataset) -> None:
    """A :class:`LeftOutWarning` naming what the dataset folder left out and why, if anything."""
    if dataset.left_out:
        warnings.warn(f"{dataset.root}: {len(dataset)} records; {describe_left_out(dataset.left_out)} "
                      f"(images are read from the names {' '.join(IMAGE_SUFFIXES)}, any case)",
                      LeftOutWarning, stacklevel=3)


def _group_attrs(config: dict) -> dict:
    return group_attrs(config, featcache_version=__version__, tensorflow_version=library_version("tensorflow"),
                       keras_version=library_version("keras"))


@dataclass(frozen=True)
class FeatureModel:
    """What extraction needs of a feature model: its name, input size, the configuration that
    identifies its features, and a way to get its engine (built only when there is work)."""

    name: str
    input_size: int
    config: dict
    engine: Callable[[], Engine]


def cached_feature_model(backbone: str, weights, taps, pooling: str, image_size: Optional[int], precision: str,
                         engine: str) -> Optional[FeatureModel]:
    """The feature model from the engine cache, when a check of its CPU engine at this (resolved)
    precision recorded there still holds (:mod:`featcache.engine_cache`): no TensorFlow, no
    Keras model. Under ``auto`` in float32, the engine is the one that won the race on this
    processor (none run yet: None, so that the model is built and the engines race). None otherwise."""
    name = choose_engine(engine, precision)
    if name not in CPU_ENGINES:
        return None
    exported = lookup(_request(backbone, weights, taps, pooling, image_size))
    if raced(engine, precision):  # the winner of the race run on this processor
        name = race_winner(exported, precision)
    if exported is None or name is None or exported.check(name, precision) is None:
        return None
    return FeatureModel(exported.name, exported.input_size, exported.config,
                        lambda: cached_engine(exported, name, precision))


def prepare_feature_model(backbone: str, weights, taps, pooling: str, image_size: Optional[int], precision: str,
                          engine: str) -> FeatureModel:
    """:func:`cached_feature_model` when there is one, else the feature model built with Keras."""
    cached = cached_feature_model(backbone, weights, taps, pooling, image_size, precision, engine)
    if cached is not None:
        return cached
    extractor = load_extractor(backbone, weights, taps, pooling, image_size, precision)
    return FeatureModel(extractor.name, extractor.input_size, extractor.config(),
                        lambda: build_engine(extractor, engine, precision))


def _request(backbone: str, weights, taps, pooling: str, image_size: Optional[int]) -> Request:
    from .backbones import Tap, get_spec, resolve_weights

    spec = get_spec(backbone)
    _, source = resolve_weights(spec, weights)
    names = tuple(str(Tap.parse(tap)) for tap in (taps or ("last",)))
    return Request(spec.name, source, names, pooling, int(image_size or spec.input_size))


def extract(
    data: Union[str, Path, Dataset],
    backbone: str = "efficientnet_lite0",
    out: Union[str, Path, None] = None,
    *,
    weights: Union[str, Path, None] = "pretrained",
    taps: Optional[Iterable[str]] = None,
    pooling: str = "avg",
    batch_size: int = 32,
    image_size: Optional[int] = None,
    flip: bool = False,
    crops: Sequence[float] = (),
    on_error: str = "skip",
    precision: str = "float32",
    dtype: str = "float32",
    layout: str = "auto",
    engine: str = "auto",
    shard: ShardSpec = None,
    progress: bool = False,
    group_by: Optional[str] = None,
) -> ExtractResult:
    """Run a frozen backbone once over a dataset and cache its features.

    ``data`` is a dataset folder, a CSV manifest or a :class:`Dataset`; ``out`` the
    cache file (default ``<folder name>.features.h5`` here). ``flip`` adds the
    horizontally flipped view; ``crops`` (fractions, e.g. ``(0.9, 0.8)``) add centre-crop
    views (and their mirror images with ``flip``): see :mod:`featcache.views`. Views
    already cached are not extracted again. ``on_error="skip"`` records unreadable images in the
    cache and goes on; ``"fail"`` stops at the first, naming it. ``precision``: ``"float32"``,
    ``"bf16"`` (OpenVINO's bfloat16 inference, on processors with bfloat16 units), ``"mixed"``
    (TensorFlow: float16 on a GPU, bfloat16 on a CPU) or ``"auto"`` (bf16 where it runs, else
    float32); see :mod:`featcache.engines`. ``dtype="float16"`` stores the features
    in half precision (half the disk; a group of its own, as the values differ).
    ``engine``: ``"auto"`` (TensorFlow on a GPU, ONNX Runtime or OpenVINO on a CPU when
    installed and agreeing with TensorFlow), or one of :data:`featcache.engines.ENGINES`. A
    feature model whose CPU engine was checked before is run from its cached export, without
    TensorFlow (:mod:`featcache.engine_cache`).
    ``shard="K/N"`` (or ``(K, N)``) extracts only the K-th of N contiguous blocks of records
    into a cache of its own, for :func:`featcache.merge` (see :mod:`featcache.store.shards`).
    ``group_by`` stores a group id per record (:mod:`featcache.record_groups`: a CSV column, a
    pattern or a folder level of the paths), so that splits keep each person or video on one side.
    """
    if on_error not in ON_ERROR:
        raise UsageError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    if dtype not in DTYPES:
        raise UsageError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be at least 1, got {batch_size}")
    precision = resolve_precision(precision, engine)  # a bad name, or bf16 where it cannot run, fails before any work
    choose_engine(engine, precision)
    wanted = view_names(flip, crops)
    shard = parse_shard(shard)
    dataset = data if isinstance(data, Dataset) else open_dataset(data, layout)
    warn_left_out(dataset)
    rows = shard_rows(shard, len(dataset))
    grouping = None if group_by is None else dataset_groups(dataset, group_by)
    cache = Path(out) if out is not None else default_cache_path(dataset, shard)
    with writer_lock(cache):
        records = _records(dataset)
        check_dataset(cache, records.fingerprint)
        check_target(cache, shard)
        model = prepare_feature_model(backbone, weights, taps, pooling, image_size, precision, engine)
        config = with_dtype({**model.config, "precision": precision}, dtype)
        key = group_key(config)
        views = tuple(v for v in wanted if not has_view(cache, key, v))
        result = ExtractResult(path=cache, group=key, views=views,
                               left_out={reason: list(paths) for reason, paths in dataset.left_out.items()})
        if not views:
            if grouping is not None:
                result.grouped = store_groups(cache, *grouping)
            return result
        check_writable(cache)  # a format 1 cache is read as it is, and written only once upgraded
        tidy(cache)
        runner = model.engine()
        result.engine, result.device = runner.name, runner.device
        partial = PartialWriter(cache, key, config, records.fingerprint, views, len(dataset), rows)
        try:
            _run(model, runner, dataset, partial, result, batch_size, on_error, progress)
        finally:
            partial.close()
        from .pipeline import DECODER, PIXELS

        stats = {"seconds": result.seconds, "images_per_second": result.images_per_second,
                 "device": result.device, "batch_size": batch_size, "pixels": PIXELS, "decoder": DECODER,
                 **runner.record(),
                 "created": now(),
                 **shard_attrs(shard, len(dataset))}
        commit_extraction(cache, key, _group_attrs(config), records, stats)
        if grouping is not None:
            result.grouped = store_groups(cache, *grouping)
        return result


def load_extractor(backbone: str, weights, taps, pooling: str, image_size: Optional[int], precision: str):
    """The feature model, built under a mixed dtype policy when asked (the global policy is restored)."""
    import keras

    from .backbones import load_backbone
    from .engines import has_gpu

    previous = keras.config.dtype_policy()
    if precision == "mixed":
        keras.config.set_dtype_policy("mixed_float16" if has_gpu() else "mixed_bfloat16")
    try:
        return load_backbone(backbone, weights, taps=taps, pooling=pooling, input_size=image_size)
    finally:
        keras.config.set_dtype_policy(previous)


def _run(model: FeatureModel, engine: Engine, dataset: Dataset, partial: PartialWriter, result: ExtractResult, batch_size: int,
         on_error: str, progress: bool) -> None:
    """Feed every record of the partial file's rows, from its checkpoint on, through the model."""
    from .pipeline import decode_error, image_batches

    rows = partial.rows  # a shard's block of records, or all of them
    start, stop = partial.next_record, rows.stop
    paths = dataset.absolute_paths()
    crops = view_crops(partial.views)

    def record_failures(first: int, stop: int, seen: np.ndarray) -> None:
        for index in sorted(set(range(first, stop)) - set(seen.tolist())):
            reason = decode_error(paths[index]) or "unreadable"
            if on_error == "fail":
                raise ExtractionError(f"{paths[index]}: cannot read this image ({reason}); "
                                      "fix or remove it, or pass --on-error skip")
            partial.fail(index, reason)
            result.failed.append((dataset.paths[index], reason))

    began = time.perf_counter()
    last_checkpoint = began
    next_record = start
    batches = image_batches(paths[start:stop], range(start, stop), model.input_size, batch_size, crops=crops)
    with progress_bar(progress, len(rows), start - rows.start, model.name) as advance:
        for batch in batches:
            indices, pixels = batch[0], batch[1]
            cropped = batch[2] if crops else None
            record_failures(next_record, int(indices[-1]) + 1, indices)
            for view in partial.views:
                partial.write(view, indices, engine.run(view_pixels(view, pixels, cropped, crops)))
            advance(int(indices[-1]) + 1 - next_record)
            next_record = int(indices[-1]) + 1
            result.images += len(indices)
            if time.perf_counter() - last_checkpoint > CHECKPOINT_SECONDS:
                partial.checkpoint(next_record)
                last_checkpoint = time.perf_counter()
        record_failures(next_record, stop, np.array([], dtype=np.int64))
        advance(stop - next_record)
        partial.checkpoint(stop)
    result.seconds = time.perf_counter() - began
