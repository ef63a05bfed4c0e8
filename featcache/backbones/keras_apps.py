"""Every ``keras.applications`` family, registered from one table.

Pretrained weights are Keras' own ImageNet files: downloaded once into Keras' cache
(``$KERAS_HOME/models``, default ``~/.keras/models``). With no network, the error says
how to supply a weights file or a pre-filled cache instead.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional

from featcache.errors import WeightsError
from .registry import BuilderWeights, register
from .weights_file import load_weights_strictly

if TYPE_CHECKING:
    import keras


class KerasApp(NamedTuple):
    name: str
    constructor: str  # attribute of keras.applications
    module: str  # keras.applications.<module>, whose preprocess_input the mode matches
    input_size: int
    feature_dim: int
    preprocessing: str
    taps: tuple[str, ...] = ()  # recommended intermediate layers ("layer:grid")


# Recommended taps: the last layer at stride 16 (14 x 14 at 224 px), pooled on a 2 x 2
# grid; on aligned faces where a feature fires matters (measured in benchmarks/results/backbones.md).
KERAS_APPS: tuple[KerasApp, ...] = (
    KerasApp("mobilenet", "MobileNet", "mobilenet", 224, 1024, "tf", ("conv_pw_11_relu:2",)),
    KerasApp("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 224, 1280, "tf", ("block_13_expand_relu:2",)),
    KerasApp("mobilenet_v3_small", "MobileNetV3Small", "mobilenet_v3", 224, 576, "raw", ("expanded_conv_7_add:2",)),
    KerasApp("mobilenet_v3_large", "MobileNetV3Large", "mobilenet_v3", 224, 960, "raw", ("expanded_conv_11_add:2",)),
    KerasApp("densenet121", "DenseNet121", "densenet", 224, 1024, "torch", ("pool4_relu:2",)),
    KerasApp("densenet169", "DenseNet169", "densenet", 224, 1664, "torch", ("pool4_relu:2",)),
    KerasApp("densenet201", "DenseNet201", "densenet", 224, 1920, "torch", ("pool4_relu:2",)),
    KerasApp("resnet50", "ResNet50", "resnet", 224, 2048, "caffe", ("conv4_block6_out:2",)),
    KerasApp("resnet101", "ResNet101", "resnet", 224, 2048, "caffe", ("conv4_block23_out:2",)),
    KerasApp("resnet152", "ResNet152", "resnet", 224, 2048, "caffe", ("conv4_block36_out:2",)),
    KerasApp("resnet50_v2", "ResNet50V2", "resnet_v2", 224, 2048, "tf", ("conv4_block5_out:2",)),
    KerasApp("resnet101_v2", "ResNet101V2", "resnet_v2", 224, 2048, "tf", ("conv4_block22_out:2",)),
    KerasApp("resnet152_v2", "ResNet152V2", "resnet_v2", 224, 2048, "tf", ("conv4_block35_out:2",)),
    KerasApp("vgg16", "VGG16", "vgg16", 224, 512, "caffe", ("block5_conv3:2",)),
    KerasApp("vgg19", "VGG19", "vgg19", 224, 512, "caffe", ("block5_conv4:2",)),
    KerasApp("inception_v3", "InceptionV3", "inception_v3", 299, 2048, "tf", ("mixed7:2",)),
    KerasApp("inception_resnet_v2", "InceptionResNetV2", "inception_resnet_v2", 299, 1536, "tf",
             ("block17_20_ac:2",)),
    KerasApp("xception", "Xception", "xception", 299, 2048, "tf", ("block13_sepconv1_act:2",)),
    KerasApp("nasnet_mobile", "NASNetMobile", "nasnet", 224, 1056, "tf", ("normal_concat_8:2",)),
    KerasApp("nasnet_large", "NASNetLarge", "nasnet", 331, 4032, "tf", ("normal_concat_12:2",)),
    KerasApp("efficientnet_b0", "EfficientNetB0", "efficientnet", 224, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b1", "EfficientNetB1", "efficientnet", 240, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b2", "EfficientNetB2", "efficientnet", 260, 1408, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b3", "EfficientNetB3", "efficientnet", 300, 1536, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b4", "EfficientNetB4", "efficientnet", 380, 1792, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b5", "EfficientNetB5", "efficientnet", 456, 2048, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b6", "EfficientNetB6", "efficientnet", 528, 2304, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_b7", "EfficientNetB7", "efficientnet", 600, 2560, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_b0", "EfficientNetV2B0", "efficientnet_v2", 224, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_b1", "EfficientNetV2B1", "efficientnet_v2", 240, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_b2", "EfficientNetV2B2", "efficientnet_v2", 260, 1408, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_b3", "EfficientNetV2B3", "efficientnet_v2", 300, 1536, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_s", "EfficientNetV2S", "efficientnet_v2", 384, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_m", "EfficientNetV2M", "efficientnet_v2", 480, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("efficientnet_v2_l", "EfficientNetV2L", "efficientnet_v2", 480, 1280, "raw", ("block6a_expand_activation:2",)),
    KerasApp("convnext_tiny", "ConvNeXtTiny", "convnext", 224, 768, "raw", ("convnext_tiny_stage_2_block_8_identity:2",)),
    KerasApp("convnext_small", "ConvNeXtSmall", "convnext", 224, 768, "raw", ("convnext_small_stage_2_block_26_identity:2",)),
    KerasApp("convnext_base", "ConvNeXtBase", "convnext", 224, 1024, "raw", ("convnext_base_stage_2_block_26_identity:2",)),
    KerasApp("convnext_large", "ConvNeXtLarge", "convnext", 224, 1536, "raw", ("convnext_large_stage_2_block_26_identity:2",)),
    KerasApp("convnext_xlarge", "ConvNeXtXLarge", "convnext", 224, 2048, "raw", ("convnext_xlarge_stage_2_block_26_identity:2",)),
)

_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?):? ")


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights: ``$KERAS_HOME/models`` or ``~/.keras/models``."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras") / "models"


def _keras_cache_contents() -> tuple[Path, ...]:
    """Keras' whole weights cache: which file a constructor reads is Keras' business."""
    return (keras_cache_dir(),)


def _imagenet(app: KerasApp, kwargs: dict) -> keras.Model:
    import keras

    constructor = getattr(keras.applications, app.constructor)
    try:
        return constructor(weights="imagenet", **kwargs)
    except Exception as error:  # Keras raises a bare Exception when a download fails
        found = _FETCH_FAILURE.search(str(error))
        if not found:
            raise
        filename = found.group(1).rsplit("/", 1)[-1]
        raise WeightsError(
            f"{app.name}: Keras could not download its ImageNet weights ({found.group(1)}); with no network, "
            f"pass weights=PATH (a Keras weights file for include_top=False) or put {filename} in "
            f"{keras_cache_dir()}"
        ) from None


def _from_file(app: KerasApp, kwargs: dict, path: Path) -> keras.Model:
    import keras

    model = getattr(keras.applications, app.constructor)(weights=None, **kwargs)
    load_weights_strictly(model, path, app.name)
    return model


def _builder(app: KerasApp):
    def build(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
        import keras

        kwargs = {"include_top": False, "input_shape": input_shape}
        if weights is None:
            return getattr(keras.applications, app.constructor)(weights=None, **kwargs)
        if weights == "pretrained":
            return _imagenet(app, kwargs)
        return _from_file(app, kwargs, Path(weights))

    build.__name__ = f"build_{app.name}"
    build.__doc__ = f"keras.applications.{app.constructor} without its classifier."
    return build


def app_for(name: str) -> Optional[KerasApp]:
    """The table row of a registered Keras Applications backbone, if it is one."""
    return next((app for app in KERAS_APPS if app.name == name), None)


for _app in KERAS_APPS:
    register(
        _app.name,
        family=f"keras.applications.{_app.module}",
        input_size=_app.input_size,
        feature_dim=_app.feature_dim,
        preprocessing=_app.preprocessing,
        pretrained="imagenet",
        weights_source=f"Keras ImageNet download ({_app.constructor}), or a weights file",
        taps=_app.taps,
        min_input_size=75 if _app.module in ("inception_v3", "inception_resnet_v2") else 32,
        pretrained_files=_keras_cache_contents,
    )(_builder(_app))
