"""Honest splits: record groups from paths and manifests, set before or after extraction, and the
leakage check, on generated people pictured several times (frames with small changes)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache.cli import app
from featcache.experiment import compare, run_head
from featcache.leaks import check_leaks, check_line, leaks, near_duplicates
from featcache.model import evaluate, train
from featcache.record_groups import GroupByError, group_ids, parse_group_by, set_groups, store_groups
from featcache.splits import TEST, cached_split, stratified_split
from featcache.store import CacheError, add_split, open_cache, writer_lock
from imagegen import make_sequences

FACE = "fer_minixception"
PEOPLE, FRAMES = 40, 6


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    """40 people x 6 frames, labelled per person, extracted once (class folders)."""
    root = tmp_path_factory.mktemp("sequences")
    data = make_sequences(root / "people", people=PEOPLE, frames=FRAMES, seed=0)
    cache = root / "people.h5"
    featcache.extract(data, FACE, cache, layout="folders")
    return data, cache


@pytest.fixture(scope="module")
def independent(tmp_path_factory):
    """240 people pictured once."""
    root = tmp_path_factory.mktemp("independent")
    data = make_sequences(root / "people", people=PEOPLE * FRAMES, frames=1, seed=1)
    cache = root / "people.h5"
    featcache.extract(data, FACE, cache, layout="folders")
    return data, cache


# ------------------------------------------------------------------------- where groups come from

PATHS = ["happy/S010_004_00000019.png", "sad/S010_002.png", "happy/S113_001.png", "sub/deep/S007_x.png"]


def test_a_pattern_gives_its_match_or_its_first_capture_group():
    np.testing.assert_array_equal(group_ids(r"S\d+", PATHS), ["S010", "S010", "S113", "S007"])
    np.testing.assert_array_equal(group_ids(r"re:S(\d+)_", PATHS), ["010", "010", "113", "007"])
    assert str(parse_group_by(r"S\d+")) == r"re:S\d+"


def test_a_folder_level_counts_from_the_top_or_from_the_image():
    paths = ["p01/happy/a.png", "p01/sad/b.png", "p02/happy/c.png"]
    np.testing.assert_array_equal(group_ids("folder:0", paths), ["p01", "p01", "p02"])
    np.testing.assert_array_equal(group_ids("folder:-1", paths), ["happy", "sad", "happy"])
    with pytest.raises(GroupByError, match="1 of 3 records have no folder level 2, e.g. p01/happy/a.png"):
        group_ids("folder:2", ["p01/happy/deeper/a.png", "p01/happy/a.png", "p02/happy/deeper/c.png"])


def test_a_csv_column_gives_each_row_its_cell(sequences):
    data, _ = sequences
    dataset = featcache.open_dataset(data / "manifest.csv")
    found = group_ids("col:subject", dataset.paths, dataset.columns)
    assert len(np.unique(found)) == PEOPLE and found[0] == "person000" and found[FRAMES] == "person001"
    with pytest.raises(GroupByError, match="has no column 'person'"):
        group_ids("col:person", dataset.paths, dataset.columns)
    with pytest.raises(GroupByError, match="need the records' CSV manifest"):
        group_ids("col:subject", dataset.paths, {})


@pytest.mark.parametrize("text, message", [
    (r"X\d+", r"4 of 4 records have no match of 'X\\d\+'"),
    ("re:S(9)?", "or an empty first group"),
    ("folder:one", "folder: takes a folder level"),
    ("re:S(", "not a regular expression"),
    ("col:", "nothing after col:"),
])
def test_a_group_by_that_misses_records_is_refused_in_one_line(text, message):
    with pytest.raises(GroupByError, match=message) as raised:
        group_ids(text, PATHS)
    assert "\n" not in str(raised.value)


# ------------------------------------------------------------------------- groups in the cache


def test_groups_set_after_extraction_regroup_the_split(sequences, tmp_path):
    data, source = sequences
    cache = copy_cache(source, tmp_path)
    by_image = cached_split(cache)
    before = featcache.load(cache, FACE).features
    message = set_groups(cache, r"S(\d+)_")
    assert "40 groups by re:S(\\d+)_ (6 records each)" in message and "removed the splits made otherwise (default)" \
        in message
    summary = featcache.info(cache)
    assert summary["record_groups"]["groups"] == PEOPLE and summary["splits"] == []
    by_person = cached_split(cache)
    person = np.array([path.split("/")[1][:4] for path in featcache.load(cache, FACE).paths])
    assert all(len(np.unique(by_person[person == p])) == 1 for p in np.unique(person))
    assert any(len(np.unique(by_image[person == p])) > 1 for p in np.unique(person))  # the image split mixed them
    np.testing.assert_array_equal(featcache.load(cache, FACE).features, before)  # nothing extracted again
    assert featcache.info(cache)["split_details"]["default"]["group_by"] == r"re:S(\d+)_"
    assert "grouped as before" in set_groups(cache, r"S(\d+)_")
    np.testing.assert_array_equal(cached_split(cache), by_person)  # the same groups keep the split


def test_extract_group_by_a_csv_column_stores_the_groups(sequences, tmp_path):
    data, _ = sequences
    cache = tmp_path / "c.h5"
    result = featcache.extract(data / "manifest.csv", FACE, cache, group_by="col:subject")
    assert "records grouped: 40 groups by col:subject" in result.summary()
    with open_cache(cache) as reader:
        ids, group_by = reader.record_groups()
    assert group_by == "col:subject" and ids[0] == "person000" and len(np.unique(ids)) == PEOPLE
    parts = cached_split(cache)
    assert all(len(np.unique(parts[ids == p])) == 1 for p in np.unique(ids))
    assert set_groups(cache, "col:subject", data / "manifest.csv").endswith("(6 records each)")


def test_splits_made_with_other_groups_are_removed_or_refused(sequences, tmp_path):
    _, source = sequences
    cache = copy_cache(source, tmp_path)
    cached_split(cache, "mine", seed=3)
    set_groups(cache, "folder:0")  # removes 'mine'; a split named so now is made by group
    assert "mine" not in featcache.info(cache)["splits"]
    by_class_folder = cached_split(cache, "mine", seed=3)
    with writer_lock(cache):  # the same --group-by text over other ids (a corrected manifest) regroups too
        assert store_groups(cache, np.array([path.split("/")[1][:4] for path in featcache.load(cache, FACE).paths]),
                            "folder:0").endswith("(mine), made again by group on next use")
    assert not np.array_equal(cached_split(cache, "mine", seed=3), by_class_folder)
    parts, attrs = open_split(cache, "mine")
    with writer_lock(cache):  # a split stored with other groups (by another writer) is refused, not used
        add_split(cache, "theirs", parts, {**attrs, "groups_digest": "0" * 16})
    with pytest.raises(CacheError, match="split 'theirs' was made by other groups .* use another split name"):
        cached_split(cache, "theirs", seed=3)


def open_split(cache, name):
    with open_cache(cache) as reader:
        return reader.split(name)


def test_cli_groups_info_and_a_model_trained_before_regrouping(sequences, tmp_path):
    _, source = sequences
    cache = copy_cache(source, tmp_path)
    model = tmp_path / "model"
    train(cache, "logistic", "classify", model, backbone=FACE)
    runner = CliRunner()
    result = runner.invoke(app, ["groups", str(cache), "--group-by", "S\\d+"])
    assert result.exit_code == 0 and "40 groups by re:S\\d+" in result.output, result.output
    shown = runner.invoke(app, ["info", str(cache)])
    assert "record groups: 40 groups by re:S\\d+ (6 records each)" in shown.output
    with pytest.raises(featcache.ModelError, match="not the one the model was trained on"):
        evaluate(cache, model)
    bad = runner.invoke(app, ["groups", str(cache), "--group-by", "Q\\d+"])
    assert bad.exit_code == 2 and "240 of 240 records have no match" in bad.output


# ------------------------------------------------------------------------- the leakage check


def test_near_duplicates_pairs_each_close_pair_once():
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, 16)).astype(np.float32)
    rows[7] = rows[3] * 2.0 + 0.001  # the same direction: similarity 1
    rows[20] = np.nan  # an unreadable image
    i, j, similarity = near_duplicates(rows, 0.99)
    assert list(zip(i, j)) == [(3, 7)] and similarity[0] > 0.999
    i, j, _ = near_duplicates(rows, 0.99, queries=np.array([7, 9]))
    assert list(zip(i, j)) == [(7, 3)]


def test_the_check_fires_on_sequences_and_names_the_fix(sequences):
    _, cache = sequences
    features = featcache.load(cache, FACE)
    parts = cached_split(cache, "by-image-check")
    check = check_leaks(features.features, parts[features.index], content_hashes=features.content_hashes,
                        paths=features.paths)
    assert leaks(check) and check["test_with_twin"] >= 0.3 * check["test"]
    line = check_line(check)
    assert line.startswith("LEAK: ") and "--group-by" in line and "\n" not in line
    first = check["examples"][0]
    assert first["a"].split("/")[1][:4] == first["b"].split("/")[1][:4]  # two frames of one person


def test_the_check_is_quiet_on_independent_images(independent):
    _, cache = independent
    features = featcache.load(cache, FACE)
    parts = cached_split(cache)
    check = check_leaks(features.features, parts[features.index], content_hashes=features.content_hashes)
    assert not leaks(check) and check["test_with_twin"] == 0, check_line(check)
    assert check_line(check).endswith("no near-duplicates across the parts")


def test_split_by_person_scores_clearly_below_split_by_image(sequences):
    """What the check warns of: frames of a person in training let a head recognise the person."""
    _, cache = sequences
    features = featcache.load(cache, FACE)
    person = np.array([path.split("/")[1][:4] for path in features.paths])
    by_image = stratified_split(features.labels, features.content_hashes, seed=0)
    by_person = stratified_split(features.labels, features.content_hashes, seed=0, groups=person)
    image_accuracy = run_head(features, by_image, "logistic", "classify")[0]["report"]["accuracy"]
    person_accuracy = run_head(features, by_person, "logistic", "classify")[0]["report"]["accuracy"]
    assert image_accuracy >= 0.8 and image_accuracy - person_accuracy >= 0.4, (image_accuracy, person_accuracy)


def test_compare_runs_the_check_first_and_reports_it_everywhere(sequences, tmp_path):
    _, source = sequences
    cache = copy_cache(source, tmp_path)
    result = CliRunner().invoke(app, ["compare", "--cache", str(cache), "--backbones", FACE, "--heads", "logistic",
                                      "--task", "classify", "--out", str(tmp_path / "out"), "--no-figures"])
    assert result.exit_code == 0, result.output
    assert "split 'default': " in result.output and "by image (no record groups)" in result.output
    assert "LEAK: leak check (fer_minixception-" in result.output
    assert "LEAK: " in (tmp_path / "out" / "compare.md").read_text().split("### Classification")[0]
    assert any(line.startswith("LEAK") for line in json.loads((tmp_path / "out" / "compare.json").read_text())["split"])
    details = featcache.info(cache)["split_details"]["default"]
    assert details["check"]["test_with_twin"] >= 2 and details["check"]["group"].startswith(FACE)
    assert "LEAK: " in CliRunner().invoke(app, ["info", str(cache)]).output
    grouped = CliRunner().invoke(app, ["compare", "--cache", str(cache), "--backbones", FACE, "--heads", "logistic",
                                       "--task", "classify", "--out", str(tmp_path / "out2"), "--no-figures",
                                       "--group-by", r"S(\d+)_"])
    assert grouped.exit_code == 0, grouped.output
    assert "records grouped: 40 groups by re:S(\\d+)_" in grouped.output and "LEAK" not in grouped.output
    assert "by record groups (re:S(\\d+)_)" in grouped.output


def test_grouped_compare_scores_lower_than_the_leaky_one(sequences, tmp_path):
    _, source = sequences
    cache = copy_cache(source, tmp_path)
    leaky = compare(cache, [FACE], ["logistic"], "classify")[0]["report"]["accuracy"]
    honest = compare(cache, [FACE], ["logistic"], "classify", group_by=r"S(\d+)_")[0]["report"]["accuracy"]
    assert leaky - honest >= 0.4, (leaky, honest)
    assert featcache.info(cache)["split_details"]["default"]["check"] is None  # grouped: no check needed


def copy_cache(cache, folder):
    """A cache of its own for a test that changes it (the index and its data folder, names kept)."""
    import shutil

    target = folder / cache.name
    shutil.copy(cache, target)
    shutil.copytree(cache.with_name(cache.name + ".data"), target.with_name(target.name + ".data"))
    return target


def test_a_large_cache_is_checked_on_a_sample_and_says_so(monkeypatch):
    import featcache.leaks as leak_module

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(400, 8)).astype(np.float32)
    rows[200:] = rows[:200] + rng.normal(0, 1e-3, size=(200, 8))  # every record has a twin
    parts = stratified_split(np.zeros(400, int), [str(i) for i in range(400)], seed=0)  # by image: twins apart
    exact = check_leaks(rows, parts)
    assert exact["test_with_twin"] >= 30
    monkeypatch.setattr(leak_module, "MAX_PRODUCTS", 400 * 100)  # 100 of 400 records compared with all
    sampled = check_leaks(rows, parts)
    assert not exact["sampled"] and sampled["sampled"] and sampled["checked"] == 100
    assert exact["test_with_twin"] == int(np.sum((parts == TEST) & (np.roll(parts, 200) != TEST)))
    assert abs(sampled["test_with_twin"] - exact["test_with_twin"]) <= 0.5 * exact["test_with_twin"]
    assert "100 of 400 records sampled" in check_line(sampled) and "about " in check_line(sampled)
