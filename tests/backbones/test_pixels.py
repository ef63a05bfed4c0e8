"""The ``pixels`` feature sources: extraction caches each view's pixels, resized, grey or RGB, in [0, 1]."""

import numpy as np
import pytest
import tensorflow as tf

import featcache
import featcache.backbones as fb
from featcache.errors import WeightsError
from imagegen import make_class_folders

SIZE = 24
LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, written out here rather than taken from featcache


def pipeline_pixels(path, size: int, crop: float = 1.0) -> np.ndarray:
    """What extraction feeds a backbone, computed independently: decoded as RGB, the centre box of
    round(crop * side) pixels, resized with antialiasing unless already size x size, rounded to uint8."""
    image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False).numpy()
    height, width = image.shape[:2]
    box_h, box_w = max(1, round(height * crop)), max(1, round(width * crop))
    top, left = (height - box_h) // 2, (width - box_w) // 2
    image = image[top:top + box_h, left:left + box_w]
    if image.shape[:2] != (size, size):
        resized = tf.image.resize(image.astype(np.float32), (size, size), antialias=True).numpy()
        image = np.round(np.clip(resized, 0, 255)).astype(np.uint8)
    return image.astype(np.float64)


def grey(images: np.ndarray) -> np.ndarray:
    return (images @ LUMA / 255).reshape(len(images), -1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return make_class_folders(tmp_path_factory.mktemp("pixels"), per_class=3)


@pytest.fixture(scope="module")
def extracted(folders, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "pixels.h5"
    result = featcache.extract(folders.root, "pixels", out, image_size=SIZE, flip=True, crops=(0.8,), batch_size=4)
    return out, result


def test_features_are_the_resized_grey_images_in_every_view(folders, extracted):
    out, result = extracted
    assert result.views == ("original", "flip", "crop0.8", "crop0.8-flip")
    original = featcache.load(out, "pixels")
    assert len(original) == folders.n_readable
    assert original.features.dtype == np.float32 and original.features.shape == (folders.n_readable, SIZE * SIZE)
    paths = [folders.root / p for p in original.paths]
    images = np.stack([pipeline_pixels(p, SIZE) for p in paths])
    crops = np.stack([pipeline_pixels(p, SIZE, crop=0.8) for p in paths])
    expected = {"original": grey(images), "flip": grey(images[:, :, ::-1]),
                "crop0.8": grey(crops), "crop0.8-flip": grey(crops[:, :, ::-1])}
    for view, pixels in expected.items():
        features = featcache.load(out, "pixels", view=view).features
        np.testing.assert_allclose(features, pixels, rtol=0, atol=1e-6, err_msg=view)
    assert 0 <= original.features.min() and original.features.max() <= 1
    assert not np.allclose(expected["flip"], expected["original"])


def test_the_cache_records_no_weights_and_none_gives_the_same_features(folders, extracted, tmp_path):
    out, _ = extracted
    config = featcache.load(out, "pixels").config
    assert config["weights"] == "none" and not config["pretrained"]
    assert config["preprocessing"] == "gray" and config["feature_dim"] == SIZE**2
    other = tmp_path / "none.h5"
    featcache.extract(folders.root, "pixels", other, weights="none", image_size=SIZE, engine="tensorflow")
    again = featcache.load(other, "pixels")
    assert again.config == config  # one group: the same features whichever weights are asked for
    np.testing.assert_allclose(again.features, featcache.load(out, "pixels").features, rtol=0, atol=1e-6)


def test_rgb_features_are_each_channel_over_255_pixel_by_pixel(folders, tmp_path):
    out = tmp_path / "rgb.h5"
    featcache.extract(folders.root, "pixels_rgb", out, image_size=SIZE, engine="tensorflow")
    features = featcache.load(out, "pixels_rgb")
    images = np.stack([pipeline_pixels(folders.root / p, SIZE) for p in features.paths])
    np.testing.assert_allclose(features.features, images.reshape(len(images), -1) / 255, rtol=0, atol=1e-6)
    assert features.features.shape[1] == 3 * SIZE * SIZE


def test_registry_entries_and_default_size():
    grey_spec, rgb_spec = fb.get_spec("pixels"), fb.get_spec("pixels_rgb")
    assert (grey_spec.input_size, grey_spec.feature_dim, grey_spec.channels) == (48, 48 * 48, 1)
    assert (rgb_spec.input_size, rgb_spec.feature_dim, rgb_spec.channels) == (48, 3 * 48 * 48, 3)
    assert grey_spec.offline and grey_spec.pretrained == "none"
    extractor = fb.load_backbone("pixels")
    assert extractor.feature_dim == 48 * 48 and extractor.model.count_params() == 0


def test_a_weights_file_is_refused(tmp_path):
    weights = tmp_path / "some.weights.h5"
    weights.write_bytes(b"not used")
    with pytest.raises(WeightsError, match="pixels has no weights"):
        fb.load_backbone("pixels", weights)
