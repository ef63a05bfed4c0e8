"""Feature sets that combine cached groups: several backbones, taps and landmarks side by side.

:func:`combine` loads groups of one cache and joins their features column-wise, row-aligned
on the records every group could read. ``view="mean"`` averages each group's views (original,
flipped, centre crops: :mod:`featcache.views`): they all show the same expression, so the
mean is a steadier description of the face.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping, Sequence, Union

import numpy as np

from .errors import UsageError
from .reading import FeatureSet, load, select_group
from .store import CacheError, open_cache
from .views import how_to_extract, parse_view

MEAN = "mean"
ViewSpec = Union[str, Sequence[str]]


def _group_view(cache: Path, key: str, view: ViewSpec) -> tuple[FeatureSet, list[str]]:
    """One view of a group, or the average of several (``"mean"``: every view it holds);
    and the names of the views it is made of."""
    if isinstance(view, str) and view != MEAN:
        return load(cache, group=key, view=view), [view]
    with open_cache(cache) as reader:
        held = reader.views(key)
    names = held if view == MEAN else [name for name in view if name in held]
    if not names:
        raise CacheError(f"{cache}: group {key} holds none of the views {list(view)} (it has {', '.join(held)}); "
                         f"{how_to_extract(view[0])}")
    views = on_common_records([load(cache, group=key, view=name) for name in names])
    return replace(views[0], features=mean_of_views([part.features for part in views]), view=MEAN), names


def mean_of_views(features: Sequence[np.ndarray]) -> np.ndarray:
    """The average of a group's views, row by row (float64 sums, float32 result)."""
    return np.mean(features, axis=0, dtype=np.float64).astype(np.float32)


def on_common_records(parts: list[FeatureSet]) -> list[FeatureSet]:
    """Each feature set cut to the records all of them hold, in record order."""
    common = parts[0].index
    for part in parts[1:]:
        common = np.intersect1d(common, part.index)
    return [_rows(part, np.searchsorted(part.index, common)) for part in parts]


def _rows(features: FeatureSet, rows: np.ndarray) -> FeatureSet:
    """The given rows of a feature set."""
    cut = lambda values: None if values is None else values[rows]  # noqa: E731
    return replace(features, features=features.features[rows], labels=cut(features.labels),
                   valence=cut(features.valence), arousal=cut(features.arousal), ids=cut(features.ids),
                   paths=cut(features.paths), content_hashes=cut(features.content_hashes),
                   landmarks=cut(features.landmarks), index=features.index[rows])


def combine(
    cache: Union[str, Path],
    groups: Sequence[str],
    *,
    view: ViewSpec = "original",
) -> FeatureSet:
    """The features of several groups of one cache side by side, on the records all of them hold.

    ``groups``: group keys or backbone names (a name must match one group). ``view``: a view
    every group holds (``"original"``, ``"flip"``, ``"crop0.9"``, ... see
    :mod:`featcache.views`); a sequence of views, each group contributing the average of
    those it holds (landmarks have only ``"original"``); or ``"mean"``: each group's
    average over every view it holds. The result's ``group`` is the
    keys joined by ``+`` and its ``config`` lists each part's configuration (``parts``), width
    (``dims``) and the views averaged into it (``views``).
    """
    cache = Path(cache)
    for name in [view] if isinstance(view, str) else view:
        if name != MEAN:
            parse_view(name)  # an unknown name fails here, naming the choices
    if not groups:
        raise UsageError("name at least one group to combine")
    with open_cache(cache) as reader:
        held = reader.groups()
        keys = [select_group(reader, cache, None, g) if g in held else select_group(reader, cache, g, None)
                for g in groups]
    if len(set(keys)) != len(keys):
        raise CacheError(f"{cache}: a group is named twice in {list(groups)}")
    return _joined(keys, [_group_view(cache, key, view) for key in keys], view)


def combine_views(cache: Union[str, Path], views: Mapping[str, Sequence[str]]) -> FeatureSet:
    """:func:`combine` with each group's own views, every one of which it must hold: group key ->
    the views averaged into its part (a saved model's feature sources, :mod:`featcache.model`)."""
    cache = Path(cache)
    parts = []
    for key, names in views.items():
        part, held = _group_view(cache, key, list(names))
        missing = [name for name in names if name not in held]
        if missing:
            raise CacheError(f"{cache}: group {key} lacks the view {missing[0]!r}; {how_to_extract(missing[0])}")
        parts.append((part, held))
    return _joined(list(views), parts, MEAN)


def _joined(keys: list[str], parts_and_views: Sequence[tuple[FeatureSet, list[str]]], view: ViewSpec) -> FeatureSet:
    """The parts side by side on the records all of them hold, with the combined configuration."""
    parts, views = zip(*parts_and_views)
    aligned = on_common_records(list(parts))
    first = aligned[0]
    config = {"backbone": "+".join(p.config["backbone"] for p in parts), "groups": keys,
              "parts": [p.config for p in parts], "dims": [int(p.features.shape[1]) for p in parts],
              "views": [list(names) for names in views]}
    return replace(first, features=np.concatenate([p.features for p in aligned], axis=1), group="+".join(keys),
                   view=view if isinstance(view, str) else "+".join(view), config=config)
