"""The input pipeline hands the engines uint8 pixels: exact at the input size, rounded when resized."""

import numpy as np
import pytest
import tensorflow as tf

from featcache.pipeline import image_batches
from imagegen import draw, encode


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    """Five lossless images of 48 x 48 px and their pixels."""
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(3)
    images = [draw(rng, 48, 48, label) for label in range(5)]
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"{index}.png")
        paths[-1].write_bytes(encode(image, "png"))
    return [str(path) for path in paths], np.stack(images)


def float_resize(images: np.ndarray, size: int) -> np.ndarray:
    """What the pipeline carried before uint8: antialiased resize in float32, clipped to [0, 255]."""
    resized = tf.image.resize(tf.cast(images, tf.float32), (size, size), antialias=True)
    return np.clip(resized.numpy(), 0.0, 255.0)


def collect(paths, size, **options):
    batches = list(image_batches(paths, range(len(paths)), size, 2, **options))
    return [np.concatenate([np.asarray(batch[part]) for batch in batches]) for part in range(len(batches[0]))]


def test_images_at_the_input_size_pass_through_as_their_exact_uint8_pixels(pngs):
    paths, images = pngs
    indices, pixels = collect(paths, 48)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(indices, np.arange(5))
    np.testing.assert_array_equal(pixels, images)


def test_resized_images_are_the_float_resize_rounded_to_the_nearest_level(pngs):
    paths, images = pngs
    _, pixels = collect(paths, 32)
    reference = float_resize(images, 32)
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(pixels, np.round(reference).astype(np.uint8))
    assert np.max(np.abs(pixels - reference)) <= 0.5


def test_centre_crops_are_uint8_and_resized_from_the_full_image(pngs):
    paths, images = pngs
    _, pixels, cropped = collect(paths, 48, crops=(0.5,))
    assert cropped.dtype == np.uint8 and cropped.shape == (5, 1, 48, 48, 3)
    np.testing.assert_array_equal(pixels, images)
    expected = np.round(float_resize(images[:, 12:36, 12:36], 48)).astype(np.uint8)
    np.testing.assert_array_equal(cropped[:, 0], expected)
