"""The tf.data input pipeline: read, decode, resize, batch, prefetch.

Images are decoded in parallel (any format TensorFlow decodes: JPEG, PNG, BMP, GIF's
first frame; grayscale becomes RGB), resized to the backbone's square input with
antialiasing, and batched as uint8 RGB together with their record index; the engine
converts each batch to float32 (:mod:`featcache.engines`). Carrying uint8 makes the
stage 1.3-2.2x faster than float32 elements (AffectNet JPEGs on two kinds of 2-core
machine) and leaves images already at the input size bit-exact; a resized image is resampled in
float32 and rounded to the nearest level. An unreadable file drops out of the stream;
:func:`decode_error` then tells why, so the caller can record it.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

PIXELS = tf.uint8  # what the batches hold; its name is recorded with every view extracted


def _resized(image: tf.Tensor, size: int) -> tf.Tensor:
    """``image`` resized to size x size with antialiasing, in float32, rounded back to :data:`PIXELS`."""
    pixels = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 255.0)), PIXELS)


def _fit(image: tf.Tensor, size: int) -> tf.Tensor:
    """``image`` at size x size: unchanged when already that size, else :func:`_resized`."""
    already = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))  # e.g. 224 px AffectNet crops: no resampling
    image = tf.cond(already, lambda: image, lambda: _resized(image, size))
    return tf.ensure_shape(image, (size, size, 3))


def _centre(image: tf.Tensor, fraction: float) -> tf.Tensor:
    """The centre box of ``round(fraction * side)`` pixels along each side (at least 1)."""
    sides = tf.shape(image)[:2]
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(sides, tf.float64) * fraction), tf.int32))
    start = (sides - size) // 2
    return tf.slice(image, tf.concat([start, [0]], 0), tf.concat([size, [3]], 0))


def _load(index: tf.Tensor, path: tf.Tensor, size: int, crops: tuple[float, ...]) -> tuple[tf.Tensor, ...]:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=PIXELS, expand_animations=False)
    image.set_shape((None, None, 3))
    if not crops:
        return index, _fit(image, size)
    return index, _fit(image, size), tf.stack([_fit(_centre(image, crop), size) for crop in crops])


def image_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    image_size: int,
    batch_size: int,
    *,
    crops: Sequence[float] = (),
    parallel_calls: Optional[int] = None,
) -> tf.data.Dataset:
    """Batches ``(record indices (b,), uint8 pixels (b, size, size, 3))`` of the given records, in order;
    with ``crops``, a third element ``(b, len(crops), size, size, 3)``: each image's centre
    crops keeping those fractions of its sides, cut before resizing (from the full-resolution
    image, decoded once).

    Records whose file cannot be read or decoded are skipped; the indices show which
    records each batch holds. ``parallel_calls``: decoding threads (default
    :func:`decode_threads`).
    """
    if len(paths) != len(indices):
        raise ValueError(f"{len(paths)} paths but {len(indices)} indices")
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(indices, dtype=np.int64), list(paths)))
    threads = parallel_calls or decode_threads()
    crops = tuple(crops)
    dataset = dataset.map(lambda i, p: _load(i, p, image_size, crops), num_parallel_calls=threads, deterministic=True)
    dataset = dataset.ignore_errors()
    options = tf.data.Options()
    options.deterministic = True
    # tf.data's autotuner throttled whole runs to about half the model's speed on 2 cores
    # (MobileNetV2 under ONNX Runtime: 199 img/s in some runs, 330-350 with it off).
    options.autotune.enabled = False
    return dataset.batch(batch_size).prefetch(prefetch_batches()).with_options(options)


def decode_threads() -> int:
    """Decoding threads: one per core."""
    return os.cpu_count() or 1


def prefetch_batches() -> int:
    """Decoded batches kept ready: 4 when a GPU runs the model, 1 on a CPU.

    On a CPU the model's threads need every core and stall at each parallel section when a
    decoder takes one away; decoding a 224 px JPEG takes about 0.35 ms, so the next batch
    is decoded on all cores in the gaps (MobileNetV2 under OpenVINO on 2 cores: 0.92 of
    its model-only speed, against 0.88 with one decoder running 4 batches ahead).
    """
    return 4 if tf.config.list_logical_devices("GPU") else 1


def decode_error(path: str) -> str | None:
    """Why ``path`` cannot be decoded (one line), or None if it can."""
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        message = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:\w+\].*$", "", getattr(error, "message", str(error)))
        return " ".join(message.split())[:300] or type(error).__name__
    return None
