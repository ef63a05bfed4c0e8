"""The tf.data input pipeline: read, decode, resize, batch, prefetch.

Images are decoded in parallel (any format TensorFlow decodes: JPEG, PNG, BMP, GIF's
first frame; grayscale becomes RGB), resized to the backbone's square input with
antialiasing, and batched as float32 RGB in [0, 255] together with their record
index. An unreadable file drops out of the stream; :func:`decode_error` then tells
why, so the caller can record it.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import tensorflow as tf


def _load(index: tf.Tensor, path: tf.Tensor, size: int) -> tuple[tf.Tensor, tf.Tensor]:
    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return index, tf.clip_by_value(image, 0.0, 255.0)


def image_batches(
    paths: Sequence[str],
    indices: Sequence[int],
    image_size: int,
    batch_size: int,
    *,
    parallel_calls: int = tf.data.AUTOTUNE,
) -> tf.data.Dataset:
    """Batches ``(record indices (b,), pixels (b, size, size, 3))`` of the given records, in order.

    Records whose file cannot be read or decoded are skipped; the indices show which
    records each batch holds.
    """
    if len(paths) != len(indices):
        raise ValueError(f"{len(paths)} paths but {len(indices)} indices")
    dataset = tf.data.Dataset.from_tensor_slices((np.asarray(indices, dtype=np.int64), list(paths)))
    dataset = dataset.map(lambda i, p: _load(i, p, image_size), num_parallel_calls=parallel_calls, deterministic=True)
    dataset = dataset.ignore_errors()
    options = tf.data.Options()
    options.deterministic = True
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options)


def decode_error(path: str) -> str | None:
    """Why ``path`` cannot be decoded (one line), or None if it can."""
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.OpError, ValueError) as error:
        message = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:\w+\].*$", "", getattr(error, "message", str(error)))
        return " ".join(message.split())[:300] or type(error).__name__
    return None
