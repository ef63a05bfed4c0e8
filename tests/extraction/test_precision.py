"""bf16 on CPU engines: its own group, checked against float32 at bfloat16's tolerance, refused
where the processor has no bfloat16 units, and chosen by ``auto`` only where it runs."""

import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache import engines
from featcache.cli import app
from featcache.engine_cache import export_onnx
from featcache.engines import AGREEMENT, BF16_CORRELATION, Engine, EngineError, checked, choose_engine
from imagegen import make_affectnet_tree

BF16_HERE = engines.bf16_supported()
needs_bf16 = pytest.mark.skipif(not BF16_HERE, reason="this processor has no bfloat16 units (avx512_bf16 or "
                                                      "amx_bf16): bf16 features cannot be computed here")


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("faces"), n=16, seed=11)


@pytest.fixture
def without_bf16(monkeypatch):
    monkeypatch.setattr(engines, "bf16_supported", lambda: False)


@pytest.fixture
def with_bf16(monkeypatch):
    monkeypatch.setattr(engines, "bf16_supported", lambda: True)


def test_auto_precision_is_bf16_where_openvino_runs_it_and_float32_with_a_note_elsewhere(monkeypatch, with_bf16):
    monkeypatch.setattr(engines, "has_gpu", lambda: False)
    assert engines.resolve_precision("auto") == "bf16"
    assert engines.resolve_precision("auto", "openvino") == "bf16"
    with pytest.warns(RuntimeWarning, match="--precision auto: float32, as bf16 runs on OpenVINO on a CPU only"):
        assert engines.resolve_precision("auto", "onnxruntime") == "float32"
    monkeypatch.setattr(engines, "bf16_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="no bfloat16 units"):
        assert engines.resolve_precision("auto") == "float32"
    assert engines.resolve_precision("float32") == "float32" and engines.resolve_precision("mixed") == "mixed"


def test_bf16_runs_on_openvino_only(with_bf16):
    assert choose_engine("auto", "bf16") == "openvino" and choose_engine("openvino", "bf16") == "openvino"
    for other in ("onnxruntime", "tensorflow"):
        with pytest.raises(EngineError, match=f"--precision bf16 runs on --engine openvino, not {other}"):
            choose_engine(other, "bf16")
    with pytest.raises(ValueError, match="precision must be one of float32, bf16, mixed, auto, got 'half'"):
        engines.resolve_precision("half")


def test_bf16_is_refused_on_a_processor_without_bfloat16_units(faces, tmp_path, without_bf16):
    out = tmp_path / "refused.h5"
    with pytest.raises(EngineError, match=r"this processor has no bfloat16 units \(avx512_bf16 or amx_bf16"):
        featcache.extract(faces.root, "fer_minixception", out, weights=None, precision="bf16")
    assert not out.exists()  # refused before any work
    done = CliRunner().invoke(app, ["extract", "--data", str(faces.root), "--backbone", "fer_minixception",
                                    "--weights", "none", "--out", str(out), "--precision", "bf16", "--no-progress"])
    assert done.exit_code == 2
    message = done.output.strip()
    assert "\n" not in message and "use --precision float32" in message


def _scaled(factor: float):
    def make(name, onnx, precision="float32"):
        good = engines.onnxruntime_engine(onnx)
        return Engine(name, good.version, lambda pixels: good.run(pixels) * factor)
    return make


def test_the_bf16_check_allows_bfloat16_rounding_but_not_a_wrong_model():
    model = featcache.load_backbone("fer_minixception", weights=None)
    onnx = export_onnx(model)
    five_percent = _scaled(1.05)("openvino", onnx)
    assert checked(five_percent, model.model, model.input_size, "bf16").deviation == pytest.approx(0.05, rel=1e-3)
    with pytest.raises(EngineError, match="float32 features differ from tensorflow's float32 by 0.05"):
        checked(five_percent, model.model, model.input_size, "float32")
    good = engines.onnxruntime_engine(onnx)
    rng = np.random.default_rng(0)
    shuffled = Engine("openvino", "x", lambda pixels: rng.permutation(good.run(pixels), axis=1))
    with pytest.raises(EngineError, match=r"bf16 features (differ|correlate)"):
        checked(shuffled, model.model, model.input_size, "bf16")
    assert AGREEMENT["bf16"] < 1 and BF16_CORRELATION > 0.9


def test_bf16_is_a_group_of_its_own_and_records_what_made_it(faces, tmp_path, with_bf16):
    out = tmp_path / "both.h5"
    full = featcache.extract(faces.root, "fer_minixception", out, weights=None, engine="openvino")
    half = featcache.extract(faces.root, "fer_minixception", out, weights=None, precision="bf16")
    assert half.engine == "openvino" and half.images == faces.n_readable
    assert half.group != full.group and half.views == ("original",)
    groups = featcache.info(out)["groups"]
    assert groups[half.group]["config"]["precision"] == "bf16"
    assert groups[full.group]["config"]["precision"] == "float32"
    stats = groups[half.group]["views"]["original"]
    assert stats["engine"] == "openvino" and 0 <= stats["engine_deviation"] <= AGREEMENT["bf16"]
    again = featcache.extract(faces.root, "fer_minixception", out, weights=None, precision="bf16")
    assert again.group == half.group and again.views == ()  # cached: the same identity finds it


@needs_bf16
def test_bf16_features_are_bfloat16_rounded_float32_features(faces, tmp_path):
    out = tmp_path / "rounded.h5"
    full = featcache.extract(faces.root, "mobilenet_v2", out, weights=None, image_size=64, engine="openvino")
    half = featcache.extract(faces.root, "mobilenet_v2", out, weights=None, image_size=64, precision="bf16")
    a = featcache.load(out, group=full.group).features
    b = featcache.load(out, group=half.group).features
    deviation = engines.relative_deviation(b, a)
    assert 1e-4 < deviation <= AGREEMENT["bf16"]  # really computed in bfloat16, and close
    assert engines.correlation(b, a) >= BF16_CORRELATION
    stats = featcache.info(out)["groups"][half.group]["views"]["original"]
    assert stats["engine_deviation"] > AGREEMENT["float32"]  # measured on the probe batch, recorded


def test_a_bf16_model_predicts_in_float32_with_a_note_where_bf16_cannot_run(monkeypatch):
    from featcache.inference import runnable_precision
    from featcache.sources import Source

    source = Source("fer_minixception-0123456789", {"backbone": "fer_minixception", "precision": "bf16"}, ("original",))
    monkeypatch.setattr(engines, "bf16_supported", lambda: False)
    with pytest.warns(RuntimeWarning, match="extracted in bf16 and this processor has no bfloat16 units"):
        assert runnable_precision(source) == "float32"
    monkeypatch.setattr(engines, "bf16_supported", lambda: True)
    assert runnable_precision(source) == "bf16"
    assert runnable_precision(Source("x-1", {"backbone": "x"}, ("original",))) == "float32"


@needs_bf16
def test_bf16_uint8_batches_give_the_features_of_the_same_pixels_in_float32():
    model = featcache.load_backbone("mobilenet_v2", weights=None, input_size=64)
    engine = engines.openvino_engine(export_onnx(model), "bf16")
    pixels = np.random.default_rng(5).integers(0, 256, (3, 64, 64, 3), np.uint8)
    np.testing.assert_array_equal(engine.run(pixels), engine.run(pixels.astype(np.float32)))
