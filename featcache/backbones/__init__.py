"""Frozen image backbones that featcache runs once per dataset.

>>> import featcache.backbones as fb
>>> fb.list_backbones("efficientnet_lite*")
['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2']
>>> extractor = fb.load_backbone("mobilenet_v2", weights=None, taps=["block_13_expand_relu:2"])
>>> extractor.feature_dim
2304
"""

from featcache.errors import WeightsError
from .extractor import FeatureExtractor, Tap, WeightsInfo, get_backbone, layer_names, load_backbone
from .preprocessing import Preprocess, preprocess_input
from .registry import BackboneSpec, get_spec, list_backbones, register

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
]
