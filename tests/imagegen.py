"""Tiny image datasets on disk for tests and benchmarks: every layout, every awkward file.

Images are drawn with numpy and encoded by TensorFlow (``tf.io.encode_jpeg`` /
``encode_png``; BMPs are written by hand), so nothing needs a download, Pillow or the
real data. TensorFlow is imported on first use only.

Each maker writes one layout under ``root`` and returns a :class:`Made` that says what
it wrote *and what reading it must give*: the records in the order
:func:`featcache.datasets.open_dataset` must list them, with their ids, labels,
valence, arousal, landmarks and class names, plus which files do not decode
(``unreadable``), which are byte-identical (``duplicates``) and which the reader must
leave out (``ignored``). Tests compare a reader against it; they never hard-code a tree.

Every tree holds, as records: RGB JPEGs of odd sizes (50x37, 224x224), grayscale PNGs,
an upper-case suffix, a truncated JPEG (a valid one cut in half: "Invalid JPEG data"),
a text file named ``.jpg`` ("Unknown image file format") and a byte-identical copy of
another image. ``make_affectnet_tree`` writes annotations as numpy strings (dtype
``'<U..'``, as in the real AffectNet release) and as numbers, 136-float landmarks, an
image without annotations, an image without landmarks and annotations without an image.

Import: pytest puts ``tests/`` on ``sys.path`` (``pythonpath`` in pyproject.toml, and
``tests/conftest.py`` is a rootdir conftest), so tests write ``from imagegen import ...``;
a benchmark does ``sys.path.insert(0, str(REPO / "tests"))`` first. Fixtures built on
these makers live in ``tests/conftest.py``.
"""

from __future__ import annotations

import csv
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

__all__ = [
    "AFFECTNET_CLASSES",
    "Made",
    "draw",
    "encode",
    "make_affectnet_tree",
    "make_class_folders",
    "make_csv_manifest",
    "tamper",
]

# Written out here, not imported, so that the expected values do not come from the code under test.
AFFECTNET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
ODD = (37, 50)  # (height, width): a 50x37 image
LARGE = (224, 224)
GRAY = (33, 45)
Size = Union[int, Sequence[int]]


@dataclass
class Made:
    """What a maker wrote, and what reading it must give (records in reading order)."""

    root: Path  # the dataset folder (for a CSV manifest: the folder that holds it)
    layout: str  # "affectnet" | "folders" | "csv"
    paths: list[str] = field(default_factory=list)  # POSIX, relative to root, in record order
    ids: list[str] = field(default_factory=list)
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # -1: unknown
    valence: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # NaN: unknown
    arousal: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    landmarks: Optional[np.ndarray] = None  # (N, 136) float32 with NaN rows, or None
    class_names: tuple[str, ...] = ()
    unreadable: list[str] = field(default_factory=list)  # records whose file does not decode
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # byte-identical record pairs
    ignored: list[str] = field(default_factory=list)  # files the reader must leave out (sorted)
    kinds: dict[str, str] = field(default_factory=dict)  # path -> "rgb" | "gray" | "bmp" | "truncated" | "text"
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # path -> (h, w, channels) of what was drawn
    csv: Optional[Path] = None  # the manifest, for layout "csv"

    @property
    def data(self) -> Path:
        """What to pass to ``open_dataset``: the manifest for CSV, else the folder."""
        return self.csv if self.csv is not None else self.root

    @property
    def n(self) -> int:
        """Number of records."""
        return len(self.paths)

    @property
    def n_readable(self) -> int:
        """Records whose file decodes."""
        return len(self.paths) - len(self.unreadable)

    def index(self, path: str) -> int:
        """Record index of a relative path."""
        return self.paths.index(path)


# --------------------------------------------------------------------------- pixels and files


def draw(rng: np.random.Generator, height: int, width: int, label: int = 0, channels: int = 3) -> np.ndarray:
    """A smooth, class-dependent pattern with noise: uint8 (height, width, channels)."""
    y, x = np.mgrid[0:height, 0:width] / max(height, width, 1)
    base = 80 + 18 * label + 60 * np.sin(6 * x + label) * np.cos(4 * y)
    tint = np.array([10.0, 0.0, -10.0])[:channels] if channels == 3 else np.zeros(1)
    noise = rng.normal(0, 12, size=(height, width, channels))
    return np.clip(base[..., None] + tint + noise, 0, 255).astype(np.uint8)


def encode(image: np.ndarray, fmt: str) -> bytes:
    """Encode uint8 (h, w, 1 or 3) pixels as "jpeg", "png" (TensorFlow) or "bmp" (24-bit, by hand)."""
    if fmt == "bmp":
        return _bmp(image)
    import tensorflow as tf  # only the test helpers touch TensorFlow's encoders

    if fmt == "png":
        return tf.io.encode_png(image).numpy()
    if fmt == "jpeg":
        return tf.io.encode_jpeg(image, quality=90).numpy()
    raise ValueError(f"unknown format {fmt!r}")


def _bmp(image: np.ndarray) -> bytes:
    rgb = np.broadcast_to(image, image.shape[:2] + (3,)) if image.shape[2] == 1 else image
    height, width = rgb.shape[:2]
    row = width * 3
    pad = (4 - row % 4) % 4
    rows = np.zeros((height, row + pad), np.uint8)
    rows[:, :row] = rgb[::-1, :, ::-1].reshape(height, row)  # bottom-up, BGR
    pixels = rows.tobytes()
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def _truncated_jpeg(rng: np.random.Generator) -> bytes:
    whole = encode(draw(rng, 40, 40, 1), "jpeg")
    return whole[: len(whole) // 2]


NOT_AN_IMAGE = b"notes.txt: these are notes, not an image; only the name says .jpg\n"


def _hw(size: Size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --------------------------------------------------------------------------- AffectNet


def make_affectnet_tree(root: Union[str, Path], n: int = 12, size: Size = 64, seed: int = 0, *,
                        annotations: str = "mixed") -> Made:
    """An AffectNet tree of ``n`` (>= 6) image records under ``root`` (made if needed).

    Ids are integers with gaps, from one digit to three, so numeric and lexicographic
    order differ. In numeric order, record 0 is a 224x224 RGB JPEG, 1 a 50x37 RGB JPEG,
    2 a grayscale PNG without landmarks, 3 a truncated JPEG, 4 a text file named .jpg,
    5 an upper-case ``.JPG``, the last a byte-identical copy of record 1 with another
    label, and (n >= 8) the one before it has no annotations at all. The others are
    ``size`` RGB JPEGs, every third a grayscale PNG. ``annotations`` is "strings"
    (numpy '<U..' scalars as in the real data), "numbers", or "mixed" (even records
    strings, odd numbers; one as a 1-element array). Also written and to be ignored:
    a full annotation set for an id with no image, ``images/README.txt`` and a hidden
    ``images/.DS_Store`` (hidden files are not even listed as ignored).
    """
    if n < 6:
        raise ValueError(f"make_affectnet_tree needs n >= 6 for its special records, got {n}")
    if annotations not in ("strings", "numbers", "mixed"):
        raise ValueError(f"annotations={annotations!r}: 'strings', 'numbers' or 'mixed'")
    root = Path(root)
    rng = np.random.default_rng(seed)
    image_dir, annotation_dir = root / "images", root / "annotations"
    image_dir.mkdir(parents=True, exist_ok=True)
    annotation_dir.mkdir(parents=True, exist_ok=True)

    ids = int(rng.integers(1, 9)) + np.concatenate([[0], np.cumsum(rng.integers(1, 30, size=n - 1))])
    ids[-1] += 100  # at least one three-digit id
    labels = rng.permutation(np.arange(n) % len(AFFECTNET_CLASSES)).astype(np.int16)
    valence = np.round(rng.uniform(-1, 1, size=n), 6)
    arousal = np.round(rng.uniform(-1, 1, size=n), 6)
    landmarks = rng.uniform(0, 224, size=(n, 136))
    unlabeled = n - 2 if n >= 8 else None
    duplicate = n - 1
    if labels[duplicate] == labels[1]:  # a conflicting label, as 3 of the 7 real pairs have
        labels[duplicate] = (labels[1] + 1) % len(AFFECTNET_CLASSES)

    made = Made(root=root, layout="affectnet", class_names=AFFECTNET_CLASSES)
    for k, record_id in enumerate(int(i) for i in ids):
        if k == 0:
            kind, data, shape = "rgb", None, LARGE + (3,)
        elif k == 1 or k == duplicate:
            kind, data, shape = "rgb", None, ODD + (3,)
        elif k == 2 or (k >= 6 and k % 3 == 2):
            kind, data, shape = "gray", None, (GRAY if k == 2 else _hw(size)) + (1,)
        elif k == 3:
            kind, data, shape = "truncated", _truncated_jpeg(rng), ()
        elif k == 4:
            kind, data, shape = "text", NOT_AN_IMAGE, ()
        else:
            kind, data, shape = "rgb", None, _hw(size) + (3,)
        suffix = ".png" if kind == "gray" else ".JPG" if k == 5 else ".jpg"
        path = f"images/{record_id}{suffix}"
        if k == duplicate:
            data = (root / made.paths[1]).read_bytes()
            made.duplicates.append((made.paths[1], path))
        elif data is None:
            data = encode(draw(rng, *shape[:2], int(labels[k]), shape[2]), "png" if kind == "gray" else "jpeg")
        _write(root / path, data)
        made.paths.append(path)
        made.ids.append(str(record_id))
        made.kinds[path] = kind
        made.shapes[path] = shape
        if kind in ("truncated", "text"):
            made.unreadable.append(path)
        if k == unlabeled:
            continue
        _save_annotations(annotation_dir, str(record_id), k, annotations, labels[k], valence[k], arousal[k],
                          None if k == 2 else landmarks[k])

    orphan = str(int(ids[-1]) + 7)
    _save_annotations(annotation_dir, orphan, 0, annotations, 3, 0.25, -0.5, landmarks[0])
    made.ignored = sorted([f"annotations/{orphan}_{kind}.npy" for kind in ("aro", "exp", "lnd", "val")]
                          + ["images/README.txt"])
    (image_dir / "README.txt").write_text("Not an image and not named like one: ignored.\n")
    (image_dir / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")

    if unlabeled is not None:
        labels[unlabeled], valence[unlabeled], arousal[unlabeled] = -1, np.nan, np.nan
        landmarks[unlabeled] = np.nan
    landmarks[2] = np.nan
    made.labels = labels
    made.valence = valence.astype(np.float32)
    made.arousal = arousal.astype(np.float32)
    made.landmarks = landmarks.astype(np.float32)
    return made


def _save_annotations(folder: Path, record_id: str, k: int, style: str, label, valence, arousal, landmarks) -> None:
    as_strings = style == "strings" or (style == "mixed" and k % 2 == 0)
    values = {"exp": int(label), "val": float(valence), "aro": float(arousal)}
    for kind, value in values.items():
        if as_strings:
            stored = np.array(repr(value))  # dtype '<U..', as in the real release: '-0.176846'
        elif style == "mixed" and k == 1:
            stored = np.array([value])  # a 1-element array, not a scalar
        else:
            stored = np.array(value, dtype=np.int64 if kind == "exp" else np.float64)
        np.save(folder / f"{record_id}_{kind}.npy", stored)
    if landmarks is not None:
        np.save(folder / f"{record_id}_lnd.npy", np.asarray(landmarks, dtype=np.float64))


# --------------------------------------------------------------------------- class folders


def make_class_folders(root: Union[str, Path], per_class: int = 3,
                       classes: Sequence[str] = ("happy", "sad", "neutral"), size: Size = 64, seed: int = 1, *,
                       extras: bool = True) -> Made:
    """One folder per class under ``root``, ``per_class`` (>= 2) images each.

    In each class: a grayscale PNG, a 50x37 RGB JPEG, then ``size`` RGB JPEGs. The
    default class names are AffectNet's, so the reader must use AffectNet's ids
    (happy 1, sad 2, neutral 0); other names give sorted folder names. With ``extras``:
    in the first class a nested ``more/`` subfolder with a 224x224 JPEG, an upper-case
    ``.PNG`` and a ``notes.md`` (ignored); in the second a truncated JPEG and a BMP; in
    the last a text file named ``.jpg`` and a byte-identical copy of the first class's
    50x37 JPEG; a hidden ``.cache/`` folder and ``._x.jpg`` file (never looked at), an
    ``empty/`` folder and a ``labels.txt`` at the top (both ignored).
    """
    if per_class < 2:
        raise ValueError(f"make_class_folders needs per_class >= 2, got {per_class}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    folders = sorted(classes)
    if all(name.lower() in AFFECTNET_CLASSES for name in classes):
        class_names = AFFECTNET_CLASSES
        label_of = {name: AFFECTNET_CLASSES.index(name.lower()) for name in classes}
    else:
        class_names = tuple(folders)
        label_of = {name: folders.index(name) for name in classes}
    made = Made(root=root, layout="folders", class_names=class_names)
    files: dict[str, list[tuple[str, str, bytes, tuple[int, ...]]]] = {name: [] for name in classes}

    def add(folder: str, relative: str, kind: str, shape: tuple[int, ...] = (), data: Optional[bytes] = None) -> str:
        if data is None:
            fmt = "bmp" if kind == "bmp" else "png" if kind == "gray" else "jpeg"
            data = encode(draw(rng, shape[0], shape[1], label_of[folder], shape[2]), fmt)
        path = f"{folder}/{relative}"
        _write(root / path, data)
        files[folder].append((path, kind, data, shape))
        return path

    for name in classes:
        add(name, f"{name}_0.png", "gray", GRAY + (1,))
        add(name, f"{name}_1.jpg", "rgb", ODD + (3,))
        for j in range(2, per_class):
            add(name, f"{name}_{j}.jpg", "rgb", _hw(size) + (3,))
    if extras:
        first, second, last = classes[0], classes[1 % len(classes)], classes[-1]
        add(first, "more/deep_0.jpg", "rgb", LARGE + (3,))
        add(first, "upper.PNG", "gray", GRAY + (1,))
        _write(root / first / "notes.md", b"# not an image\n")
        add(second, "cut.jpg", "truncated", (), _truncated_jpeg(rng))
        add(second, "drawn.bmp", "bmp", ODD + (3,))
        add(last, "notes.jpg", "text", (), NOT_AN_IMAGE)
        original = f"{first}/{first}_1.jpg"
        copy = add(last, "copy_of_first.jpg", "rgb", ODD + (3,), (root / original).read_bytes())
        made.duplicates.append((original, copy))
        _write(root / ".cache" / "x.jpg", NOT_AN_IMAGE)
        _write(root / first / "._x.jpg", b"resource fork")
        (root / "empty").mkdir(exist_ok=True)
        _write(root / "labels.txt", b"happy sad neutral\n")
        made.ignored = sorted([f"{first}/notes.md", "empty/", "labels.txt"])

    for name in folders:
        for path, kind, _, shape in sorted(files[name], key=lambda entry: entry[0].split("/")):
            made.paths.append(path)
            made.ids.append(path.rsplit(".", 1)[0])
            made.kinds[path] = kind
            made.shapes[path] = shape
            if kind in ("truncated", "text"):
                made.unreadable.append(path)
    made.labels = np.array([label_of[path.split("/")[0]] for path in made.paths], np.int16)
    made.valence = np.full(made.n, np.nan, np.float32)
    made.arousal = np.full(made.n, np.nan, np.float32)
    return made


# --------------------------------------------------------------------------- CSV manifest


def make_csv_manifest(root: Union[str, Path], n: int = 8, size: Size = 64, seed: int = 2, *,
                      labels: Optional[str] = "names", absolute: bool = False, name: str = "manifest.csv") -> Made:
    """``root/<name>`` listing ``n`` (>= 6) images under ``root/pictures/``, in shuffled order.

    Columns ``path,label,valence,arousal`` (no ``label`` column when ``labels`` is None;
    ``labels="ids"`` writes class ids, ``"names"`` AffectNet names, one capitalised). The
    records include a grayscale PNG in a subfolder, a 50x37 JPEG, a 224x224 JPEG, a
    truncated JPEG, a text file named .jpg and a byte-identical copy; the text file's row has
    an empty label (-1) and empty valence/arousal (NaN), so every readable image is labelled.
    ``absolute`` writes absolute paths.
    """
    if n < 6:
        raise ValueError(f"make_csv_manifest needs n >= 6, got {n}")
    if labels not in (None, "names", "ids"):
        raise ValueError(f"labels={labels!r}: None, 'names' or 'ids'")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 5, size=n).astype(np.int16)  # 0..4: names and ids both cover few classes
    valence = np.round(rng.uniform(-1, 1, size=n), 3)
    arousal = np.round(rng.uniform(-1, 1, size=n), 3)
    blank = 4  # the text file named .jpg has empty label, valence and arousal: every readable image is labelled
    made = Made(root=root, layout="csv", csv=root / name)
    rows = []
    written: list[str] = []
    for k in range(n):
        if k == 0:
            path, kind, shape = "pictures/gray/p0.png", "gray", GRAY + (1,)
        elif k == 1:
            path, kind, shape = "pictures/p1.jpg", "rgb", ODD + (3,)
        elif k == 2:
            path, kind, shape = "pictures/p2.jpeg", "rgb", LARGE + (3,)
        elif k == 3:
            path, kind, shape = "pictures/p3.jpg", "truncated", ()
        elif k == 4:
            path, kind, shape = "pictures/notes.jpg", "text", ()
        elif k == 5:
            path, kind, shape = "pictures/p5_copy_of_p1.jpg", "rgb", ODD + (3,)
        else:
            path, kind, shape = f"pictures/p{k}.jpg", "rgb", _hw(size) + (3,)
        if kind == "truncated":
            data = _truncated_jpeg(rng)
        elif kind == "text":
            data = NOT_AN_IMAGE
        elif k == 5:
            data = (root / written[1]).read_bytes()
            made.duplicates.append((written[1], path))
        else:
            data = encode(draw(rng, shape[0], shape[1], int(classes[k]), shape[2]), "png" if kind == "gray" else "jpeg")
        _write(root / path, data)
        written.append(path)
        made.kinds[path] = kind
        made.shapes[path] = shape
        if kind in ("truncated", "text"):
            made.unreadable.append(path)
        label_cell = ("" if k == blank else AFFECTNET_CLASSES[classes[k]] if labels == "names"
                      else str(int(classes[k])))
        if labels == "names" and k == 1:
            label_cell = label_cell.capitalize()
        shown = os.path.join(os.path.abspath(root), path) if absolute else path
        rows.append([shown, label_cell, "" if k == blank else f"{valence[k]:.3f}",
                     "" if k == blank else f"{arousal[k]:.3f}"])

    order = rng.permutation(n)
    order = order if not np.array_equal(order, np.arange(n)) else order[::-1]  # never sorted by chance
    with open(made.csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "valence", "arousal"] if labels else ["path", "valence", "arousal"])
        for k in order:
            writer.writerow(rows[k] if labels else [rows[k][0], *rows[k][2:]])

    known = np.array([int(classes[k]) if k != blank else -1 for k in order], np.int16)
    if labels is None:
        made.labels, made.class_names = np.full(n, -1, np.int16), ()
    elif labels == "names":
        made.labels, made.class_names = known, AFFECTNET_CLASSES
    else:
        made.labels, made.class_names = known, tuple(str(i) for i in range(int(known.max()) + 1))
    made.paths = [written[k] for k in order]
    made.ids = [path.rsplit(".", 1)[0] for path in made.paths]
    made.valence = np.array([np.nan if k == blank else valence[k] for k in order], np.float32)
    made.arousal = np.array([np.nan if k == blank else arousal[k] for k in order], np.float32)
    made.root = Path(os.path.abspath(root))
    return made


def tamper(path: Union[str, Path], offset: int = -1) -> None:
    """Flip every bit of one byte of a file in place (default: the last), keeping its size."""
    data = bytearray(Path(path).read_bytes())
    data[offset] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    os.utime(path)


# --------------------------------------------------------------------------- people photographed several times


def person(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random identity: a coarse random colour field (10 x 10 cells, smoothly interpolated),
    float (size, size, 3) in 0..255; two identities share nothing but their size."""
    cells = rng.uniform(0, 255, size=(10, 10, 3))
    at = np.linspace(0, 9, size)
    low, frac = np.minimum(at.astype(int), 8), at - np.minimum(at.astype(int), 8)
    rows = cells[low] * (1 - frac)[:, None, None] + cells[low + 1] * frac[:, None, None]
    return rows[:, low] * (1 - frac)[None, :, None] + rows[:, low + 1] * frac[None, :, None]


def frame(rng: np.random.Generator, identity: np.ndarray) -> np.ndarray:
    """One frame of a sequence: the identity moved by a pixel, a little lighter or darker, noisy."""
    shifted = np.roll(identity, tuple(rng.integers(-1, 2, size=2)), axis=(0, 1))
    lit = shifted * rng.uniform(0.98, 1.02) + rng.normal(0, 2, size=identity.shape)
    return np.clip(lit, 0, 255).astype(np.uint8)


def make_sequences(root: Union[str, Path], people: int = 40, frames: int = 6, size: int = 64, seed: int = 0,
                   classes: Sequence[str] = ("calm", "frown", "shout", "smile")) -> Path:
    """``root/<class>/S<person>_<frame>.png`` and ``root/manifest.csv`` (path, label, subject): ``people``
    random identities, each pictured ``frames`` times with small changes and labelled with one class
    (``frames=1``: independent images). A split by image puts frames of one person on both sides, so
    a head can score by recognising people; split by person it cannot (labels are random per person)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    rows = ["path,label,subject"]
    for index in range(people):
        identity, label = person(rng, size), classes[index % len(classes)]
        for k in range(frames):
            relative = f"{label}/S{index:03d}_{k:02d}.png"
            _write(root / relative, encode(frame(rng, identity), "png"))
            rows.append(f"{relative},{label},person{index:03d}")
    (root / "manifest.csv").write_text("\n".join(rows) + "\n")
    return root
