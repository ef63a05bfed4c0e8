"""Dataset readers: the three layouts, detection, annotations, order, fingerprints, one-line errors.

Every tree comes from ``imagegen`` (see tests/conftest.py), which also says what reading it
must give; the assertions compare the reader against that, field by field.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featcache.datasets import (
    AFFECTNET_CLASSES,
    IMAGE_SUFFIXES,
    Dataset,
    DatasetError,
    Fingerprint,
    detect_layout,
    open_dataset,
)
from imagegen import encode, draw, make_affectnet_tree, make_class_folders, make_csv_manifest, tamper


def assert_reads_as_made(dataset: Dataset, made) -> None:
    assert dataset.layout == made.layout
    assert dataset.root == made.root and dataset.root.is_absolute()
    assert list(dataset.paths) == made.paths
    assert list(dataset.ids) == made.ids
    assert dataset.class_names == made.class_names
    assert dataset.labels.dtype == np.int16 and dataset.labels.tolist() == made.labels.tolist()
    assert dataset.valence.dtype == dataset.arousal.dtype == np.float32
    np.testing.assert_array_equal(dataset.valence, made.valence)  # NaN where NaN
    np.testing.assert_array_equal(dataset.arousal, made.arousal)
    if made.landmarks is None:
        assert dataset.landmarks is None
    else:
        assert dataset.landmarks.dtype == np.float32 and dataset.landmarks.shape == (len(made.paths), 136)
        np.testing.assert_array_equal(dataset.landmarks, made.landmarks)
    assert list(dataset.ignored) == made.ignored
    assert len(dataset) == made.n


def raises_one_line(match: str, *args, **kwargs) -> str:
    """Call open_dataset(*args, **kwargs), expect a DatasetError matching ``match``; return its message."""
    with pytest.raises(DatasetError, match=match) as caught:
        open_dataset(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and "\r" not in message, message
    return message


# --------------------------------------------------------------------------- AffectNet


@pytest.mark.parametrize("annotations", ["strings", "numbers", "mixed"])
def test_affectnet_tree_reads_as_made(tmp_path, annotations):
    made = make_affectnet_tree(tmp_path / "a", n=14, seed=3, annotations=annotations)
    dataset = open_dataset(made.root)
    assert_reads_as_made(dataset, made)
    kinds = [made.kinds[path] for path in dataset.paths]
    # Every awkward file is a record: gray PNG, 50x37 and 224x224 JPEGs, the truncated JPEG, the text file.
    assert {"gray", "rgb", "truncated", "text"} <= set(kinds)
    assert {(37, 50, 3), (224, 224, 3), (33, 45, 1)} <= set(made.shapes.values())
    assert set(made.unreadable) <= set(dataset.paths) and len(made.unreadable) == 2
    assert any(path.endswith(".JPG") for path in dataset.paths)  # suffixes are case-insensitive
    assert (dataset.labels == -1).sum() == 1 and np.isnan(dataset.valence).sum() == 1
    assert np.isnan(dataset.landmarks).all(axis=1).sum() == 2  # the unlabeled image and the one without _lnd


def test_affectnet_order_is_numeric_when_every_id_is_an_integer(affectnet_tree):
    dataset = open_dataset(affectnet_tree.root)
    numbers = [int(i) for i in dataset.ids]
    assert numbers == sorted(numbers)
    assert list(dataset.ids) != sorted(dataset.ids), "the tree should have ids whose string order differs"
    assert dataset.paths[0] == f"images/{dataset.ids[0]}.jpg"


def test_affectnet_order_is_lexicographic_otherwise(tmp_path):
    (tmp_path / "annotations").mkdir()
    images = tmp_path / "images"
    images.mkdir()
    jpeg = encode(draw(np.random.default_rng(0), 8, 8), "jpeg")
    for stem in ("10", "9", "b", "a10", "a2"):
        (images / f"{stem}.jpg").write_bytes(jpeg)
    np.save(tmp_path / "annotations" / "a2_exp.npy", np.array("5"))
    dataset = open_dataset(tmp_path)
    assert dataset.ids == ("10", "9", "a10", "a2", "b")
    assert dataset.labels.tolist() == [-1, -1, -1, 5, -1] and dataset.landmarks is None


def test_affectnet_annotations_as_numpy_strings_are_numbers(tmp_path):
    made = make_affectnet_tree(tmp_path, n=6, annotations="strings")
    first = made.ids[0]
    stored = np.load(tmp_path / "annotations" / f"{first}_val.npy", allow_pickle=False)
    assert stored.dtype.kind == "U" and stored.shape == ()  # '<U..' as in the real release
    dataset = open_dataset(tmp_path)
    assert dataset.valence[0] == np.float32(float(stored))
    assert dataset.labels[0] == int(np.load(tmp_path / "annotations" / f"{first}_exp.npy"))
    # The same value as a number reads the same.
    np.save(tmp_path / "annotations" / f"{first}_val.npy", np.float64(float(stored)))
    assert open_dataset(tmp_path).valence[0] == dataset.valence[0]


def test_affectnet_partial_annotations(affectnet_tree):
    root, made = affectnet_tree.root, affectnet_tree
    target = made.ids[0]
    (root / "annotations" / f"{target}_val.npy").unlink()
    dataset = open_dataset(root)
    assert np.isnan(dataset.valence[0]) and dataset.labels[0] == made.labels[0]
    assert dataset.arousal[0] == made.arousal[0]


def test_annotations_without_an_image_are_ignored_and_listed(affectnet_tree):
    dataset = open_dataset(affectnet_tree.root)
    orphans = [path for path in dataset.ignored if path.startswith("annotations/")]
    assert len(orphans) == 4 and {Path(p).stem.rpartition("_")[2] for p in orphans} == {"exp", "val", "aro", "lnd"}
    assert not any(".DS_Store" in path for path in dataset.ignored + dataset.paths)


# --------------------------------------------------------------------------- class folders


def test_class_folders_with_affectnet_names_use_affectnet_ids(class_folders):
    dataset = open_dataset(class_folders.root)
    assert_reads_as_made(dataset, class_folders)
    assert dataset.class_names == AFFECTNET_CLASSES
    by_folder = {path.split("/")[0]: int(label) for path, label in zip(dataset.paths, dataset.labels)}
    assert by_folder == {"happy": 1, "sad": 2, "neutral": 0}
    assert [path.split("/")[0] for path in dataset.paths] == sorted(path.split("/")[0] for path in dataset.paths)
    kinds = {class_folders.kinds[path] for path in dataset.paths}
    assert kinds == {"gray", "rgb", "bmp", "truncated", "text"}
    assert "happy/more/deep_0.jpg" in dataset.paths and "happy/upper.PNG" in dataset.paths
    assert "happy/notes.md" in dataset.ignored and "happy/._x.jpg" not in dataset.paths
    assert not any(path.startswith(".cache") for path in dataset.paths + dataset.ignored)
    assert np.isnan(dataset.valence).all() and dataset.landmarks is None


def test_class_folders_with_other_names_are_sorted(tmp_path):
    made = make_class_folders(tmp_path, per_class=2, classes=("dogs", "cats", "birds"))
    dataset = open_dataset(tmp_path)
    assert_reads_as_made(dataset, made)
    assert dataset.class_names == ("birds", "cats", "dogs")
    assert dataset.ids[0] == "birds/birds_0"


def test_class_folder_names_match_affectnet_in_any_case(tmp_path):
    make_class_folders(tmp_path, per_class=2, classes=("Happy", "SAD"), extras=False)
    dataset = open_dataset(tmp_path)
    assert dataset.class_names == AFFECTNET_CLASSES
    assert sorted(set(dataset.labels.tolist())) == [1, 2]


def test_class_names_argument_fixes_folder_ids(tmp_path):
    make_class_folders(tmp_path, per_class=2, classes=("dogs", "cats"), extras=False)
    dataset = open_dataset(tmp_path, class_names=["cats", "horses", "dogs"])
    assert dataset.class_names == ("cats", "horses", "dogs")
    assert sorted(set(dataset.labels.tolist())) == [0, 2]
    message = raises_one_line(r"folder 'dogs' is not one of class_names \(cats, horses\)", tmp_path,
                              class_names=["cats", "horses"])
    assert str(tmp_path / "dogs") in message


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("labels", ["names", "ids", None])
def test_csv_manifest_reads_as_made(tmp_path, labels):
    made = make_csv_manifest(tmp_path / "c", n=9, labels=labels)
    dataset = open_dataset(made.csv)
    assert_reads_as_made(dataset, made)
    assert list(dataset.paths) != sorted(dataset.paths), "CSV records keep the file's order"
    assert {made.kinds[p] for p in dataset.paths} >= {"gray", "rgb", "truncated", "text"}


def test_csv_with_absolute_paths(tmp_path):
    made = make_csv_manifest(tmp_path / "c", absolute=True)
    with open(made.csv, newline="") as handle:
        cells = [row[0] for row in csv.reader(handle)][1:]
    assert all(Path(cell).is_absolute() for cell in cells)
    dataset = open_dataset(made.csv)
    assert_reads_as_made(dataset, made)
    # Images outside the manifest's folder: the root becomes their common folder.
    elsewhere = tmp_path / "lists" / "all.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text("path,label\n" + "".join(f"{made.root / p},{i % 2}\n" for i, p in enumerate(made.paths[:3])))
    moved = open_dataset(elsewhere)
    assert moved.root == made.root / "pictures"  # every listed image is under pictures/
    assert moved.absolute_paths() == [str(made.root / p) for p in made.paths[:3]]
    assert all(not Path(p).is_absolute() for p in moved.paths)


def test_csv_custom_columns_ids_and_class_names(csv_manifest):
    root = csv_manifest.root
    custom = root / "custom.csv"
    rows = csv_manifest.paths[:4]
    custom.write_text("file,expr,v,a,key\n" + "".join(f"{p},{c},0.5,,k{i}\n" for i, (p, c) in
                                                     enumerate(zip(rows, ["cat", "dog", "", "Cat"]))))
    dataset = open_dataset(custom, path_column="file", label_column="expr", valence_column="v",
                           arousal_column="a", id_column="key")
    assert dataset.ids == ("k0", "k1", "k2", "k3")
    assert dataset.class_names == ("Cat", "cat", "dog")  # sorted unique names: the exact strings
    assert dataset.labels.tolist() == [1, 2, -1, 0]
    assert (dataset.valence == 0.5).all() and np.isnan(dataset.arousal).all()
    given = open_dataset(custom, path_column="file", label_column="expr", class_names=["dog", "cat"])
    assert given.labels.tolist() == [1, 0, -1, 1] and given.class_names == ("dog", "cat")  # 'Cat' -> cat
    assert np.isnan(given.valence).all()  # no "valence" column: unknown


def test_csv_integer_labels_with_class_names(csv_manifest):
    manifest = csv_manifest.root / "ints.csv"
    manifest.write_text(f"path,label\n{csv_manifest.paths[0]},2\n{csv_manifest.paths[1]},-1\n{csv_manifest.paths[2]},0\n")
    dataset = open_dataset(manifest, class_names=["a", "b", "c"])
    assert dataset.labels.tolist() == [2, -1, 0] and dataset.class_names == ("a", "b", "c")
    assert open_dataset(manifest).class_names == ("0", "1", "2")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(AFFECTNET_CLASSES + ("Happy", "")), min_size=1, max_size=6),
       numbers=st.lists(st.integers(-1, 40), min_size=1, max_size=6))
def test_csv_labels_round_trip(tmp_path, names, numbers):
    """Class names or ids, with blanks: reading the labels back through class_names gives the cells."""
    image = tmp_path / "x.jpg"
    image.write_bytes(b"bytes")
    manifest = tmp_path / "m.csv"
    for column in (names, [str(i) for i in numbers]):
        manifest.write_text("path,label,id\n" + "".join(f"x.jpg,{cell},r{i}\n" for i, cell in enumerate(column)))
        dataset = open_dataset(manifest, id_column="id")
        assert dataset.ids == tuple(f"r{i}" for i in range(len(column)))
        decoded = ["" if label == -1 else dataset.class_names[label] for label in dataset.labels]
        assert [d.lower() for d in decoded] == [("" if cell == "-1" else cell).lower() for cell in column]


# --------------------------------------------------------------------------- detection and forcing


def test_detect_layout_of_each_tree(any_tree):
    assert detect_layout(any_tree.data) == any_tree.layout
    assert detect_layout(str(any_tree.data)) == any_tree.layout
    assert open_dataset(any_tree.data, layout=any_tree.layout).paths == open_dataset(any_tree.data).paths


def test_forced_layout_overrides_detection(affectnet_tree, csv_manifest, tmp_path):
    as_folders = open_dataset(affectnet_tree.root, layout="folders")
    assert as_folders.layout == "folders" and as_folders.class_names == ("images",)
    assert "annotations/" in as_folders.ignored and len(as_folders) == affectnet_tree.n
    renamed = csv_manifest.root / "manifest.txt"
    shutil.copy(csv_manifest.csv, renamed)
    raises_one_line(r"manifest.txt: a file that is not a \.csv manifest", renamed)
    assert open_dataset(renamed, layout="csv").paths == tuple(csv_manifest.paths)


@pytest.mark.parametrize(
    "layout, target, match",
    [
        ("affectnet", "folders", r"not in the AffectNet layout \(needs images/ and annotations/ folders\)"),
        ("affectnet", "csv", r"not in the AffectNet layout"),
        ("csv", "folders", r"layout 'csv' needs a \.csv manifest file, not a folder"),
        ("folders", "csv", r"layout 'folders' needs a folder with one subfolder per class"),
        ("folders", "flat", r"no class folders with images"),
        ("sideways", "folders", r"layout 'sideways' is not one of auto, affectnet, csv, folders"),
    ],
)
def test_forced_layout_that_does_not_fit(class_folders, csv_manifest, tmp_path, layout, target, match):
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.jpg").write_bytes(b"x")
    path = {"folders": class_folders.root, "csv": csv_manifest.csv, "flat": flat}[target]
    raises_one_line(match, path, layout=layout)


def test_detection_failures(tmp_path):
    message = raises_one_line("no such file or folder", tmp_path / "nowhere")
    assert message == f"{tmp_path / 'nowhere'}: no such file or folder"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "a.txt").write_bytes(b"x")
    (empty / "notes").mkdir()
    (empty / "notes" / "n.txt").write_text("x")
    message = raises_one_line("no images found in a known layout", empty)
    assert message == (f"{empty}: no images found in a known layout (AffectNet images/+annotations/, one folder "
                       "per class, images in the folder itself, or a CSV manifest); pass layout=...")
    with pytest.raises(DatasetError, match="no images found"):
        detect_layout(empty)
    with pytest.raises(DatasetError, match="no images .* in the folder itself; pass the folder that holds them"):
        open_dataset(empty, layout="flat")


def test_flat_folder_of_images_gives_unlabelled_records(tmp_path):
    flat = tmp_path / "photos"
    flat.mkdir()
    for name in ("b.PNG", "a.jpg", "a.png", ".hidden.jpg", "notes.txt"):
        (flat / name).write_bytes(b"x")
    (flat / "old").mkdir()
    (flat / "old" / "c.txt").write_bytes(b"x")  # a subfolder without images: not a class
    assert detect_layout(flat) == "flat"
    dataset = open_dataset(flat)
    assert dataset.layout == "flat" and dataset.paths == ("a.jpg", "a.png", "b.PNG")
    assert dataset.ids == dataset.paths  # file names: a.jpg and a.png stay two records
    assert dataset.labels.tolist() == [-1, -1, -1] and dataset.class_names == ()
    assert np.isnan(dataset.valence).all() and np.isnan(dataset.arousal).all() and dataset.landmarks is None
    assert dataset.ignored == ("notes.txt", "old/")
    with_classes = tmp_path / "classes"
    (with_classes / "happy").mkdir(parents=True)
    (with_classes / "happy" / "h.jpg").write_bytes(b"x")
    (with_classes / "loose.jpg").write_bytes(b"x")
    assert detect_layout(with_classes) == "folders"  # class folders win; the loose image is ignored


# --------------------------------------------------------------------------- fingerprint


def test_fingerprint_is_stable_and_hashes_contents(any_tree):
    first = open_dataset(any_tree.data).fingerprint()
    second = open_dataset(any_tree.data).fingerprint()
    assert isinstance(first, Fingerprint) and first == second and first.digest == second.digest
    assert first.content_hashes == second.content_hashes and len(first.digest) == 64
    files = [any_tree.root / p for p in any_tree.paths]
    assert list(first.content_hashes) == [hashlib.sha256(f.read_bytes()).hexdigest() for f in files]
    assert list(first.sizes) == [f.stat().st_size for f in files]
    index = {p: i for i, p in enumerate(any_tree.paths)}
    (a, b), = any_tree.duplicates
    assert first.content_hashes[index[a]] == first.content_hashes[index[b]]
    assert len(set(first.content_hashes)) == len(files) - 1
    assert first.duplicate_groups() == [tuple(sorted((index[a], index[b])))]


def test_fingerprint_changes_with_one_byte_and_only_that_hash(affectnet_tree):
    dataset = open_dataset(affectnet_tree.root)
    before = dataset.fingerprint()
    tamper(affectnet_tree.root / dataset.paths[5], offset=100)  # one byte, same size
    after = dataset.fingerprint()  # not cached: the bytes on disk now
    assert after.digest != before.digest and after.sizes == before.sizes
    assert [i for i, (x, y) in enumerate(zip(before.content_hashes, after.content_hashes)) if x != y] == [5]
    assert open_dataset(affectnet_tree.root).fingerprint() == after


def test_fingerprint_ignores_location_but_not_ids(affectnet_tree, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(affectnet_tree.root, moved)
    assert open_dataset(moved).fingerprint().digest == open_dataset(affectnet_tree.root).fingerprint().digest
    last = affectnet_tree.paths[-1]
    (moved / last).rename(moved / "images" / f"99999{Path(last).suffix}")
    assert open_dataset(moved).fingerprint().digest != open_dataset(affectnet_tree.root).fingerprint().digest


def test_fingerprint_of_a_file_removed_after_opening(class_folders):
    dataset = open_dataset(class_folders.root)
    (class_folders.root / dataset.paths[0]).unlink()
    with pytest.raises(DatasetError, match="no such file any more") as caught:
        dataset.fingerprint()
    assert dataset.paths[0] in str(caught.value) and "\n" not in str(caught.value)


def test_fingerprint_of_4000_small_files_is_fast(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "annotations").mkdir()
    rng = np.random.default_rng(0)
    blob = rng.integers(0, 256, size=4000 * 2048 + 64, dtype=np.uint8).tobytes()
    for i in range(4000):
        (images / f"{i}.jpg").write_bytes(blob[i * 2048: i * 2048 + 2048 + i % 64])
    start = time.perf_counter()
    dataset = open_dataset(tmp_path)
    opened = time.perf_counter()
    fingerprint = dataset.fingerprint()
    done = time.perf_counter()
    assert len(dataset) == len(fingerprint.sizes) == 4000 and sum(fingerprint.sizes) > 8_000_000
    assert opened - start < 2.0 and done - opened < 2.0, (opened - start, done - opened)


# --------------------------------------------------------------------------- the Dataset object


def test_dataset_object(affectnet_tree):
    dataset = open_dataset(affectnet_tree.root)
    for array in (dataset.labels, dataset.valence, dataset.arousal, dataset.landmarks):
        assert not array.flags.writeable
    with pytest.raises(ValueError):
        dataset.labels[0] = 3
    with pytest.raises(AttributeError):
        dataset.layout = "csv"  # frozen
    assert all(os.path.isfile(p) for p in dataset.absolute_paths())
    assert repr(dataset).startswith("Dataset(layout='affectnet'") and len(repr(dataset)) < 300
    assert dataset != open_dataset(affectnet_tree.root) and dataset == dataset  # identity; compare fingerprints
    made = Dataset(root=Path("."), layout="csv", ids=["a"], paths=["a.jpg"], labels=[1], valence=[0.5],
                   arousal=[np.nan], landmarks=None, class_names=["x", "y"])
    assert made.root.is_absolute() and made.labels.dtype == np.int16 and made.ids == ("a",)
    with pytest.raises(DatasetError, match="2 labels for 1 paths"):
        Dataset(root=Path("."), layout="csv", ids=["a"], paths=["a.jpg"], labels=[1, 2], valence=[0.5],
                arousal=[0.5], landmarks=None, class_names=())


def test_constants_and_no_tensorflow():
    assert AFFECTNET_CLASSES == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
    assert IMAGE_SUFFIXES == (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
    code = "import sys, featcache.datasets; print(sorted({'tensorflow', 'keras', 'h5py'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_imagegen_trees_decode_as_described(any_tree):
    """The helper's claims that other tests rely on: readable files decode to their drawn shape, the others fail."""
    import tensorflow as tf

    for path in any_tree.paths:
        data = tf.io.read_file(str(any_tree.root / path))
        if path in any_tree.unreadable:
            with pytest.raises((tf.errors.InvalidArgumentError, ValueError)):
                tf.io.decode_image(data, channels=3, expand_animations=False)
        else:
            image = tf.io.decode_image(data, expand_animations=False)
            assert tuple(image.shape) == any_tree.shapes[path], path


# --------------------------------------------------------------------------- one-line errors


def _npy_object(path: Path) -> None:
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_exp.npy", np.array("9")),
         r"_exp\.npy: label 9 is outside 0\.\.7 \(neutral, .*\); relabel the image or remove it"),
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_exp.npy", np.array(-1)),
         r"_exp\.npy: label -1 is outside 0\.\.7"),
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_exp.npy", np.array("2.5")),
         r"_exp\.npy: label 2\.5 is not a whole number"),
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_val.npy", np.array("high")),
         r"_val\.npy: 'high' is not a number"),
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_aro.npy", np.zeros(3)),
         r"_aro\.npy: holds 3 values, expected one"),
        (lambda root, ids: np.save(root / "annotations" / f"{ids[0]}_lnd.npy", np.zeros(10)),
         r"_lnd\.npy: holds 10 values, expected 136"),
        (lambda root, ids: _npy_object(root / "annotations" / f"{ids[0]}_val.npy"),
         r"_val\.npy: not a plain numpy array"),
        (lambda root, ids: (root / "annotations" / f"{ids[0]}_exp.npy").write_bytes(b"garbage"),
         r"_exp\.npy: cannot be read as a \.npy file"),
        (lambda root, ids: shutil.copy(root / "images" / f"{ids[0]}.jpg", root / "images" / f"{ids[0]}.png"),
         r"images: .*\.jpg and .*\.png have the same id"),
    ],
    ids=["label-9", "label-neg", "label-fraction", "valence-text", "arousal-3", "landmarks-10", "pickle",
         "garbage", "same-stem"],
)
def test_affectnet_errors_name_the_file(affectnet_tree, change, match):
    change(affectnet_tree.root, affectnet_tree.ids)
    message = raises_one_line(match, affectnet_tree.root)
    assert str(affectnet_tree.root) in message


def test_empty_datasets_are_errors(tmp_path):
    (tmp_path / "a" / "images").mkdir(parents=True)
    (tmp_path / "a" / "annotations").mkdir()
    (tmp_path / "a" / "images" / "x.txt").write_text("x")
    raises_one_line(r"a/images: no images \(\.jpg, .*\); put them there as images/<id>\.jpg", tmp_path / "a")
    header_only = tmp_path / "h.csv"
    header_only.write_text("path,label\n\n , \n")
    raises_one_line(r"h\.csv: no rows under the header; list one image per line", header_only)
    empty = tmp_path / "e.csv"
    empty.write_text("")
    raises_one_line(r"e\.csv: no header; the first line must name the columns", empty)
    (tmp_path / "f" / "cats").mkdir(parents=True)
    raises_one_line(r"f: no class folders with images", tmp_path / "f", layout="folders")


@pytest.mark.parametrize(
    "text, kwargs, match",
    [
        ("path,label\n{0},happy\npictures/nope.jpg,sad\n", {},
         r"m\.csv line 3: pictures/nope\.jpg: no such file \(relative paths are read from .*\); fix the path"),
        ("path,label\n{0},happy\npictures,sad\n", {}, r"m\.csv line 3: pictures: a folder, not an image file"),
        ("path,label\n{0},happy\n ,sad\n", {}, r"m\.csv line 3: empty 'path'; give each row an image path"),
        ("path,label\n{0},happy\n{1},sad\n{0},sad\n", {},
         r"m\.csv line 4: pictures/.* \(id '.*'\) is already on line 2; list each image once"),
        ("path,id\n{0},x\n{1},x\n", {"id_column": "id"}, r"m\.csv line 3: id 'x' is already on line 2"),
        ("path,id\n{0},x\n{1},\n", {"id_column": "id"}, r"m\.csv line 3: empty 'id'; give each row an id"),
        ("file,label\n{0},happy\n", {}, r"m\.csv: no column 'path' \(columns: file, label\); add it or pass path_column="),
        ("path,label\n{0},happy\n", {"label_column": "expression"},
         r"m\.csv: no column 'expression' \(columns: path, label\); pass label_column= one of them"),
        ("path,label\n{0},happy\n", {"id_column": "key"}, r"no column 'key'"),
        ("path,label\n{0},happy\n{1},ecstatic\n", {"class_names": ["happy", "sad"]},
         r"m\.csv line 3: label 'ecstatic' is not one of the class names \(happy, sad\)"),
        ("path,label\n{0},1\n{1},2\n", {"class_names": ["happy", "sad"]},
         r"m\.csv line 3: label 2 is outside 0\.\.1 \(happy, sad\), -1 for unknown"),
        ("path,label\n{0},-2\n", {}, r"m\.csv line 2: label -2 is outside 0 or more, -1 for unknown"),
        ("path,valence\n{0},0.5\n{1},very\n", {}, r"m\.csv line 3: valence 'very' is not a number"),
        ("path,label\n{0},happy,extra\n", {}, r"m\.csv line 2: 3 fields, the header has 2"),
        ("path,path\n{0},{0}\n", {}, r"m\.csv: the column 'path' appears 2 times"),
        ("path,label\n\"{0},happy\n{1},sad\n", {}, r"m\.csv line 3: unexpected end of data; fix the CSV"),
    ],
    ids=["missing-file", "folder", "empty-path", "same-image-twice", "same-id", "empty-id", "no-path-column",
         "no-label-column", "no-id-column", "unknown-name", "id-too-big", "id-negative", "valence-text", "ragged",
         "two-path-columns", "unterminated-quote"],
)
def test_csv_errors_name_the_line(csv_manifest, text, kwargs, match):
    manifest = csv_manifest.root / "m.csv"
    good = [p for p in csv_manifest.paths if "/" in p]
    manifest.write_text(text.format(*good))
    message = raises_one_line(match, manifest, **kwargs)
    assert str(manifest) in message


def test_csv_that_is_not_utf8(csv_manifest):
    manifest = csv_manifest.root / "latin.csv"
    manifest.write_bytes(f"path,label\n{csv_manifest.paths[0]},caf\xe9\n".encode("latin-1"))
    raises_one_line(r"latin\.csv: not UTF-8 text .*; save the manifest as UTF-8", manifest)
    with_bom = csv_manifest.root / "bom.csv"
    with_bom.write_bytes(b"\xef\xbb\xbf" + f"path\n{csv_manifest.paths[0]}\n".encode())
    assert open_dataset(with_bom).paths == (csv_manifest.paths[0],)


def test_argument_errors(class_folders, affectnet_tree):
    raises_one_line(r"the AffectNet layout has 8 classes; give 8 names or none", affectnet_tree.root,
                    class_names=["x"])
    renamed = open_dataset(affectnet_tree.root, class_names=[c.upper() for c in AFFECTNET_CLASSES])
    assert renamed.class_names[1] == "HAPPY"
    raises_one_line(r"class_names='happy': give a sequence of names", class_folders.root, class_names="happy")
    raises_one_line(r"give distinct, non-empty names", class_folders.root, class_names=["a", "a"])
    raises_one_line(r"not a path", 42)


def test_error_messages_are_one_line_even_for_odd_file_names(tmp_path):
    odd = tmp_path / "two\nlines"
    assert "\n" not in raises_one_line("no such file or folder", odd)
    assert str(DatasetError("a\nb\r\nc")) == "a\\nb\\nc" and isinstance(DatasetError("x"), ValueError)
