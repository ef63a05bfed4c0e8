"""Frozen image backbones that featcache runs once per dataset.

>>> import featcache.backbones as fb
>>> fb.list_backbones("efficientnet_lite*")
['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
>>> extractor = fb.load_backbone("mobilenet_v2", weights=None, taps=["block_13_expand_relu:2"])
>>> extractor.feature_dim
2304

Importing this package does not import Keras (so listing backbones stays fast): the
registry is loaded with it, the names that build models load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from featcache.errors import WeightsError
from .registry import BackboneSpec, get_spec, list_backbones, register, resolve_weights, weights_fingerprint

_LAZY = {
    "FeatureExtractor": ".extractor",
    "Tap": ".extractor",
    "WeightsInfo": ".extractor",
    "get_backbone": ".extractor",
    "layer_names": ".extractor",
    "load_backbone": ".extractor",
    "Preprocess": ".preprocessing",
    "preprocess_input": ".preprocessing",
}

__all__ = [
    "BackboneSpec",
    "FeatureExtractor",
    "Preprocess",
    "Tap",
    "WeightsError",
    "WeightsInfo",
    "get_backbone",
    "get_spec",
    "layer_names",
    "list_backbones",
    "load_backbone",
    "preprocess_input",
    "register",
    "resolve_weights",
    "weights_fingerprint",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
