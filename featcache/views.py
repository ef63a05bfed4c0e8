"""Test-time views of each image, cached side by side in one group.

A view is the whole image (``"original"``), its mirror image (``"flip"``), a centre crop
keeping a fraction of each side (``"crop0.9"``), or that crop mirrored (``"crop0.9-flip"``).
Every view of a group comes from the same backbone configuration, so views can be
averaged (:func:`featcache.combine` with ``view="mean"``): test-time augmentation computed
once. The affect recipe averages the whole face and its 0.9, 0.8 and 0.7 crops, each with its
mirror image (:data:`featcache.recipe.AFFECT`; measured in ``benchmarks/results/quality.md``).
"""

from __future__ import annotations

import re
from typing import Iterable, Optional

import numpy as np

from .errors import UsageError

ORIGINAL, FLIP = "original", "flip"
_CROP = re.compile(r"crop(0\.\d+)(-flip)?")


def check_crops(crops: Iterable[float]) -> tuple[float, ...]:
    """The crop fractions, each in (0, 1) with at most two decimals, sorted largest first."""
    checked = set()
    for crop in crops:
        value = float(crop)
        if not 0.1 <= value < 1 or round(value, 2) != value:
            raise UsageError(f"crop {crop!r}: give the fraction of each side to keep, from 0.1 to 0.99 "
                             "with at most two decimals (e.g. 0.9)")
        checked.add(value)
    return tuple(sorted(checked, reverse=True))


def crop_view(crop: float, flip: bool = False) -> str:
    """The view name of a centre crop (mirrored when ``flip``)."""
    return f"crop{crop:g}" + ("-flip" if flip else "")


def view_names(flip: bool = False, crops: Iterable[float] = ()) -> tuple[str, ...]:
    """Every view an extraction with these options caches, in order."""
    names = [ORIGINAL] + ([FLIP] if flip else [])
    for crop in check_crops(crops):
        names += [crop_view(crop)] + ([crop_view(crop, True)] if flip else [])
    return tuple(names)


def parse_view(name: str) -> tuple[Optional[float], bool]:
    """``(crop fraction or None, mirrored)`` of a view name; ValueError for an unknown one."""
    if name in (ORIGINAL, FLIP):
        return None, name == FLIP
    match = _CROP.fullmatch(name)
    if not match:
        raise UsageError(f"unknown view {name!r}: use original, flip, crop<fraction> or crop<fraction>-flip")
    return float(match.group(1)), bool(match.group(2))


def view_crops(names: Iterable[str]) -> tuple[float, ...]:
    """The crop fractions the given views need, largest first."""
    return check_crops({crop for crop, _ in map(parse_view, names) if crop is not None})


def view_pixels(name: str, pixels: np.ndarray, cropped: Optional[np.ndarray], crops: tuple[float, ...]) -> np.ndarray:
    """The batch of one view: ``pixels`` (b, s, s, 3) whole images, ``cropped`` (b, k, s, s, 3)
    their centre crops in ``crops`` order (see :func:`featcache.pipeline.image_batches`)."""
    crop, flip = parse_view(name)
    images = pixels if crop is None else cropped[:, crops.index(crop)]
    return images[:, :, ::-1] if flip else images


def how_to_extract(name: str) -> str:
    """The extract option that adds a view (for error messages)."""
    crop, flip = parse_view(name)
    options = ([f"--crop {crop:g}"] if crop is not None else []) + (["--flip"] if flip else [])
    return "extract it with " + " ".join(options) if options else "extract it"
