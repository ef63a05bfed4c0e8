"""The Ray engine: one shard per Ray worker, merged, reads like a plain extraction (to float32 rounding)."""

import hashlib
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache.cli import app
from featcache.engines import engine_threads
from featcache.extraction import ExtractionError

ray = pytest.importorskip("ray", reason='the Ray engine needs Ray: pip install "featcache[ray]"')
from featcache.ray_engine import extract_on_ray, shard_paths  # noqa: E402

from shard_setup import FACE, OPTIONS, faces, whole  # noqa: E402,F401 (module fixtures)


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local 2-CPU Ray instance for the module; extract_on_ray reuses it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def on_ray(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "faces.h5"
    return extract_on_ray(faces.root, FACE, out, workers=2, **OPTIONS)


def assert_same_group(a: Path, b: Path) -> None:
    """``a`` holds the group of the one-group cache ``b``: the same features row for row (failed
    rows included) up to float32 rounding, the same ids and failures. Each Ray worker runs
    TensorFlow on one thread, the plain extraction on every core, and oneDNN may sum in another
    order (seen: up to 1.5e-8 apart on one machine, bit-identical on others)."""
    y = featcache.load(b, FACE, include_failed=True)
    x = featcache.load(a, group=y.group, include_failed=True)
    np.testing.assert_allclose(x.features, y.features, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(x.ids, y.ids)
    failed = [featcache.info(path)["groups"][x.group]["views"]["original"]["failed"] for path in (a, b)]
    assert failed[0] == failed[1] and len(failed[0]) == 2


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_two_ray_workers_make_the_cache_of_a_plain_extraction(on_ray, whole):
    assert_same_group(on_ray.path, whole)
    assert on_ray.images == 18 and len(on_ray.failed) == 2 and on_ray.views == ("original",)
    assert on_ray.engine == "ray x2 (tensorflow)" and "18 images, 2 unreadable" in on_ray.summary()
    assert all(path.is_file() for path in shard_paths(on_ray.path, 2))  # kept beside it: the merge reads them
    assert [p.name for p in shard_paths(on_ray.path, 2)] == ["faces.shard-1-of-2.features.h5",
                                                             "faces.shard-2-of-2.features.h5"]


def test_running_it_again_does_nothing(faces, on_ray):
    before = sha256(on_ray.path)
    again = extract_on_ray(faces.root, FACE, on_ray.path, workers=2, **OPTIONS)
    assert again.views == () and again.images == 0 and "already cached, nothing to do" in again.summary()
    assert sha256(on_ray.path) == before


def test_cli_engine_ray_adds_a_configuration_to_its_merged_cache(faces, on_ray, whole, tmp_path):
    result = CliRunner().invoke(app, ["extract", "--data", str(faces.root), "--backbone", FACE, "--weights", "none",
                                      "--batch-size", "1", "--pool", "max", "--out", str(on_ray.path),
                                      "--engine", "ray", "--workers", "2", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "18 images, 2 unreadable" in result.output and "ray x2" in result.output
    assert len(featcache.info(on_ray.path)["groups"]) == 2  # merged again: both configurations
    assert_same_group(on_ray.path, whole)  # the first one as it was


def test_a_worker_error_is_raised_as_itself(faces, tmp_path):
    with pytest.raises(ExtractionError, match=r"cannot read this image"):
        extract_on_ray(faces.root, FACE, tmp_path / "x.h5", workers=2, on_error="fail", **OPTIONS)
    assert not (tmp_path / "x.h5").exists()


def test_refusals_come_before_any_worker_starts(faces, whole, tmp_path):
    with pytest.raises(ValueError, match=r"exists and is not the merge of 2 Ray workers' shards"):
        extract_on_ray(faces.root, FACE, whole, workers=2, **OPTIONS)
    with pytest.raises(ValueError, match=r"21 workers for 20 records; use at most 20"):
        extract_on_ray(faces.root, FACE, tmp_path / "x.h5", workers=21, **OPTIONS)
    with pytest.raises(ValueError, match=r"makes one shard per worker itself; drop shard="):
        extract_on_ray(faces.root, FACE, tmp_path / "x.h5", shard="1/2", **OPTIONS)


@pytest.mark.parametrize("extra, message", [
    (["--workers", "2"], "--address and --workers go with --engine ray"),
    (["--engine", "ray", "--shard", "1/2"], "--engine ray makes one shard per worker itself; drop --shard"),
])
def test_cli_misuse_is_one_line_and_status_2(faces, tmp_path, extra, message):
    result = CliRunner().invoke(app, ["extract", "--data", str(faces.root), "--backbone", FACE, "--weights", "none",
                                      "--out", str(tmp_path / "x.h5"), "--no-progress", *extra])
    assert result.exit_code == 2 and result.output.strip() == f"featcache: error: {message}"


def test_engine_threads_follow_featcache_threads(monkeypatch):
    monkeypatch.setenv("FEATCACHE_THREADS", "1")
    assert engine_threads() == 1
    monkeypatch.delenv("FEATCACHE_THREADS")
    assert engine_threads() >= 1


def test_auto_precision_is_decided_once_for_every_worker(faces, tmp_path, monkeypatch):
    """Shards of one group must compute one precision, whatever each worker's processor has."""
    from featcache import engines, ray_engine

    monkeypatch.setattr(engines, "bf16_supported", lambda: False)
    seen = {}

    def stop(ray, source, backbone, shards, options, *rest):
        seen.update(options)
        raise RuntimeError("stopped before the workers")

    monkeypatch.setattr(ray_engine, "_run_workers", stop)
    with pytest.warns(RuntimeWarning, match="precision auto: float32"), pytest.raises(RuntimeError, match="stopped"):
        extract_on_ray(faces.root, FACE, tmp_path / "x.h5", workers=2, precision="auto", **OPTIONS)
    assert seen["precision"] == "float32"
