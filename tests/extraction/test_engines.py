"""Extraction engines: exported CPU engines agree with TensorFlow, are cached, checked and recorded."""

import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache import engines
from featcache.cli import app
from featcache.engine_cache import export_onnx, export_path
from featcache.engines import Engine, EngineError, build_engine, choose_engine, probe_pixels
from featcache.pipeline import image_batches
from imagegen import make_affectnet_tree

EXPORTED = ["onnxruntime", "openvino"]
AGREEMENT = engines.AGREEMENT["float32"]
# One parameterised table of feature models (random weights, small inputs): a depthwise
# ImageNet family, EfficientNet-Lite (our own builder), grid taps, and the face model.
MODELS = [
    ("mobilenet_v2", {"input_size": 96}),
    ("efficientnet_lite0", {"input_size": 96}),
    ("mobilenet_v2", {"input_size": 96, "taps": ["block_6_expand_relu:2", "last"], "pooling": "max"}),
    ("fer_minixception", {}),
    ("efficientnet_b0", {"input_size": 64}),  # its Normalization layer leaves unread inputs in the export
]


@pytest.fixture(scope="module")
def extractors():
    return {index: featcache.load_backbone(name, weights=None, **options)
            for index, (name, options) in enumerate(MODELS)}


@pytest.mark.parametrize("engine", EXPORTED)
@pytest.mark.parametrize("model", range(len(MODELS)), ids=[f"{n}-{i}" for i, (n, _) in enumerate(MODELS)])
def test_exported_engine_agrees_with_tensorflow(extractors, engine, model):
    extractor = extractors[model]
    runner = build_engine(extractor, engine)
    assert runner.name == engine and runner.version
    assert 0 < runner.deviation <= AGREEMENT  # measured, not assumed
    pixels = np.random.default_rng(model).uniform(0, 255, (5, extractor.input_size, extractor.input_size, 3))
    pixels = pixels.astype(np.float32)
    expected = extractor(pixels)
    features = runner.run(pixels)
    assert features.shape == expected.shape and features.dtype == np.float32
    assert engines.relative_deviation(features, expected) <= AGREEMENT


@pytest.mark.parametrize("engine", ["tensorflow"] + EXPORTED)
def test_uint8_batches_give_the_features_of_the_same_pixels_in_float32(extractors, engine):
    """The pipeline hands over uint8; each engine converts, to the same features as float32 input."""
    extractor = extractors[1]
    runner = build_engine(extractor, engine)
    pixels = np.random.default_rng(7).integers(0, 256, (3, extractor.input_size, extractor.input_size, 3), np.uint8)
    features = runner.run(pixels)
    assert features.dtype == np.float32
    np.testing.assert_array_equal(features, runner.run(pixels.astype(np.float32)))
    assert engines.relative_deviation(features, extractor(pixels.astype(np.float32))) <= AGREEMENT


def test_export_is_cached_and_reused(extractors, monkeypatch):
    extractor = extractors[0]
    path = export_onnx(extractor)
    stamp = path.stat().st_mtime_ns
    monkeypatch.setattr(type(extractor.model), "export", lambda *a, **k: pytest.fail("exported twice"))
    assert export_onnx(extractor) == path and path.stat().st_mtime_ns == stamp
    other = featcache.load_backbone("mobilenet_v2", weights=None, input_size=128)
    assert export_path(other) != path  # another configuration, another file
    assert not list(path.parent.glob("*.tmp"))


def test_auto_chooses_tensorflow_for_mixed_precision_and_rejects_unknown_names():
    assert choose_engine("auto", "mixed") == "tensorflow"
    assert choose_engine("auto") in ("onnxruntime", "openvino")  # both installed with the test extra
    assert choose_engine("tensorflow") == "tensorflow"
    with pytest.raises(ValueError, match="engine must be one of auto, tensorflow, onnxruntime, openvino"):
        choose_engine("tensorrt")


@pytest.mark.parametrize("avx512, first", [(True, "openvino"), (False, "onnxruntime")])
def test_auto_prefers_the_cpu_engine_measured_fastest_on_this_kind_of_processor(monkeypatch, avx512, first):
    monkeypatch.setattr(engines, "_has_avx512", lambda: avx512)
    monkeypatch.setattr(engines, "has_gpu", lambda: False)
    assert choose_engine("auto") == first
    monkeypatch.setattr(engines, "_installed", lambda name: name != first)
    assert choose_engine("auto") == ({"openvino", "onnxruntime"} - {first}).pop()  # the other one, if only it


def _off_by_a_thousandth(name, onnx_file, precision="float32"):
    good = engines.onnxruntime_engine(onnx_file)
    return Engine("onnxruntime", good.version, lambda pixels: good.run(pixels) * 1.001)


def _failing(name, onnx_file, precision="float32"):
    def run(pixels):
        raise ValueError("Required inputs (['x:0']) are missing")
    return Engine(name, "1.0", run)


@pytest.mark.parametrize("candidate, refusal", [
    (_off_by_a_thousandth, r"^onnxruntime float32 features differ from tensorflow's float32 by 0.001 .*--engine "
                           r"tensorflow$"),
    (_failing, r"^onnxruntime cannot run the exported model \(Required inputs \(\['x:0'\]\) are missing\); use "
               r"--engine tensorflow$"),
], ids=["disagrees", "fails"])
def test_an_engine_that_disagrees_or_fails_is_refused_when_named_and_replaced_under_auto(
        extractors, monkeypatch, candidate, refusal):
    extractor = extractors[0]
    monkeypatch.setattr(engines, "exported_engine", candidate)
    with pytest.raises(EngineError, match=refusal):
        build_engine(extractor, "onnxruntime")
    monkeypatch.setattr(engines, "choose_engine", lambda engine, precision: "onnxruntime")
    with pytest.warns(RuntimeWarning, match="using tensorflow instead"):
        fallback = build_engine(extractor, "auto")
    assert fallback.name == "tensorflow"
    np.testing.assert_allclose(fallback.run(probe_pixels(96)), extractor(probe_pixels(96)), rtol=1e-5, atol=1e-6)


def test_missing_engine_and_mixed_precision_give_clear_errors(extractors, monkeypatch):
    with pytest.raises(EngineError, match=r"--engine openvino does not run --precision mixed"):
        build_engine(extractors[0], "openvino", precision="mixed")
    monkeypatch.setattr(engines, "_installed", lambda name: False)
    with pytest.raises(EngineError, match=r'not installed; pip install "featcache\[openvino\]"'):
        build_engine(extractors[0], "openvino")
    assert choose_engine("auto") == "tensorflow"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("faces"), n=20, seed=5)


@pytest.mark.parametrize("engine", EXPORTED)
def test_extract_with_an_exported_engine_equals_tensorflow_and_records_it(faces, tmp_path, engine):
    made = {}
    for name in ("tensorflow", engine):
        out = tmp_path / f"{name}.h5"
        result = featcache.extract(faces.root, "fer_minixception", out, weights=None, batch_size=8, engine=name,
                                   flip=True)
        assert result.engine == name and result.images == faces.n_readable
        made[name] = out
    reference = featcache.load(made["tensorflow"], "fer_minixception")
    for view in ("original", "flip"):
        expected = featcache.load(made["tensorflow"], "fer_minixception", view=view).features
        features = featcache.load(made[engine], "fer_minixception", view=view)
        assert features.group == reference.group  # the engine is not part of the features' identity
        assert engines.relative_deviation(features.features, expected) <= AGREEMENT
    summary = featcache.info(made[engine])
    for view in ("original", "flip"):  # each view records the engine that made it
        stats = summary["groups"][reference.group]["views"][view]
        assert stats["engine"] == engine and 0 < stats["engine_deviation"] <= AGREEMENT and stats["engine_version"]
        assert stats["pixels"] == "uint8" and stats["decoder"] == "simplejpeg+pillow"  # recorded with the features
        assert featcache.info(made["tensorflow"])["groups"][reference.group]["views"][view]["engine"] == "tensorflow"


def test_cli_engine_flag(faces, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli.h5"
    done = runner.invoke(app, ["extract", "--data", str(faces.root), "--backbone", "fer_minixception",
                               "--weights", "none", "--out", str(out), "--engine", "openvino", "--no-progress"])
    assert done.exit_code == 0, done.output
    assert "openvino on CPU" in done.output
    shown = runner.invoke(app, ["info", str(out)])
    assert shown.exit_code == 0 and "openvino on CPU, decoded by simplejpeg+pillow" in shown.output
    wrong = runner.invoke(app, ["extract", "--data", str(faces.root), "--out", str(out), "--engine", "tensorrt"])
    assert wrong.exit_code == 2 and "tensorrt" in wrong.output
    mixed = runner.invoke(app, ["extract", "--data", str(faces.root), "--backbone", "fer_minixception", "--weights",
                                "none", "--out", str(tmp_path / "m.h5"), "--engine", "onnxruntime", "--precision",
                                "mixed", "--no-progress"])
    assert mixed.exit_code == 2
    assert mixed.output.strip().endswith("--engine onnxruntime does not run --precision mixed; use --engine "
                                         "tensorflow, or --precision bf16 on OpenVINO")


def test_pipeline_batches_are_numpy_arrays_the_engines_take(faces, extractors):
    """The pipeline hands over plain numpy batches (no TensorFlow tensors), every readable face once."""
    paths = [str(faces.root / p) for p in faces.paths]
    batches = list(image_batches(paths, range(len(paths)), 64, 8))
    assert all(isinstance(part, np.ndarray) for batch in batches for part in batch)
    assert sum(len(batch[0]) for batch in batches) == faces.n_readable
    engine = build_engine(extractors[3], "onnxruntime")  # fer_minixception: 64 px
    assert engine.run(batches[0][1]).shape[0] == len(batches[0][0])


@pytest.mark.parametrize("threads, pinned", [("", True), ("2", True), ("1", False)])
def test_openvino_pins_threads_only_when_it_has_every_core(extractors, monkeypatch, threads, pinned):
    """Two 1-thread workers on a 2-core machine must not both be pinned to core 0."""
    import openvino as ov

    seen = {}
    compile_model = ov.Core.compile_model

    def spy(self, model, device, config):
        seen.update(config)
        return compile_model(self, model, device, config)

    monkeypatch.setattr(ov.Core, "compile_model", spy)
    monkeypatch.setattr(engines.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("FEATCACHE_THREADS", threads)
    engine = engines.openvino_engine(export_onnx(extractors[0]))
    assert seen["ENABLE_CPU_PINNING"] is pinned and seen["INFERENCE_NUM_THREADS"] == int(threads or 2)
    assert engine.run(probe_pixels(extractors[0].input_size)).shape[0] > 0
