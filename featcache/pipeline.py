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

from .errors import UsageError

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


Inputs = tuple[tuple[int, tuple[float, ...]], ...]  # per model input: (size, centre-crop fractions)


def _decode(path: tf.Tensor) -> tf.Tensor:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, dtype=PIXELS, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def _inputs_of(image: tf.Tensor, inputs: Inputs) -> tuple[tf.Tensor, ...]:
    """For each (size, crops): the whole image at size x size, then (with crops) its crops stacked."""
    out = []
    for size, crops in inputs:
        out.append(_fit(image, size))
        if crops:
            out.append(tf.stack([_fit(_centre(image, crop), size) for crop in crops]))
    return tuple(out)


def _batched(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True
    # tf.data's autotuner throttled whole runs to about half the model's speed on 2 cores
    # (MobileNetV2 under ONNX Runtime: 199 img/s in some runs, 330-350 with it off).
    options.autotune.enabled = False
    return dataset.batch(batch_size).prefetch(prefetch_batches()).with_options(options)


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
    return input_batches(paths, indices, ((image_size, tuple(crops)),), batch_size, parallel_calls=parallel_calls)


def input_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    inputs: Inputs,
    batch_size: int,
    *,
    parallel_calls: Optional[int] = None,
) -> tf.data.Dataset:
    """:func:`image_batches` for several models at once, each image decoded once: batches
    ``(record indices, *per input)`` where each ``(size, crops)`` of ``inputs`` contributes the
    whole images at that size and, when it has crops, their crops (as in :func:`image_batches`)."""
    if len(paths) != len(indices):
        raise UsageError(f"{len(paths)} paths but {len(indices)} indices")
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(indices, dtype=np.int64), list(paths)))
    inputs = tuple((int(size), tuple(crops)) for size, crops in inputs)
    dataset = dataset.map(lambda i, p: (i, *_inputs_of(_decode(p), inputs)),
                          num_parallel_calls=parallel_calls or decode_threads(), deterministic=True)
    return _batched(dataset.ignore_errors(), batch_size)


def array_batches(images: np.ndarray, inputs: Inputs, batch_size: int) -> tf.data.Dataset:
    """:func:`input_batches` for images already in memory, (n, height, width, 3) uint8: the same
    resizing and crops, so an image gives the same pixels from an array as from its file."""
    dataset = tf.data.Dataset.from_tensor_slices((np.arange(len(images), dtype=np.int64), images))
    inputs = tuple((int(size), tuple(crops)) for size, crops in inputs)
    dataset = dataset.map(lambda i, image: (i, *_inputs_of(image, inputs)), num_parallel_calls=decode_threads(),
                          deterministic=True)
    return _batched(dataset, batch_size)


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
