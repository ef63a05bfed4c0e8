"""The engine cache: a checked export is reused without building the Keras model, and is not
reused once the weights, the export or the engine library change; OpenVINO's compiled models
are cached per library version."""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import featcache
from featcache import engine_cache, engines, extraction
from featcache.engine_cache import Request, export_onnx, lookup
from imagegen import make_affectnet_tree

SIZE = 32  # mobilenet_v2's smallest input: a small model, quick to export


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("faces"), n=12, seed=13)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A weights file for mobilenet_v2 (values of a seeded random build)."""
    import keras

    keras.utils.set_random_seed(3)
    network = keras.applications.MobileNetV2(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    path = tmp_path_factory.mktemp("weights") / "mobilenet_v2.weights.h5"
    network.save_weights(path)
    return path


def _extract(faces, out, weights, engine="openvino", **options):
    return featcache.extract(faces.root, "mobilenet_v2", out, weights=weights, image_size=SIZE, engine=engine,
                             **options)


def test_a_checked_export_is_reused_without_building_the_model(faces, tmp_path, weights_file, monkeypatch):
    first = _extract(faces, tmp_path / "first.h5", weights_file)
    with monkeypatch.context() as patched:
        patched.setattr(extraction, "load_extractor", lambda *a, **k: pytest.fail("the Keras model was built"))
        second = _extract(faces, tmp_path / "second.h5", weights_file, flip=True)
    assert second.group == first.group and second.engine == "openvino" and second.images == faces.n_readable
    made = featcache.load(tmp_path / "first.h5", "mobilenet_v2").features
    again = featcache.load(tmp_path / "second.h5", "mobilenet_v2").features
    np.testing.assert_array_equal(again, made)  # the same export, the same engine: the same features
    first_stats = featcache.info(tmp_path / "first.h5")["groups"][first.group]["views"]["original"]
    second_stats = featcache.info(tmp_path / "second.h5")["groups"][first.group]["views"]["original"]
    assert second_stats["engine_deviation"] == first_stats["engine_deviation"] > 0  # the recorded check


def test_changed_weights_a_changed_export_or_another_engine_version_build_the_model_again(
        faces, tmp_path, weights_file, monkeypatch):
    copy = tmp_path / "copy.weights.h5"
    copy.write_bytes(weights_file.read_bytes())
    _extract(faces, tmp_path / "a.h5", copy)
    request = extraction._request("mobilenet_v2", copy, None, "avg", SIZE)
    exported = lookup(request)
    assert exported is not None and exported.check("openvino", "float32") is not None
    assert exported.check("openvino", "bf16") is None  # checked at float32 only
    assert exported.check("onnxruntime", "float32") is None

    built = []
    real = extraction.load_extractor
    monkeypatch.setattr(extraction, "load_extractor", lambda *a, **k: built.append(1) or real(*a, **k))
    os.utime(copy, ns=(copy.stat().st_atime_ns, copy.stat().st_mtime_ns + 10**9))  # the file touched
    assert lookup(request) is None
    _extract(faces, tmp_path / "b.h5", copy)
    assert len(built) == 1
    _extract(faces, tmp_path / "c.h5", copy)
    assert len(built) == 1  # and recorded again

    onnx = lookup(request).onnx
    os.utime(onnx, ns=(onnx.stat().st_atime_ns, onnx.stat().st_mtime_ns + 10**9))  # the export replaced
    assert lookup(request).check("openvino", "float32") is None
    _extract(faces, tmp_path / "d.h5", copy)
    assert len(built) == 2

    version = engine_cache.library_version
    monkeypatch.setattr(engine_cache, "library_version",
                        lambda name: "9999.0" if name == "openvino" else version(name))
    assert lookup(request).check("openvino", "float32") is None  # checked by another OpenVINO
    _extract(faces, tmp_path / "e.h5", copy)
    assert len(built) == 3


def test_models_of_other_libraries_get_other_manifests(weights_file, monkeypatch):
    request = Request("mobilenet_v2", str(weights_file.resolve()), ("last",), "avg", SIZE)
    key = request.key()
    assert key.startswith("mobilenet_v2-") and key == request.key()
    version = engine_cache.library_version
    monkeypatch.setattr(engine_cache, "library_version", lambda name: "0.1" if name == "keras" else version(name))
    assert request.key() != key
    assert Request("mobilenet_v2", "random", ("last",), "avg", SIZE).key() != Request(
        "mobilenet_v2", "random", ("last",), "max", SIZE).key()


def test_a_damaged_manifest_is_only_a_missed_shortcut(faces, tmp_path, weights_file):
    _extract(faces, tmp_path / "x.h5", weights_file)
    request = extraction._request("mobilenet_v2", weights_file, None, "avg", SIZE)
    path = engine_cache.manifest_path(request.key())
    path.write_text("{not json")
    assert lookup(request) is None
    result = _extract(faces, tmp_path / "y.h5", weights_file)  # builds, checks, records anew
    assert result.images == faces.n_readable and json.loads(path.read_text())["checks"]


def _blobs():
    folder = engine_cache.openvino_cache_dir()
    return {p.name: p.stat().st_mtime_ns for p in folder.glob("*.blob")} if folder.is_dir() else {}


def test_openvino_compiles_once_and_reuses_the_compiled_model(tmp_path, monkeypatch):
    model = featcache.load_backbone("mobilenet_v2", weights=None, input_size=SIZE)
    onnx = export_onnx(model)
    pixels = engines.probe_pixels(SIZE)
    before = _blobs()
    fresh = engines.openvino_engine(onnx).run(pixels)
    after = _blobs()
    assert len(after) == len(before) + 2  # the model taking float32 and the one taking uint8
    again = engines.openvino_engine(onnx).run(pixels)
    assert _blobs() == after  # loaded, not compiled and written again
    np.testing.assert_array_equal(again, fresh)

    other = export_onnx(featcache.load_backbone("mobilenet_v2", weights=None, input_size=SIZE, pooling="max"))
    engines.openvino_engine(other)
    assert len(_blobs()) == len(after) + 2  # another model, other compiled blobs

    version = engine_cache.library_version
    monkeypatch.setattr(engine_cache, "library_version", lambda name: "9999.7" if name == "openvino" else version(name))
    assert engine_cache.openvino_cache_dir().name == "9999.7" and not _blobs()
    np.testing.assert_array_equal(engines.openvino_engine(onnx).run(pixels), fresh)
    assert len(_blobs()) == 2  # another library version compiles into a folder of its own


@pytest.mark.skipif(not engines.bf16_supported(), reason="this processor has no bfloat16 units")
def test_a_compiled_model_from_the_cache_keeps_the_precision_asked_for():
    model = featcache.load_backbone("mobilenet_v2", weights=None, input_size=SIZE)
    onnx = export_onnx(model)
    pixels = engines.probe_pixels(SIZE)
    full = engines.openvino_engine(onnx, "float32").run(pixels)
    half = engines.openvino_engine(onnx, "bf16").run(pixels)
    assert not np.array_equal(full, half)
    np.testing.assert_array_equal(engines.openvino_engine(onnx, "float32").run(pixels), full)
    np.testing.assert_array_equal(engines.openvino_engine(onnx, "bf16").run(pixels), half)


def test_extraction_with_a_cached_engine_imports_no_tensorflow(faces, tmp_path, weights_file):
    _extract(faces, tmp_path / "warm.h5", weights_file)  # exports, checks, records
    script = textwrap.dedent(f"""
        import sys, featcache
        result = featcache.extract({str(faces.root)!r}, "mobilenet_v2", {str(tmp_path / 'cold.h5')!r},
                                   weights={str(weights_file)!r}, image_size={SIZE}, engine="openvino", flip=True)
        assert result.images == {faces.n_readable}, result
        print(sorted(name for name in ("tensorflow", "keras") if name in sys.modules))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=os.environ.copy())
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    made = featcache.load(tmp_path / "cold.h5", "mobilenet_v2", view="flip").features
    assert made.shape == (faces.n_readable, 1280) and np.isfinite(made).all()


def test_graph_inputs_no_node_reads_are_dropped_and_the_rest_kept(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    value = lambda name: helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])  # noqa: E731
    branch = lambda name: helper.make_graph([helper.make_node("Identity", ["outer"], [name])], name, [],  # noqa: E731
                                            [value(name)])
    nodes = [helper.make_node("Relu", ["x"], ["y"]),
             helper.make_node("If", ["flag"], ["z"], then_branch=branch("a"), else_branch=branch("b"))]
    inputs = [value("x"), value("unread"), value("outer"), helper.make_tensor_value_info("flag", TensorProto.BOOL, [])]
    graph = helper.make_graph(nodes, "g", inputs, [value("y"), value("z")])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph), str(path))
    assert engine_cache.drop_unread_inputs(path) == ["unread"]
    assert [entry.name for entry in onnx.load(str(path)).graph.input] == ["x", "outer", "flag"]  # read in a branch
    stamp = path.stat().st_mtime_ns
    assert engine_cache.drop_unread_inputs(path) == [] and path.stat().st_mtime_ns == stamp  # not rewritten


def test_an_engine_from_the_cache_needs_a_check_that_still_holds(faces, tmp_path, weights_file, monkeypatch):
    _extract(faces, tmp_path / "checked.h5", weights_file)
    exported = lookup(extraction._request("mobilenet_v2", weights_file, None, "avg", SIZE))
    ready = engines.cached_engine(exported, "openvino")
    assert ready.name == "openvino" and ready.deviation == exported.check("openvino", "float32")["deviation"]
    with pytest.raises(engines.EngineError, match="no check of onnxruntime at float32 is recorded"):
        engines.cached_engine(exported, "onnxruntime")


@pytest.mark.parametrize("slow, size", [("onnxruntime", 40), ("openvino", 48)])
def test_auto_races_the_cpu_engines_and_remembers_the_winner_for_this_processor(
        faces, tmp_path, weights_file, monkeypatch, slow, size):
    real = engines.exported_engine

    def slowed(name, onnx, precision="float32"):
        ready = real(name, onnx, precision)
        if name != slow:
            return ready
        return engines.Engine(name, ready.version, lambda pixels: time.sleep(0.05) or ready.run(pixels))

    monkeypatch.setattr(engines, "exported_engine", slowed)
    options = dict(weights=weights_file, image_size=size)
    winner = ({"onnxruntime", "openvino"} - {slow}).pop()
    first = featcache.extract(faces.root, "mobilenet_v2", tmp_path / "first.h5", **options)
    assert first.engine == winner
    exported = lookup(extraction._request("mobilenet_v2", weights_file, None, "avg", size))
    record = exported.fastest[f"{engines.processor_id()}/float32"]
    assert record["engine"] == winner and record["img_s"][winner] > record["img_s"][slow]
    assert exported.check(slow, "float32") is not None  # both were checked

    monkeypatch.setattr(extraction, "load_extractor", lambda *a, **k: pytest.fail("the Keras model was built"))
    again = featcache.extract(faces.root, "mobilenet_v2", tmp_path / "again.h5", **options)
    assert again.engine == winner  # the recorded winner, without TensorFlow
    monkeypatch.setattr(engines, "processor_id", lambda: "another-processor")
    assert extraction.cached_feature_model("mobilenet_v2", weights_file, None, "avg", size, "float32", "auto") is None
