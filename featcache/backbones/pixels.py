"""Raw pixels as a feature source: each view of an image resized to N x N and flattened, in [0, 1].

This is the input of a network trained from scratch (the ``cnn`` head of :mod:`heads.cnn`):
extraction caches the pixels once, in every view (flip, crops), like any backbone's features,
so such a network is compared with frozen backbones on the same split and records.

Two names, because grey and colour are different features (and so different cache groups):

``pixels``      grey, one channel: ITU-R 601 luma / 255 (the ``gray`` preprocessing, mapped back
                from [-1, 1] to [0, 1]). The default: faces are learned well in grey, at a third of
                the size. N x N features.
``pixels_rgb``  red, green and blue / 255; N x N x 3 features.

N is the input size (default 48, ``--image-size`` / ``image_size`` sets it; the registry's
``feature_dim`` is the default's). The features are the image in row-major order, (row, column,
channel): ``features.reshape(n, N, N, channels)`` gives the images back. The network outputs
them as a 1 x 1 map of N x N x channels, which the extractor's global pooling passes through
unchanged (a k x k grid tap of the ``unit_range`` layer would give the image averaged to k x k).

There are no weights, so nothing to download: ``weights="none"`` and ``"pretrained"`` build the
same network and give the same features, recorded alike (weights ``none``, not pretrained): one
cache group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import WeightsError
from .registry import BuilderWeights, register

if TYPE_CHECKING:
    import keras

DEFAULT_SIZE = 48
_COMMON = dict(input_size=DEFAULT_SIZE, pretrained="none", offline=True, min_input_size=8,
               weights_source="the pixels themselves, nothing to download",
               pretrained_files=tuple)  # no weights: no files (tuple() is ())


def _pixels_network(input_shape: tuple[int, int, int], offset: float, scale: float, name: str) -> keras.Model:
    """Preprocessed image -> ``image * scale + offset`` in [0, 1] -> a 1 x 1 map of every value."""
    import keras

    image = keras.Input(input_shape, name="image")
    unit = keras.layers.Rescaling(scale, offset=offset, name="unit_range")(image)
    flat = keras.layers.Reshape((1, 1, input_shape[0] * input_shape[1] * input_shape[2]), name="flat")(unit)
    return keras.Model(image, flat, name=name)


def _no_weights_file(weights: BuilderWeights, name: str) -> None:
    if weights not in (None, "pretrained"):
        raise WeightsError(f"{name} has no weights, so no weights file ({weights}) fits it; use 'none' or 'pretrained'")


@register("pixels", family="pixels (no network)", feature_dim=DEFAULT_SIZE**2, preprocessing="gray", channels=1,
          **_COMMON)
def build_pixels(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """Grey pixels: the ``gray`` preprocessing's luma / 127.5 - 1 mapped to luma / 255."""
    _no_weights_file(weights, "pixels")
    return _pixels_network(input_shape, offset=0.5, scale=0.5, name="pixels")


@register("pixels_rgb", family="pixels (no network)", feature_dim=3 * DEFAULT_SIZE**2, preprocessing="raw",
          channels=3, **_COMMON)
def build_pixels_rgb(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """RGB pixels in [0, 255] (``raw`` preprocessing) scaled to [0, 1]."""
    _no_weights_file(weights, "pixels_rgb")
    return _pixels_network(input_shape, offset=0.0, scale=1 / 255, name="pixels_rgb")
