"""Nothing is left out silently: WebP and TIFF are records, and every file a folder passes over
is named with its reason, in the Dataset, the extraction's result and warning, the CLI's
summary and the cache's info."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import featcache
from featcache.cli import app
from featcache.datasets import (HIDDEN, IMAGE_SUFFIXES, NO_IMAGES, NOT_IN_CLASS, SUBFOLDER, UNSUPPORTED,
                                LeftOutWarning, describe_left_out, left_out_record, open_dataset)
from featcache.store import open_cache

FACE = "fer_minixception"  # 64 px and 58k parameters: fast enough for every test


def pixels(seed: int, height: int = 40, width: int = 52) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = 120 + 60 * np.sin(x / 5.0 + seed) * np.cos(y / 7.0)
    return np.clip(smooth[..., None] + rng.normal(0, 10, (height, width, 3)), 0, 255).astype(np.uint8)


def save(path: Path, image: np.ndarray, fmt: str, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, format=fmt, **options)
    return path


# Lossless encodings of one set of pixels: every format must give the PNG's features.
LOSSLESS = {"png": ("PNG", {}), "webp": ("WEBP", {"lossless": True}), "tif": ("TIFF", {}),
            "tiff": ("TIFF", {"compression": "tiff_lzw"})}


def make_mixed_folder(folder: Path) -> Path:
    """A flat folder of 5 images (.jpg .png .webp .tif .TIFF) and 4 things that are not records."""
    save(folder / "a.jpg", pixels(0), "JPEG", quality=92)
    save(folder / "b.png", pixels(1), "PNG")
    save(folder / "c.webp", pixels(2), "WEBP", lossless=True)
    save(folder / "d.tif", pixels(3), "TIFF")
    save(folder / "e.TIFF", pixels(4), "TIFF", compression="tiff_lzw")
    (folder / "notes.txt").write_text("not an image\n")
    save(folder / "photo.heic", pixels(5), "PNG")  # an image, but not under a name featcache reads
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "old").mkdir()
    (folder / "old" / "z.txt").write_bytes(b"x")  # no image in it: the folder is no class
    return folder


def test_webp_and_tiff_are_records_and_what_is_left_out_is_named_by_reason(tmp_path):
    assert {".webp", ".tif", ".tiff"} <= set(IMAGE_SUFFIXES)
    dataset = open_dataset(make_mixed_folder(tmp_path / "mixed"))
    assert dataset.layout == "flat" and dataset.paths == ("a.jpg", "b.png", "c.webp", "d.tif", "e.TIFF")
    assert dict(dataset.left_out) == {UNSUPPORTED: ("notes.txt", "photo.heic"), HIDDEN: (".DS_Store",),
                                      SUBFOLDER: ("old/",)}
    assert dataset.ignored == ("notes.txt", "old/", "photo.heic")  # as before: the hidden file is not in it
    assert describe_left_out(dataset.left_out) == (
        "left out 4: unsupported extension .heic, .txt: 2 (notes.txt, photo.heic); hidden: 1 (.DS_Store); "
        "subfolder not read: 1 (old/)")


def test_every_layout_leaves_out_what_it_ignores_and_the_hidden_files(any_tree):
    dataset = open_dataset(any_tree.data)
    named = sorted(path for reason, paths in dataset.left_out.items() if reason != HIDDEN for path in paths)
    assert named == list(dataset.ignored) == any_tree.ignored
    hidden = {"affectnet": ("images/.DS_Store",), "folders": (".cache/", "happy/._x.jpg"), "csv": None}
    assert dataset.left_out.get(HIDDEN) == hidden[dataset.layout]


def test_class_folders_name_each_file_they_leave_out(tmp_path):
    root = tmp_path / "classes"
    save(root / "cats" / "1.webp", pixels(0), "WEBP")
    save(root / "cats" / "2.tiff", pixels(1), "TIFF")
    (root / "cats" / "readme.md").write_text("#\n")
    (root / "cats" / "._1.webp").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    save(root / "dogs" / ".thumbs" / "t.jpg", pixels(2), "JPEG")  # a hidden folder: not walked
    save(root / "dogs" / "3.jpg", pixels(3), "JPEG")
    save(root / "birds" / "4.heic", pixels(4), "PNG")  # no image featcache reads: not a class
    (root / "empty").mkdir()
    (root / "labels.csv").write_text("x\n")
    dataset = open_dataset(root)
    assert dataset.layout == "folders" and dataset.class_names == ("cats", "dogs")
    assert dataset.paths == ("cats/1.webp", "cats/2.tiff", "dogs/3.jpg")
    assert dict(dataset.left_out) == {
        UNSUPPORTED: ("birds/4.heic", "cats/readme.md"), HIDDEN: ("cats/._1.webp", "dogs/.thumbs/"),
        NOT_IN_CLASS: ("labels.csv",), NO_IMAGES: ("empty/",)}


def test_left_out_record_stays_small_and_counts_extensions():
    names = [f"img{i:03d}.heic" for i in range(100)] + ["a.txt", "b.txt", "noext"]
    record = left_out_record({UNSUPPORTED: names, HIDDEN: [".DS_Store"]})
    assert record[UNSUPPORTED]["count"] == 103 and len(record[UNSUPPORTED]["examples"]) == 20
    assert record[UNSUPPORTED]["extensions"] == {".heic": 100, ".txt": 2, "(none)": 1}
    assert record[HIDDEN] == {"count": 1, "examples": [".DS_Store"]}
    assert describe_left_out(record) == (
        "left out 104: unsupported extension .heic, .txt, (none): 103 (a.txt, b.txt, img000.heic and 100 more); "
        "hidden: 1 (.DS_Store)")
    assert describe_left_out({}) == "" and describe_left_out(record) == describe_left_out(
        {UNSUPPORTED: names, HIDDEN: [".DS_Store"]})


def test_webp_and_tiff_extract_to_the_features_of_the_same_pixels_as_png(tmp_path):
    folder = tmp_path / "same"
    for k in range(2):
        for suffix, (fmt, options) in LOSSLESS.items():
            save(folder / f"{k}-{suffix}.{suffix}", pixels(10 + k), fmt, **options)
    (folder / "notes.txt").write_text("x\n")
    with pytest.warns(LeftOutWarning, match=r"8 records; left out 1: unsupported extension \.txt: 1 \(notes\.txt\)"):
        result = featcache.extract(folder, FACE, tmp_path / "same.h5", weights=None, batch_size=3)
    assert result.images == 8 and result.failed == [] and result.left_out == {UNSUPPORTED: ["notes.txt"]}
    assert "left out 1: unsupported extension .txt: 1 (notes.txt)" in result.summary()
    loaded = featcache.load(tmp_path / "same.h5", FACE)
    by_name = dict(zip(loaded.paths, loaded.features))
    for k in range(2):
        for suffix in ("webp", "tif", "tiff"):
            np.testing.assert_array_equal(by_name[f"{k}-{suffix}.{suffix}"], by_name[f"{k}-png.png"])
    assert not np.array_equal(by_name["0-png.png"], by_name["1-png.png"])
    assert featcache.info(tmp_path / "same.h5")["dataset"]["left_out"] == {
        UNSUPPORTED: {"count": 1, "examples": ["notes.txt"], "extensions": {".txt": 1}}}


def test_cli_extract_and_info_say_what_was_left_out_and_why(tmp_path):
    data = make_mixed_folder(tmp_path / "mixed")
    out = tmp_path / "mixed.h5"
    runner = CliRunner()
    argv = ["extract", "--data", str(data), "--backbone", FACE, "--weights", "none", "--out", str(out), "--no-progress"]
    done = runner.invoke(app, argv)
    assert done.exit_code == 0, done.output
    said = ("left out 4: unsupported extension .heic, .txt: 2 (notes.txt, photo.heic); hidden: 1 (.DS_Store); "
            "subfolder not read: 1 (old/)")
    assert "5 images" in done.output and said in done.output
    assert "LeftOutWarning" not in done.output  # said once, in the summary
    shown = runner.invoke(app, ["info", str(out)])
    assert shown.exit_code == 0 and said in shown.output.splitlines()[1]
    as_json = json.loads(runner.invoke(app, ["info", str(out), "--json"]).output)
    assert as_json["dataset"]["left_out"][UNSUPPORTED]["extensions"] == {".heic": 1, ".txt": 1}
    again = runner.invoke(app, argv)  # nothing to extract; still said
    assert again.exit_code == 0 and "nothing to do" in again.output and said in again.output

    for name in ("notes.txt", "photo.heic", ".DS_Store"):
        (data / name).unlink()
    flipped = runner.invoke(app, [*argv, "--flip"])  # the same records: the cache records the folder as it is now
    assert flipped.exit_code == 0 and "left out 1: subfolder not read: 1 (old/)" in flipped.output
    assert "left out 1: subfolder not read: 1 (old/)" in runner.invoke(app, ["info", str(out)]).output


def test_a_csv_manifest_keeps_every_listed_file_and_reports_those_it_cannot_read(tmp_path):
    """A manifest is explicit: a listed file is a record whatever its name; one that is no image
    is reported unreadable (the format is told by the bytes, so a PNG named .heic is read)."""
    folder = tmp_path / "listed"
    save(folder / "a.webp", pixels(0), "WEBP", lossless=True)
    save(folder / "b.heic", pixels(1), "PNG")
    (folder / "c.txt").write_text("not an image\n")
    (folder / "manifest.csv").write_text("path,label\na.webp,0\nb.heic,1\nc.txt,0\n")
    dataset = open_dataset(folder / "manifest.csv")
    assert dataset.paths == ("a.webp", "b.heic", "c.txt") and dict(dataset.left_out) == {}
    result = featcache.extract(dataset, FACE, tmp_path / "listed.h5", weights=None)
    assert result.images == 2 and [path for path, _ in result.failed] == ["c.txt"]
    assert "1 unreadable" in result.summary() and "left out" not in result.summary()
    assert featcache.info(tmp_path / "listed.h5")["dataset"]["left_out"] == {}


def test_shards_record_what_was_left_out_and_their_merge_keeps_it(tmp_path):
    data = make_mixed_folder(tmp_path / "mixed")
    shards = []
    for k in (1, 2):
        with pytest.warns(LeftOutWarning):
            shards.append(featcache.extract(data, FACE, tmp_path / f"s{k}.h5", weights=None, shard=f"{k}/2").path)
    expected = left_out_record(open_dataset(data).left_out)
    for shard in shards:
        with open_cache(shard, shards=True) as reader:
            assert reader.dataset["left_out"] == expected
    merged = featcache.merge(shards, tmp_path / "merged.h5")
    assert featcache.info(merged.path)["dataset"]["left_out"] == expected
    assert expected[HIDDEN] == {"count": 1, "examples": [".DS_Store"]}
