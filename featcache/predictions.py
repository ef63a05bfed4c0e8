"""What a model says about images: class probabilities and valence/arousal, in memory or as CSV rows.

:class:`Predictions` holds a batch's outputs; :func:`collect` gathers the batches of a stream
of images into one :class:`ImagePredictions` (NaN rows for unreadable images), and
:func:`write_csv` writes them batch by batch, in image order, with an ``error`` column that
says why an image could not be read, so no image is ever dropped and memory does not grow.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np

from .files import atomic_file

# One streamed batch: record indices, their predictions (None when the batch holds only
# unreadable images), and [(index, reason)] for the unreadable images among or before them.
Batch = tuple[np.ndarray, Optional["Predictions"], list[tuple[int, str]]]


@dataclass(frozen=True)
class Predictions:
    """A model's outputs for n images: class probabilities (column j is ``class_names[j]``) and
    valence/arousal, each None when the model has no head for that task."""

    class_names: tuple[str, ...]
    probabilities: Optional[np.ndarray] = None  # (n, n_classes)
    valence_arousal: Optional[np.ndarray] = None  # (n, 2)

    def __len__(self) -> int:
        present = self.probabilities if self.probabilities is not None else self.valence_arousal
        return 0 if present is None else len(present)

    @property
    def labels(self) -> Optional[np.ndarray]:
        """(n,) the most probable class name of each image (None for a NaN row: an unreadable image)."""
        if self.probabilities is None:
            return None
        unknown = np.isnan(self.probabilities).any(axis=1)
        names = np.asarray(self.class_names, dtype=object)[np.nan_to_num(self.probabilities, nan=-1.0).argmax(axis=1)]
        return np.where(unknown, None, names)

    @property
    def valence(self) -> Optional[np.ndarray]:
        return None if self.valence_arousal is None else self.valence_arousal[:, 0]

    @property
    def arousal(self) -> Optional[np.ndarray]:
        return None if self.valence_arousal is None else self.valence_arousal[:, 1]


@dataclass(frozen=True)
class ImagePredictions:
    """Predictions for image files, one row per file in order: ``errors[i]`` says why image i
    could not be read (its prediction row is NaN), None when it was. ``left_out``: files of the
    folders given that are not images by their names."""

    paths: list[str]
    errors: list[Optional[str]]
    predictions: Predictions
    left_out: tuple[str, ...] = ()


@dataclass(frozen=True)
class WrittenPredictions:
    """What :func:`write_csv` wrote; ``left_out``: files of the folders given that are not images
    by their names (they are said, never predicted silently or dropped silently)."""

    path: Path
    images: int
    failed: int
    left_out: tuple[str, ...] = ()

    def summary(self) -> str:
        failed = f", {self.failed} unreadable (see the error column)" if self.failed else ""
        shown = ", ".join(self.left_out[:5]) + (", ..." if len(self.left_out) > 5 else "")
        left_out = f"; left out {len(self.left_out)} files not named as images: {shown}" if self.left_out else ""
        return f"wrote {self.path}: {self.images} images{failed}{left_out}"


def joined(parts: Sequence[Predictions]) -> Predictions:
    """Consecutive batches' predictions as one."""
    def stacked(name: str) -> Optional[np.ndarray]:
        return None if getattr(parts[0], name) is None else np.concatenate([getattr(p, name) for p in parts])

    return Predictions(parts[0].class_names, stacked("probabilities"), stacked("valence_arousal"))


def collect(shown: Sequence[str], batches: Iterable[Batch], class_names: Sequence[str], classify: bool,
            regress: bool, left_out: Sequence[str] = ()) -> ImagePredictions:
    """Every batch of a stream in memory, NaN rows and a reason for unreadable images."""
    n = len(shown)
    probabilities = np.full((n, len(class_names)), np.nan) if classify else None
    targets = np.full((n, 2), np.nan) if regress else None
    errors: list[Optional[str]] = [None] * n
    for indices, predictions, failures in batches:
        for index, reason in failures:
            errors[index] = reason
        if predictions is not None and probabilities is not None:
            probabilities[indices] = predictions.probabilities
        if predictions is not None and targets is not None:
            targets[indices] = predictions.valence_arousal
    return ImagePredictions(list(shown), errors, Predictions(tuple(class_names), probabilities, targets),
                            tuple(left_out))


def columns(class_names: Sequence[str], classify: bool, regress: bool) -> list[str]:
    """The CSV columns: path, label and p_<class> (a model that classifies), valence and arousal
    (a model that regresses), error. A model without a task has no columns for it."""
    names = ["path"]
    if classify:
        names += ["label"] + [f"p_{name}" for name in class_names]
    if regress:
        names += ["valence", "arousal"]
    return names + ["error"]


def _rows(shown: Sequence[str], batch: Batch, width: int) -> list[list[str]]:
    """CSV rows of one streamed batch, unreadable images among them, in image order."""
    indices, predictions, failures = batch
    rows = [(index, [shown[index]] + [""] * (width - 2) + [reason]) for index, reason in failures]
    if predictions is not None:
        labels = predictions.labels
        for row, index in enumerate(indices):
            values = [shown[index]]
            if predictions.probabilities is not None:
                values += [labels[row]] + [f"{p:.7g}" for p in predictions.probabilities[row]]
            if predictions.valence_arousal is not None:
                values += [f"{v:.7g}" for v in predictions.valence_arousal[row]]
            rows.append((int(index), values + [""]))
    return [values for _, values in sorted(rows, key=lambda pair: pair[0])]


def write_csv(out: Union[str, os.PathLike], shown: Sequence[str], batches: Iterable[Batch], header: list[str],
              left_out: Sequence[str] = ()) -> WrittenPredictions:
    """Stream the batches' rows to ``out`` (a temporary file beside it, renamed when complete)."""
    out = Path(out)
    failed = 0
    with atomic_file(out) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for batch in batches:
            writer.writerows(_rows(shown, batch, len(header)))
            failed += len(batch[2])
    return WrittenPredictions(out, len(shown), failed, tuple(left_out))
