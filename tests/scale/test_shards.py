"""Shards and merge: N shard files merged read exactly like one unsharded extraction."""

import hashlib
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache.cli import app
from featcache.store import CacheError, PartialWriter, Shard, data_folder, parse_shard
from imagegen import make_affectnet_tree

from cache_files import cache_digest, copy_cache
from shard_setup import FACE, OPTIONS, faces, whole  # noqa: E402,F401 (module fixtures)


def sha256(path: Path) -> str:
    return cache_digest(path)


def shard_name(k: int, n: int = 3) -> str:
    return f"faces.shard-{k}-of-{n}.features.h5"


@pytest.fixture(scope="module")
def shards(faces, tmp_path_factory):
    """The three shards of one split, in one folder, each asked for in another spelling."""
    folder = tmp_path_factory.mktemp("shards")
    for k, spec in ((1, "1/3"), (2, (2, 3)), (3, Shard(3, 3))):
        featcache.extract(faces.root, FACE, folder / shard_name(k), shard=spec, **OPTIONS)
    return [folder / shard_name(k) for k in (1, 2, 3)]


@pytest.fixture(scope="module")
def merged(shards):
    out = shards[0].parent / "faces.h5"
    featcache.merge([shards[2], shards[0], shards[1]], out)  # any order
    return out


def assert_same_cache(a: Path, b: Path) -> None:
    """Same group key, same features row for row (failed rows included), same failures."""
    x, y = featcache.load(a, FACE, include_failed=True), featcache.load(b, FACE, include_failed=True)
    assert x.group == y.group
    np.testing.assert_array_equal(x.features, y.features)
    np.testing.assert_array_equal(x.ids, y.ids)
    np.testing.assert_array_equal(featcache.load(a, FACE).index, featcache.load(b, FACE).index)
    failed = [featcache.info(path)["groups"][x.group]["views"]["original"]["failed"] for path in (a, b)]
    assert failed[0] == failed[1]


# ------------------------------------------------------------------ slicing


def test_shard_blocks_are_those_of_array_split():
    for n_records in (1, 2, 7, 20, 101):
        for count in range(1, min(n_records, 9) + 1):
            blocks = np.array_split(np.arange(n_records), count)
            for k in range(1, count + 1):
                assert list(Shard(k, count).rows(n_records)) == blocks[k - 1].tolist()


@pytest.mark.parametrize("value", ["4/3", "0/3", "x", "3", "1/0", "a/b", (0, 2), "2/3/4"])
def test_bad_shard_values_are_refused(value):
    with pytest.raises(ValueError, match=r"shard must be K/N with 1 <= K <= N, e.g. 2/3; got"):
        parse_shard(value)


def test_more_shards_than_records_is_refused(faces, tmp_path):
    with pytest.raises(ValueError, match=r"--shard 1/50: 20 records cannot make 50 shards; use at most 20"):
        featcache.extract(faces.root, FACE, tmp_path / "x.h5", shard="1/50", **OPTIONS)
    assert not (tmp_path / "x.h5").exists()


def test_partial_writer_holds_only_its_rows_and_never_resumes_another_shard(tmp_path):
    config = {"backbone": "b", "feature_dim": 2}
    cache = tmp_path / "p.h5"
    writer = PartialWriter(cache, "b-1", config, "fp", ["original"], 20, range(7, 14))
    assert writer.next_record == 7 and writer.features("original").shape == (7, 2)
    writer.write("original", np.array([7, 9]), np.ones((2, 2), np.float32))
    writer.checkpoint(10)
    writer.close()
    resumed = PartialWriter(cache, "b-1", config, "fp", ["original"], 20, range(7, 14))
    rows = resumed.features("original")[()]
    assert resumed.next_record == 10 and (rows[[0, 2]] == 1).all() and np.isnan(rows[[1, 3]]).all()
    resumed.close()
    other = PartialWriter(cache, "b-1", config, "fp", ["original"], 20, range(14, 20))
    assert other.next_record == 14 and other.features("original").shape == (6, 2)
    assert other.view_files != resumed.view_files  # the other shard's rows start in a new file
    other.close()


# ------------------------------------------------------------- shards, merge


def test_three_merged_shards_equal_one_unsharded_extraction(whole, merged, shards):
    assert_same_cache(merged, whole)
    with h5py.File(merged, "r") as handle:
        (key,) = handle["groups"]
        features = handle[f"groups/{key}/original/features"]
        assert features.is_virtual
        sources = sorted(Path(source.file_name).parts[2] for source in features.virtual_sources())  # ../../
        assert sources == [data_folder(p).name for p in shards]  # the shards' own view files
        assert "shard_index" not in handle[f"groups/{key}/original"].attrs
    summary, reference = featcache.info(merged), featcache.info(whole)
    assert summary["records"] == reference["records"] and summary["label_counts"] == reference["label_counts"]
    assert summary["groups"].keys() == reference["groups"].keys()


def test_a_shard_holds_every_record_but_only_its_block_of_features(faces, shards):
    blocks = np.array_split(np.arange(20), 3)
    for k, path in enumerate(shards, start=1):
        with h5py.File(path, "r") as handle:
            assert len(handle["records/ids"]) == 20
            (key,) = handle["groups"]
            view = handle[f"groups/{key}/original"]
            rows = blocks[k - 1]
            assert view["features"].shape == (len(rows), 128)
            assert {name: int(view.attrs[name]) for name in
                    ("shard_index", "shard_count", "record_start", "record_stop")} == \
                {"shard_index": k, "shard_count": 3, "record_start": rows[0], "record_stop": rows[-1] + 1}
            failed = view["failed_indices"][()]
            assert ((failed >= rows[0]) & (failed <= rows[-1])).all()


def test_rerunning_a_shard_is_a_no_op(faces, shards):
    before = sha256(shards[1])
    again = featcache.extract(faces.root, FACE, shards[1], shard="2/3", **OPTIONS)
    assert again.views == () and again.images == 0 and "nothing to do" in again.summary()
    assert sha256(shards[1]) == before


def test_an_unmerged_shard_is_refused_by_load_and_info(shards):
    for read in (featcache.load, featcache.info):
        with pytest.raises(CacheError, match=r"is shard 2/3 \(records 7\.\.13\), not a whole cache; join all 3 "
                                             r"shards with `featcache merge SHARD\.\.\. --out FILE`"):
            read(shards[1])


def test_the_merged_folder_moves_as_a_whole_but_not_without_its_shards(whole, merged, tmp_path, monkeypatch):
    moved = tmp_path / "elsewhere" / "copy"
    shutil.copytree(merged.parent, moved)
    monkeypatch.chdir(tmp_path)
    assert_same_cache(moved / merged.name, whole)
    shutil.rmtree(data_folder(moved / shard_name(2)))
    with pytest.raises(CacheError, match=f"in the shard file ../../{shard_name(2)}.data/.*, which is missing; "
                                         r"put the shard files \(and their .data folders\) back beside it"):
        featcache.load(moved / merged.name, FACE)


def test_shards_never_change_and_the_merged_file_is_new(shards, tmp_path):
    before = [sha256(path) for path in shards]
    out = tmp_path / "again.h5"
    featcache.merge(shards, out)
    with pytest.raises(CacheError, match=f"{out} exists; merge into a new --out, or delete it first"):
        featcache.merge(shards, out)
    assert [sha256(path) for path in shards] == before
    assert not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- refusals


def refused(shards, out, message):
    """merge is refused with ``message`` and writes nothing."""
    with pytest.raises(CacheError, match=message):
        featcache.merge(shards, out)
    assert not out.exists()


def test_a_missing_shard_is_refused(shards, tmp_path):
    refused([shards[0], shards[2]], tmp_path / "m.h5",
            r"shard 2/3 is missing .*; extract it with `featcache extract --shard 2/3` and pass it too")


def test_a_duplicated_shard_is_refused(shards, tmp_path):
    copy = tmp_path / "copy" / shards[1].name  # a cache is copied with its .data folder, under its name
    copy.parent.mkdir()
    copy_cache(shards[1], copy)
    refused([*shards, copy], tmp_path / "m.h5", r"are both shard 2/3; pass each shard once")
    refused([*shards, shards[1]], tmp_path / "m.h5", r"is passed twice; pass each shard once")


def test_a_shard_of_another_split_is_refused(faces, shards, tmp_path):
    half = tmp_path / shard_name(1, 2)
    featcache.extract(faces.root, FACE, half, shard="1/2", **OPTIONS)
    refused([*shards, half], tmp_path / "m.h5", r"is shard 1/2 but .* is shard 1/3; merge the shards of one")


def test_a_shard_of_another_configuration_is_refused(faces, shards, tmp_path):
    other = tmp_path / "max.h5"
    featcache.extract(faces.root, FACE, other, shard="2/3", pooling="max", **OPTIONS)
    refused([shards[0], other, shards[2]], tmp_path / "m.h5",
            r"max\.h5 holds fer_minixception-\w+ \(original: taps last, pool max, weights random\) but .* holds "
            r".*pool avg.*; extract every shard with the same options")


def test_a_shard_of_other_data_is_refused(shards, tmp_path):
    data = make_affectnet_tree(tmp_path / "other", n=20, seed=12)
    other = tmp_path / "other.h5"
    featcache.extract(data.root, FACE, other, shard="3/3", **OPTIONS)
    refused([shards[0], shards[1], other], tmp_path / "m.h5",
            r"other\.h5 was made from other data than .*; merge shards of one dataset")


def test_a_whole_cache_is_not_a_shard(whole, shards, tmp_path):
    refused([*shards, whole], tmp_path / "m.h5", r"faces\.h5 is not a shard \(made without --shard\)")


def test_an_unfinished_shard_is_refused_then_finished_by_running_it_again(faces, shards, merged, tmp_path,
                                                                           monkeypatch):
    folder = tmp_path / "unfinished"
    folder.mkdir()
    for path in shards[:2]:
        copy_cache(path, folder / path.name)
    third = folder / shard_name(3)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the commit")

    with monkeypatch.context() as patch:
        patch.setattr(featcache.extraction, "commit_extraction", killed)
        with pytest.raises(KeyboardInterrupt):
            featcache.extract(faces.root, FACE, third, shard="3/3", **OPTIONS)
    assert not third.exists() and third.with_name(third.name + ".partial").is_dir()
    parts = [folder / shard_name(k) for k in (1, 2, 3)]
    refused(parts, folder / "m.h5", r"shard-3-of-3\.features\.h5 is not finished .*; finish it by running its "
                                    r"`featcache extract --shard K/N` again")
    finished = featcache.extract(faces.root, FACE, third, shard="3/3", **OPTIONS)
    assert finished.images == 0 and finished.views == ("original",)  # resumed from the partial file: all done
    featcache.merge(parts, folder / "m.h5")
    assert_same_cache(folder / "m.h5", merged)


def test_a_shard_without_its_committed_group_is_refused(shards, tmp_path):
    emptied = tmp_path / shard_name(2)
    copy_cache(shards[1], emptied)
    with h5py.File(emptied, "a") as handle:
        del handle["groups"]
    refused([shards[0], emptied, shards[2]], tmp_path / "m.h5",
            r"shard-2-of-3\.features\.h5 holds no committed features; run its `featcache extract --shard K/N` again")


def test_a_shard_cannot_go_into_a_file_holding_another(faces, whole, shards):
    with pytest.raises(CacheError, match=r"holds shard 2/3; write shard 1/3 to another --out"):
        featcache.extract(faces.root, FACE, shards[1], shard="1/3", **OPTIONS)
    with pytest.raises(CacheError, match=r"holds shard 2/3; write the whole dataset to another --out"):
        featcache.extract(faces.root, FACE, shards[1], **OPTIONS)
    with pytest.raises(CacheError, match=r"holds the whole dataset; write shard 1/3 to another --out"):
        featcache.extract(faces.root, FACE, whole, shard="1/3", **OPTIONS)


# ---------------------------------------------------------------------- CLI


def test_cli_extract_shard_and_merge(faces, whole, shards, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    done = runner.invoke(app, ["extract", "--data", str(faces.root), "--backbone", FACE, "--weights", "none",
                               "--batch-size", "1", "--engine", "tensorflow", "--shard", "2/3", "--no-progress"])
    assert done.exit_code == 0, done.output
    made = tmp_path / shard_name(2)  # the default name, in the current folder
    assert made.is_file() and f"{made.name} [" in done.output
    merged = runner.invoke(app, ["merge", str(shards[0]), shard_name(2), str(shards[2]), "--out", "m.h5"])
    assert merged.exit_code == 0, merged.output
    assert "m.h5: 3 shards merged, 20 records" in merged.output and "keep the shard files beside it" in merged.output
    assert_same_cache(tmp_path / "m.h5", whole)


@pytest.mark.parametrize("value", ["4/3", "x"])
def test_cli_bad_shard_is_one_line_and_status_2(faces, tmp_path, value):
    result = CliRunner().invoke(app, ["extract", "--data", str(faces.root), "--backbone", FACE, "--weights", "none",
                                      "--out", str(tmp_path / "x.h5"), "--shard", value, "--no-progress"])
    assert result.exit_code == 2
    assert result.output.strip() == f"featcache: error: shard must be K/N with 1 <= K <= N, e.g. 2/3; got {value!r}"
    assert not (tmp_path / "x.h5").exists()


def test_cli_merge_refusal_is_one_line_and_status_2(shards, tmp_path):
    result = CliRunner().invoke(app, ["merge", str(shards[0]), str(shards[2]), "--out", str(tmp_path / "m.h5")])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featcache: error: shard 2/3 is missing")
    assert "Traceback" not in result.output and not (tmp_path / "m.h5").exists()
