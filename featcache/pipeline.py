"""The tf.data input pipeline: read, decode, resize, batch, prefetch.

Images are decoded in parallel (any format TensorFlow decodes: JPEG, PNG, BMP, GIF's
first frame; grayscale becomes RGB), resized to the backbone's square input with
antialiasing, and batched as float32 RGB in [0, 255] together with their record
index. An unreadable file drops out of the stream; :func:`decode_error` then tells
why, so the caller can record it.
"""

from __future__ import annotations

import os
import re
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


def _load(index: tf.Tensor, path: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    image = tf.cast(tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False), tf.float32)
    image.set_shape((None, None, 3))
    already = tf.reduce_all(tf.equal(tf.shape(image)[:2], size))  # e.g. 224 px AffectNet crops: no resampling
    image = tf.cond(already, lambda: image,
                    lambda: tf.clip_by_value(tf.image.resize(image, (size, size), antialias=True), 0.0, 255.0))
    return index, tf.ensure_shape(image, (size, size, 3))


def image_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    image_size: int,
    batch_size: int,
    *,
    parallel_calls: Optional[int] = None,
) -> tf.data.Dataset:
    """Batches ``(record indices (b,), pixels (b, size, size, 3))`` of the given records, in order.

    Records whose file cannot be read or decoded are skipped; the indices show which
    records each batch holds. ``parallel_calls``: decoding threads (default
    :func:`decode_threads`).
    """
    if len(paths) != len(indices):
        raise ValueError(f"{len(paths)} paths but {len(indices)} indices")
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(indices, dtype=np.int64), list(paths)))
    threads = parallel_calls or decode_threads()
    dataset = dataset.map(lambda i, p: _load(i, p, image_size), num_parallel_calls=threads, deterministic=True)
    dataset = dataset.ignore_errors()
    options = tf.data.Options()
    options.deterministic = True
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def decode_threads() -> int:
    """Decoding threads: every core when a GPU runs the model, else half the cores.

    On a CPU the model's own thread pool needs the cores: with tf.data's AUTOTUNE the
    decoders oversubscribe them and ResNet50 ran at half its model-only speed on 2 cores
    (24.8 vs 48.7 img/s); one decoder per two cores kept it at 48.0.
    """
    cores = os.cpu_count() or 2
    return cores if tf.config.list_logical_devices("GPU") else max(1, cores // 2)


def decode_error(path: str) -> str | None:
    """Why ``path`` cannot be decoded (one line), or None if it can."""
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        message = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:\w+\].*$", "", getattr(error, "message", str(error)))
        return " ".join(message.split())[:300] or type(error).__name__
    return None
