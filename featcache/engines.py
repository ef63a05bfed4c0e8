"""Extraction engines: who runs the frozen feature model over the pixel batches.

``tensorflow`` runs the Keras model itself (a compiled ``tf.function``; the engine on a
GPU). ``onnxruntime`` and ``openvino`` run the same Keras model exported to ONNX by
Keras (``model.export(format="onnx")``), which on a CPU is about twice as fast for the
depthwise backbones. An exported engine is used only after its features agree with
TensorFlow's on a probe batch within :data:`AGREEMENT` (relative to the largest feature);
the export is cached under ``$FEATCACHE_HOME/exports`` and reused.

Install the CPU engines with ``pip install "featcache[onnx]"`` or ``"featcache[openvino]"``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ._home import featcache_home
from .errors import FeatcacheError, UsageError
from .files import atomic_file

ENGINES = ("auto", "tensorflow", "onnxruntime", "openvino")
AGREEMENT = 1e-4  # largest |engine - tensorflow| / largest |tensorflow| accepted on the probe batch
PROBE_IMAGES = 4
_EXTRA = {"onnxruntime": "onnx", "openvino": "openvino"}


class EngineError(FeatcacheError, RuntimeError):
    """An engine that was asked for cannot be used (not installed, or its features disagree)."""


@dataclass(frozen=True)
class Engine:
    """A ready engine: ``run(pixels)`` maps RGB batches in [0, 255] (uint8 from the pipeline, or
    float32) to float32 features."""

    name: str
    version: str
    run: Callable[[np.ndarray], np.ndarray]
    deviation: float = 0.0  # measured on the probe batch against TensorFlow (0 for tensorflow itself)

    def record(self) -> dict:
        """What a cache stores about the engine that made its features."""
        return {"engine": self.name, "engine_version": self.version, "engine_deviation": self.deviation}


def available_engines() -> list[str]:
    """The engines that can run here (``tensorflow`` always)."""
    return ["tensorflow"] + [name for name in ("onnxruntime", "openvino") if _installed(name)]


def _installed(name: str) -> bool:
    modules = {"onnxruntime": ("onnxruntime", "tf2onnx", "onnx"), "openvino": ("openvino", "tf2onnx", "onnx")}
    return all(importlib.util.find_spec(module) is not None for module in modules[name])


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def cpu_preference() -> tuple[str, str]:
    """The CPU engines fastest first for this processor, as benchmarks/bench_extract.py measured
    them on 2-core AMD EPYC VMs: with AVX-512, OpenVINO ahead on all four reference backbones
    (9-17%); with AVX2 only, ONNX Runtime ahead on all four (1-40%)."""
    return ("openvino", "onnxruntime") if _has_avx512() else ("onnxruntime", "openvino")


@functools.cache  # the processor does not change; extract() asks twice per call
def _has_avx512() -> bool:
    """Whether the CPU has AVX-512 (read from Linux's /proc/cpuinfo; False where there is none)."""
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


def choose_engine(engine: str = "auto", precision: str = "float32") -> str:
    """The engine ``auto`` stands for here: TensorFlow on a GPU or for mixed precision,
    else the first installed of :func:`cpu_preference`, else TensorFlow."""
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "auto":
        return engine
    if precision != "float32" or _has_gpu():
        return "tensorflow"
    return next((name for name in cpu_preference() if _installed(name)), "tensorflow")


def build_engine(extractor, engine: str = "auto", precision: str = "float32") -> Engine:
    """A checked engine for a :class:`~featcache.backbones.FeatureExtractor`.

    An explicitly named engine that is missing or disagrees with TensorFlow raises
    :class:`EngineError`; under ``auto`` a disagreeing engine falls back to TensorFlow
    with a warning.
    """
    name = choose_engine(engine, precision)
    if name == "tensorflow":
        return tensorflow_engine(extractor.model)
    if precision != "float32":
        raise EngineError(f"--engine {name} runs float32 only; use --precision float32 or --engine tensorflow")
    if not _installed(name):
        raise EngineError(f"--engine {name} is not installed; pip install \"featcache[{_EXTRA[name]}]\" "
                          "or use --engine tensorflow")
    try:
        candidate = _EXPORTED[name](export_onnx(extractor))
        return checked(candidate, extractor.model, extractor.input_size)
    except EngineError as error:
        if engine != "auto":
            raise
        warnings.warn(f"{error}; using tensorflow instead", RuntimeWarning, stacklevel=2)
        return tensorflow_engine(extractor.model)


def tensorflow_engine(model) -> Engine:
    """The Keras model in a compiled ``tf.function`` per pixel dtype (float32 features whatever the
    dtype policy); uint8 batches are converted on the model's device, a quarter of the bytes to a GPU."""
    import tensorflow as tf

    size = model.input_shape[1]

    def compiled(dtype):
        spec = tf.TensorSpec((None, size, size, 3), dtype)
        return tf.function(lambda x: tf.cast(model(tf.cast(x, tf.float32), training=False), tf.float32),
                           input_signature=[spec])

    steps = {np.dtype(np.uint8): compiled(tf.uint8), np.dtype(np.float32): compiled(tf.float32)}

    def run(pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        if pixels.dtype not in steps:
            pixels = pixels.astype(np.float32)
        return steps[pixels.dtype](pixels).numpy()

    return Engine("tensorflow", tf.__version__, run)


def probe_pixels(size: int, images: int = PROBE_IMAGES) -> np.ndarray:
    """A fixed batch of smooth, face-sized test images (float32 RGB in [0, 255])."""
    rng = np.random.default_rng(0)
    grid = np.linspace(0.0, 1.0, size, dtype=np.float32)
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    batch = []
    for _ in range(images):
        freq, phase = rng.uniform(1, 6, 3), rng.uniform(0, 2 * np.pi, 3)
        channels = [np.sin(2 * np.pi * f * (xx + c * yy) + p) for f, p, c in zip(freq, phase, (0.3, 0.7, 1.1))]
        noise = rng.normal(0, 0.1, (size, size, 3))
        batch.append(np.clip((np.stack(channels, -1) + noise + 1) * 127.5, 0, 255))
    return np.asarray(batch, dtype=np.float32)


def relative_deviation(features: np.ndarray, reference: np.ndarray) -> float:
    """Largest absolute difference over the largest absolute reference value."""
    scale = float(np.max(np.abs(reference))) or 1.0
    return float(np.max(np.abs(np.asarray(features, np.float64) - reference))) / scale


def checked(candidate: Engine, model, size: int) -> Engine:
    """``candidate`` with its measured deviation, if its probe features agree with the model's."""
    probe = probe_pixels(size)
    reference = np.asarray(model(probe, training=False), dtype=np.float64)
    deviation = relative_deviation(candidate.run(probe), reference)
    if not deviation <= AGREEMENT:
        raise EngineError(f"{candidate.name} features differ from tensorflow's by {deviation:.2g} (relative) on "
                          f"the probe batch, more than {AGREEMENT:g}; use --engine tensorflow")
    return Engine(candidate.name, candidate.version, candidate.run, deviation)


def export_path(extractor) -> Path:
    """Where the ONNX export of this feature model is cached (keyed by its config and versions)."""
    import keras
    import tensorflow as tf
    import tf2onnx

    identity = json.dumps({**extractor.config(), "keras": keras.__version__, "tensorflow": tf.__version__,
                           "tf2onnx": tf2onnx.__version__}, sort_keys=True)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return featcache_home() / "exports" / f"{extractor.name}-{digest}.onnx"


def export_onnx(extractor) -> Path:
    """The feature model as an ONNX file, exported once by Keras and then reused."""
    path = export_path(extractor)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = extractor.model
    model(probe_pixels(extractor.input_size, 1), training=False)  # Keras exports only models that were called
    try:
        with atomic_file(path) as temporary, warnings.catch_warnings():  # never a truncated model
            warnings.simplefilter("ignore")  # tf2onnx's own FutureWarnings under numpy 2
            model.export(str(temporary), format="onnx", verbose=False)
    except Exception as error:
        raise EngineError(f"could not export {extractor.name} to ONNX ({type(error).__name__}: {error}); "
                          "use --engine tensorflow") from error
    return path


def engine_threads() -> int:
    """Threads for a CPU engine: ``$FEATCACHE_THREADS`` when set (a Ray worker's or a Slurm
    task's share of the machine), else every core (decoding takes well under a tenth of one)."""
    return int(os.environ.get("FEATCACHE_THREADS") or 0) or os.cpu_count() or 1


def onnxruntime_engine(onnx_file: Path) -> Engine:
    """ONNX Runtime on the CPU (all graph optimisations, one thread per core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = engine_threads()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run(pixels: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(pixels, dtype=np.float32)})[0]

    return Engine("onnxruntime", ort.__version__, run)


def openvino_engine(onnx_file: Path) -> Engine:
    """OpenVINO on the CPU in float32 (its default on CPUs with bf16 units is bfloat16), with
    :func:`engine_threads` threads, pinned to cores only when that is all of them."""
    import openvino as ov

    core = ov.Core()
    threads = engine_threads()
    # OpenVINO pins its threads to the first cores: two 1-thread workers on 2 cores then share
    # one core (105 instead of 230 img/s each, MobileNetV2). Pin only when given every core.
    config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": threads,
              "ENABLE_CPU_PINNING": threads >= (os.cpu_count() or 1)}
    compiled = core.compile_model(core.read_model(str(onnx_file)), "CPU", config)
    request = compiled.create_infer_request()

    def run(pixels: np.ndarray) -> np.ndarray:
        outputs = request.infer([np.ascontiguousarray(pixels, dtype=np.float32)])
        return np.array(outputs[compiled.output(0)], dtype=np.float32)

    return Engine("openvino", ov.__version__, run)


_EXPORTED = {"onnxruntime": onnxruntime_engine, "openvino": openvino_engine}
