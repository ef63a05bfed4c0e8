"""Extraction engines: who runs the frozen feature model over the pixel batches, and in what precision.

``tensorflow`` runs the Keras model itself (a compiled ``tf.function``; the engine on a
GPU). ``onnxruntime`` and ``openvino`` run the same Keras model exported to ONNX by Keras
(:mod:`featcache.engine_cache`), which on a CPU can beat TensorFlow; which engine wins depends on
the processor and the backbone, so ``auto`` times them (:func:`race`; benchmarks/results/extract_speed.md). An
exported engine is used only after its features agree with TensorFlow's float32 features on a
probe batch (:data:`AGREEMENT` per precision, relative to the largest feature); the check is
recorded beside the export, so a later run with the same engine needs no TensorFlow at all.

Precisions (:data:`PRECISIONS`): ``float32``; ``bf16``, bfloat16 inference by OpenVINO on
processors with bfloat16 units (AVX512-BF16 or AMX), refused elsewhere rather than emulated
slowly; ``mixed``, Keras' mixed precision under TensorFlow (float16 on a GPU, bfloat16 on a CPU);
``auto``, bf16 where the processor has it and OpenVINO is installed, else float32. Each
precision is part of a cache group's identity, as its features differ.

Install the CPU engines with ``pip install "featcache[onnx]"`` or ``"featcache[openvino]"``.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from . import engine_cache
from .errors import FeatcacheError, UsageError, one_line

ENGINES = ("auto", "tensorflow", "onnxruntime", "openvino")
CPU_ENGINES = ("onnxruntime", "openvino")
PRECISIONS = ("float32", "bf16", "mixed", "auto")
# Largest |engine - tensorflow float32| / largest |tensorflow| accepted on the probe batch. bfloat16
# keeps 8 significant bits, and its rounding compounds layer after layer: its bound is wide, so
# the correlation bound below is what catches a wrong graph.
AGREEMENT = {"float32": 1e-4, "bf16": 0.2}
BF16_CORRELATION = 0.99  # least Pearson correlation of bf16 probe features with float32's
BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of processors with bfloat16 units
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
    device: str = "CPU"

    def record(self) -> dict:
        """What a cache stores about the engine that made its features."""
        return {"engine": self.name, "engine_version": self.version, "engine_deviation": self.deviation}


def available_engines() -> list[str]:
    """The engines that can run here (``tensorflow`` always)."""
    return ["tensorflow"] + [name for name in CPU_ENGINES if _installed(name)]


def _installed(name: str) -> bool:
    modules = {"onnxruntime": ("onnxruntime", "tf2onnx", "onnx"), "openvino": ("openvino", "tf2onnx", "onnx")}
    return all(importlib.util.find_spec(module) is not None for module in modules[name])


GPU_DEVICE_FILES = ("/dev/nvidia0", "/dev/kfd", "/dev/dxg")  # NVIDIA, AMD ROCm, WSL's GPU bridge


@functools.cache
def has_gpu() -> bool:
    """Whether TensorFlow sees a GPU. Asked of TensorFlow only where a GPU device file exists: on
    a machine without one, TensorFlow cannot have a GPU, and importing it would cost seconds."""
    if not any(os.path.exists(path) for path in GPU_DEVICE_FILES):
        return False
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def cpu_preference() -> tuple[str, str]:
    """The CPU engines in the order ``auto`` tries them before any race is recorded: a first guess
    from the vector units (OpenVINO with AVX-512, ONNX Runtime with AVX2 only), which a
    :func:`race` replaces with a measurement wherever both are installed."""
    return ("openvino", "onnxruntime") if _has_avx512() else ("onnxruntime", "openvino")


@functools.cache
def _cpuinfo() -> str:
    """Linux's /proc/cpuinfo, read once ("" where there is none)."""
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _cpu_field(prefix: str) -> str:
    """The value of the first /proc/cpuinfo line starting with ``prefix`` ("" where there is none)."""
    return next((line.partition(":")[2].strip() for line in _cpuinfo().splitlines() if line.startswith(prefix)), "")


@functools.cache
def _cpu_flags() -> frozenset:
    """The processor's flags from Linux's /proc/cpuinfo (empty where there is none)."""
    return frozenset(_cpu_field("flags").split())


def _has_avx512() -> bool:
    return "avx512f" in _cpu_flags()


def bf16_supported() -> bool:
    """Whether this processor has bfloat16 units (AVX512-BF16 or AMX) for OpenVINO to use."""
    return any(flag in _cpu_flags() for flag in BF16_FLAGS)


def _no_bf16() -> str:
    return (f"--precision bf16: this processor has no bfloat16 units ({' or '.join(BF16_FLAGS)} in "
            "/proc/cpuinfo), and emulating them would be slower than float32; use --precision float32 (or auto)")


def resolve_precision(precision: str = "float32", engine: str = "auto") -> str:
    """The precision ``precision`` stands for here: ``auto`` is bf16 where OpenVINO can run it
    (bfloat16 units, OpenVINO installed, no GPU, engine auto or openvino), else float32 with a
    note; ``bf16`` on a processor without bfloat16 units is refused."""
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if precision == "bf16" and not bf16_supported():
        raise EngineError(_no_bf16())
    if precision != "auto":
        return precision
    usable = engine in ("auto", "openvino") and _installed("openvino") and not (engine == "auto" and has_gpu())
    if bf16_supported() and usable:
        return "bf16"
    reason = ("this processor has no bfloat16 units" if not bf16_supported() else
              "bf16 runs on OpenVINO on a CPU only")
    warnings.warn(f"--precision auto: float32, as {reason}", RuntimeWarning, stacklevel=2)
    return "float32"


def choose_engine(engine: str = "auto", precision: str = "float32") -> str:
    """The engine ``auto`` stands for here: TensorFlow on a GPU or for mixed precision, OpenVINO
    for bf16, else the first installed of :func:`cpu_preference`, else TensorFlow. ``precision``
    is a resolved one (not ``auto``); a named engine that cannot run it is refused."""
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if precision not in PRECISIONS or precision == "auto":
        raise UsageError(f"precision must be one of float32, bf16, mixed here, got {precision!r}")
    if precision == "bf16":
        if engine not in ("auto", "openvino"):
            raise EngineError(f"--precision bf16 runs on --engine openvino, not {engine}; use --engine openvino "
                              "(or --precision mixed for TensorFlow's own)")
        return "openvino"
    if precision == "mixed":
        if engine in CPU_ENGINES:
            raise EngineError(f"--engine {engine} does not run --precision mixed; use --engine tensorflow, "
                              "or --precision bf16 on OpenVINO")
        return "tensorflow"
    if engine != "auto":
        return engine
    if has_gpu():
        return "tensorflow"
    return next((name for name in cpu_preference() if _installed(name)), "tensorflow")


def _require(name: str) -> None:
    if not _installed(name):
        raise EngineError(f"--engine {name} is not installed; pip install \"featcache[{_EXTRA[name]}]\" "
                          "or use --engine tensorflow")


def build_engine(extractor, engine: str = "auto", precision: str = "float32") -> Engine:
    """A checked engine for a :class:`~featcache.backbones.FeatureExtractor` at a resolved precision.

    An explicitly named engine that is missing or disagrees with TensorFlow raises
    :class:`EngineError`; under ``auto`` a float32 engine that disagrees falls back to
    TensorFlow with a warning (bf16 has no fallback: it would be another precision). Under
    ``auto`` in float32 with both CPU engines installed, both are checked and timed on this
    processor and the faster runs (:func:`race`). Passed checks, and the race's outcome, are
    recorded beside the export (:mod:`featcache.engine_cache`).
    """
    name = choose_engine(engine, precision)
    if name == "tensorflow":
        return tensorflow_engine(extractor.model)
    if raced(engine, precision):
        recorded = race_winner(engine_cache.lookup(engine_cache.Request.of(extractor)), precision)
        if recorded is None:  # raced once per model and processor, then the same engine every time
            return race(extractor, [candidate for candidate in cpu_preference() if _installed(candidate)])
        name = recorded
    _require(name)
    try:
        return _checked_export(extractor, name, precision)
    except EngineError as error:
        if engine != "auto" or precision != "float32":
            raise
        warnings.warn(f"{error}; using tensorflow instead", RuntimeWarning, stacklevel=2)
        return tensorflow_engine(extractor.model)


def _checked_export(extractor, name: str, precision: str) -> Engine:
    """Export (once), load, check against TensorFlow and record the check."""
    try:
        onnx = engine_cache.export_onnx(extractor)
    except engine_cache.ExportError as error:
        raise EngineError(str(error)) from error
    ready = checked(exported_engine(name, onnx, precision), extractor.model, extractor.input_size, precision)
    engine_cache.remember(extractor, onnx, name, precision, {"deviation": ready.deviation})
    return ready


def raced(engine: str, precision: str) -> bool:
    """Whether ``engine`` at ``precision`` means a race of the CPU engines: ``auto`` in float32 on
    a CPU with both installed."""
    return (engine == "auto" and precision == "float32" and choose_engine(engine, precision) in CPU_ENGINES
            and all(_installed(name) for name in CPU_ENGINES))


def race_winner(exported: Optional[engine_cache.Exported], precision: str) -> Optional[str]:
    """The engine that won the race of ``exported`` on this processor at ``precision``, if one was
    run and the winner's check still holds (None for no export)."""
    return None if exported is None else exported.fastest_engine(precision, processor_id())


RACE_IMAGES = 32  # probe images per timed call when the CPU engines race: extract's and predict's batch size
RACE_ROUNDS = 5


def race(extractor, contenders: list[str]) -> Engine:
    """The faster of the CPU engines that pass their check, timed here on this model
    (:func:`throughput`); the ranking differs between processors and models, so it is measured, not
    assumed, and recorded for this processor (:func:`processor_id`). TensorFlow, with a warning,
    when none passes."""
    ready, refusals = {}, []
    for name in contenders:
        try:
            ready[name] = _checked_export(extractor, name, "float32")
        except EngineError as error:
            refusals.append(str(error))
    if not ready:
        warnings.warn(f"{'; '.join(refusals)}; using tensorflow instead", RuntimeWarning, stacklevel=3)
        return tensorflow_engine(extractor.model)
    speeds = throughput(ready, extractor.input_size)
    fastest = max(speeds, key=speeds.get)
    engine_cache.remember_fastest(extractor, engine_cache.export_path(extractor), "float32", processor_id(), fastest,
                                  speeds)
    return ready[fastest]


def throughput(ready: dict, size: int) -> dict:
    """Images per second of each engine on a probe batch: one warm-up call each, then
    :data:`RACE_ROUNDS` rounds of alternating calls, the fastest of each engine's. The race is
    run once and its outcome kept, so it must not be decided by a moment when something else
    ran on the machine: another process only ever slows a call down, and the fastest call is
    the one it disturbed least."""
    import time

    pixels = np.round(probe_pixels(size, RACE_IMAGES)).astype(np.uint8)  # what the pipeline hands over
    seconds: dict = {name: [] for name in ready}
    for name, candidate in ready.items():
        candidate.run(pixels)
    for _ in range(RACE_ROUNDS):
        for name, candidate in ready.items():
            began = time.perf_counter()
            candidate.run(pixels)
            seconds[name].append(time.perf_counter() - began)
    return {name: RACE_IMAGES / min(times) for name, times in seconds.items()}


@functools.cache
def processor_id() -> str:
    """This processor's model name and the vector flags that decide engine speed, as a short
    digest: a recorded race holds only where it was run (a featcache home may be shared)."""
    import hashlib

    flags = sorted(flag for flag in _cpu_flags() if flag.startswith(("avx", "amx", "fma", "sse4")))
    return hashlib.sha256(" ".join([_cpu_field("model name"), *flags]).encode()).hexdigest()[:12]


def cached_engine(exported: engine_cache.Exported, engine: str = "auto", precision: str = "float32") -> Engine:
    """The engine for a cached export, built from its ONNX file alone (no TensorFlow), with the
    deviation its recorded check measured; an :class:`EngineError` when no check of that engine
    at that precision still holds (:meth:`featcache.engine_cache.Exported.check`)."""
    name = choose_engine(engine, precision)
    found = exported.check(name, precision) if name in CPU_ENGINES and _installed(name) else None
    if found is None:
        raise EngineError(f"no check of {name} at {precision} is recorded for {exported.onnx.name}")
    return replace(exported_engine(name, exported.onnx, precision), deviation=float(found["deviation"]))


def exported_engine(name: str, onnx: Path, precision: str = "float32") -> Engine:
    """A CPU engine on an ONNX file, unchecked; an :class:`EngineError` if the library cannot load it."""
    if precision != "float32" and name != "openvino":
        raise EngineError(f"--engine {name} runs float32 only")
    try:
        return openvino_engine(onnx, precision) if name == "openvino" else onnxruntime_engine(onnx)
    except Exception as error:  # the library's own errors, whatever their class
        raise EngineError(f"{name} cannot load {onnx.name} ({one_line(error, 200)}); use --engine tensorflow") \
            from error


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

    gpus = tf.config.list_logical_devices("GPU")
    return Engine("tensorflow", tf.__version__, run, device=gpus[0].name if gpus else "CPU")


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


def correlation(features: np.ndarray, reference: np.ndarray) -> float:
    """Pearson correlation of every feature value with the reference's (1 for constant equal arrays)."""
    a, b = np.ravel(np.asarray(features, np.float64)), np.ravel(np.asarray(reference, np.float64))
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def checked(candidate: Engine, model, size: int, precision: str = "float32") -> Engine:
    """``candidate`` with its measured deviation, if its probe features agree with the model's
    float32 features within :data:`AGREEMENT` for ``precision`` (and, for bf16, correlate by at
    least :data:`BF16_CORRELATION`)."""
    probe = probe_pixels(size)
    reference = np.asarray(model(probe, training=False), dtype=np.float64)
    try:
        features = candidate.run(probe)
    except Exception as error:  # the library's own errors, whatever their class
        raise EngineError(f"{candidate.name} cannot run the exported model ({one_line(error, 200)}); use --engine "
                          "tensorflow") from error
    deviation, bound = relative_deviation(features, reference), AGREEMENT[precision]
    if not deviation <= bound:
        raise EngineError(f"{candidate.name} {precision} features differ from tensorflow's float32 by {deviation:.2g} "
                          f"(relative) on the probe batch, more than {bound:g}; use --engine tensorflow")
    agreement = correlation(features, reference) if precision == "bf16" else 1.0
    if not agreement >= BF16_CORRELATION:
        raise EngineError(f"{candidate.name} bf16 features correlate {agreement:.4f} with "
                          f"tensorflow's float32 on the probe batch, less than {BF16_CORRELATION}; use --precision float32")
    return replace(candidate, deviation=deviation)


def engine_threads() -> int:
    """Threads for a CPU engine: ``$FEATCACHE_THREADS`` when set (a Ray worker's or a Slurm
    task's share of the machine), else every core: the model is the bulk of the work, decoding a small
    part (benchmarks/results/extract_speed.md, "decode alone")."""
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


def openvino_engine(onnx_file: Path, precision: str = "float32") -> Engine:
    """OpenVINO on the CPU in float32 or bfloat16 (``precision``; asked explicitly, as OpenVINO's
    own default on processors with bfloat16 units is bfloat16), with :func:`engine_threads`
    threads, pinned to cores only when that is all of them. uint8 batches (the pipeline's) go
    in as they are, converted to float32 inside the compiled graph (exact, and no float32 copy
    of every batch); other batches as float32. Compiled models are cached in
    :func:`featcache.engine_cache.openvino_cache_dir`."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    core = ov.Core()
    threads = engine_threads()
    # OpenVINO pins its threads to the first cores: two 1-thread workers on 2 cores would then
    # share one core. Pin only when given every core.
    config = {"INFERENCE_PRECISION_HINT": {"float32": "f32", "bf16": "bf16"}[precision],
              "INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": threads >= (os.cpu_count() or 1),
              "CACHE_DIR": str(engine_cache.openvino_cache_dir())}
    float_model = core.compile_model(str(onnx_file), "CPU", config)
    byte_input = PrePostProcessor(core.read_model(str(onnx_file)))
    byte_input.input().tensor().set_element_type(ov.Type.u8)
    byte_input.input().preprocess().convert_element_type(ov.Type.f32)
    byte_model = core.compile_model(byte_input.build(), "CPU", config)
    requests = {np.dtype(np.uint8): (byte_model, byte_model.create_infer_request()),
                np.dtype(np.float32): (float_model, float_model.create_infer_request())}

    def run(pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels)
        compiled, request = requests.get(pixels.dtype, requests[np.dtype(np.float32)])
        outputs = request.infer([np.ascontiguousarray(pixels, dtype=pixels.dtype if pixels.dtype in requests
                                                      else np.float32)])
        return np.array(outputs[compiled.output(0)], dtype=np.float32)

    return Engine("openvino", ov.__version__, run)
