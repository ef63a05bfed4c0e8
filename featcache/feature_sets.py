"""Feature sets that combine cached groups: several backbones, taps and landmarks side by side.

:func:`combine` loads groups of one cache and joins their features column-wise, row-aligned
on the records every group could read. ``view="mean"`` averages each group's original and
flipped features (where it has a flipped view): a horizontal flip keeps the expression, so
the mean is a steadier description of the face.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from .cache import CacheError, open_cache
from .reading import FeatureSet, load, select_group

VIEWS = ("original", "flip", "mean")


def _group_view(cache: Path, key: str, view: str) -> FeatureSet:
    if view != "mean":
        return load(cache, group=key, view=view)
    with open_cache(cache) as handle:
        has_flip = "flip" in handle[f"groups/{key}"]
    if not has_flip:
        return load(cache, group=key)
    original, flipped = _on_common_records([load(cache, group=key), load(cache, group=key, view="flip")])
    return replace(original, features=((original.features + flipped.features) / 2).astype(np.float32), view="mean")


def _on_common_records(parts: list[FeatureSet]) -> list[FeatureSet]:
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
    view: str = "original",
) -> FeatureSet:
    """The features of several groups of one cache side by side, on the records all of them hold.

    ``groups``: group keys or backbone names (a name must match one group). ``view``:
    ``"original"``, ``"flip"`` or ``"mean"`` (original and flipped averaged per group; a
    group without a flipped view contributes its original). The result's ``group`` is the
    keys joined by ``+`` and its ``config`` lists each part's configuration.
    """
    cache = Path(cache)
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, got {view!r}")
    if not groups:
        raise ValueError("name at least one group to combine")
    with open_cache(cache) as handle:
        keys = [select_group(handle, cache, None, g) if g in handle.get("groups", {}) else
                select_group(handle, cache, g, None) for g in groups]
    if len(set(keys)) != len(keys):
        raise CacheError(f"{cache}: a group is named twice in {list(groups)}")
    parts = [_group_view(cache, key, view) for key in keys]
    aligned = _on_common_records(parts)
    first = aligned[0]
    config = {"backbone": "+".join(p.config["backbone"] for p in parts), "groups": keys,
              "parts": [p.config for p in parts], "dims": [int(p.features.shape[1]) for p in parts]}
    return replace(first, features=np.concatenate([p.features for p in aligned], axis=1), group="+".join(keys),
                   view=view, config=config)
