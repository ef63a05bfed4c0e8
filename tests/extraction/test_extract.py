"""Extraction into the cache: equal features, views, failures, idempotence, safety."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
from typer.testing import CliRunner

import featcache
from featcache.store import CacheError, CacheLocked, writer_lock
from featcache.store.layout import data_folder, partial_path
from featcache.cli import app
from featcache.extraction import ExtractionError
from cache_files import cache_digest, copy_cache
from imagegen import make_affectnet_tree, make_class_folders, make_csv_manifest

FACE = "fer_minixception"  # 64 px and 58k parameters: fast enough for every test


def sha256(path: Path) -> str:
    return cache_digest(path)


def decoded(paths, size):
    """The pixels the pipeline should feed: decoded as RGB, resized with antialiasing, rounded to uint8."""
    images = []
    for path in paths:
        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False)
        images.append(rounded(tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=True)))
    return np.stack(images)


def rounded(pixels: tf.Tensor) -> np.ndarray:
    return np.round(np.clip(pixels.numpy(), 0.0, 255.0)).astype(np.uint8)


@pytest.fixture(scope="module")
def affectnet(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("affectnet"))


@pytest.fixture(scope="module")
def extracted(affectnet, tmp_path_factory):
    out = tmp_path_factory.mktemp("cache") / "faces.h5"
    result = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True, batch_size=4)
    return out, result


def test_features_equal_the_model_called_directly(affectnet, extracted):
    out, result = extracted
    features = featcache.load(out, FACE)
    extractor = featcache.load_backbone(FACE, weights=None)
    pixels = decoded([affectnet.root / p for p in features.paths], extractor.input_size)
    np.testing.assert_allclose(features.features, extractor(pixels), rtol=1e-5, atol=1e-6)
    flipped = featcache.load(out, FACE, view="flip")
    np.testing.assert_allclose(flipped.features, extractor(pixels[:, :, ::-1]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(flipped.features, features.features)
    assert len(features) == affectnet.n_readable
    assert result.images == affectnet.n_readable and result.views == ("original", "flip")


def test_records_labels_and_metadata_are_stored_once(affectnet, extracted):
    out, _ = extracted
    features = featcache.load(out, FACE)
    dataset = featcache.open_dataset(affectnet.root)
    keep = features.index
    np.testing.assert_array_equal(features.labels, dataset.labels[keep])
    np.testing.assert_array_equal(features.valence, dataset.valence[keep])
    np.testing.assert_array_equal(features.ids, np.asarray(dataset.ids)[keep])
    assert features.landmarks.shape == (len(features), 136)
    assert features.class_names[:2] == ("neutral", "happy")
    with h5py.File(out, "r") as handle:
        group = handle[f"groups/{features.group}"]
        assert group.attrs["pretrained"] == False  # noqa: E712  (numpy bool)
        assert group.attrs["tensorflow_version"] == tf.__version__
        assert json.loads(group.attrs["config"])["backbone"] == FACE
        assert handle.attrs["dataset_fingerprint"] == dataset.fingerprint().digest
        assert len(handle["records/ids"]) == len(dataset)


def test_unreadable_images_are_recorded_with_reasons(affectnet, extracted):
    out, result = extracted
    summary = featcache.info(out)
    (group,) = summary["groups"].values()
    failed = {entry["path"]: entry["reason"] for entry in group["views"]["original"]["failed"]}
    assert set(failed) == set(affectnet.unreadable)
    assert any("Invalid JPEG data" in reason for reason in failed.values())
    assert any("Unknown image file format" in reason for reason in failed.values())
    assert sorted(path for path, _ in result.failed) == sorted(affectnet.unreadable)
    everything = featcache.load(out, FACE, include_failed=True)
    assert len(everything) == len(featcache.open_dataset(affectnet.root))
    assert np.isnan(everything.features[~np.isin(everything.index, featcache.load(out, FACE).index)]).all()


def test_on_error_fail_stops_at_the_first_unreadable_image(affectnet, tmp_path):
    with pytest.raises(ExtractionError, match=r"cannot read this image .*--on-error skip"):
        featcache.extract(affectnet.root, FACE, tmp_path / "x.h5", weights=None, on_error="fail")
    assert not (tmp_path / "x.h5").exists()


def test_second_identical_run_does_no_work(affectnet, extracted):
    out, _ = extracted
    before = sha256(out)
    again = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True, batch_size=4)
    assert again.views == () and again.images == 0 and "nothing to do" in again.summary()
    assert sha256(out) == before


def test_another_configuration_adds_a_group_and_leaves_the_others(affectnet, extracted, tmp_path):
    out, _ = extracted
    copy = copy_cache(out, tmp_path / "faces.h5")
    first = featcache.load(copy, FACE)
    featcache.extract(affectnet.root, FACE, copy, weights=None, taps=["add_4:2"], batch_size=4)
    assert len(featcache.info(copy)["groups"]) == 2
    with pytest.raises(CacheError, match="holds 2 groups of backbone 'fer_minixception'; pass group=KEY"):
        featcache.load(copy, FACE)
    unchanged = featcache.load(copy, group=first.group)
    np.testing.assert_array_equal(unchanged.features, first.features)


def test_cache_from_other_data_is_refused(affectnet, extracted, tmp_path):
    out, _ = extracted
    other = make_affectnet_tree(tmp_path / "other", n=6, seed=99)
    before = sha256(out)
    with pytest.raises(CacheError, match="was made from other data"):
        featcache.extract(other.root, FACE, out, weights=None)
    assert sha256(out) == before


def test_a_second_writer_is_refused(affectnet, tmp_path):
    out = tmp_path / "locked.h5"
    with writer_lock(out):
        with pytest.raises(CacheLocked, match=f"{out} is being written by featcache pid {os.getpid()}"):
            featcache.extract(affectnet.root, FACE, out, weights=None)
    result = CliRunner().invoke(app, ["extract", "--data", str(affectnet.root), "--backbone", FACE, "--weights",
                                      "none", "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output


def test_other_layouts_extract_too(tmp_path):
    folders = make_class_folders(tmp_path / "folders")
    manifest = make_csv_manifest(tmp_path / "csv")
    for made, data in ((folders, folders.root), (manifest, manifest.csv)):
        out = tmp_path / f"{Path(data).stem}.h5"
        result = featcache.extract(data, FACE, out, weights=None, batch_size=3)
        features = featcache.load(out, FACE)
        assert result.images == len(features) == made.n_readable
        assert features.features.shape[1] == 128 and np.isfinite(features.features).all()
        assert (features.labels >= 0).all()


def test_cli_extract_and_info(affectnet, tmp_path):
    out = tmp_path / "cli.h5"
    runner = CliRunner()
    done = runner.invoke(app, ["extract", "--data", str(affectnet.root), "--backbone", FACE, "--weights", "none",
                               "--out", str(out), "--tap", "add_4:2", "--pool", "max", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert f"{len(featcache.load(out, FACE))} images" in done.output
    shown = runner.invoke(app, ["info", str(out)])
    assert shown.exit_code == 0
    assert f"{len(featcache.open_dataset(affectnet.root))} records" in shown.output
    assert "NOT pretrained" in shown.output and "taps add_4:2, pool max" in shown.output
    assert "unreadable:" in shown.output and "neutral" in shown.output


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--backbone", "resnet5"], "unknown backbone 'resnet5'; did you mean resnet50"),
        (["--weights", "missing.weights.h5"], "weights 'missing.weights.h5': no such file"),
        (["--data", "/no/such/folder"], "/no/such/folder: no such file or folder"),
    ],
)
def test_cli_user_errors_are_one_line(affectnet, tmp_path, arguments, message):
    base = {"--data": str(affectnet.root), "--backbone": FACE, "--out": str(tmp_path / "e.h5")}
    for flag, value in zip(arguments[::2], arguments[1::2]):
        base[flag] = value
    argv = ["extract", "--no-progress", *[item for pair in base.items() for item in pair]]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    assert result.output.strip().startswith("featcache: error: ") and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_sigkill_part_way_then_resume_equals_an_uninterrupted_run(tmp_path):
    data = make_affectnet_tree(tmp_path / "data", n=160, seed=5)
    executable = str(Path(sys.executable).parent / "featcache")
    quiet = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    backbone, size, batch = "mobilenet_v2", 96, 4
    command = [executable, "extract", "--data", str(data.root), "--backbone", backbone, "--weights", "none",
               "--image-size", str(size), "--batch-size", str(batch), "--no-progress"]

    killed = tmp_path / "killed.h5"
    featcache.extract(data.root, FACE, killed, weights=None)  # an existing group that must survive
    before = sha256(killed)
    # a checkpoint after every batch, so the kill lands between checkpoints of a run part-way through
    process = subprocess.Popen([*command, "--out", str(killed)], env={**quiet, "FEATCACHE_CHECKPOINT_SECONDS": "0"},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = partial_path(killed, backbone)  # folder of partial files; the key is found below
    deadline = time.monotonic() + 120
    claimed = 0
    while time.monotonic() < deadline and process.poll() is None and claimed < 40:
        for candidate in partial.parent.glob(f"{backbone}-*.h5"):
            try:
                with h5py.File(candidate, "r", locking=False) as handle:
                    claimed = int(handle.attrs["next_record"])
            except (OSError, KeyError):
                pass
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert 0 < claimed < len(featcache.open_dataset(data.root)), "the kill must land part-way"
    assert sha256(killed) == before  # the committed cache was never touched

    (candidate,) = partial.parent.glob(f"{backbone}-*.h5")
    with h5py.File(candidate, "r") as handle:  # never claims rows that were not written
        next_record = int(handle.attrs["next_record"])
        failed = handle["failed_indices"][()]
        (view_file,) = json.loads(handle.attrs["view_files"]).values()
    with h5py.File(data_folder(killed) / view_file, "r") as handle:
        rows = handle["view/features"][:next_record]
    written = np.setdiff1d(np.arange(next_record), failed)
    assert next_record >= claimed and np.isfinite(rows[written]).all()

    resumed = subprocess.run([*command, "--out", str(killed)], env=quiet, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    straight = tmp_path / "straight.h5"  # the same extraction in one go, in this process
    featcache.extract(data.root, FACE, straight, weights=None)
    featcache.extract(data.root, backbone, straight, weights=None, image_size=size, batch_size=batch)

    a, b = featcache.load(killed, backbone), featcache.load(straight, backbone)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.index, b.index)
    assert featcache.info(killed)["groups"][a.group]["views"]["original"]["failed"] == \
        featcache.info(straight)["groups"][b.group]["views"]["original"]["failed"]
    np.testing.assert_array_equal(featcache.load(killed, FACE).features, featcache.load(straight, FACE).features)
    assert not partial.parent.exists()


def test_flip_later_adds_only_the_flipped_view(affectnet, tmp_path):
    out = tmp_path / "later.h5"
    featcache.extract(affectnet.root, FACE, out, weights=None)
    original = featcache.load(out, FACE).features
    later = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True)
    assert later.views == ("flip",)
    np.testing.assert_array_equal(featcache.load(out, FACE).features, original)
    assert featcache.load(out, FACE, view="flip").features.shape == original.shape


def centre_crops(paths, size, fraction):
    """What a crop view should see: the decoded image's centre box of round(fraction * side)
    pixels per side, resized with antialiasing."""
    images = []
    for path in paths:
        image = tf.cast(tf.io.decode_image(tf.io.read_file(str(path)), channels=3, expand_animations=False), tf.float32)
        (height, width), (h, w) = image.shape[:2], (max(1, int(np.round(side * fraction))) for side in image.shape[:2])
        top, left = (height - h) // 2, (width - w) // 2
        crop = image[top:top + h, left:left + w]
        images.append(rounded(tf.image.resize(crop, (size, size), antialias=True)))
    return np.stack(images)


def test_crop_views_are_the_model_on_centre_crops_and_are_added_later_without_touching_the_rest(affectnet, tmp_path):
    out = tmp_path / "crops.h5"
    first = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True, batch_size=4)
    before = {view: featcache.load(out, FACE, view=view).features for view in ("original", "flip")}
    later = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True, crops=(0.8, 0.9), batch_size=4)
    assert later.group == first.group
    assert later.views == ("crop0.9", "crop0.9-flip", "crop0.8", "crop0.8-flip")  # only the missing ones
    for view, features in before.items():
        np.testing.assert_array_equal(featcache.load(out, FACE, view=view).features, features)
    extractor = featcache.load_backbone(FACE, weights=None)
    loaded = featcache.load(out, FACE, view="crop0.8")
    pixels = centre_crops([affectnet.root / p for p in loaded.paths], extractor.input_size, 0.8)
    np.testing.assert_allclose(loaded.features, extractor(pixels), rtol=1e-5, atol=1e-6)
    mirrored = featcache.load(out, FACE, view="crop0.8-flip").features
    np.testing.assert_allclose(mirrored, extractor(pixels[:, :, ::-1]), rtol=1e-5, atol=1e-6)
    assert not np.allclose(loaded.features, before["original"])
    again = featcache.extract(affectnet.root, FACE, out, weights=None, flip=True, crops=(0.9, 0.8))
    assert again.views == ()
    with pytest.raises(CacheError, match=r"no 'crop0.7' view .*extract it with --crop 0.7$"):
        featcache.load(out, FACE, view="crop0.7")


@pytest.mark.parametrize("crops", [(1.0,), (0.05,), (0.925,), (-0.5,)])
def test_a_bad_crop_fraction_is_refused_before_any_work(affectnet, tmp_path, crops):
    with pytest.raises(ValueError, match=f"crop {crops[0]!r}: give the fraction of each side to keep"):
        featcache.extract(affectnet.root, FACE, tmp_path / "bad.h5", weights=None, crops=crops)
    assert not (tmp_path / "bad.h5").exists()


def test_cli_crop_option(affectnet, tmp_path):
    out = tmp_path / "cli-crops.h5"
    argv = ["extract", "--no-progress", "--data", str(affectnet.root), "--backbone", FACE, "--weights", "none",
            "--out", str(out), "--crop", "0.9", "--crop", "0.75"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    group = featcache.load(out, FACE).group
    with h5py.File(out, "r") as handle:
        assert sorted(handle[f"groups/{group}"]) == ["crop0.75", "crop0.9", "original"]
    bad = CliRunner().invoke(app, [*argv[:-4], "--crop", "1.5"])
    assert bad.exit_code == 2 and "crop 1.5: give the fraction" in bad.output
