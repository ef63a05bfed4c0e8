"""Reading a feature cache: :func:`load` features with their labels, :func:`open_features`
the same with the features left on disk, :func:`info` a summary."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import h5py
import numpy as np

from .cache import CacheError, open_cache
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


def _groups(handle: h5py.File) -> dict[str, dict]:
    return {key: json.loads(group.attrs["config"]) for key, group in handle.get("groups", {}).items()}


def select_group(handle: h5py.File, cache: Path, backbone: Optional[str], group: Optional[str]) -> str:
    """The one group key that matches, or a CacheError listing what there is."""
    groups = _groups(handle)
    available = "; ".join(f"{key} (taps {', '.join(cfg['taps'])}, weights {cfg['weights']})"
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
    with open_cache(cache) as handle:
        return _feature_set(handle, cache, backbone, group, view, include_failed,
                            lambda features, keep: features[()][keep])


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
    that were read (failed rows, NaN in the file, are left out, as by :func:`load`);
    it is sliced in row chunks by the streaming heads (``heads.StreamingRidgeHead``,
    ``heads.StreamingLogisticHead``, the Keras dense heads), and
    ``heads.RowSubset(fs.features, mask)`` selects rows (labelled ones, a fold) lazily.
    Labels, targets and ids are in memory. Valid while the ``with`` block holds the file open::

        with featcache.open_features("faces.h5", "efficientnet_lite0") as fs:
            known = fs.labels >= 0
            head = heads.StreamingLogisticHead(C=1e-3).fit(heads.RowSubset(fs.features, known), fs.labels[known])
    """
    from heads.chunked import RowSubset

    cache = Path(path)
    with open_cache(cache) as handle:
        yield _feature_set(handle, cache, backbone, group, view, False, RowSubset)


def _feature_set(
    handle: h5py.File,
    cache: Path,
    backbone: Optional[str],
    group: Optional[str],
    view: str,
    include_failed: bool,
    rows_of: Callable[[h5py.Dataset, np.ndarray], np.ndarray],
) -> FeatureSet:
    """The FeatureSet of one group and view; ``rows_of(dataset, keep)`` gives its features."""
    key = select_group(handle, cache, backbone, group)
    views = handle[f"groups/{key}"]
    if view not in views:
        raise CacheError(f"{cache}: group {key} has no {view!r} view (it has {', '.join(views)}); "
                         f"{how_to_extract(view)}")
    dataset = views[f"{view}/features"]
    failed = views[f"{view}/failed_indices"][()]
    keep = np.ones(dataset.shape[0], dtype=bool)
    if not include_failed:
        keep[failed] = False
    records = handle["records"]
    column = lambda name: records[name][()][keep] if name in records else None  # noqa: E731
    return FeatureSet(
        features=rows_of(dataset, keep),
        labels=column("labels"),
        valence=column("valence"),
        arousal=column("arousal"),
        ids=records["ids"].asstr()[()][keep],
        paths=records["paths"].asstr()[()][keep],
        content_hashes=column("content_hashes").astype(str),
        landmarks=column("landmarks"),
        index=np.flatnonzero(keep),
        class_names=tuple(json.loads(handle.attrs["class_names"])),
        group=key,
        view=view,
        config=json.loads(views.attrs["config"]),
    )


def info(path: Union[str, Path]) -> dict:
    """A plain summary of a cache: records, label counts, groups, views, failures."""
    cache = Path(path)
    with open_cache(cache) as handle:
        records = handle["records"]
        labels = records["labels"][()]
        class_names = json.loads(handle.attrs["class_names"])
        counts = {name: int(np.sum(labels == i)) for i, name in enumerate(class_names)}
        if np.any(labels < 0):
            counts["(unlabelled)"] = int(np.sum(labels < 0))
        summary = {
            "path": str(cache),
            "records": int(handle.attrs["n_records"]),
            "dataset": {"layout": handle.attrs["dataset_layout"], "root": handle.attrs["dataset_root"],
                        "fingerprint": handle.attrs["dataset_fingerprint"]},
            "created": handle.attrs["created"],
            "label_counts": counts,
            "valence": _present(records["valence"][()]),
            "arousal": _present(records["arousal"][()]),
            "landmarks": "landmarks" in records,
            "groups": {},
        }
        for key, group in handle.get("groups", {}).items():
            entry = {name: _plain(value) for name, value in group.attrs.items() if name != "config"}
            entry["config"] = json.loads(group.attrs["config"])
            entry["views"] = {}
            for view, node in group.items():
                entry["views"][view] = {
                    "shape": list(node["features"].shape),
                    "failed": [
                        {"path": str(records["paths"].asstr()[int(i)]), "reason": reason}
                        for i, reason in zip(node["failed_indices"][()], node["failed_reasons"].asstr()[()])
                    ],
                    **{name: _plain(value) for name, value in node.attrs.items()},
                }
            summary["groups"][key] = entry
        return summary


def _present(values: np.ndarray) -> dict:
    known = values[~np.isnan(values)]
    if not known.size:
        return {"present": 0}
    return {"present": int(known.size), "min": float(known.min()), "max": float(known.max()),
            "mean": float(known.mean())}


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
