"""The input pipeline hands the engines TensorFlow's uint8 pixels, bit for bit, without TensorFlow.

TensorFlow is the reference here: ``tf.io.decode_image(channels=3)`` for decoding and
``tf.image.resize(antialias=True)``, clipped and rounded, for resizing, as the pipeline
computed them before it dropped TensorFlow (so features cached then and now compare).
"""

import io
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import simplejpeg
import tensorflow as tf
from PIL import Image

from featcache import pipeline
from featcache.images import DecodeError, decode, read_image, resize
from featcache.pipeline import array_batches, decode_error, image_batches, input_batches
from imagegen import draw, encode

SIZES = [(1, 1), (7, 13), (16, 16), (33, 45), (37, 50), (101, 77)]  # (height, width)


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


def tf_decode(data: bytes) -> np.ndarray:
    return tf.io.decode_image(data, channels=3, expand_animations=False).numpy()


def tf_resize(image: np.ndarray, size: int) -> np.ndarray:
    """What the tf.data pipeline made of an image not at the input size."""
    pixels = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)
    return tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 255.0)), tf.uint8).numpy()


def tf_fit(image: np.ndarray, size: int) -> np.ndarray:
    return image if image.shape[:2] == (size, size) else tf_resize(image, size)


def tf_centre(image: np.ndarray, fraction: float) -> np.ndarray:
    """The tf.data pipeline's centre crop, verbatim."""
    sides = tf.shape(image)[:2]
    size = tf.maximum(1, tf.cast(tf.round(tf.cast(sides, tf.float64) * fraction), tf.int32))
    start = (sides - size) // 2
    return tf.slice(image, tf.concat([start, [0]], 0), tf.concat([size, [3]], 0)).numpy()


def collect(paths, size, **options):
    batches = list(image_batches(paths, range(len(paths)), size, 2, **options))
    return [np.concatenate([np.asarray(batch[part]) for batch in batches]) for part in range(len(batches[0]))]


def pillow_bytes(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def without_adobe_marker(jpeg: bytes) -> bytes:
    at = jpeg.index(b"Adobe") - 4
    return jpeg[:at] + jpeg[at + 2 + int.from_bytes(jpeg[at + 2:at + 4], "big"):]


# --------------------------------------------------------------------------- batches


def test_images_at_the_input_size_pass_through_as_their_exact_uint8_pixels(pngs):
    paths, images = pngs
    indices, pixels = collect(paths, 48)
    assert pixels.dtype == np.uint8 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, np.arange(5))
    np.testing.assert_array_equal(pixels, images)


def test_resized_images_are_the_float_resize_rounded_to_the_nearest_level(pngs):
    paths, images = pngs
    _, pixels = collect(paths, 32)
    assert pixels.dtype == np.uint8 and pixels.shape == (5, 32, 32, 3)
    np.testing.assert_array_equal(pixels, np.stack([tf_resize(image, 32) for image in images]))
    floats = tf.image.resize(tf.cast(images, tf.float32), (32, 32), antialias=True).numpy()
    assert np.max(np.abs(pixels - np.clip(floats, 0, 255))) <= 0.5


def test_centre_crops_are_uint8_and_resized_from_the_full_image(pngs):
    paths, images = pngs
    _, pixels, cropped = collect(paths, 48, crops=(0.5,))
    assert cropped.dtype == np.uint8 and cropped.shape == (5, 1, 48, 48, 3)
    np.testing.assert_array_equal(pixels, images)
    np.testing.assert_array_equal(cropped[:, 0], np.stack([tf_resize(image[12:36, 12:36], 48) for image in images]))


@pytest.mark.parametrize("height, width", [(37, 50), (61, 61), (101, 77), (48, 48), (3, 5)])
def test_crops_are_the_tensorflow_pipelines_centre_boxes_resized(tmp_path, height, width):
    crops = (0.99, 0.9, 0.75, 0.5, 0.15)
    image = draw(np.random.default_rng(height * width), height, width, 2)
    path = tmp_path / "image.png"
    path.write_bytes(encode(image, "png"))
    for size in (48, 32):
        _, pixels, cropped = collect([str(path)], size, crops=crops)
        np.testing.assert_array_equal(pixels[0], tf_fit(image, size))
        for k, crop in enumerate(crops):
            np.testing.assert_array_equal(cropped[0, k], tf_fit(tf_centre(image, crop), size), err_msg=f"crop {crop}")


def test_unreadable_files_are_skipped_in_order_and_decode_error_says_why(tmp_path):
    rng = np.random.default_rng(5)
    whole = encode(draw(rng, 40, 40, 1), "jpeg")
    files = {"good0.jpg": whole, "cut.jpg": whole[: len(whole) // 2], "notes.jpg": b"these are notes\n",
             "empty.png": b"", "good1.png": encode(draw(rng, 20, 30, 2), "png"), "png.jpg": encode(draw(rng, 9, 9), "png"),
             "cut.png": encode(draw(rng, 30, 30), "png")[:60]}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    (tmp_path / "folder.jpg").mkdir()
    paths = [str(tmp_path / name) for name in [*files, "missing.jpg", "folder.jpg"]]
    batches = list(image_batches(paths, range(100, 100 + len(paths)), 16, 2, parallel_calls=3))
    indices = np.concatenate([batch[0] for batch in batches])
    np.testing.assert_array_equal(indices, [100, 104, 105])  # the good ones, and a PNG named .jpg
    assert [len(batch[0]) for batch in batches] == [2, 1]  # full batches of readable images
    reasons = {os.path.basename(path): decode_error(path) for path in paths}
    assert reasons["good0.jpg"] is None and reasons["good1.png"] is None and reasons["png.jpg"] is None
    assert reasons["cut.jpg"].startswith("Invalid JPEG data")
    assert reasons["notes.jpg"].startswith("Unknown image file format")
    assert reasons["empty.png"] == "Input is empty."
    assert reasons["cut.png"].startswith("Invalid PNG data")
    assert "No such file" in reasons["missing.jpg"] and "Is a directory" in reasons["folder.jpg"]
    assert all("\n" not in reason for reason in reasons.values() if reason)


def test_batches_are_in_order_whatever_order_the_threads_finish_in(pngs, monkeypatch):
    paths, images = pngs
    read = read_image
    monkeypatch.setattr(pipeline, "read_image", lambda path: time.sleep(0.05 * (path[-5] == "0")) or read(path))
    for threads in (1, 4):
        indices, pixels = [np.concatenate(part) for part in zip(*image_batches(paths * 3, range(15), 48, 4,
                                                                               parallel_calls=threads))]
        np.testing.assert_array_equal(indices, np.arange(15))
        np.testing.assert_array_equal(pixels, np.concatenate([images] * 3))


def test_batches_can_be_iterated_again(pngs):
    paths, _ = pngs
    batches = image_batches(paths, range(5), 32, 2)
    first, again = list(batches), list(batches)
    assert len(first) == 3
    for one, other in zip(first, again):
        for part, same in zip(one, other):
            np.testing.assert_array_equal(part, same)


def test_several_inputs_at_once_equal_each_input_alone(pngs):
    paths, images = pngs
    inputs = ((48, ()), (24, (0.9, 0.5)), (64, (0.8,)))
    together = [np.concatenate(part) for part in zip(*input_batches(paths, range(5), inputs, 3))]
    assert len(together) == 1 + 1 + 2 + 2
    np.testing.assert_array_equal(together[1], images)
    _, whole, cropped = collect(paths, 24, crops=(0.9, 0.5))
    np.testing.assert_array_equal(together[2], whole)
    np.testing.assert_array_equal(together[3], cropped)
    _, whole, cropped = collect(paths, 64, crops=(0.8,))
    np.testing.assert_array_equal(together[4], whole)
    np.testing.assert_array_equal(together[5], cropped)
    from_arrays = [np.concatenate(part) for part in zip(*array_batches(images, inputs, 2))]
    for part, expected in zip(from_arrays, together):  # an image gives the same pixels from an array as from its file
        np.testing.assert_array_equal(part, expected)


def open_files() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0


def test_a_consumer_stopping_early_leaves_no_thread_or_file_open(pngs):
    paths, _ = pngs
    threads, files = threading.active_count(), open_files()
    batches = iter(image_batches(paths * 40, range(200), 32, 4, parallel_calls=3))
    next(batches)
    assert threading.active_count() > threads  # decoding ahead of the consumer
    batches.close()
    assert threading.active_count() == threads and open_files() == files
    for _ in image_batches(paths * 40, range(200), 32, 4, parallel_calls=3):
        break
    assert threading.active_count() == threads and open_files() == files


def test_decoding_stays_a_batch_ahead_of_the_consumer(pngs, monkeypatch):
    paths, _ = pngs
    read, decoded = read_image, []
    monkeypatch.setattr(pipeline, "read_image", lambda path: decoded.append(path) or read(path))
    batches = iter(image_batches(paths * 20, range(100), 32, 4, parallel_calls=2))
    next(batches)
    time.sleep(0.2)
    assert len(decoded) <= 4 + 4 * pipeline.prefetch_batches() + 2  # this batch, the next, one per thread
    batches.close()


def test_importing_the_pipeline_does_not_import_tensorflow():
    code = "import sys, featcache.pipeline; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_the_batches_record_what_made_them():
    assert pipeline.PIXELS == "uint8" and pipeline.DECODER == "simplejpeg+pillow"


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("height, width", SIZES)
@pytest.mark.parametrize("quality", [50, 75, 95, 100])
def test_jpegs_decode_as_tensorflow_decodes_them(height, width, quality):
    image = draw(np.random.default_rng(quality + height), height, width, 3)
    for options in ({}, {"chroma_downsampling": False}, {"progressive": True}, {"optimize_size": True}):
        data = tf.io.encode_jpeg(image, quality=quality, **options).numpy()
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=str(options))


@pytest.mark.parametrize("height, width", SIZES)
def test_grayscale_jpegs_become_the_rgb_tensorflow_gives(height, width):
    gray = draw(np.random.default_rng(height), height, width, 4, channels=1)
    for quality in (60, 90):
        data = tf.io.encode_jpeg(gray, quality=quality).numpy()
        assert simplejpeg.decode_jpeg_header(data)[2] == "Gray"
        pixels = decode(data)
        assert pixels.shape == (height, width, 3)
        assert np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 0], pixels[..., 2])
        np.testing.assert_array_equal(pixels, tf_decode(data))


@pytest.mark.parametrize("subsampling", ["444", "422", "420", "440", "411"])
def test_every_chroma_subsampling_decodes_as_in_tensorflow(subsampling):
    image = draw(np.random.default_rng(11), 37, 50, 5)
    data = simplejpeg.encode_jpeg(image, 85, colorsubsampling=subsampling)
    np.testing.assert_array_equal(decode(data), tf_decode(data))
    data = pillow_bytes(Image.fromarray(image), "JPEG", quality=85, subsampling={"444": 0, "422": 1}.get(subsampling, 2))
    np.testing.assert_array_equal(decode(data), tf_decode(data))


def test_cmyk_and_ycck_jpegs_convert_to_rgb_as_in_tensorflow():
    rng = np.random.default_rng(12)
    cmyk = Image.fromarray(draw(rng, 33, 45, 6)).convert("CMYK")
    adobe = pillow_bytes(cmyk, "JPEG", quality=90)  # Adobe: inverted CMYK
    ycck = simplejpeg.encode_jpeg(rng.integers(0, 256, (21, 30, 4), dtype=np.uint8), 90, colorspace="CMYK")
    assert simplejpeg.decode_jpeg_header(ycck)[2] == "YCCK"
    for data in (adobe, without_adobe_marker(adobe), ycck):
        np.testing.assert_array_equal(decode(data), tf_decode(data))


def test_damaged_jpegs_decode_as_in_tensorflow_and_truncated_ones_fail_as_there():
    whole = tf.io.encode_jpeg(draw(np.random.default_rng(13), 64, 48, 7), quality=90).numpy()
    middle = len(whole) // 2
    flipped = bytearray(whole)
    flipped[middle] ^= 0xFF
    quantisation = whole.index(b"\xff\xdb")
    damaged = {
        "a flipped byte": bytes(flipped),
        "an end of image inside the data": whole[:middle] + b"\xff\xd9" + whole[middle:],
        "a restart marker inside the data": whole[:middle] + b"\xff\xd0" + whole[middle:],
        "stray bytes between header segments": whole[:quantisation] + b"\x00\x00" + whole[quantisation:],
        "bytes after the end": whole + b"trailing bytes",
    }
    for what, data in damaged.items():
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=what)
    for data in (whole[:middle], whole[:-2], whole[:3], whole[:20]):
        with pytest.raises(tf.errors.InvalidArgumentError):
            tf_decode(data)
        with pytest.raises(DecodeError, match="^Invalid JPEG data"):
            decode(data)


def png_cases(rng):
    rgb = rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)
    palette = Image.fromarray(rgb).quantize(16)
    yield "rgb", encode(rgb, "png")
    yield "gray", encode(rgb[..., :1], "png")
    yield "gray alpha", tf.io.encode_png(rng.integers(0, 256, (13, 17, 2), dtype=np.uint8)).numpy()
    yield "rgba", tf.io.encode_png(rng.integers(0, 256, (13, 17, 4), dtype=np.uint8)).numpy()
    for channels in (1, 2, 3, 4):
        yield f"16-bit, {channels} channels", tf.io.encode_png(rng.integers(0, 65536, (13, 17, channels), np.uint16)).numpy()
    yield "palette", pillow_bytes(palette, "PNG")
    yield "palette with transparency", pillow_bytes(palette, "PNG", transparency=3)
    yield "gray with transparency", pillow_bytes(Image.fromarray(rgb[..., 0]), "PNG", transparency=7)
    yield "1-bit", pillow_bytes(Image.fromarray(rgb[..., 0] > 128), "PNG")


def test_pngs_decode_as_in_tensorflow():
    for what, data in png_cases(np.random.default_rng(14)):
        assert data[:4] == b"\x89PNG"
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=what)


def test_bmps_decode_as_in_tensorflow():
    rng = np.random.default_rng(15)
    for height, width in SIZES:
        data = encode(draw(rng, height, width, 1), "bmp")  # 24-bit, rows padded to 4 bytes
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=f"{height}x{width}")
    rgba = Image.fromarray(rng.integers(0, 256, (13, 17, 4), dtype=np.uint8), "RGBA")
    for image in (rgba, rgba.convert("L")):  # 32-bit; 8-bit gray
        data = pillow_bytes(image, "BMP")
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=image.mode)
    palette = rgba.convert("RGB").quantize(16)
    data = pillow_bytes(palette, "BMP")  # TensorFlow reads a palette's indices as gray levels; not here
    np.testing.assert_array_equal(decode(data), np.asarray(palette.convert("RGB")))


def test_gifs_decode_their_first_frame_as_in_tensorflow():
    rng = np.random.default_rng(16)
    frames = [Image.fromarray(rng.integers(0, 256, (13, 17, 3), dtype=np.uint8)).quantize(16) for _ in range(3)]
    gray = Image.fromarray(np.repeat(np.arange(0, 256, 16, dtype=np.uint8), 2)[None].repeat(5, 0))
    cases = {"one frame": pillow_bytes(frames[0], "GIF"),
             "animated": pillow_bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]),
             "transparent": pillow_bytes(frames[0], "GIF", transparency=3),
             "gray, transparent": pillow_bytes(gray, "GIF", transparency=32)}
    for what, data in cases.items():
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=what)


def test_webps_decode_as_in_tensorflow():
    image = Image.fromarray(draw(np.random.default_rng(17), 37, 50, 2))
    for options in ({"lossless": True}, {"quality": 80}):
        data = pillow_bytes(image, "WEBP", **options)
        np.testing.assert_array_equal(decode(data), tf_decode(data), err_msg=str(options))


def test_tiff_decodes_with_pillow_and_the_format_comes_from_the_bytes(tmp_path):
    image = draw(np.random.default_rng(18), 20, 30, 3)
    np.testing.assert_array_equal(decode(pillow_bytes(Image.fromarray(image), "TIFF")), image)
    jpeg = tf.io.encode_jpeg(image, quality=90).numpy()
    (tmp_path / "jpeg.png").write_bytes(jpeg)
    (tmp_path / "png.jpg").write_bytes(encode(image, "png"))
    _, pixels = collect([str(tmp_path / "jpeg.png"), str(tmp_path / "png.jpg")], 30)
    np.testing.assert_array_equal(pixels[0], tf_resize(tf_decode(jpeg), 30))
    np.testing.assert_array_equal(pixels[1], tf_resize(image, 30))


# --------------------------------------------------------------------------- resizing


@pytest.mark.parametrize("height, width", [(1, 1), (1, 7), (5, 3), (37, 50), (48, 48), (224, 224), (500, 333), (61, 640)])
@pytest.mark.parametrize("size", [1, 2, 31, 48, 64, 224, 299])
def test_resize_is_tensorflows_antialiased_resize_bit_for_bit(height, width, size):
    image = np.random.default_rng(height * 1000 + width).integers(0, 256, (height, width, 3), dtype=np.uint8)
    resized = resize(image, size)
    assert resized.dtype == np.uint8 and resized.shape == (size, size, 3) and resized.flags.c_contiguous
    np.testing.assert_array_equal(resized, tf_resize(image, size))


def test_resize_handles_views_and_extreme_levels():
    rng = np.random.default_rng(19)
    image = np.where(rng.random((90, 70, 3)) < 0.5, 0, 255).astype(np.uint8)  # ringing would leave [0, 255]
    np.testing.assert_array_equal(resize(image, 40), tf_resize(image, 40))
    view = image[5:80:2, ::3]  # not contiguous
    np.testing.assert_array_equal(resize(view, 17), tf_resize(np.ascontiguousarray(view), 17))
    huge = rng.integers(0, 256, (1100, 900, 3), dtype=np.uint8)  # beyond the per-thread buffers
    np.testing.assert_array_equal(resize(huge, 64), tf_resize(huge, 64))
