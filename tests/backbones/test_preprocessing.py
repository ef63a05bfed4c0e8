"""Each family's preprocessing equals keras.applications' own preprocess_input."""

import importlib

import keras
import numpy as np
import pytest

import featcache.backbones as fb
from featcache.backbones.keras_apps import KERAS_APPS
from featcache.backbones.preprocessing import MODES, Preprocess

PIXELS = np.random.default_rng(1).uniform(0, 255, size=(3, 8, 8, 3)).astype(np.float32)


def reference(module: str, pixels: np.ndarray) -> np.ndarray:
    preprocess = importlib.import_module(f"keras.applications.{module}").preprocess_input
    return np.asarray(preprocess(pixels.copy()))


@pytest.mark.parametrize("app", KERAS_APPS, ids=lambda app: app.name)
def test_mode_matches_the_family_preprocess_input(app):
    ours = np.asarray(Preprocess(app.preprocessing)(PIXELS))
    np.testing.assert_allclose(ours, reference(app.module, PIXELS), rtol=1e-6, atol=1e-4)


@pytest.mark.parametrize("mode", ["tf", "torch", "caffe"])
def test_modes_differ_so_a_wrong_choice_would_be_caught(mode):
    others = [m for m in ("tf", "torch", "caffe") if m != mode]
    ours = np.asarray(Preprocess(mode)(PIXELS))
    for other in others:
        assert np.abs(ours - np.asarray(Preprocess(other)(PIXELS))).max() > 0.5


def test_lite_and_gray_modes_by_formula():
    np.testing.assert_allclose(fb.preprocess_input(PIXELS, "lite"), (PIXELS - 127.0) / 128.0, rtol=1e-6)
    gray = fb.preprocess_input(PIXELS, "gray")
    luma = PIXELS @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    assert gray.shape == (3, 8, 8, 1)
    np.testing.assert_allclose(gray[..., 0], luma / 127.5 - 1.0, rtol=1e-5, atol=1e-6)
    assert gray.min() >= -1.0 and gray.max() <= 1.0


def test_every_registered_backbone_uses_a_known_mode():
    for name in fb.list_backbones():
        assert fb.get_spec(name).preprocessing in MODES


def test_preprocess_layer_round_trips_through_keras_serialisation():
    layer = Preprocess("caffe")
    restored = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(restored, Preprocess) and restored.mode == "caffe"
    with pytest.raises(ValueError, match="unknown preprocessing mode 'bgr'"):
        Preprocess("bgr")
