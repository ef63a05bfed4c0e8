"""Features of a model's sources from images: extraction's pipeline and engines, every source at once.

Each image is decoded once; every source gets it resized and cropped to its backbone's input
exactly as extraction does (:func:`featcache.pipeline.input_batches`), its feature model runs
on each of its views through the engine extraction would choose, and the views are averaged
as the cache averaged them, so a model sees in an image file what it saw in the image's
cached features. Images stream through in batches: memory does not grow with their number.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from .datasets import IMAGE_SUFFIXES, DatasetError, open_dataset
from .errors import ModelError, WeightsError
from .progress import progress_bar
from .sources import Source

ARRAY_CHUNK = 1024  # images of an in-memory array handed to the pipeline at a time
Features = dict[str, np.ndarray]  # source key -> (b, dim) averaged features


def feature_model(source: Source, weights: Optional[Mapping[str, str]] = None):
    """The source's feature model, rebuilt from its configuration and checked against it: a
    :class:`ModelError` when the weights found have another digest (or the model another shape)."""
    from .backbones import get_spec
    from .extraction import load_extractor

    config = source.config
    chosen = (weights or {}).get(source.backbone, _recorded_weights(source, get_spec(source.backbone).pretrained))
    try:
        extractor = load_extractor(source.backbone, chosen, config["taps"], config["pooling"], source.input_size,
                                   source.precision)
    except WeightsError as error:
        raise ModelError(f"{source.backbone}: {error}; or pass the weights the model was trained with "
                         f"(--weights {source.backbone}=PATH)") from None
    built = extractor.config()
    if built["weights_digest"] != config["weights_digest"]:
        raise ModelError(f"{source.backbone}: the weights found ({built['weights']}) have digest "
                         f"{built['weights_digest']}, the model was trained on weights with digest "
                         f"{config['weights_digest']}; use the weights it was trained with "
                         f"(--weights {source.backbone}=PATH)")
    for name in ("input_size", "taps", "pooling", "preprocessing", "feature_dim"):
        if built[name] != config[name]:
            raise ModelError(f"{source.backbone}: this featcache builds it with {name} {built[name]!r}, the model "
                             f"was trained with {config[name]!r}; use the featcache version that trained it")
    return extractor


def runnable_precision(source: Source) -> str:
    """The precision to compute a source's features in here: its own, except bf16 on a processor
    without bfloat16 units, which computes float32 (the features differ by bfloat16's rounding,
    which the model's heads absorb) and says so, rather than refusing a trained model."""
    from .engines import bf16_supported

    if source.precision == "bf16" and not bf16_supported():
        warnings.warn(f"{source.key} was extracted in bf16 and this processor has no bfloat16 units; its features "
                      "are computed in float32 here", RuntimeWarning, stacklevel=3)
        return "float32"
    return source.precision


def _recorded_weights(source: Source, pretrained_name: str) -> Optional[str]:
    """What to build a source with, from the weights its cache group recorded: None for random
    weights (drawn with a fixed seed), "pretrained" for the backbone's own, else the file's path."""
    recorded = source.config["weights"]
    if recorded == "random":
        return None
    return "pretrained" if recorded == pretrained_name else recorded


class FeatureRunner:
    """Every source of a model over the pipeline's batches: feature models built and checked
    once, an engine per source, the views of each source averaged."""

    def __init__(self, sources: Sequence[Source], weights: Optional[Mapping[str, str]] = None) -> None:
        self.sources = tuple(sources)
        self.extractors = {source.key: feature_model(source, weights) for source in self.sources}
        self.inputs: list[tuple[int, tuple[float, ...]]] = []  # what the pipeline makes of each image
        slot_of_input: dict[tuple[int, tuple[float, ...]], tuple[int, Optional[int]]] = {}
        position = 1  # batch[0] holds the record indices
        for source in self.sources:
            wanted = (source.input_size, source.crops)
            if wanted not in slot_of_input:
                self.inputs.append(wanted)
                slot_of_input[wanted] = (position, position + 1 if source.crops else None)
                position += 2 if source.crops else 1
        # source key -> (batch position of its whole images, of its crops or None)
        self.slots = {source.key: slot_of_input[(source.input_size, source.crops)] for source in self.sources}
        self._engines: dict[str, dict] = {}

    def engines(self, engine: str = "auto") -> dict:
        """Source key -> its ready :class:`~featcache.engines.Engine` (built once per engine name)."""
        from .engines import build_engine

        if engine not in self._engines:
            self._engines[engine] = {source.key: build_engine(self.extractors[source.key], engine,
                                                              runnable_precision(source))
                                     for source in self.sources}
        return self._engines[engine]

    def features(self, batch: Sequence, engines: Mapping) -> Features:
        """Source key -> (b, dim) averaged features of one pipeline batch."""
        from .views import view_pixels

        out = {}
        for source in self.sources:
            whole, cropped = self.slots[source.key]
            pixels = batch[whole]
            crop_pixels = batch[cropped] if cropped is not None else None
            run = engines[source.key].run
            out[source.key] = source.average([run(view_pixels(view, pixels, crop_pixels, source.crops))
                                              for view in source.views])
        return out


def image_files(data: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]]
                ) -> tuple[list[str], list[str], list[str]]:
    """(paths to show, absolute paths, files left out) of the images to predict on, in the order
    given: image files, folders in any layout featcache reads (a flat folder of images included;
    images a layout leaves aside, such as those beside class folders, are predicted too) and CSV
    manifests. Left out: the files of those folders whose names are not images' (a layout's own
    annotation files aside)."""
    items = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    if not items:
        raise DatasetError("no images given; pass an image file, a folder of images or a CSV manifest")
    shown, absolute, left_out = [], [], []
    for item in items:
        path = Path(item)
        if not path.exists():
            raise DatasetError(f"{item}: no such file or folder")
        if path.is_file() and path.suffix.lower() != ".csv":
            shown.append(str(item))
            absolute.append(os.path.abspath(path))
            continue
        dataset = open_dataset(path)
        base = path if path.is_dir() else path.parent
        aside = [entry for entry in dataset.ignored if not entry.endswith("/") and not entry.startswith("annotations/")]
        images = [str(dataset.root / entry) for entry in aside if entry.lower().endswith(IMAGE_SUFFIXES)]
        for file in [*dataset.absolute_paths(), *images]:
            relative = os.path.relpath(file, os.path.abspath(base))
            shown.append(file if relative.startswith("..") else os.path.join(str(base), relative))
            absolute.append(file)
        left_out += [os.path.join(str(base), entry) for entry in aside if not entry.lower().endswith(IMAGE_SUFFIXES)]
    return shown, absolute, left_out


def file_features(runner: FeatureRunner, files: Sequence[str], *, batch_size: int = 32, engine: str = "auto",
                  progress: bool = False) -> Iterator[tuple[np.ndarray, Optional[Features], list[tuple[int, str]]]]:
    """In file order: (indices of a batch's readable files, their features, [(index, reason)] of the
    unreadable files among or before them); a last item with no features for unreadable files at the end."""
    from .pipeline import decode_error, input_batches

    if not files:
        return
    engines = runner.engines(engine)
    next_index = 0

    def unreadable(stop: int, seen: set) -> list[tuple[int, str]]:
        return [(i, decode_error(files[i]) or "unreadable") for i in range(next_index, stop) if i not in seen]

    with progress_bar(progress, len(files), 0, "predict") as advance:
        for batch in input_batches(files, range(len(files)), runner.inputs, batch_size):
            indices = batch[0]
            stop = int(indices[-1]) + 1
            yield indices, runner.features(batch, engines), unreadable(stop, set(indices.tolist()))
            advance(stop - next_index)
            next_index = stop
        tail = unreadable(len(files), set())
        if tail:
            yield np.array([], dtype=np.int64), None, tail
        advance(len(files) - next_index)


def array_features(runner: FeatureRunner, images: np.ndarray, *, batch_size: int = 32,
                   engine: str = "auto") -> Iterator[Features]:
    """Features of images in memory, uint8 RGB (height, width, 3) or (n, height, width, 3), batch
    by batch through the same resizing and crops as files."""
    from .pipeline import array_batches

    given = np.asarray(images)
    images = given[None] if given.ndim == 3 else given
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3 or not images.size:
        raise ModelError(f"images must be uint8 RGB of shape (height, width, 3) or (n, height, width, 3); got "
                         f"{given.dtype} {given.shape}")
    engines = runner.engines(engine)
    for start in range(0, len(images), ARRAY_CHUNK):
        for batch in array_batches(images[start:start + ARRAY_CHUNK], runner.inputs, batch_size):
            yield runner.features(batch, engines)
