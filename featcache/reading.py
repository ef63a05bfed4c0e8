"""Reading a feature cache: :func:`load` features with their labels, :func:`open_features`
the same with the features left on disk, :func:`info` a summary."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np

from .store import CacheError, CacheReader, View, open_cache
from .record_groups import group_summary
from .splits import split_details
from .views import how_to_extract


@dataclass(frozen=True)
class FeatureSet:
    """Features of one cache group and view, row-aligned with their records.

    Rows of images that could not be read are left out unless asked for;
    ``index`` gives each row's record index in the cache.
    """

    features: np.ndarray  # (n, dim) float32; from open_features a lazy heads.RowSubset of the on-disk rows
    labels: np.ndarray  # (n,) int16, -1 unknown
    valence: np.ndarray  # (n,) float32, NaN unknown
    arousal: np.ndarray  # (n,) float32, NaN unknown
    ids: np.ndarray  # (n,) str
    paths: np.ndarray  # (n,) str
    content_hashes: np.ndarray  # (n,) str: byte-identical images share one
    landmarks: Optional[np.ndarray]  # (n, 136) float32 or None
    index: np.ndarray  # (n,) record indices
    class_names: tuple[str, ...]
    group: str
    view: str
    config: dict

    def __len__(self) -> int:
        return len(self.index)

    @property
    def targets(self) -> np.ndarray:
        """(n, 2) valence and arousal."""
        return np.column_stack([self.valence, self.arousal])


def select_group(reader: CacheReader, cache: Path, backbone: Optional[str], group: Optional[str]) -> str:
    """The one group key that matches, or a CacheError listing what there is."""
    groups = reader.groups()
    available = "; ".join(f"{key} (taps {', '.join(cfg['taps'])}, weights {cfg['weights']}"
                          f"{', stored as ' + cfg['dtype'] if 'dtype' in cfg else ''})"
                          for key, cfg in groups.items()) or "none yet"
    if group is not None:
        if group not in groups:
            raise CacheError(f"{cache} has no group {group!r}; it has: {available}")
        return group
    matches = [key for key, cfg in groups.items() if backbone is None or cfg["backbone"] == backbone]
    if len(matches) == 1:
        return matches[0]
    what = f"backbone {backbone!r}" if backbone else "a backbone"
    if not matches:
        raise CacheError(f"{cache} has no features of {what}; it has: {available}")
    raise CacheError(f"{cache} holds {len(matches)} groups of {what}; pass group=KEY, one of: {available}")


def load(
    path: Union[str, Path],
    backbone: Optional[str] = None,
    *,
    group: Optional[str] = None,
    view: str = "original",
    include_failed: bool = False,
) -> FeatureSet:
    """Features of one backbone configuration from a cache, with labels and ids.

    ``backbone`` picks the group when the cache holds one configuration of it;
    otherwise name the ``group`` key (``featcache info`` lists them).
    """
    cache = Path(path)
    with open_cache(cache) as reader:
        return _feature_set(reader, cache, backbone, group, view, include_failed,
                            _rows_in_memory)


@contextmanager
def open_features(
    path: Union[str, Path],
    backbone: Optional[str] = None,
    *,
    group: Optional[str] = None,
    view: str = "original",
) -> Iterator[FeatureSet]:
    """:func:`load` for caches larger than memory: a FeatureSet whose ``features`` stay on disk.

    ``features`` is a :class:`heads.RowSubset` of the HDF5 dataset holding only the rows
    that were read (failed rows, NaN in the file, are left out, as by :func:`load`); the
    heads that take a chunked X (``heads.LogisticHead``, ``heads.RidgeHead``, the Keras
    dense heads) read it in row chunks, and ``heads.RowSubset(fs.features, mask)`` selects rows
    (labelled ones, a fold) lazily.
    Labels, targets and ids are in memory. Valid while the ``with`` block holds the file open::

        with featcache.open_features("faces.h5", "efficientnet_lite0") as fs:
            known = fs.labels >= 0
            head = heads.LogisticHead(C=1e-3).fit(heads.RowSubset(fs.features, known), fs.labels[known])
    """
    from heads.chunked import RowSubset

    cache = Path(path)
    with open_cache(cache) as reader:
        yield _feature_set(reader, cache, backbone, group, view, False, RowSubset)


def _rows_in_memory(features, keep: np.ndarray) -> np.ndarray:
    """The kept rows of a stored view, read whole, as float32 (a float16 view is widened)."""
    rows = np.asarray(features[()], dtype=np.float32)
    return rows if keep.all() else rows[keep]


def _feature_set(
    reader: CacheReader,
    cache: Path,
    backbone: Optional[str],
    group: Optional[str],
    view: str,
    include_failed: bool,
    rows_of: Callable[[object, np.ndarray], np.ndarray],
) -> FeatureSet:
    """The FeatureSet of one group and view; ``rows_of(dataset, keep)`` gives its features."""
    key = select_group(reader, cache, backbone, group)
    held = reader.views(key)
    if view not in held:
        raise CacheError(f"{cache}: group {key} has no {view!r} view (it has {', '.join(held)}); "
                         f"{how_to_extract(view)}")
    stored = reader.view(key, view)
    keep = np.ones(stored.features.shape[0], dtype=bool)
    if not include_failed:
        keep[stored.failed_indices] = False
    column = lambda name: None if (values := reader.column(name)) is None else values[keep]  # noqa: E731
    return FeatureSet(
        features=rows_of(stored.features, keep),
        labels=column("labels"),
        valence=column("valence"),
        arousal=column("arousal"),
        ids=column("ids"),
        paths=column("paths"),
        content_hashes=column("content_hashes"),
        landmarks=column("landmarks"),
        index=np.flatnonzero(keep),
        class_names=tuple(reader.class_names),
        group=key,
        view=view,
        config=reader.groups()[key],
    )


def info(path: Union[str, Path]) -> dict:
    """A plain summary of a cache: records, label counts, record groups, splits (with their
    leakage checks), feature groups, views, failures."""
    cache = Path(path)
    with open_cache(cache) as reader:
        labels = reader.column("labels")
        paths = reader.column("paths")
        class_names = reader.class_names
        counts = {name: int(np.sum(labels == i)) for i, name in enumerate(class_names)}
        if np.any(labels < 0):
            counts["(unlabelled)"] = int(np.sum(labels < 0))
        summary = {
            "path": str(cache),
            "format": reader.format,
            "records": reader.n_records,
            "dataset": reader.dataset,
            "created": reader.created,
            "label_counts": counts,
            "valence": _present(reader.column("valence")),
            "arousal": _present(reader.column("arousal")),
            "landmarks": reader.has_column("landmarks"),
            "record_groups": _record_groups(reader.record_groups()),
            "splits": reader.splits(),
            "split_details": {name: split_details(reader, name) for name in reader.splits()},
            "groups": {},
        }
        for key, config in reader.groups().items():
            entry = {name: _plain(value) for name, value in reader.group_attrs(key).items() if name != "config"}
            entry["config"] = config
            entry["views"] = {name: _view_summary(reader.view(key, name), paths) for name in reader.views(key)}
            summary["groups"][key] = entry
        return summary


def _view_summary(view: View, paths: np.ndarray) -> dict:
    """Shape, storage, failures and attributes of one view."""
    return {
        "shape": list(view.features.shape),
        "dtype": str(view.features.dtype),
        "file": str(view.file) if view.file is not None else None,
        "bytes": view.file.stat().st_size if view.file is not None else None,
        "failed": [{"path": str(paths[int(i)]), "reason": reason}
                   for i, reason in zip(view.failed_indices, view.failed_reasons)],
        **{name: _plain(value) for name, value in view.attrs.items()},
    }


def _record_groups(stored: Optional[tuple[np.ndarray, str]]) -> Optional[dict]:
    """How the records are grouped, or None."""
    if stored is None:
        return None
    return group_summary(*stored)


def _present(values: np.ndarray) -> dict:
    known = values[~np.isnan(values)]
    if not known.size:
        return {"present": 0}
    return {"present": int(known.size), "min": float(known.min()), "max": float(known.max()),
            "mean": float(known.mean())}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
