"""The registry, driven from one table of every registered backbone with weights=None, and
weights resolved and fingerprinted without building a model."""

import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

import featcache.backbones as fb
from featcache.backbones import register, registry
from featcache.backbones.registry import resolve_weights, weights_fingerprint

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


# ------------------------------------------------------------------ weights without Keras


def test_resolve_weights_names_what_the_builder_gets_and_what_is_recorded(tmp_path):
    spec, pixels = fb.get_spec("mobilenet_v2"), fb.get_spec("pixels")
    assert resolve_weights(spec, None) == resolve_weights(spec, "none") == resolve_weights(spec, "Random") \
        == (None, "random")
    assert resolve_weights(spec, "pretrained") == resolve_weights(spec, "imagenet") == ("pretrained", "imagenet")
    assert resolve_weights(pixels, "pretrained") == resolve_weights(pixels, None) == (None, "none")
    weights = tmp_path / "mine.weights.h5"
    weights.write_bytes(b"weights")
    assert resolve_weights(spec, str(weights)) == (weights, str(weights.resolve()))
    with pytest.raises(fb.WeightsError, match="mobilenet_v2 has no 'fer2013' weights"):
        resolve_weights(spec, "fer2013")
    with pytest.raises(fb.WeightsError, match="no such file"):
        resolve_weights(spec, str(tmp_path / "missing.h5"))


def test_every_builtin_backbone_knows_its_pretrained_files():
    for name in fb.list_backbones():
        spec = fb.get_spec(name)
        assert spec.pretrained_files is not None, name
        assert all(isinstance(path, Path) for path in spec.pretrained_files()), name
    assert fb.get_spec("pixels").pretrained_files() == ()
    assert weights_fingerprint(fb.get_spec("pixels_rgb"), "pretrained") == []


@pytest.fixture
def temp_backbone(tmp_path):
    """A backbone registered with its pretrained weights in ``tmp_path/weights`` (a folder), removed afterwards."""
    folder = tmp_path / "weights"
    (folder / "shards").mkdir(parents=True)
    (folder / "model.json").write_text("{}")
    (folder / "shards" / "1.bin").write_bytes(b"\0" * 8)
    name = "test_fingerprinted"
    register(name, family="test", input_size=32, feature_dim=8, preprocessing="raw", pretrained="test",
             weights_source="a test folder", pretrained_files=lambda: (folder, tmp_path / "missing.bin"),
             )(lambda weights, input_shape: None)  # never built
    try:
        yield fb.get_spec(name), folder
    finally:
        registry._REGISTRY.pop(name)


def test_weights_fingerprint_lists_every_file_read_and_changes_with_any_of_them(temp_backbone, tmp_path):
    spec, folder = temp_backbone
    shard = folder / "shards" / "1.bin"
    first = weights_fingerprint(spec, "pretrained")
    assert [entry[0] for entry in first] == [str(folder.resolve() / "model.json"), str(shard.resolve())]
    assert first[1][1:] == [8, shard.stat().st_mtime_ns, shard.stat().st_ctime_ns]
    assert json.loads(json.dumps(first)) == first and weights_fingerprint(spec, "test") == first
    seen = [first]

    def changed() -> list:
        now = weights_fingerprint(spec, "pretrained")
        assert now not in seen
        seen.append(now)
        return now

    mtime = shard.stat().st_mtime_ns
    shard.write_bytes(b"\1" * 8)  # other bytes of the same size (a write moves the mtime)
    os.utime(shard, ns=(mtime + 1, mtime + 1))
    changed()
    os.utime(shard, ns=(mtime + 2, mtime + 2))  # the mtime alone
    changed()
    shard.write_bytes(b"\1" * 9)
    os.utime(shard, ns=(mtime + 2, mtime + 2))  # the size alone
    changed()
    time.sleep(0.02)  # file change times move in kernel ticks
    shard.write_bytes(b"\2" * 9)
    os.utime(shard, ns=(mtime + 2, mtime + 2))  # same size and mtime, as tar restores them: the ctime moved
    changed()
    (folder / "shards" / "2.bin").write_bytes(b"")
    assert len(changed()) == 3
    (folder / "model.json").unlink()
    assert len(changed()) == 2
    assert weights_fingerprint(spec, None) == weights_fingerprint(spec, "none") == []


def test_weights_fingerprint_of_a_file_and_of_unknown_files(tmp_path):
    spec = fb.get_spec("mobilenet_v2")
    weights = tmp_path / "mine.weights.h5"
    weights.write_bytes(b"weights")
    stat = weights.stat()
    assert weights_fingerprint(spec, weights) == [[str(weights.resolve()), 7, stat.st_mtime_ns, stat.st_ctime_ns]]
    unknown = dataclasses.replace(spec, pretrained_files=None)
    assert weights_fingerprint(unknown, "pretrained") is None
    assert weights_fingerprint(unknown, "none") == [] and weights_fingerprint(unknown, weights) is not None
