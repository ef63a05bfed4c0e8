"""featcache: transfer learning on images by cached features.

Run each frozen backbone once over a dataset, keep the pooled embeddings in an
HDF5 cache, and train interchangeable light heads on the cache in seconds.

The public names load lazily, so ``import featcache`` (and ``featcache --help``)
does not start TensorFlow until a backbone is actually needed.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("featcache")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_PUBLIC = {
    "list_backbones": "featcache.backbones",
    "get_backbone": "featcache.backbones",
    "load_backbone": "featcache.backbones",
    "layer_names": "featcache.backbones",
    "Tap": "featcache.backbones",
    "WeightsError": "featcache.errors",
    "extract": "featcache.extraction",
    "ExtractResult": "featcache.extraction",
    "merge": "featcache.store",
    "remove": "featcache.store",
    "upgrade": "featcache.store",
    "extract_on_ray": "featcache.ray_engine",
    "MergeResult": "featcache.store",
    "load": "featcache.reading",
    "open_features": "featcache.reading",
    "info": "featcache.reading",
    "FeatureSet": "featcache.reading",
    "combine": "featcache.feature_sets",
    "add_landmark_group": "featcache.landmarks",
    "run_recipe": "featcache.recipe",
    "open_dataset": "featcache.datasets",
    "set_groups": "featcache.record_groups",
    "check_split": "featcache.leaks",
    "compare": "featcache.experiment",
    "nested_evaluate": "featcache.nested",
    "Candidate": "featcache.nested",
    "train": "featcache.model",
    "evaluate": "featcache.model",
    "Model": "featcache.model",
    "Predictions": "featcache.predictions",
    "export_model": "featcache.export",
    "load_model": "featcache.model",
    "FeatcacheError": "featcache.errors",
    "ModelError": "featcache.errors",
    "CacheError": "featcache.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'featcache' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
