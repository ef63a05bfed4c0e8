"""The backbone registry: one entry per backbone with its default configuration.

In the manner of timm: a builder function is registered once, under the name users
type, with its input size, pooled feature size, preprocessing, recommended taps and
where its pretrained weights come from. :func:`list_backbones` filters by wildcard.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import keras

from ..errors import UsageError

# What a builder receives as weights: None (random), "pretrained", or a file path.
BuilderWeights = Union[None, str, Path]
Builder = Callable[[BuilderWeights, tuple[int, int, int]], keras.Model]


@dataclass(frozen=True)
class BackboneSpec:
    """Default configuration of one registered backbone.

    ``build(weights, input_shape)`` returns the headless network (no pooling) whose
    input is already preprocessed; ``feature_layer`` names the layer whose output is
    the backbone's "last" feature map (``None``: the network's output).
    """

    name: str
    family: str
    build: Builder = field(repr=False, compare=False)
    input_size: int
    feature_dim: int
    preprocessing: str
    pretrained: str  # name of the pretrained weights: "imagenet", "fer2013", ...
    weights_source: str  # where the pretrained weights come from, for people
    offline: bool = False  # pretrained weights available without network access
    channels: int = 3  # channels the network itself takes (after preprocessing)
    feature_layer: Optional[str] = None
    taps: tuple[str, ...] = ()  # recommended intermediate layers, "layer" or "layer:grid"
    min_input_size: int = 32


_REGISTRY: dict[str, BackboneSpec] = {}


def register(name: str, **config) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name`` with its default config."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise UsageError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = BackboneSpec(name=name, build=builder, **config)
        return builder

    return decorator


def list_backbones(pattern: str = "*", *, offline: Optional[bool] = None) -> list[str]:
    """Sorted names matching a shell-style ``pattern`` (``"efficientnet*"``, ``"*net*"``).

    ``offline=True`` keeps only backbones whose pretrained weights need no download.
    """
    _load_builtin_backbones()
    names = fnmatch.filter(sorted(_REGISTRY), pattern.lower())
    if offline is not None:
        names = [n for n in names if _REGISTRY[n].offline == offline]
    return names


def get_spec(name: str) -> BackboneSpec:
    """The registered spec of ``name``, or a ValueError listing close names."""
    _load_builtin_backbones()
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(key, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `featcache backbones`"
        raise UsageError(f"unknown backbone {name!r}{hint}")
    return _REGISTRY[key]


def _load_builtin_backbones() -> None:
    """Import the modules that register featcache's own backbones (once)."""
    from . import bigxception, fer, hse, keras_apps, lite, pixels  # noqa: F401  (registration is the import's effect)
