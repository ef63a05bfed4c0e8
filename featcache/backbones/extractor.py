"""From a registered backbone to a frozen feature model: weights, taps, pooling.

:func:`load_backbone` returns a :class:`FeatureExtractor`: the Keras model (RGB pixels
in [0, 255] in, one feature vector per image out) with everything a cache must record
about it. :func:`get_backbone` returns just the Keras model. Keras is imported when a
model is built, not with this module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable, Optional, Union

import numpy as np

from ..errors import UsageError
from .registry import BackboneSpec, WeightsArg, get_spec, resolve_weights

if TYPE_CHECKING:
    import keras

POOLINGS = ("avg", "max")
RANDOM_WEIGHTS_SEED = 0


@dataclass(frozen=True)
class Tap:
    """Where features are taken (a layer name, or ``"last"``) and the pooling grid (k x k)."""

    layer: str = "last"
    grid: int = 1

    @classmethod
    def parse(cls, text: Union[str, "Tap"]) -> "Tap":
        """``"layer"`` or ``"layer:k"`` (for example ``"block_13_expand_relu:2"``)."""
        if isinstance(text, Tap):
            return text
        layer, _, grid = str(text).partition(":")
        if not layer:
            raise UsageError(f"tap {text!r} names no layer; write LAYER or LAYER:GRID")
        try:
            size = int(grid) if grid else 1
        except ValueError:
            raise UsageError(f"tap {text!r}: the grid after ':' must be a whole number, like {layer}:2") from None
        if size < 1:
            raise UsageError(f"tap {text!r}: the grid must be at least 1")
        return cls(layer, size)

    def __str__(self) -> str:
        return self.layer if self.grid == 1 else f"{self.layer}:{self.grid}"


@dataclass(frozen=True)
class WeightsInfo:
    """Which weights a feature model carries; ``digest`` hashes their values."""

    source: str  # "imagenet", "fer2013", "random", or a file path
    pretrained: bool
    digest: str


@dataclass(frozen=True)
class FeatureExtractor:
    """A frozen feature model and the facts that identify its features."""

    spec: BackboneSpec
    model: keras.Model
    weights: WeightsInfo
    taps: tuple[Tap, ...]
    pooling: str
    input_size: int

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def feature_dim(self) -> int:
        return int(self.model.output.shape[-1])

    def config(self) -> dict:
        """Everything that makes two extractions comparable, as plain values."""
        return {
            "backbone": self.spec.name,
            "weights": self.weights.source,
            "weights_digest": self.weights.digest,
            "pretrained": self.weights.pretrained,
            "input_size": self.input_size,
            "taps": [str(tap) for tap in self.taps],
            "pooling": self.pooling,
            "preprocessing": self.spec.preprocessing,
            "feature_dim": self.feature_dim,
        }

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        """Features of a batch of RGB images (batch, size, size, 3) in [0, 255]."""
        return np.asarray(self.model(np.asarray(pixels, dtype=np.float32), training=False))


def weights_digest(model: keras.Model) -> str:
    """SHA-256 over the shapes and values of every weight, in model order (short form)."""
    import keras

    digest = hashlib.sha256()
    for variable in model.weights:
        value = np.ascontiguousarray(keras.ops.convert_to_numpy(variable))
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(memoryview(value).cast("B"))  # the same bytes as value.tobytes(), without copying them
    return digest.hexdigest()[:16]


def _pool(feature_map, tap: Tap, pooling: str, index: int):
    import keras

    kind = "average" if pooling == "avg" else "max"
    if tap.grid == 1:
        layer = keras.layers.GlobalAveragePooling2D if pooling == "avg" else keras.layers.GlobalMaxPooling2D
        return layer(name=f"tap{index}_global_{kind}")(feature_map)
    layer = keras.layers.AdaptiveAveragePooling2D if pooling == "avg" else keras.layers.AdaptiveMaxPooling2D
    pooled = layer(tap.grid, name=f"tap{index}_grid{tap.grid}_{kind}")(feature_map)
    return keras.layers.Flatten(name=f"tap{index}_flatten")(pooled)


def _tap_output(spec: BackboneSpec, network: keras.Model, tap: Tap):
    layer_name = spec.feature_layer if tap.layer == "last" else tap.layer
    if layer_name is None:
        output = network.output
    else:
        try:
            output = network.get_layer(layer_name).output
        except ValueError:
            hint = f"recommended taps: {', '.join(spec.taps)}" if spec.taps else "see featcache.layer_names()"
            raise UsageError(f"{spec.name} has no layer {layer_name!r}; {hint}") from None
    if len(output.shape) != 4:
        raise UsageError(f"tap {tap} of {spec.name} is not a feature map (shape {tuple(output.shape)})")
    height, width = output.shape[1], output.shape[2]
    if height is not None and tap.grid > min(height, width):
        raise UsageError(f"tap {tap} of {spec.name}: the map is {height}x{width}, smaller than the {tap.grid}x{tap.grid} grid")
    return output


def load_backbone(
    name: str,
    weights: WeightsArg = "pretrained",
    *,
    pooling: str = "avg",
    taps: Optional[Iterable[Union[str, Tap]]] = None,
    input_size: Optional[int] = None,
) -> FeatureExtractor:
    """Build the frozen feature model of a registered backbone.

    ``weights``: ``"pretrained"`` (or the weights' own name, ``"imagenet"``), ``None``
    / ``"none"`` for random weights (drawn with a fixed seed, so reproducible, and
    recorded as not pretrained), or a path to a weights file. ``taps``: layers to take
    features from, ``"layer"`` or ``"layer:k"`` for k x k grid pooling; default the
    last feature layer. ``pooling``: ``"avg"`` or ``"max"``. The model takes RGB pixel
    values in [0, 255], applies the backbone's own preprocessing, runs the network
    with ``training=False`` and returns (batch, feature_dim); every layer is frozen.
    """
    import keras

    from .preprocessing import Preprocess

    spec = get_spec(name)
    if pooling not in POOLINGS:
        raise UsageError(f"pooling must be 'avg' or 'max', got {pooling!r}")
    size = int(input_size or spec.input_size)
    if size < spec.min_input_size:
        raise UsageError(f"input_size {size} is too small for {spec.name}; use at least {spec.min_input_size}")
    tap_list = tuple(Tap.parse(tap) for tap in (taps or ("last",)))
    builder_weights, source = resolve_weights(spec, weights)
    if builder_weights is None:
        keras.utils.set_random_seed(RANDOM_WEIGHTS_SEED)
    network = spec.build(builder_weights, (size, size, spec.channels))
    outputs = [_tap_output(spec, network, tap) for tap in tap_list]
    trunk = keras.Model(network.inputs, outputs, name=f"{spec.name}_trunk")
    trunk.trainable = False

    pixels = keras.Input((size, size, 3), name="pixels")
    maps = trunk(Preprocess(spec.preprocessing, name="preprocess")(pixels), training=False)
    maps = maps if isinstance(maps, (list, tuple)) else [maps]
    pooled = [_pool(feature_map, tap, pooling, i) for i, (feature_map, tap) in enumerate(zip(maps, tap_list))]
    features = pooled[0] if len(pooled) == 1 else keras.layers.Concatenate(name="features")(pooled)
    model = keras.Model(pixels, features, name=f"featcache_{spec.name}")
    model.trainable = False
    info = WeightsInfo(source=source, pretrained=builder_weights is not None, digest=weights_digest(network))
    return FeatureExtractor(spec, model, info, tap_list, pooling, size)


def get_backbone(name: str, weights: WeightsArg = "pretrained", **options) -> keras.Model:
    """The frozen Keras feature model of :func:`load_backbone` on its own."""
    return load_backbone(name, weights, **options).model


def layer_names(name: str) -> list[str]:
    """Names of the layers of a backbone's network (random weights), to choose taps from."""
    spec = get_spec(name)
    network = spec.build(None, (spec.input_size, spec.input_size, spec.channels))
    return [layer.name for layer in network.layers]
