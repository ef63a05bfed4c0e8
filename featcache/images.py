"""Image files to pixels: decoding, centre crops and resizing, exactly as TensorFlow does them.

JPEG is decoded by libjpeg-turbo (:mod:`simplejpeg`), the other formats (PNG, BMP, GIF's
first frame, WebP, TIFF) by Pillow, the format told by the file's first bytes, not its name;
grayscale becomes RGB. Resizing is an antialiased triangle filter in float32, clipped and
rounded to the nearest level.

The pixels are TensorFlow's, bit for bit: ``tf.io.decode_image(channels=3)`` (libjpeg's
fast integer DCT with fancy upsampling; CMYK converted as TensorFlow does) followed by
``tf.image.resize(antialias=True)``, clipped and rounded. So a backbone sees the same input
whether TensorFlow or this module decoded it, and features already in a cache stay comparable
with (and identical to) those extracted now; and nothing here imports TensorFlow. Rare files
differ on purpose: an 8-bit BMP with a colour palette gets its colours (TensorFlow reads the
palette indices as gray levels), a GIF whose first frame does not fill its canvas keeps the
canvas, and TIFF (which TensorFlow refuses) decodes; JPEG XL does not.
"""

from __future__ import annotations

import functools
import io
import math
import threading
from typing import Sequence

import numpy as np
import simplejpeg
from PIL import Image, UnidentifiedImageError

from .errors import FeatcacheError, one_line

_JPEG = b"\xff\xd8\xff"  # TensorFlow's test for a JPEG
_FORMATS = ("PNG", "GIF", "BMP", "WEBP", "TIFF")  # what Pillow may open (never a format that runs code)
_UNKNOWN = "Unknown image file format. One of JPEG, PNG, GIF, BMP, WebP or TIFF required."
_F32 = np.float32


class DecodeError(FeatcacheError, ValueError):
    """A file that is not an image featcache decodes; the message is one line."""


def decode(data: bytes) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB (height, width, 3), as ``tf.io.decode_image(channels=3)``."""
    if not data:
        raise DecodeError("Input is empty.")
    if data[:3] == _JPEG:
        return _jpeg(data)
    return _pillow(data, _FORMATS)


def _jpeg(data: bytes) -> np.ndarray:
    """libjpeg-turbo as TensorFlow runs it; Pillow's libjpeg for a file it refuses otherwise."""
    try:
        colorspace = simplejpeg.decode_jpeg_header(data)[2]
    except ValueError as error:  # simplejpeg stops at warnings in the header, which libjpeg passes over:
        tidy = b"".join(segment for _, segment in _header(data))  # leave out the stray bytes they are about
        try:
            colorspace, data = simplejpeg.decode_jpeg_header(tidy)[2], tidy
        except ValueError:
            return _refused(data, error)
    try:
        if colorspace in ("CMYK", "YCCK"):
            return _cmyk_to_rgb(_libjpeg(data, "CMYK"), _adobe(data))
        return _libjpeg(data, "RGB")
    except DecodeError:
        raise
    except ValueError as error:
        return _refused(data, error)


def _libjpeg(data: bytes, colorspace: str) -> np.ndarray:
    """libjpeg-turbo with TensorFlow's settings (fast integer DCT, fancy upsampling): a truncated
    file is an error, as in TensorFlow; other corrupt data decodes as far as it can, as there."""
    options = dict(colorspace=colorspace, fastdct=True, fastupsample=False)
    try:
        return simplejpeg.decode_jpeg(data, **options)
    except ValueError as error:
        if "Premature end of JPEG file" in str(error):
            raise DecodeError(f"Invalid JPEG data: {error}") from None
    return simplejpeg.decode_jpeg(data, strict=False, **options)


def _refused(data: bytes, error: ValueError) -> np.ndarray:
    """A JPEG that simplejpeg refuses: Pillow's decoding if it has one (near TensorFlow's, not
    bit for bit), else a :class:`DecodeError` with simplejpeg's reason."""
    try:
        return _pillow(data, ("JPEG",))
    except DecodeError:
        raise DecodeError(f"Invalid JPEG data: {one_line(error)}") from None


def _header(data: bytes) -> list[tuple[int, bytes]]:
    """A JPEG's header as libjpeg reads it: (marker, whole segment) from the start of image on,
    skipping stray bytes between segments; the last is the first start of scan with all that follows."""
    segments, at = [], 0
    while at + 1 < len(data):
        marker = data[at + 1]
        if data[at] != 0xFF or marker == 0xFF:  # a stray or fill byte
            at += 1
        elif marker == 0x00:  # a stuffed zero: stray too
            at += 2
        elif marker in (0xDA, 0xD9):  # start of scan, end of image
            segments.append((marker, data[at:]))
            break
        else:
            standalone = marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7
            stop = at + 2 if standalone else at + 2 + int.from_bytes(data[at + 2:at + 4], "big")
            segments.append((marker, data[at:stop]))
            at = stop
    return segments


def _adobe(data: bytes) -> bool:
    """Whether the header has an Adobe APP14 segment (libjpeg's ``saw_Adobe_marker``)."""
    return any(marker == 0xEE and int.from_bytes(segment[2:4], "big") >= 14 and segment[4:9] == b"Adobe"
               for marker, segment in _header(data))


def _cmyk_to_rgb(cmyk: np.ndarray, inverted: bool) -> np.ndarray:
    """TensorFlow's CMYK -> RGB, in integers (Adobe files store inverted CMYK)."""
    ink, black = cmyk[..., :3].astype(np.uint16), cmyk[..., 3:].astype(np.uint16)
    rgb = black * ink // 255 if inverted else (255 - black) * (255 - ink) // 255
    return rgb.astype(np.uint8)


def _pillow(data: bytes, formats: Sequence[str]) -> np.ndarray:
    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise DecodeError(_UNKNOWN) from None
    except Exception as error:  # a decoder may raise anything on a damaged file
        raise DecodeError(f"Invalid image data: {one_line(error)}") from None
    with image:
        try:
            return _rgb(image)
        except Exception as error:
            raise DecodeError(f"Invalid {image.format} data: {one_line(error)}") from None


def _rgb(image: Image.Image) -> np.ndarray:
    """An opened image as TensorFlow gives it: 16-bit gray keeps its high byte, alpha is dropped
    (not composited), a GIF's transparent pixels are black."""
    if image.mode.startswith("I;16") or (image.mode == "I" and image.format == "PNG"):
        gray = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    rgb = np.asarray(image.convert("RGB"))
    transparent = image.info.get("transparency")
    if image.format == "GIF" and image.mode in ("P", "L") and isinstance(transparent, int):
        rgb = rgb.copy()
        rgb[np.asarray(image) == transparent] = 0
    return rgb


def read_image(path: str) -> np.ndarray:
    """The decoded pixels of an image file (:func:`decode`)."""
    with open(path, "rb") as handle:
        return decode(handle.read())


def decode_error(path: str) -> str | None:
    """Why ``path`` cannot be decoded (one line), or None if it can."""
    try:
        read_image(path)
    except (OSError, ValueError) as error:
        return one_line(error)
    return None


def _spans(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """TensorFlow's ScaleAndTranslate spans for a triangle kernel with antialiasing, in its
    float32 arithmetic: the first source pixel of each output pixel, and the weights from it."""
    scale = _F32(out_size) / _F32(in_size)
    inv_scale = _F32(1.0 / float(scale))
    kernel_scale = max(inv_scale, _F32(1))
    one_over = _F32(1) / kernel_scale
    span_size = min(2 * math.ceil(float(kernel_scale)) + 1, in_size)
    starts = np.zeros(out_size, np.int64)
    weights = np.zeros((out_size, span_size), np.float32)
    for x in range(out_size):
        sample = (_F32(x) + _F32(0.5)) * inv_scale
        first = min(max(math.ceil(float(sample - kernel_scale - _F32(0.5))), 0), in_size - 1)
        stop = min(max(math.floor(float(sample + kernel_scale - _F32(0.5))), 0), in_size - 1) + 1
        span, total = [], _F32(0)
        for source in range(first, stop):
            weight = _F32(max(_F32(0), _F32(1) - abs((_F32(source) + _F32(0.5) - sample) * one_over)))
            span.append(weight)
            total = _F32(total + weight)
        if abs(total) >= 1000 * np.finfo(np.float32).tiny:
            reciprocal = _F32(1) / total
            span = [_F32(weight * reciprocal) for weight in span]
        starts[x] = first
        weights[x, :len(span)] = span
    return starts, weights


@functools.lru_cache(maxsize=64)
def _taps(in_size: int, out_size: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Per offset k within the spans: (source index, weight) of every output pixel; sources past
    the edge point at the last pixel with weight 0, and offsets weighing 0 everywhere are left
    out after the first (adding 0 to the non-negative sums changes no bit). Cached: every image
    of a dataset reuses them."""
    starts, weights = _spans(in_size, out_size)
    taps = []
    for k in range(weights.shape[1]):
        index = starts + k
        weight = np.where(index < in_size, weights[:, k], _F32(0)).astype(np.float32)
        if k == 0 or weight.any():
            index = np.minimum(index, in_size - 1)
            index.setflags(write=False)
            weight.setflags(write=False)
            taps.append((index, weight))
    return tuple(taps)


_scratch = threading.local()
_SCRATCH_LIMIT = 1 << 21  # float32 elements a thread keeps per buffer (8 MB); larger images allocate afresh


def _buffer(slot: int, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
    """An array of ``shape`` that this thread reuses from image to image (``slot``: which one).
    Fresh arrays of an image's size come from mmap and fault their pages in anew for every image,
    which slows resizing down; a reused buffer's pages are already mapped."""
    count = math.prod(shape)
    if count > _SCRATCH_LIMIT:
        return np.empty(shape, dtype)
    buffers = _scratch.__dict__.setdefault("buffers", {})
    kept = buffers.get((slot, dtype))
    if kept is None or kept.size < count:
        kept = buffers[(slot, dtype)] = np.empty(count, dtype)
    return kept[:count].reshape(shape)


def _resample_rows(pixels: np.ndarray, out_size: int, total: np.ndarray) -> np.ndarray:
    """float32 (n, m) -> ``total`` (out_size, m), each output row the weighted sum of its span of
    input rows, added up one span offset after the other in float32 as TensorFlow does."""
    term = _buffer(0, total.shape)
    for k, (index, weight) in enumerate(_taps(pixels.shape[0], out_size)):
        np.take(pixels, index, axis=0, out=total if k == 0 else term, mode="clip")  # "raise" buffers: slow
        if k == 0:
            total *= weight[:, None]  # = 0 + weight x pixel, bit for bit
        else:
            term *= weight[:, None]
            total += term
    return total


def _swap_axes(pixels: np.ndarray, channels: int, out: np.ndarray) -> np.ndarray:
    """An image stored as (rows, columns x channels) -> ``out`` (columns, rows x channels)."""
    pixel = np.dtype((np.void, channels * pixels.itemsize))  # a pixel moved as one item: fewer, larger copies
    np.copyto(out.view(pixel), pixels.view(pixel).T)
    return out


def resize(image: np.ndarray, size: int) -> np.ndarray:
    """uint8 (h, w, 3) -> (size, size, 3): ``tf.image.resize(antialias=True)`` in float32 (rows,
    then columns), clipped to [0, 255] and rounded half to even, bit for bit."""
    height, width, channels = image.shape
    pixels = _buffer(1, (height, width * channels))
    np.copyto(pixels.reshape(image.shape), image)
    pixels = _resample_rows(pixels, size, _buffer(2, (size, width * channels)))
    pixels = _swap_axes(pixels, channels, _buffer(3, (width, size * channels)))
    pixels = _resample_rows(pixels, size, _buffer(4, (size, size * channels)))  # the columns
    np.clip(pixels, 0, 255, out=pixels)
    np.rint(pixels, out=pixels)
    levels = _buffer(5, pixels.shape, np.uint8)
    np.copyto(levels, pixels, casting="unsafe")
    return _swap_axes(levels, channels, np.empty((size, size * channels), np.uint8)).reshape(size, size, channels)


def fit(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` at size x size: unchanged when already that size (e.g. 224 px AffectNet crops)."""
    return image if image.shape[:2] == (size, size) else resize(image, size)


def centre(image: np.ndarray, fraction: float) -> np.ndarray:
    """The centre box of ``round(fraction * side)`` pixels along each side (at least 1, half to even)."""
    height, width = image.shape[:2]
    box_height, box_width = (max(1, round(side * fraction)) for side in (height, width))
    top, left = (height - box_height) // 2, (width - box_width) // 2
    return image[top:top + box_height, left:left + box_width]
