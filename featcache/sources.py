"""Feature sources: what a saved model extracts from an image, exactly as a cache group recorded it.

A :class:`Source` is one cache group's configuration (backbone, weights and their digest, taps,
pooling, input size, precision) and the views averaged into its features. A model reads one or
several sources side by side (:mod:`featcache.model`); :mod:`featcache.inference` runs them
over images, :mod:`featcache.export` builds them into one network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ModelError
from .feature_sets import mean_of_views
from .store import stored_dtype
from .views import view_crops


@dataclass(frozen=True)
class Source:
    """One feature source: a cache group's configuration and the views averaged into its features."""

    key: str  # the cache group key, e.g. "fer_minixception-1a2b3c4d5e"
    config: Mapping[str, Any]  # exactly as the cache group records it
    views: tuple[str, ...]  # averaged (one view: used as it is)

    @property
    def backbone(self) -> str:
        return str(self.config["backbone"])

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    @property
    def precision(self) -> str:
        return str(self.config.get("precision", "float32"))

    @property
    def dtype(self) -> str:
        """How the cache stored its features (float16 ones are rounded the same way here)."""
        return stored_dtype(self.config)

    @property
    def crops(self) -> tuple[float, ...]:
        """The centre-crop fractions its views need, largest first."""
        return view_crops(self.views)

    def average(self, per_view: Sequence[np.ndarray]) -> np.ndarray:
        """The source's features from its views' features, stored as the cache stores them and
        averaged as :func:`featcache.combine` averages them."""
        stored = [np.asarray(np.asarray(view, self.dtype), np.float32) for view in per_view]
        return stored[0] if len(stored) == 1 else mean_of_views(stored)

    def describe(self) -> str:
        """One line for people."""
        return (f"{self.key}: {self.backbone}, weights {self.config['weights']} "
                f"(digest {self.config['weights_digest']}), input {self.input_size}, "
                f"taps {', '.join(self.config['taps'])}, pool {self.config['pooling']}, "
                f"precision {self.precision}, views {'+'.join(self.views)}")


def sources_of(config: Mapping[str, Any], group: str, view: str) -> list[Source]:
    """The sources of a FeatureSet's configuration: its parts when combined
    (:func:`featcache.combine`), else its group itself with its one view."""
    if "parts" in config:
        found = [Source(key, part, tuple(views))
                 for key, part, views in zip(config["groups"], config["parts"], config["views"])]
    else:
        found = [Source(group, dict(config), (view,))]
    for source in found:
        if source.backbone == "landmarks":
            raise ModelError(f"group {source.key} holds landmark geometry read from annotations, which a new image "
                             "does not have; leave it out of the model")
    return found


def extract_command(source: Source) -> str:
    """The ``featcache extract`` options that cache a source's group and views (for messages)."""
    config = source.config
    options = [f"--backbone {source.backbone}"]
    if config["weights"] == "random":
        options.append("--weights none")
    elif os.sep in config["weights"]:  # a weights file (recorded as its absolute path)
        options.append(f"--weights {config['weights']}")
    options += [f"--tap {tap}" for tap in config["taps"] if tap != "last"]
    if config["pooling"] != "avg":
        options.append(f"--pool {config['pooling']}")
    options.append(f"--image-size {source.input_size}")
    if any(view.endswith("flip") for view in source.views):
        options.append("--flip")
    options += [f"--crop {crop:g}" for crop in source.crops]
    if source.precision != "float32":
        options.append(f"--precision {source.precision}")
    if source.dtype != "float32":
        options.append(f"--dtype {source.dtype}")
    return "featcache extract --data DATA --out CACHE " + " ".join(options)
