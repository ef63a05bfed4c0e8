"""The input pipeline: read, decode, centre-crop, resize, batch, prefetch; numpy only, no TensorFlow.

Images are decoded and resized in parallel threads (:mod:`featcache.images`: TensorFlow's
pixels, bit for bit) and batched as uint8 RGB together with their record index; the engine
converts each batch to float32 (:mod:`featcache.engines`). An image already at the input
size passes through as its exact pixels. Keeping TensorFlow out lets extraction with an
exported engine start without importing it at all.

An unreadable file drops out of the stream (its index is missing from the batches);
:func:`decode_error` then tells why, so the caller can record it.
"""

from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from .errors import UsageError
from .images import centre, decode_error, fit, read_image

__all__ = ["DECODER", "PIXELS", "Batches", "array_batches", "decode_error", "decode_threads", "image_batches",
           "input_batches", "prefetch_batches"]

PIXELS = "uint8"  # what the batches hold; recorded with every view extracted
DECODER = "simplejpeg+pillow"  # what decodes the files; recorded with every view extracted

Inputs = tuple[tuple[int, tuple[float, ...]], ...]  # per model input: (size, centre-crop fractions)
Batch = tuple[np.ndarray, ...]  # (record indices (b,), per input: (b, s, s, 3) [, (b, crops, s, s, 3)])


def _inputs_of(image: np.ndarray, inputs: Inputs) -> tuple[np.ndarray, ...]:
    """For each (size, crops): the whole image at size x size, then (with crops) its crops stacked."""
    out = []
    for size, crops in inputs:
        out.append(fit(image, size))
        if crops:
            out.append(np.stack([fit(centre(image, crop), size) for crop in crops]))
    return tuple(out)


class Batches:
    """Batches of a pipeline, re-iterable: each iteration decodes afresh in its own threads, which
    stop when the iteration ends (also when the consumer stops early)."""

    def __init__(self, produce: Callable[[], Iterator[Batch]]) -> None:
        self._produce = produce

    def __iter__(self) -> Iterator[Batch]:
        return self._produce()


def _batched(count: int, prepare: Callable[[int], Optional[tuple[np.ndarray, ...]]], indices: np.ndarray,
             batch_size: int, threads: int) -> Iterator[Batch]:
    """``prepare(k)`` for k < count on ``threads`` threads, in order, None results skipped, batched
    with ``indices[k]``; a batch and the threads' worth beyond it are prepared ahead of the consumer."""
    ahead = batch_size * prefetch_batches() + threads
    with ThreadPoolExecutor(threads, thread_name_prefix="featcache-decode") as pool:
        pending: deque[tuple[int, Future]] = deque()
        submitted = 0
        try:
            kept: list[int] = []
            rows: list[tuple[np.ndarray, ...]] = []
            while pending or submitted < count:
                while submitted < count and len(pending) < ahead:
                    pending.append((submitted, pool.submit(prepare, submitted)))
                    submitted += 1
                k, future = pending.popleft()
                row = future.result()
                if row is None:
                    continue
                kept.append(k)
                rows.append(row)
                if len(rows) == batch_size:
                    yield _stacked(indices[kept], rows)
                    kept, rows = [], []
            if rows:
                yield _stacked(indices[kept], rows)
        finally:
            for _, future in pending:
                future.cancel()


def _stacked(indices: np.ndarray, rows: list[tuple[np.ndarray, ...]]) -> Batch:
    return (indices, *(np.stack(part) for part in zip(*rows)))


def _checked_inputs(inputs: Inputs, batch_size: int) -> Inputs:
    if int(batch_size) < 1:
        raise UsageError(f"batch size {batch_size}: give at least 1")
    return tuple((int(size), tuple(float(crop) for crop in crops)) for size, crops in inputs)


def image_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    image_size: int,
    batch_size: int,
    *,
    crops: Sequence[float] = (),
    parallel_calls: Optional[int] = None,
) -> Batches:
    """Batches ``(record indices int64 (b,), uint8 pixels (b, size, size, 3))`` of the given records,
    in order; with ``crops``, a third element ``(b, len(crops), size, size, 3)``: each image's centre
    crops keeping those fractions of its sides, cut before resizing (from the full-resolution
    image, decoded once).

    Records whose file cannot be read or decoded are skipped; the indices show which
    records each batch holds. ``parallel_calls``: decoding threads (default
    :func:`decode_threads`).
    """
    return input_batches(paths, indices, ((image_size, tuple(crops)),), batch_size, parallel_calls=parallel_calls)


def input_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    inputs: Inputs,
    batch_size: int,
    *,
    parallel_calls: Optional[int] = None,
) -> Batches:
    """:func:`image_batches` for several models at once, each image decoded once: batches
    ``(record indices, *per input)`` where each ``(size, crops)`` of ``inputs`` contributes the
    whole images at that size and, when it has crops, their crops (as in :func:`image_batches`)."""
    if len(paths) != len(indices):
        raise UsageError(f"{len(paths)} paths but {len(indices)} indices")
    paths, inputs = [os.fspath(path) for path in paths], _checked_inputs(inputs, batch_size)
    records = np.asarray(indices, dtype=np.int64).reshape(-1)

    def prepare(k: int) -> Optional[tuple[np.ndarray, ...]]:
        try:
            image = read_image(paths[k])
        except (OSError, ValueError):
            return None
        return _inputs_of(image, inputs)

    threads = parallel_calls or decode_threads()
    return Batches(lambda: _batched(len(paths), prepare, records, int(batch_size), threads))


def array_batches(images: np.ndarray, inputs: Inputs, batch_size: int) -> Batches:
    """:func:`input_batches` for images already in memory, (n, height, width, 3) uint8: the same
    resizing and crops, so an image gives the same pixels from an array as from its file."""
    images, inputs = np.asarray(images), _checked_inputs(inputs, batch_size)
    records = np.arange(len(images), dtype=np.int64)
    return Batches(lambda: _batched(len(images), lambda k: _inputs_of(images[k], inputs), records, int(batch_size),
                                    decode_threads()))


def decode_threads() -> int:
    """Decoding threads: one per core."""
    return os.cpu_count() or 1


def prefetch_batches() -> int:
    """Batches decoded ahead of the consumer: 1.

    On a CPU the model's threads need every core and stall at each parallel section when a
    decoder takes one away; one batch ahead is decoded on all cores in the gaps while the
    model runs on the current one, and the decoders then wait instead of competing.
    """
    return 1
