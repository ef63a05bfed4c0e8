"""The store: format 2 on disk, crash safety at random kill points, format 1 read and upgraded,
float16 groups, removal."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
import store_operations as ops
from featcache.cli import app
import format1
from featcache.leaks import check_line, check_split
from featcache.record_groups import set_groups, store_groups
from featcache.splits import split_summary
from featcache.store import CacheError, Shard, data_folder, merge, open_cache, writer_lock
from featcache.store.layout import group_attrs

KILLS = 20


# ------------------------------------------------------------------------ crash safety


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """Every operation, killed at KILLS seeded random points (one process per operation)."""
    root = tmp_path_factory.mktemp("kills")
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    runs = {}
    for seed, operation in enumerate(ops.OPERATIONS):
        template, out = root / operation / "template", root / operation / "runs"
        ops.prepare(operation, template)
        out.mkdir()
        subprocess.run([sys.executable, ops.__file__, operation, str(template), str(out), str(seed), str(KILLS)],
                       env=environment, check=True, timeout=300)
        runs[operation] = (template, out)
    return runs


@pytest.mark.parametrize("operation", ops.OPERATIONS)
def test_a_kill_at_any_point_leaves_the_old_or_the_new_cache_and_a_rerun_completes_it(killed, operation):
    template, out = killed[operation]
    old = ops.snapshot(ops.target(operation, template))
    new = ops.snapshot(ops.target(operation, out / "uninterrupted"))
    assert new != old and ops.stray_files(ops.target(operation, out / "uninterrupted")) == []
    seen = {"old": 0, "new": 0}
    for k in range(KILLS):
        folder = out / f"killed-{k}"
        kill = json.loads((folder / "kill.json").read_text())
        assert kill["killed"], f"run {k} finished before event {kill['event']} of {kill['of']}"
        state = ops.snapshot(ops.target(operation, folder))  # opens, or is absent (a merge not yet made)
        assert state in (old, new), f"killed at event {kill['event']} of {kill['of']}: neither old nor new"
        seen["old" if state == old else "new"] += 1
        ops.run(operation, folder)  # run again: completes
        assert ops.snapshot(ops.target(operation, folder)) == new
        assert ops.stray_files(ops.target(operation, folder)) == []  # nothing left by the crash
        assert not (folder / (ops.target(operation, folder).name + ".partial")).exists()
    assert seen["old"] > 0  # the kills landed before the commit too, not only after it


# ------------------------------------------------------------------------------ format 2


def test_a_new_view_split_or_group_writes_only_its_own_file_and_a_small_index(tmp_path):
    ops.prepare("remove", tmp_path)  # two groups of two views
    cache = tmp_path / ops.CACHE
    files = {p: p.stat().st_mtime_ns for p in data_folder(cache).rglob("*.h5")}
    from featcache.splits import cached_split

    cached_split(cache, "s", seed=1)
    featcache.add_landmark_group(cache)
    assert {p: p.stat().st_mtime_ns for p in files} == files  # no earlier file was rewritten
    new = set(data_folder(cache).rglob("*.h5")) - set(files)
    assert len(new) == 2 and cache.stat().st_size < 64 * 1024  # a split file, a landmark view file
    with h5py.File(cache, "r") as index:  # bare h5py reads through the links
        key = next(k for k in index["groups"] if k.startswith("landmarks"))
        assert index[f"groups/{key}/original/features"].shape == (ops.N, 2414)
        assert index["splits/s"].shape == (ops.N,)
        link = index["groups"][key].get("original", getlink=True)
        assert isinstance(link, h5py.ExternalLink) and link.filename.startswith(f"{ops.CACHE}.data/")


def test_the_cache_folder_moves_as_a_whole_but_not_without_its_data_folder(tmp_path, monkeypatch):
    ops.prepare("remove", tmp_path / "here")
    before = ops.snapshot(tmp_path / "here" / ops.CACHE)
    (tmp_path / "here").rename(tmp_path / "there")
    monkeypatch.chdir(tmp_path)
    assert ops.snapshot(tmp_path / "there" / ops.CACHE) == before
    data_folder(tmp_path / "there" / ops.CACHE).rename(tmp_path / "elsewhere")
    with pytest.raises(CacheError, match=r"its file faces\.h5\.data/.* is missing; a cache is its index and the "
                                         r"folder faces\.h5\.data beside it, under the names they were made with"):
        featcache.load(tmp_path / "there" / ops.CACHE, "first")


def test_remove_deletes_a_view_or_a_group_and_frees_its_disk(tmp_path):
    ops.prepare("remove", tmp_path)
    cache = tmp_path / ops.CACHE
    size = lambda: sum(p.stat().st_size for p in data_folder(cache).rglob("*.h5"))  # noqa: E731
    first = featcache.load(cache, "first")
    before = size()
    result = featcache.remove(cache, "second-0", "flip")
    assert result.views == ("flip",) and before - size() == result.bytes >= ops.N * ops.DIM * 4
    assert featcache.info(cache)["groups"]["second-0"]["views"].keys() == {"original"}
    runner = CliRunner()
    done = runner.invoke(app, ["remove", str(cache), "--group", "second-0"])
    assert done.exit_code == 0 and "removed second-0 (original)" in done.output and "MiB freed" in done.output
    assert list(featcache.info(cache)["groups"]) == ["first-0"]
    np.testing.assert_array_equal(featcache.load(cache, "first").features, first.features)  # the rest intact
    assert ops.stray_files(cache) == []
    refused = runner.invoke(app, ["remove", str(cache), "--group", "nothing-0"])
    assert refused.exit_code == 2 and "has no group 'nothing-0'; `featcache info" in refused.output
    featcache.store.delete_cache(cache)
    assert [p.name for p in tmp_path.iterdir()] == [f"{ops.CACHE}.lock"]  # index and data gone; the lock stays


def test_a_writer_never_deletes_data_it_cannot_account_for(tmp_path):
    ops.prepare("split", tmp_path / "a")
    cache = tmp_path / "a" / ops.CACHE
    files = sorted(data_folder(cache).rglob("*.h5"))
    cache.rename(tmp_path / "moved.h5")  # the index alone moved away: its data folder is not orphaned
    with pytest.raises(CacheError, match="no such cache file"):
        featcache.remove(cache, "first-0")
    assert sorted(data_folder(cache).rglob("*.h5")) == files
    copy = tmp_path / "a" / "copy.h5"  # an index copied without its data folder: read, but never written
    copy.write_bytes((tmp_path / "moved.h5").read_bytes())
    (tmp_path / "moved.h5").rename(cache)
    with pytest.raises(CacheError, match=r"copy\.h5 links faces\.h5\.data/.*, outside its own copy\.h5\.data/ "
                                         "folder: a cache is its index and the data folder it was made with"):
        featcache.remove(copy, "first-0")
    assert sorted(data_folder(cache).rglob("*.h5")) == files
    with pytest.raises(ValueError, match="split name 'fold/1': use a plain name without '/'"):
        from featcache.splits import cached_split

        cached_split(cache, "fold/1")


def test_info_shows_each_views_file_size_and_dtype(tmp_path):
    ops.prepare("split", tmp_path)
    cache = tmp_path / ops.CACHE
    view = featcache.info(cache)["groups"]["first-0"]["views"]["flip"]
    assert Path(view["file"]).parent == data_folder(cache) / "first-0" and view["dtype"] == "float32"
    assert view["bytes"] == Path(view["file"]).stat().st_size > ops.N * ops.DIM * 4
    shown = CliRunner().invoke(app, ["info", str(cache)])
    assert shown.exit_code == 0, shown.output
    assert f"flip: features {ops.N} x {ops.DIM} float32, in {Path(view['file']).name} (" in shown.output
    assert "format 2" in shown.output and "splits: none yet" in shown.output


# ------------------------------------------------------------------------------ format 1


def format1_cache(folder: Path) -> Path:
    """A cache as earlier releases wrote it (one file), with a group of two views, a split, and a
    merged-style group whose features are a virtual dataset over another file."""
    folder.mkdir()
    cache = folder / "old.h5"
    attrs = group_attrs(ops.config("first"), featcache_version="0.9", tensorflow_version="2.x", keras_version="3.x")
    shard = folder / "part.h5"
    with h5py.File(shard, "w") as handle:
        handle.create_dataset("features", data=ops.features(np.arange(ops.N), "original", "merged"))
    with format1.rewrite(cache, ops.records()) as handle:
        for view in ops.VIEWS:
            format1.add_view(handle, "first-0", view, attrs, ops.features(np.arange(ops.N), view, "first"),
                             failed=[3], reasons=["unreadable"], stats={"complete": True, "seconds": 1.0})
        handle.create_dataset("splits/old", data=np.arange(ops.N) % 3, dtype=np.int8).attrs.update(
            {"fractions": [0.7, 0.15, 0.15], "seed": 0})
        layout = h5py.VirtualLayout(shape=(ops.N, ops.DIM), dtype=np.float32)
        layout[:] = h5py.VirtualSource("part.h5", "features", shape=(ops.N, ops.DIM))
        group = handle.create_group("groups/merged-0")
        group.attrs.update(group_attrs(ops.config("merged"), featcache_version="0.9", tensorflow_version="2.x",
                                       keras_version="3.x"))
        view = group.create_group("original")
        view.create_virtual_dataset("features", layout, fillvalue=np.nan)
        view.create_dataset("failed_indices", data=np.zeros(0, np.int64))
        view.create_dataset("failed_reasons", data=np.zeros(0, object), dtype=h5py.string_dtype())
        view.attrs.update({"complete": True, "seconds": 2.0})
    return cache


def test_a_format_1_cache_reads_as_before_refuses_writes_and_upgrades_in_place(tmp_path):
    cache = format1_cache(tmp_path / "old")
    loaded = featcache.load(cache, "first", view="flip")
    np.testing.assert_array_equal(loaded.features, np.delete(ops.features(np.arange(ops.N), "flip", "first"), 3, 0))
    before = ops.snapshot(cache)
    assert featcache.info(cache)["format"] == 1
    from featcache.splits import cached_split

    np.testing.assert_array_equal(cached_split(cache, "old", (0.7, 0.15, 0.15), 0), np.arange(ops.N) % 3)
    with pytest.raises(CacheError, match=r"old\.h5 is a format 1 cache \(from an earlier featcache\): it reads as "
                                         r"before, but to add to it run `featcache upgrade .*old\.h5` once"):
        cached_split(cache, "new")
    with pytest.raises(CacheError, match="is a format 1 cache"):
        set_groups(cache, r"images/(\d)")
    check = check_split(cache, "old", cached_split(cache, "old"), featcache.load(cache, "first"))  # shown, not stored
    assert check["rows"] == ops.N - 1 and split_summary(cache, "old")[-1].strip() == check_line(check)
    assert ops.snapshot(cache) == before  # never silently rewritten

    (tmp_path / "moved").mkdir()
    for name in ("old.h5", "part.h5"):
        (tmp_path / "old" / name).rename(tmp_path / "moved" / name)
    cache = tmp_path / "moved" / "old.h5"
    done = CliRunner().invoke(app, ["upgrade", str(cache)])
    assert done.exit_code == 0 and "format 1 -> 2, 3 views" in done.output, done.output
    assert featcache.info(cache)["format"] == 2 and ops.snapshot(cache) == before
    np.testing.assert_array_equal(featcache.load(cache, "merged").features,
                                  ops.features(np.arange(ops.N), "original", "merged"))  # still virtual, re-pointed
    with open_cache(cache) as reader:
        assert reader.view("merged-0", "original").features.is_virtual
        assert all(data_folder(cache) in path.parents for path in reader.linked_files())
    cached_split(cache, "new")  # writable now
    again = CliRunner().invoke(app, ["upgrade", str(cache)])
    assert again.exit_code == 0 and "format 2 already, nothing to do" in again.output


# ------------------------------------------------------------------------------ float16


def test_float16_features_are_a_group_of_their_own_stored_in_half_the_bytes(affectnet_tree, tmp_path):
    affectnet, cache = affectnet_tree, tmp_path / "faces.h5"
    options = {"weights": None, "flip": True, "engine": "tensorflow"}
    full = featcache.extract(affectnet.root, "fer_minixception", cache, **options)
    half = featcache.extract(affectnet.root, "fer_minixception", cache, dtype="float16", **options)
    assert half.group != full.group and half.images > 0
    a, b = featcache.load(cache, group=full.group), featcache.load(cache, group=half.group)
    assert b.features.dtype == np.float32 and b.config["dtype"] == "float16" and "dtype" not in a.config
    np.testing.assert_array_equal(b.features, b.features.astype(np.float16))  # half-precision values
    np.testing.assert_allclose(b.features, a.features, rtol=2**-10, atol=2**-24)  # within a float16 step
    views = featcache.info(cache)["groups"]
    assert views[half.group]["views"]["original"]["dtype"] == "float16"
    stored = {}
    for group in (full.group, half.group):
        with h5py.File(views[group]["views"]["original"]["file"], "r") as handle:
            stored[group] = handle["view/features"].id.get_storage_size()
    assert stored[half.group] * 2 == stored[full.group]  # half the bytes on disk
    with featcache.open_features(cache, group=half.group) as lazy:
        np.testing.assert_array_equal(np.asarray(lazy.features, dtype=np.float32), b.features)
    with pytest.raises(ValueError, match="dtype must be one of float32, float16, got 'int8'"):
        featcache.extract(affectnet.root, "fer_minixception", cache, weights=None, dtype="int8")


def test_features_beyond_float16s_range_are_refused_not_stored_as_infinity(tmp_path):
    from featcache.store import PartialWriter

    writer = PartialWriter(tmp_path / "c.h5", "b-1", {**ops.config("b"), "dtype": "float16"}, "fp", ["original"], 4)
    writer.write("original", np.array([0, 1]), np.full((2, ops.DIM), 1 + 2**-11, np.float32))  # a tie: to even
    assert writer.features("original")[0, 0] == np.float16(1.0)
    with pytest.raises(CacheError, match=r"features of view original exceed float16's range \(largest 7e\+04\); "
                                         "extract with --dtype float32"):
        writer.write("original", np.array([2]), np.full((1, ops.DIM), 70000.0, np.float32))
    writer.close()


# ------------------------------------------------------------------------------ record groups


def test_merge_carries_the_shards_record_groups_and_refuses_shards_grouped_otherwise(tmp_path):
    people = np.array([f"p{i % 7}" for i in range(ops.N)])
    shards = [tmp_path / name for name in ops.SHARDS]
    for k, shard in enumerate(shards, start=1):
        ops.extract(shard, "synthetic", Shard(k, 2))
        with writer_lock(shard):  # as `extract --shard K/N --group-by` stores them
            store_groups(shard, people, "col:person")
    merged = merge(shards, tmp_path / "merged.h5").path
    with open_cache(merged) as reader:
        ids, group_by = reader.record_groups()
    np.testing.assert_array_equal(ids, people)
    assert group_by == "col:person"
    for shard in shards:  # shards without groups, merged again: the groups set on the merged cache stay
        ops.extract(shard.with_name("bare-" + shard.name), "synthetic", Shard(shards.index(shard) + 1, 2))
    bare = [shard.with_name("bare-" + shard.name) for shard in shards]
    merge(bare, tmp_path / "bare.h5")
    set_groups(tmp_path / "bare.h5", r"images/(\d)")
    merge(bare, tmp_path / "bare.h5", replace=True)
    with open_cache(tmp_path / "bare.h5") as reader:
        assert reader.record_groups()[1] == r"re:images/(\d)"
    with writer_lock(shards[1]):
        store_groups(shards[1], people[::-1].copy(), "col:person")
    with pytest.raises(CacheError, match="group their records differently"):
        merge(shards, tmp_path / "again.h5")
    assert not (tmp_path / "again.h5").exists()
