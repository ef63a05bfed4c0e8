"""A model as ONE network: a batch of uint8 RGB images (any one size) -> class probabilities and
valence/arousal, for deployment where featcache is not installed.

Inside the network, for each feature source: its views cut and resized as
:mod:`featcache.images` does it (a centre crop of ``round(fraction x side)`` pixels, the
antialiased bilinear resize of ``tf.image.resize(antialias=True)`` rebuilt from basic
operations bit for bit (:func:`resize_axis`), rounded to whole pixel levels, mirrored for the
``-flip`` views), run through the source's feature model as one batch and averaged; then
each task's head as layers (:func:`heads.network.keras_network`). Outputs: ``probabilities``
(n, classes, columns in the model's class order) and ``valence_arousal`` (n, 2), each present
when the model has that task. Images at a backbone's input size pass the resize unchanged.

Formats (:data:`EXPORT_FORMATS`): ``onnx``, one ONNX file for onnxruntime (Keras' own ONNX
export); ``keras``, Keras' serving export, a TensorFlow SavedModel folder whose ``serve``
endpoint TensorFlow Serving runs, or ``keras.layers.TFSMLayer(path, call_endpoint="serve")``.
The network computes in float32 (a source extracted in mixed precision is rebuilt in float32).
"""

from __future__ import annotations

import functools
import os
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from .errors import ModelError
from .files import atomic_file, replace_folder
from .views import parse_view

if TYPE_CHECKING:  # the command line imports this module for EXPORT_FORMATS: nothing heavy at import
    from .model import Model

EXPORT_FORMATS = ("onnx", "keras")
OUTPUTS = {"classify": "probabilities", "regress": "valence_arousal"}
INPUT_NAME = "images"


def export_model(model: "Model", out: Union[str, os.PathLike], format: str = "onnx") -> Path:
    """Write ``model`` as one network to ``out`` (an ``.onnx`` file, or a SavedModel folder for
    ``keras``). An earlier export there is replaced once the new one is written; anything else
    at ``out`` is refused, never removed."""
    if format not in EXPORT_FORMATS:
        raise ModelError(f"export format {format!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    out = Path(os.path.abspath(out))
    _check_target(out, format)
    network = build_network(model)
    network(np.zeros((1, 32, 32, 3), np.uint8))  # Keras exports only models that were called
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's FutureWarnings under numpy 2
        if format == "onnx":
            with atomic_file(out) as temporary:
                network.export(str(temporary), format="onnx", verbose=False)
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as folder:
            staged = Path(folder) / out.name
            network.export(str(staged), format="tf_saved_model", verbose=False)
            replace_folder(staged, out)  # an earlier SavedModel (checked above) is removed after
    return out


def _check_target(out: Path, format: str) -> None:
    """Refuse an ``out`` that is not a file (onnx) or a SavedModel folder (keras) from an earlier export."""
    earlier = out.is_file() if format == "onnx" else (out / "saved_model.pb").is_file()
    if out.exists() and not earlier:
        what = "an ONNX file" if format == "onnx" else "a SavedModel folder"
        raise ModelError(f"{out} exists and is not {what}; choose another --out")


def build_network(model: "Model"):
    """The Keras model of :func:`export_model`, before it is written."""
    import keras

    from heads.network import keras_network

    from .inference import feature_model

    SourceViews, ViewMean = _layers()
    images = keras.Input((None, None, 3), dtype="uint8", name=INPUT_NAME)
    runner = model.feature_runner()
    features = {}
    for source in model.sources:
        extractor = runner.extractors[source.key]
        if source.precision != "float32":
            warnings.warn(f"{source.key} was extracted in {source.precision} precision; the exported network runs "
                          "it in float32, so its outputs differ from predict() by that precision's rounding",
                          UserWarning, stacklevel=3)
            extractor = feature_model(replace(source, config={**source.config, "precision": "float32"}),
                                      model.weights)
        name = source.key.replace("-", "_")
        network = keras.Model(extractor.model.input, extractor.model.output, name=f"features_{name}")  # a unique name
        views = SourceViews(source.input_size, source.views, name=f"views_{name}")(images)
        features[source.key] = ViewMean(len(source.views), source.dtype, name=f"mean_{name}")(network(views))
    outputs = {}
    networks: dict[int, object] = {}
    for task, part in model.tasks.items():
        X = features[part.sources[0]] if len(part.sources) == 1 else keras.layers.Concatenate(
            name=f"{task}_features")([features[key] for key in part.sources])
        if id(part.estimator) not in networks:
            try:
                networks[id(part.estimator)] = keras_network(part.estimator, int(X.shape[-1]))(X)
            except ValueError as error:
                raise ModelError(f"cannot export the {task} head: {error}") from None
        out = networks[id(part.estimator)]
        if isinstance(out, dict):
            out = out["classes"] if task == "classify" else out["va"]
        if task == "classify":
            out = keras.ops.matmul(out, _class_columns(part.estimator.classes_, len(model.class_names)))
        outputs[OUTPUTS[task]] = keras.layers.Identity(name=OUTPUTS[task])(out)
    return keras.Model(images, outputs, name="featcache_model")


def _class_columns(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """(head classes, model classes) 0/1 matrix placing each head column at its class id."""
    columns = np.zeros((len(classes), n_classes), np.float32)
    columns[np.arange(len(classes)), np.asarray(classes, dtype=np.int64)] = 1.0
    return columns


def resize_spans(in_size, out_size):
    """``tf.image.resize(..., antialias=True)`` along one axis as its kernel (ScaleAndTranslate)
    computes it: per output pixel, the first input pixel of its span (out_size,) and the
    triangle-kernel weights of the span (out_size, span), zero past its end. Every float32 step
    is taken in the kernel's order, the weight sums one tap at a time, so the weights are the
    kernel's own bit for bit."""
    import tensorflow as tf

    in_f, out_f = tf.cast(in_size, tf.float32), tf.cast(out_size, tf.float32)
    inverse_scale = _reciprocal(out_f / in_f)
    kernel_scale = tf.maximum(inverse_scale, 1.0)
    span = tf.minimum(2 * tf.cast(tf.math.ceil(kernel_scale), tf.int32) + 1, in_size)
    centres = (tf.range(out_f) + 0.5) * inverse_scale
    last = in_size - 1
    starts = tf.clip_by_value(tf.cast(tf.math.ceil(centres - kernel_scale - 0.5), tf.int32), 0, last)
    ends = tf.clip_by_value(tf.cast(tf.math.floor(centres + kernel_scale - 0.5), tf.int32), 0, last) + 1
    taps = starts[:, None] + tf.range(span)[None, :]
    distance = (tf.cast(taps, tf.float32) + 0.5) - centres[:, None]
    weights = tf.maximum(0.0, 1.0 - tf.abs(distance * _reciprocal(kernel_scale)))
    weights = tf.where(taps < ends[:, None], weights, 0.0)
    total = tf.math.cumsum(weights, axis=1)[:, -1]  # a scan adds the taps one at a time, in order
    return starts, weights * _reciprocal(total)[:, None]


def _reciprocal(x):
    """``1 / x`` correctly rounded. Written as a division by ``x`` that graph optimisation leaves
    alone: TensorFlow rewrites ``1.0 / x`` into its Reciprocal operation, whose fast CPU form is
    off by a unit in the last place (0.49999997 for 1 / 2)."""
    import tensorflow as tf

    return tf.math.divide_no_nan(tf.ones_like(x), x)


def resize_axis(images, axis: int, size: int):
    """``images`` (b, h, w, c) float32 resized to ``size`` along ``axis`` (1 or 2) bit for bit as
    ``tf.image.resize(..., antialias=True)`` does: its weights times every tap of each span, then
    added one tap at a time in the kernel's order by a scan (a matrix product would add in another
    order and round differently, moving pixels that lie half-way between two levels to the other
    one). The taps gathered hold about twice the image along ``axis``."""
    import tensorflow as tf

    in_size = tf.shape(images)[axis]
    starts, weights = resize_spans(in_size, size)
    span = tf.shape(weights)[1]
    taps = tf.minimum(starts[:, None] + tf.range(span)[None, :], in_size - 1)  # zero weight past the span
    taken = tf.gather(images, tf.reshape(taps, [-1]), axis=axis)
    shape = tf.shape(images)
    spread = tf.concat([shape[:axis], [size, span], shape[axis + 1:]], axis=0)
    along = [1, size, span, 1, 1] if axis == 1 else [1, 1, size, span, 1]
    terms = tf.reshape(taken, spread) * tf.reshape(weights, along)
    return tf.gather(tf.math.cumsum(terms, axis=axis + 1), span - 1, axis=axis + 1)


@functools.cache
def _layers():
    """The network's own layers (defined on first use: this module is imported without Keras)."""
    import keras
    import tensorflow as tf

    class SourceViews(keras.layers.Layer):
        """uint8 images (b, h, w, 3) -> float32 (views x b, size, size, 3): each view of a source, in order."""

        def __init__(self, size: int, views, **kwargs):
            super().__init__(**kwargs)
            self.size, self.views = int(size), tuple(views)

        def call(self, images):
            pixels = tf.cast(images, tf.float32)
            shape = tf.shape(pixels)
            resized, out = {}, []
            for view in self.views:
                crop, flip = parse_view(view)
                if crop not in resized:
                    part = pixels
                    if crop is not None:
                        size = tf.maximum(1, tf.cast(tf.round(tf.cast(shape[1:3], tf.float64) * crop), tf.int32))
                        start = (shape[1:3] - size) // 2
                        part = pixels[:, start[0]:start[0] + size[0], start[1]:start[1] + size[1], :]
                    part = resize_axis(resize_axis(part, 1, self.size), 2, self.size)
                    resized[crop] = tf.round(tf.clip_by_value(part, 0.0, 255.0))
                out.append(resized[crop][:, :, ::-1, :] if flip else resized[crop])
            return tf.reshape(tf.concat(out, axis=0), (-1, self.size, self.size, 3))  # static sides for the model

        def compute_output_shape(self, input_shape):
            return (None, self.size, self.size, 3)


    class ViewMean(keras.layers.Layer):
        """(views x b, d) -> (b, d): the mean of each image's views, each rounded first to the
        precision the cache stored them in (``stored``)."""

        def __init__(self, n_views: int, stored: str = "float32", **kwargs):
            super().__init__(**kwargs)
            self.n_views = int(n_views)
            self.stored = stored

        def call(self, features):
            if self.stored != "float32":
                features = tf.cast(tf.cast(features, self.stored), "float32")
            return tf.reduce_mean(tf.reshape(features, (self.n_views, -1, features.shape[-1])), axis=0)

        def compute_output_shape(self, input_shape):
            return (None, input_shape[-1])

    return SourceViews, ViewMean
