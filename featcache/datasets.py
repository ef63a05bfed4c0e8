"""Datasets: one record per image, in a deterministic order, with its labels and a fingerprint.

Four layouts are read (numpy and the standard library only; no image is decoded here):

``affectnet``
    ``images/<id>.<ext>`` with ``annotations/<id>_exp.npy``, ``_val.npy``, ``_aro.npy`` and
    optional ``_lnd.npy`` (136 floats). Values may be numbers or numpy strings (dtype
    ``'<U..'``, as in the real release); they are read with ``np.load(..., allow_pickle=False)``.
    Records are sorted by numeric id when every id is an integer, else lexicographically.
    An image without annotations gets label -1 and NaN valence/arousal; annotations
    without an image are ignored (listed in :attr:`Dataset.ignored`).
``folders``
    ``<root>/<class>/<...>/<image>``. Classes are the sorted names of the subfolders that
    hold images, unless every name is an AffectNet class (any case): then AffectNet's ids
    and :data:`AFFECTNET_CLASSES` are used. Records are sorted by (class folder, path).
``flat``
    A folder that holds the images themselves and no class folders: unlabelled records
    (label -1, no class names), ids the file names, sorted by name; for images to predict
    on, or to cache before labels exist.
``csv``
    A manifest with a ``path`` column (relative to the CSV's folder, or absolute) and
    optional ``label`` (class ids or class names), ``valence`` and ``arousal`` columns;
    records keep the file's order.

Files are kept as records on their name alone (any of :data:`IMAGE_SUFFIXES`, any case);
an image that turns out to be unreadable is reported by the extractor, not here. Hidden
files and folders (names starting with ``.``) are never read. Nothing is left out
silently: :attr:`Dataset.left_out` names every file and folder a folder layout passed
over, by reason (:data:`LEFT_OUT_REASONS`), hidden ones included, and
:func:`describe_left_out` says it in one line. A CSV manifest leaves nothing out: each row
is a record whatever its file's name (a file that is no image is reported unreadable by
the extractor).

Every user error is a :class:`DatasetError` whose message is one line naming the file,
folder or value and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import FeatcacheError

__all__ = [
    "AFFECTNET_CLASSES",
    "IMAGE_SUFFIXES",
    "LAYOUTS",
    "Dataset",
    "DatasetError",
    "Fingerprint",
    "LEFT_OUT_REASONS",
    "LeftOutWarning",
    "describe_left_out",
    "detect_layout",
    "left_out_record",
    "open_dataset",
]

AFFECTNET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
# compared case-insensitively; every one is decoded by featcache.images (Pillow for all but JPEG)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LAYOUTS = ("affectnet", "csv", "folders", "flat")
N_LANDMARK_VALUES = 136  # 68 (x, y) points
_BLOCK = 1 << 20  # fingerprint read size: 1 MiB
_ANNOTATION_KINDS = ("exp", "val", "aro", "lnd")
_INTEGER = re.compile(r"[+-]?[0-9]+(\.0*)?")
_DIGITS = re.compile(r"[0-9]+")
_KNOWN_LAYOUTS_HINT = (
    "no images found in a known layout (AffectNet images/+annotations/, one folder per class, "
    "images in the folder itself, or a CSV manifest); pass layout=..."
)

PathLike = Union[str, "os.PathLike[str]"]

# Why a file or folder (its path ends with "/") of a dataset folder is not a record: the keys
# of Dataset.left_out, in the order they are reported.
UNSUPPORTED = "unsupported extension"  # not one of IMAGE_SUFFIXES
HIDDEN = "hidden"  # a name starting with "."; never read (a hidden folder is not walked)
NOT_IN_CLASS = "not in a class folder"  # beside the class folders of the folders layout
NO_IMAGES = "folder without images"  # nothing in it but hidden files, if any: not a class
SUBFOLDER = "subfolder not read"  # in a flat folder, or in AffectNet's images/
NOT_A_FILE = "not a regular file"
ORPHAN = "annotation without an image"
NOT_ANNOTATION = "not an annotation file"  # in AffectNet's annotations/, not <id>_<exp|val|aro|lnd>.npy
LEFT_OUT_REASONS = (UNSUPPORTED, HIDDEN, NOT_IN_CLASS, NO_IMAGES, SUBFOLDER, NOT_A_FILE, ORPHAN, NOT_ANNOTATION)
_EXAMPLES = 20  # paths kept per reason in a left_out_record (a cache attribute stays small)


class LeftOutWarning(UserWarning):
    """:func:`featcache.extract` left files of the dataset folder out (their names and why: the message)."""


class DatasetError(FeatcacheError, ValueError):
    """A dataset that cannot be read as asked; the message is one line naming what and what to do."""

    def __init__(self, message: object) -> None:
        # One line always, even when a file name itself holds a line break.
        super().__init__("\\n".join(str(message).splitlines()))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, eq=False, repr=False)
class Fingerprint:
    """What ties a cache to the exact bytes of a dataset.

    ``digest`` is the hex SHA-256 over (id, relative path, size, content hash) of every
    record, in record order; ``content_hashes`` the hex SHA-256 of each file's bytes
    (byte-identical images share one) and ``sizes`` each file's size in bytes.
    """

    digest: str
    content_hashes: tuple[str, ...]
    sizes: tuple[int, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fingerprint) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Fingerprint({self.digest[:16]}..., {len(self.sizes)} files, {sum(self.sizes)} bytes)"

    def duplicate_groups(self) -> list[tuple[int, ...]]:
        """Record indices of byte-identical files, one tuple per content shared by 2+ records."""
        groups: dict[str, list[int]] = {}
        for index, content in enumerate(self.content_hashes):
            groups.setdefault(content, []).append(index)
        return [tuple(indices) for indices in groups.values() if len(indices) > 1]


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """The records of a dataset: one per image file, in a deterministic order.

    ``paths`` are POSIX paths relative to ``root``; ``labels`` are int16 class ids (-1 where
    unknown), ``valence``/``arousal`` float32 (NaN where unknown) and ``landmarks`` float32
    (N, 136) with NaN rows for records that lack them, or None when the dataset has none.
    ``columns`` holds a CSV manifest's cells, column by column (for ``--group-by col:NAME``).
    The arrays are read-only copies. ``ignored`` lists, relative to ``root``, the files that
    were looked at and left out (annotations without an image, files that are not images,
    folders without images); ``left_out`` the same and the hidden ones, by reason (a key of
    :data:`LEFT_OUT_REASONS` -> sorted paths, a folder's ending with ``/``).
    Equality is identity; compare fingerprints to compare data.
    """

    root: Path
    layout: str
    ids: tuple[str, ...]
    paths: tuple[str, ...]
    labels: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    landmarks: Optional[np.ndarray]
    class_names: tuple[str, ...]
    ignored: tuple[str, ...] = ()
    columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # a CSV manifest's cells by column
    left_out: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # reason -> paths, see LEFT_OUT_REASONS

    def __post_init__(self) -> None:
        n = len(self.paths)
        fields = {
            "root": Path(os.path.abspath(self.root)),
            "ids": tuple(str(i) for i in self.ids),
            "paths": tuple(str(p) for p in self.paths),
            "labels": _frozen(self.labels, np.int16),
            "valence": _frozen(self.valence, np.float32),
            "arousal": _frozen(self.arousal, np.float32),
            "landmarks": None if self.landmarks is None else _frozen(self.landmarks, np.float32),
            "class_names": tuple(str(c) for c in self.class_names),
            "ignored": tuple(str(p) for p in self.ignored),
            "columns": {str(k): tuple(str(c) for c in v) for k, v in self.columns.items()},
            "left_out": {str(k): tuple(sorted(str(p) for p in v))
                         for k, v in sorted(self.left_out.items(), key=lambda item: _reason_rank(item[0])) if v},
        }
        for name, value in fields.items():
            object.__setattr__(self, name, value)
        if self.layout not in LAYOUTS:
            raise DatasetError(f"layout {self.layout!r} is not one of {', '.join(LAYOUTS)}")
        for name in ("ids", "labels", "valence", "arousal"):
            if len(getattr(self, name)) != n:
                raise DatasetError(f"Dataset: {len(getattr(self, name))} {name} for {n} paths; give one per record")
        for name, cells in self.columns.items():
            if len(cells) != n:
                raise DatasetError(f"Dataset: {len(cells)} cells in column {name!r} for {n} paths; give one per record")
        if self.landmarks is not None and self.landmarks.shape != (n, N_LANDMARK_VALUES):
            raise DatasetError(f"Dataset: landmarks of shape {self.landmarks.shape}; expected ({n}, {N_LANDMARK_VALUES})")

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return (f"Dataset(layout={self.layout!r}, root={str(self.root)!r}, records={len(self)}, "
                f"classes={len(self.class_names)})")

    def absolute_paths(self) -> list[str]:
        """Each record's file as an absolute path string, in record order."""
        root = str(self.root)
        return [os.path.join(root, path) for path in self.paths]

    def fingerprint(self) -> Fingerprint:
        """Hash every file's bytes now (1 MiB blocks) and the records' identity; see :class:`Fingerprint`.

        Not cached: each call reads the files again, so it certifies the bytes on disk at the
        time of the call (one sequential read per file, cheap next to decoding the images).
        """
        return _fingerprint(self.root, self.ids, self.paths)


def _frozen(values: object, dtype: type) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array


def _fingerprint(root: Path, ids: Sequence[str], paths: Sequence[str]) -> Fingerprint:
    total = hashlib.sha256(b"featcache dataset fingerprint v1\n")
    contents: list[str] = []
    sizes: list[int] = []
    buffer = bytearray(_BLOCK)
    view = memoryview(buffer)
    for record_id, path in zip(ids, paths):
        file = os.path.join(root, path)
        content = hashlib.sha256()
        size = 0
        try:
            with open(file, "rb", buffering=0) as handle:
                while True:
                    got = handle.readinto(buffer)
                    if not got:
                        break
                    content.update(view[:got])
                    size += got
        except FileNotFoundError:
            raise DatasetError(f"{file}: no such file any more (it was listed when the dataset was opened); "
                               "open the dataset again") from None
        except OSError as error:
            raise DatasetError(f"{file}: cannot be read ({error.strerror or error}); fix its permissions "
                               "or remove it") from None
        digest = content.hexdigest()
        contents.append(digest)
        sizes.append(size)
        total.update(json.dumps([record_id, path, size, digest], ensure_ascii=False).encode("utf-8") + b"\n")
    return Fingerprint(digest=total.hexdigest(), content_hashes=tuple(contents), sizes=tuple(sizes))


# --------------------------------------------------------------------------- entry points


def open_dataset(
    data: PathLike,
    layout: str = "auto",
    *,
    path_column: str = "path",
    label_column: str = "label",
    valence_column: str = "valence",
    arousal_column: str = "arousal",
    id_column: Optional[str] = None,
    class_names: Optional[Sequence[str]] = None,
) -> Dataset:
    """Read a dataset folder or CSV manifest into a :class:`Dataset` (no image is decoded).

    ``layout`` is ``"auto"`` (see :func:`detect_layout`), ``"affectnet"``, ``"folders"``,
    ``"flat"`` or ``"csv"``. The column arguments apply to CSV manifests; a missing ``label``, ``valence``
    or ``arousal`` column under its default name means unknown values, under any other name
    it is an error. ``class_names`` fixes the classes' names and order: for CSV class names
    and class folders it decides the ids (every name found must be in it); for AffectNet it
    renames the 8 classes.
    """
    path = _existing(data)
    if layout not in ("auto", *LAYOUTS):
        raise DatasetError(f"layout {layout!r} is not one of auto, {', '.join(LAYOUTS)}")
    names = None if class_names is None else _class_names_argument(class_names)
    chosen = detect_layout(path) if layout == "auto" else layout
    if chosen == "affectnet":
        return _open_affectnet(path, names)
    if chosen == "folders":
        return _open_folders(path, names)
    if chosen == "flat":
        return _open_flat(path)
    return _open_csv(path, path_column=path_column, label_column=label_column, valence_column=valence_column,
                     arousal_column=arousal_column, id_column=id_column, class_names=names)


def detect_layout(data: PathLike) -> str:
    """``"csv"`` for a .csv file; ``"affectnet"`` for a folder with ``images/`` and ``annotations/``;
    ``"folders"`` for a folder with a subfolder that holds images; ``"flat"`` for a folder that
    holds images itself; else a :class:`DatasetError`."""
    path = _existing(data)
    if path.is_file():
        if path.suffix.lower() == ".csv":
            return "csv"
        raise DatasetError(f"{path}: a file that is not a .csv manifest; pass a dataset folder or a CSV file "
                           "(or layout='csv' if it is a manifest under another name)")
    if (path / "images").is_dir() and (path / "annotations").is_dir():
        return "affectnet"
    entries = _entries(path)
    if any(entry.is_dir() and _holds_an_image(entry.path) for entry in entries):
        return "folders"
    if any(entry.is_file() and _is_image_name(entry.name) for entry in entries):
        return "flat"
    raise DatasetError(f"{path}: {_KNOWN_LAYOUTS_HINT}")


def _existing(data: PathLike) -> Path:
    try:
        path = Path(os.path.abspath(os.path.expanduser(os.fspath(data))))
    except TypeError:
        raise DatasetError(f"{data!r}: not a path; pass a dataset folder or a CSV file") from None
    if not path.exists():
        raise DatasetError(f"{path}: no such file or folder")
    return path


def _class_names_argument(class_names: Sequence[str]) -> tuple[str, ...]:
    if isinstance(class_names, (str, bytes)):
        raise DatasetError(f"class_names={class_names!r}: give a sequence of names, e.g. ('cat', 'dog')")
    names = tuple(str(name).strip() for name in class_names)
    if not names or any(not name for name in names) or len(set(names)) != len(names):
        raise DatasetError(f"class_names={list(names)!r}: give distinct, non-empty names")
    return names


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES) and not name.startswith(".")


def _entries(folder: Union[str, Path], hidden: Optional[list[str]] = None, prefix: str = "") -> list[os.DirEntry]:
    """The folder's non-hidden entries, sorted by name; the hidden ones' names (``prefix`` + name,
    + ``/`` for a folder) appended to ``hidden`` when given."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
            if hidden is not None:
                hidden.extend(_name(entry, prefix) for entry in entries if entry.name.startswith("."))
            return sorted((entry for entry in entries if not entry.name.startswith(".")), key=lambda e: e.name)
    except PermissionError:
        raise DatasetError(f"{folder}: permission denied; make the folder readable") from None
    except NotADirectoryError:
        raise DatasetError(f"{folder}: not a folder") from None


def _name(entry: os.DirEntry, prefix: str = "") -> str:
    """``prefix`` + the entry's name, with ``/`` after a folder's."""
    return prefix + entry.name + ("/" if entry.is_dir() else "")


class _LeftOut:
    """What a folder layout passes over, by reason (see :data:`LEFT_OUT_REASONS`)."""

    def __init__(self) -> None:
        self.paths: dict[str, list[str]] = {}

    def add(self, reason: str, *paths: str) -> None:
        if paths:
            self.paths.setdefault(reason, []).extend(paths)

    def entry(self, entry: os.DirEntry, prefix: str = "", *, folder: str = SUBFOLDER) -> None:
        """A non-hidden entry that is not an image to read: a folder, an unsupported name or not a file."""
        if entry.is_dir():
            self.add(folder, _name(entry, prefix))
        elif not entry.is_file():
            self.add(NOT_A_FILE, prefix + entry.name)
        else:
            self.add(UNSUPPORTED, prefix + entry.name)


def _reason_rank(reason: str) -> tuple[int, str]:
    return (LEFT_OUT_REASONS.index(reason) if reason in LEFT_OUT_REASONS else len(LEFT_OUT_REASONS), reason)


def left_out_record(left_out: Mapping[str, Sequence[str]], examples: int = _EXAMPLES) -> dict[str, dict]:
    """What a dataset left out, small enough to store: per reason the count, the first
    ``examples`` paths and, for unsupported extensions, each extension's count (most first)."""
    record: dict[str, dict] = {}
    for reason, paths in sorted(left_out.items(), key=lambda item: _reason_rank(item[0])):
        if not paths:
            continue
        entry: dict = {"count": len(paths), "examples": sorted(paths)[:examples]}
        if reason == UNSUPPORTED:
            counts: dict[str, int] = {}
            for path in paths:
                suffix = PurePosixPath(path).suffix.lower() or "(none)"
                counts[suffix] = counts.get(suffix, 0) + 1
            entry["extensions"] = dict(sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:examples])
        record[reason] = entry
    return record


def describe_left_out(left_out: Mapping, shown: int = 3) -> str:
    """One line: how many files and folders were left out and why, with a few of their names;
    "" when nothing was. ``left_out`` is a :attr:`Dataset.left_out` or a :func:`left_out_record`."""
    record = left_out_record(left_out) if all(not isinstance(v, Mapping) for v in left_out.values()) else left_out
    if not record:
        return ""
    parts = []
    for reason, entry in record.items():
        count, names = int(entry["count"]), list(entry["examples"])[:shown]
        more = f" and {count - len(names)} more" if count > len(names) else ""
        extensions = entry.get("extensions")
        what = f"{reason} {', '.join(extensions)}" if extensions else reason
        parts.append(f"{what}: {count} ({', '.join(names)}{more})")
    total = sum(int(entry["count"]) for entry in record.values())
    return f"left out {total}: " + "; ".join(parts)


def _holds_an_image(folder: str) -> bool:
    for current, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        if any(_is_image_name(name) for name in files):
            return True
    return False


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


def _check_unique_ids(ids: Sequence[str], paths: Sequence[str], root: Path) -> None:
    seen: dict[str, str] = {}
    for record_id, path in zip(ids, paths):
        if record_id in seen:
            raise DatasetError(f"{root}: {seen[record_id]} and {path} have the same id {record_id!r}; "
                               "rename or remove one of them")
        seen[record_id] = path


# --------------------------------------------------------------------------- AffectNet


def _open_affectnet(root: Path, class_names: Optional[tuple[str, ...]]) -> Dataset:
    images_dir, annotations_dir = root / "images", root / "annotations"
    if not (images_dir.is_dir() and annotations_dir.is_dir()):
        raise DatasetError(f"{root}: not in the AffectNet layout (needs images/ and annotations/ folders); "
                           "pass another path or layout='folders' or 'csv'")
    if class_names is not None and len(class_names) != len(AFFECTNET_CLASSES):
        raise DatasetError(f"class_names={list(class_names)!r}: the AffectNet layout has {len(AFFECTNET_CLASSES)} "
                           "classes; give 8 names or none")
    names = class_names or AFFECTNET_CLASSES

    ignored: list[str] = []
    hidden: list[str] = []
    left_out = _LeftOut()
    images: dict[str, str] = {}  # id -> file name
    for entry in _entries(images_dir, hidden, "images/"):
        if not entry.is_file():
            ignored.append(f"images/{entry.name}/" if entry.is_dir() else f"images/{entry.name}")
            left_out.entry(entry, "images/")
        elif not _is_image_name(entry.name):
            ignored.append(f"images/{entry.name}")
            left_out.entry(entry, "images/")
        else:
            stem = _stem(entry.name)
            if stem in images:
                raise DatasetError(f"{images_dir}: {images[stem]} and {entry.name} have the same id {stem!r}; "
                                   "keep one of them")
            images[stem] = entry.name
    if not images:
        raise DatasetError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)}); put them there as "
                           "images/<id>.jpg")

    annotations: dict[str, dict[str, str]] = {}  # id -> kind -> file name
    for entry in _entries(annotations_dir, hidden, "annotations/"):
        base, _, tail = entry.name.rpartition("_")
        kind = tail[:-4] if tail.endswith(".npy") else ""
        if base and kind in _ANNOTATION_KINDS and entry.is_file():
            annotations.setdefault(base, {})[kind] = entry.name
        else:
            ignored.append(f"annotations/{entry.name}")
            left_out.add(NOT_ANNOTATION, _name(entry, "annotations/"))
    for base in sorted(set(annotations) - set(images)):
        orphans = [f"annotations/{name}" for name in sorted(annotations[base].values())]
        ignored.extend(orphans)
        left_out.add(ORPHAN, *orphans)
    left_out.add(HIDDEN, *hidden)

    if all(_DIGITS.fullmatch(stem) for stem in images):
        order = sorted(images, key=lambda stem: (int(stem), stem))
    else:
        order = sorted(images)
    n = len(order)
    labels = np.full(n, -1, dtype=np.int16)
    valence = np.full(n, np.nan, dtype=np.float32)
    arousal = np.full(n, np.nan, dtype=np.float32)
    landmarks = np.full((n, N_LANDMARK_VALUES), np.nan, dtype=np.float32)
    any_landmarks = False
    for index, stem in enumerate(order):
        files = annotations.get(stem, {})
        if "exp" in files:
            labels[index] = _label(annotations_dir / files["exp"], len(names))
        if "val" in files:
            valence[index] = _scalar(annotations_dir / files["val"])
        if "aro" in files:
            arousal[index] = _scalar(annotations_dir / files["aro"])
        if "lnd" in files:
            landmarks[index] = _landmarks(annotations_dir / files["lnd"])
            any_landmarks = True
    return Dataset(
        root=root, layout="affectnet", ids=tuple(order), paths=tuple(f"images/{images[s]}" for s in order),
        labels=labels, valence=valence, arousal=arousal, landmarks=landmarks if any_landmarks else None,
        class_names=names, ignored=tuple(sorted(ignored)), left_out=left_out.paths,
    )


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        try:
            with open(path, "rb") as handle:
                is_npy = handle.read(6) == b"\x93NUMPY"
        except OSError:
            is_npy = False
        if is_npy and "pickle" in str(error):
            raise DatasetError(f"{path}: not a plain numpy array (it holds pickled objects, which are not "
                               "loaded); save numbers or strings with np.save") from None
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DatasetError(f"{path}: cannot be read as a .npy file ({reason}); replace it") from None


def _scalar(path: Path) -> float:
    array = _load_npy(path)
    if array.size != 1:
        raise DatasetError(f"{path}: holds {array.size} values, expected one; fix the annotation")
    value = array.reshape(()).item()
    try:
        return float(value.decode() if isinstance(value, bytes) else value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: {value!r} is not a number; fix the annotation") from None


def _label(path: Path, n_classes: int) -> int:
    value = _scalar(path)
    if not np.isfinite(value) or value != int(value):
        raise DatasetError(f"{path}: label {value!r} is not a whole number; fix the annotation")
    label = int(value)
    if not 0 <= label < n_classes:
        raise DatasetError(f"{path}: label {label} is outside 0..{n_classes - 1} "
                           f"({', '.join(AFFECTNET_CLASSES)}); relabel the image or remove it")
    return label


def _landmarks(path: Path) -> np.ndarray:
    array = _load_npy(path)
    if array.size != N_LANDMARK_VALUES:
        raise DatasetError(f"{path}: holds {array.size} values, expected {N_LANDMARK_VALUES} "
                           "(68 x, y pairs); fix or remove it")
    try:
        return array.reshape(-1).astype(np.float64).astype(np.float32)
    except (TypeError, ValueError):
        raise DatasetError(f"{path}: landmarks are not numbers; fix or remove it") from None


# --------------------------------------------------------------------------- class folders


def _open_folders(root: Path, class_names: Optional[tuple[str, ...]]) -> Dataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: layout 'folders' needs a folder with one subfolder per class; "
                           "pass that folder")
    ignored: list[str] = []
    hidden: list[str] = []
    left_out = _LeftOut()
    found: dict[str, list[str]] = {}  # class folder -> relative paths of its images
    for entry in _entries(root, hidden):
        if not entry.is_dir():
            ignored.append(entry.name)
            left_out.add(NOT_IN_CLASS, entry.name)
            continue
        files: list[str] = []
        others: list[str] = []
        for current, dirs, names in os.walk(entry.path):
            base = PurePosixPath(Path(os.path.relpath(current, root)).as_posix())
            hidden.extend(f"{base / d}/" for d in dirs if d.startswith("."))
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in names:
                if name.startswith("."):
                    hidden.append(str(base / name))
                else:
                    (files if _is_image_name(name) else others).append(str(base / name))
        if files:
            found[entry.name] = sorted(files, key=lambda p: PurePosixPath(p).parts)
            ignored.extend(others)
        else:
            ignored.append(f"{entry.name}/")  # not a class: no images in it
        if others:
            left_out.add(UNSUPPORTED, *others)
        elif not files:
            left_out.add(NO_IMAGES, f"{entry.name}/")
    left_out.add(HIDDEN, *hidden)
    if not found:
        raise DatasetError(f"{root}: no class folders with images (expected <class>/<image>, with "
                           f"{', '.join(IMAGE_SUFFIXES)}); pass another path or layout=...")

    folders = sorted(found)
    if class_names is not None:
        names = class_names
        ids = {folder: _class_index(folder, names, f"{root / folder}: folder") for folder in folders}
    elif all(folder.lower() in AFFECTNET_CLASSES for folder in folders):
        names = AFFECTNET_CLASSES
        ids = {folder: AFFECTNET_CLASSES.index(folder.lower()) for folder in folders}
    else:
        names = tuple(folders)
        ids = {folder: i for i, folder in enumerate(folders)}

    paths = [path for folder in folders for path in found[folder]]
    labels = [ids[folder] for folder in folders for _ in found[folder]]
    record_ids = [str(PurePosixPath(path).with_suffix("")) for path in paths]
    _check_unique_ids(record_ids, paths, root)
    n = len(paths)
    return Dataset(
        root=root, layout="folders", ids=tuple(record_ids), paths=tuple(paths), labels=np.asarray(labels),
        valence=np.full(n, np.nan), arousal=np.full(n, np.nan), landmarks=None, class_names=names,
        ignored=tuple(sorted(ignored)), left_out=left_out.paths,
    )


# --------------------------------------------------------------------------- a flat folder


def _open_flat(root: Path) -> Dataset:
    if not root.is_dir():
        raise DatasetError(f"{root}: layout 'flat' needs a folder that holds images; pass that folder")
    hidden: list[str] = []
    entries = _entries(root, hidden)
    names = [entry.name for entry in entries if entry.is_file() and _is_image_name(entry.name)]
    if not names:
        raise DatasetError(f"{root}: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder itself; "
                           "pass the folder that holds them, or layout=...")
    records = set(names)
    ignored = [entry.name + ("/" if entry.is_dir() else "") for entry in entries if entry.name not in records]
    left_out = _LeftOut()
    for entry in entries:
        if entry.name not in records:
            left_out.entry(entry)
    left_out.add(HIDDEN, *hidden)
    n = len(names)
    return Dataset(
        root=root, layout="flat", ids=tuple(names), paths=tuple(names), labels=np.full(n, -1),
        valence=np.full(n, np.nan), arousal=np.full(n, np.nan), landmarks=None, class_names=(),
        ignored=tuple(sorted(ignored)), left_out=left_out.paths,
    )


def _find_class(name: str, names: Sequence[str]) -> Optional[int]:
    """Index of ``name`` in ``names``: exact match first, then a unique case-insensitive one."""
    if name in names:
        return names.index(name)
    folded = [i for i, candidate in enumerate(names) if candidate.casefold() == name.casefold()]
    return folded[0] if len(folded) == 1 else None


def _class_index(name: str, names: Sequence[str], where: str) -> int:
    """:func:`_find_class`, or a DatasetError naming ``where``."""
    index = _find_class(name, names)
    if index is not None:
        return index
    raise DatasetError(f"{where} {name!r} is not one of class_names ({', '.join(names)}); "
                       "fix it or add it to class_names")


# --------------------------------------------------------------------------- CSV manifest


def _open_csv(
    manifest: Path,
    *,
    path_column: str,
    label_column: str,
    valence_column: str,
    arousal_column: str,
    id_column: Optional[str],
    class_names: Optional[tuple[str, ...]],
) -> Dataset:
    if not manifest.is_file():
        raise DatasetError(f"{manifest}: layout 'csv' needs a .csv manifest file, not a folder; "
                           "pass the manifest's path")
    header, rows = _read_csv(manifest)

    def column(name: Optional[str], default: Optional[str], what: str) -> Optional[int]:
        if name is None:
            return None
        if header.count(name) > 1:
            raise DatasetError(f"{manifest}: the column {name!r} appears {header.count(name)} times; "
                               "rename all but one")
        if name in header:
            return header.index(name)
        if name == default:
            return None
        raise DatasetError(f"{manifest}: no column {name!r} (columns: {', '.join(header)}); "
                           f"pass {what}= one of them")

    path_at = column(path_column, path_column, "path_column")
    if path_at is None:
        raise DatasetError(f"{manifest}: no column {path_column!r} (columns: {', '.join(header)}); "
                           "add it or pass path_column= the column of image paths")
    label_at = column(label_column, "label", "label_column")
    valence_at = column(valence_column, "valence", "valence_column")
    arousal_at = column(arousal_column, "arousal", "arousal_column")
    id_at = column(id_column, None, "id_column")

    folder = manifest.parent
    files: list[str] = []
    for line, row in rows:
        cell = row[path_at].strip()
        if not cell:
            raise DatasetError(f"{manifest} line {line}: empty {path_column!r}; give each row an image path")
        file = os.path.abspath(os.path.join(folder, os.path.expanduser(cell)))
        if not os.path.isfile(file):
            state = "a folder, not an image file" if os.path.isdir(file) else "no such file"
            raise DatasetError(f"{manifest} line {line}: {cell}: {state} (relative paths are read from "
                               f"{folder}); fix the path or remove the row")
        files.append(file)

    inside = str(folder).rstrip(os.sep) + os.sep
    root = folder if all(f.startswith(inside) for f in files) else Path(os.path.commonpath(
        [os.path.dirname(f) for f in files]))
    paths = [Path(os.path.relpath(f, root)).as_posix() for f in files]

    if id_at is not None:
        ids = [row[id_at].strip() for _, row in rows]
        for (line, _), record_id in zip(rows, ids):
            if not record_id:
                raise DatasetError(f"{manifest} line {line}: empty {id_column!r}; give each row an id")
    else:
        ids = [str(PurePosixPath(path).with_suffix("")) for path in paths]
    first: dict[str, int] = {}
    for (line, row), record_id in zip(rows, ids):
        if record_id in first:
            what = f"id {record_id!r}" if id_at is not None else f"{row[path_at].strip()} (id {record_id!r})"
            raise DatasetError(f"{manifest} line {line}: {what} is already on line {first[record_id]}; "
                               "list each image once, with its own id")
        first[record_id] = line

    labels, names = _csv_labels(manifest, rows, label_at, label_column, class_names)
    return Dataset(
        root=root, layout="csv", ids=tuple(ids), paths=tuple(paths), labels=labels,
        valence=_csv_numbers(manifest, rows, valence_at, valence_column),
        arousal=_csv_numbers(manifest, rows, arousal_at, arousal_column),
        landmarks=None, class_names=names,
        columns={name: tuple(row[at].strip() for _, row in rows) for at, name in enumerate(header)},
    )


def _read_csv(manifest: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """The header (stripped names) and the non-blank rows with their line numbers."""
    rows: list[tuple[int, list[str]]] = []
    reader = None
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            header = [name.strip() for name in next(reader, [])]
            if not any(header):
                raise DatasetError(f"{manifest}: no header; the first line must name the columns, "
                                   "e.g. 'path,label'")
            for row in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > len(header) and not any(cell.strip() for cell in row[len(header):]):
                    row = row[: len(header)]
                if len(row) != len(header):
                    raise DatasetError(f"{manifest} line {line}: {len(row)} fields, the header has "
                                       f"{len(header)}; fix the row (quote fields that hold commas)")
                rows.append((line, row))
    except UnicodeDecodeError as error:
        raise DatasetError(f"{manifest}: not UTF-8 text ({error.reason} at byte {error.start}); "
                           "save the manifest as UTF-8") from None
    except csv.Error as error:
        where = f" line {reader.line_num}" if reader is not None else ""
        raise DatasetError(f"{manifest}{where}: {error}; fix the CSV (an unclosed quote?)") from None
    except OSError as error:
        raise DatasetError(f"{manifest}: cannot be read ({error.strerror or error})") from None
    if not rows:
        raise DatasetError(f"{manifest}: no rows under the header; list one image per line")
    return header, rows


def _csv_labels(
    manifest: Path,
    rows: Sequence[tuple[int, list[str]]],
    at: Optional[int],
    column: str,
    class_names: Optional[tuple[str, ...]],
) -> tuple[np.ndarray, tuple[str, ...]]:
    n = len(rows)
    if at is None:
        return np.full(n, -1, dtype=np.int16), class_names or ()
    cells = [(line, row[at].strip()) for line, row in rows]
    given = [(line, cell) for line, cell in cells if cell]
    labels = np.full(n, -1, dtype=np.int16)
    if not given:
        return labels, class_names or ()
    if all(_INTEGER.fullmatch(cell) for _, cell in given):  # class ids
        limit = len(class_names) if class_names else np.iinfo(np.int16).max + 1
        for index, (line, cell) in enumerate(cells):
            if not cell:
                continue
            label = int(float(cell))
            if not -1 <= label < limit:
                allowed = f"0..{limit - 1} ({', '.join(class_names)})" if class_names else "0 or more"
                raise DatasetError(f"{manifest} line {line}: {column} {label} is outside {allowed}, -1 for "
                                   "unknown; fix the label" + ("" if class_names else " or pass class_names="))
            labels[index] = label
        names = class_names or tuple(str(i) for i in range(int(labels.max()) + 1))
        return labels, names
    # class names
    found = {cell for _, cell in given}
    if class_names is not None:
        names = class_names
    elif all(cell.lower() in AFFECTNET_CLASSES for cell in found):
        names = AFFECTNET_CLASSES
    else:
        names = tuple(sorted(found))
    index_of = {cell: _class_index_at(manifest, line, column, cell, names) for line, cell in reversed(given)}
    for index, (_, cell) in enumerate(cells):
        if cell:
            labels[index] = index_of[cell]
    return labels, names


def _class_index_at(manifest: Path, line: int, column: str, cell: str, names: Sequence[str]) -> int:
    index = _find_class(cell, names)
    if index is not None:
        return index
    raise DatasetError(f"{manifest} line {line}: {column} {cell!r} is not one of the class names "
                       f"({', '.join(names)}); fix the label or pass class_names=")


def _csv_numbers(manifest: Path, rows: Iterable[tuple[int, list[str]]], at: Optional[int], column: str) -> np.ndarray:
    values = []
    for line, row in rows:
        cell = row[at].strip() if at is not None else ""
        if not cell:
            values.append(np.nan)
            continue
        try:
            values.append(float(cell))
        except ValueError:
            raise DatasetError(f"{manifest} line {line}: {column} {cell!r} is not a number; fix it or leave "
                               "the cell empty") from None
    return np.asarray(values, dtype=np.float32)
