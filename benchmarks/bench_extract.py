"""Extraction speed: featcache extract against what users do today, side by side in one run.

For each backbone (random weights: speed does not depend on their values), on the same
folder of JPEGs (the first ``--images`` faces of ../shared's AffectNet subset, linked
into a temporary folder):

* baseline: ``keras.utils.image_dataset_from_directory`` + the family's preprocessing +
  ``model.predict`` on ``keras.applications.<Model>(include_top=False, pooling="avg")``
  (backbones outside Keras Applications: featcache's own Keras feature model);
* featcache: ``featcache.extract`` into a fresh cache (decode, resize, model, HDF5 write)
  with its default engine (``auto``: on a CPU with both installed, whichever of ONNX Runtime
  and OpenVINO won featcache's race on this processor and model), in float32 and, on
  processors with bfloat16 units, with ``precision="bf16"`` (OpenVINO), and then also with
  OpenVINO in float32 when ``auto`` chose ONNX Runtime, so that bf16 is compared both with the
  default and with its own engine's float32;
* model only: each engine (and OpenVINO in bf16) on the same batches already decoded in
  memory (as float32, the model's input), timed from the state featcache's loop starts in (engine built and
  probe-checked, not yet run at the batch shape), so both pay the engine's first-call cost once;
* decode only: featcache's input pipeline without a model.

Reports images per second (medians of ``--repeats`` interleaved runs), the ratio, the
pipeline efficiency (featcache's extraction loop over its engine's model-only speed), and
the achieved GFLOP/s as a fraction of a 4096 x 4096 float32 matmul measured in the same
run. The one-time ONNX export of each model is made before timing (it is cached).

    python benchmarks/bench_extract.py [--images 1024] [--repeats 3] [--backbones mobilenet_v2,...]

Every engine is exported and checked before the timings (featcache caches both), so the
whole-call figures are those of a run whose engine is cached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import featcache  # noqa: E402
from _common import SUBSET, linked_folder, write_results  # noqa: E402
from backbone_table import gflops  # noqa: E402
from featcache.backbones.keras_apps import app_for  # noqa: E402
from featcache.backbones.lite import build_efficientnet_lite  # noqa: E402
from featcache.backbones.preprocessing import apply_mode  # noqa: E402
from featcache.engines import available_engines, bf16_supported, build_engine  # noqa: E402

IMAGES = SUBSET / "images"
BATCH = 32
VIEWS = 8  # the recipes' views per image


def matmul_gflops(size: int = 4096, repeats: int = 5) -> float:
    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    tf.linalg.matmul(a, b).numpy()
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        times.append(time.perf_counter() - began)
    return 2 * size**3 / statistics.median(times) / 1e9


def baseline_model(name: str, size: int) -> tuple[keras.Model, bool]:
    """(the model users would build, whether the family's preprocessing must be mapped over the images)."""
    if name.startswith("efficientnet_lite"):
        return build_efficientnet_lite(int(name[-1]), (size, size, 3), pooling="avg"), True
    app = app_for(name)
    if app is None:  # not a Keras application: featcache's Keras feature model, preprocessing inside
        return featcache.load_backbone(name, weights=None).model, False
    return getattr(keras.applications, app.constructor)(include_top=False, weights=None, pooling="avg",
                                                        input_shape=(size, size, 3)), True


def run_baseline(name: str, folder: Path) -> float:
    """img/s of what a user writes today, model building included."""
    spec = featcache.backbones.get_spec(name)
    began = time.perf_counter()
    model, preprocess = baseline_model(name, spec.input_size)
    dataset = keras.utils.image_dataset_from_directory(folder, labels=None, image_size=(spec.input_size,) * 2,
                                                       batch_size=BATCH, shuffle=False, verbose=False)
    if preprocess:
        dataset = dataset.map(lambda x: apply_mode(x, spec.preprocessing))
    features = model.predict(dataset, verbose=0)
    return len(features) / (time.perf_counter() - began)


def run_featcache(name: str, folder: Path, work: Path, precision: str = "float32", engine: str = "auto"
                  ) -> tuple[float, float, featcache.ExtractResult]:
    """(img/s of the whole call, img/s of its extraction loop, result), model building included."""
    out = work / f"{name}-{precision}.h5"
    out.unlink(missing_ok=True)
    began = time.perf_counter()
    result = featcache.extract(folder, name, out, weights=None, batch_size=BATCH, precision=precision, engine=engine)
    return result.images / (time.perf_counter() - began), result.images_per_second, result


def pipeline_batches(folder: Path, size: int):
    from featcache.pipeline import image_batches

    paths = [str(p) for p in sorted(folder.rglob("*.jpg"))]
    return image_batches(paths, range(len(paths)), size, BATCH)


def decoded_batches(folder: Path, size: int) -> list[np.ndarray]:
    """The pipeline's batches as the model's float32 input, so that "engine alone" is the model
    alone: converting the pipeline's uint8 counts against featcache's loop, not the engine."""
    return [pixels.astype(np.float32) for _, pixels in pipeline_batches(folder, size)]


def run_decode_only(folder: Path, size: int) -> float:
    """img/s of featcache's input pipeline alone (read, decode, resize, batch; no model)."""
    began = time.perf_counter()
    images = sum(len(indices) for indices, _ in pipeline_batches(folder, size))
    return images / (time.perf_counter() - began)


def stacked_views(batches: list[np.ndarray]) -> list[np.ndarray]:
    """Batches of :data:`VIEWS` views of the same images in one call (as if every view of a batch
    went to the engine at once), as many images in all as ``VIEWS`` separate calls would run."""
    return [np.concatenate([pixels] * VIEWS) for pixels in batches[:max(1, len(batches) // VIEWS)]]


def run_model_only(extractor, engine: str, batches: list[np.ndarray], precision: str = "float32") -> float:
    """img/s of one engine on batches already decoded in memory, from the state featcache's loop
    starts in: the engine just built and probe-checked, its first call at the batch shape
    (OpenVINO compiles for a new shape then: ~90 ms for MobileNetV2) inside the timing."""
    runner = build_engine(extractor, engine, precision)
    began = time.perf_counter()
    for pixels in batches:
        runner.run(pixels)
    return sum(len(b) for b in batches) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbones", default="mobilenet_v2,efficientnet_b0,efficientnet_lite0,densenet121,resnet50,"
                                               "hse_faceres,fer_minixception")
    args = parser.parse_args()
    if not IMAGES.is_dir():
        sys.exit(f"{IMAGES}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    folder = linked_folder(args.images)
    work = Path(tempfile.mkdtemp(prefix="featcache-bench-out-"))
    engines = available_engines()
    bf16 = bf16_supported() and "openvino" in engines
    peak = matmul_gflops()
    print(f"4096^2 float32 matmul: {peak:.0f} GFLOP/s; engines {engines}", flush=True)
    rows = []
    for name in args.backbones.split(","):
        extractor = featcache.load_backbone(name, weights=None)
        batches = decoded_batches(folder, extractor.input_size)
        default = build_engine(extractor, "auto").name  # the one-time export, checks and race, outside the timings
        precisions = ["float32", "bf16"] if bf16 else ["float32"]
        if bf16:
            build_engine(extractor, "openvino", "bf16")
        stacked = stacked_views(batches)
        runs = {"baseline": [], "decode_only": [], **{f"model_only_{e}": [] for e in engines}}
        for _ in range(args.repeats):  # interleaved, so load changes hit every method alike
            runs["baseline"].append(run_baseline(name, folder))
            for precision in precisions:
                whole, loop, result = run_featcache(name, folder, work, precision)
                suffix = "" if precision == "float32" else "_bf16"
                runs.setdefault(f"featcache{suffix}", []).append(whole)
                runs.setdefault(f"featcache{suffix}_loop", []).append(loop)
                engine = result.engine
                runs.setdefault(f"views_stacked_{engine}{suffix}", []).append(
                    run_model_only(extractor, engine, stacked, precision))
                runs.setdefault(f"views_separate_{engine}{suffix}", []).append(
                    run_model_only(extractor, engine, batches[:len(stacked) * VIEWS], precision))
                if precision == "bf16":
                    runs.setdefault("model_only_openvino_bf16", []).append(
                        run_model_only(extractor, "openvino", batches, "bf16"))
            if bf16 and default != "openvino":  # bf16's own engine in float32, beside auto's
                runs.setdefault("featcache_openvino_loop", []).append(
                    run_featcache(name, folder, work, "float32", "openvino")[1])
            runs["decode_only"].append(run_decode_only(folder, extractor.input_size))
            for engine in engines:
                runs[f"model_only_{engine}"].append(run_model_only(extractor, engine, batches))
            keras.backend.clear_session()
        med = {key: statistics.median(values) for key, values in runs.items()}
        per_image = gflops(extractor.model, extractor.input_size)
        model_only = med[f"model_only_{default}"]
        row = {
            "backbone": name, "images": args.images, "engine": default, "baseline_img_s": med["baseline"],
            "featcache_img_s": med["featcache"], "ratio": med["featcache"] / med["baseline"],
            "featcache_loop_img_s": med["featcache_loop"], "loop_ratio": med["featcache_loop"] / med["baseline"],
            "model_only_img_s": model_only, "pipeline_efficiency": med["featcache_loop"] / model_only,
            "decode_only_img_s": med["decode_only"],
            **{f"model_only_{e}_img_s": med[f"model_only_{e}"] for e in engines},
            "gflops_per_image": per_image, "achieved_gflop_s": per_image * model_only,
            "fraction_of_matmul": per_image * model_only / peak,
            "views_stacked_over_separate": med[f"views_stacked_{default}"] / med[f"views_separate_{default}"],
            "runs": runs,
        }
        if bf16:
            row.update({
                "featcache_bf16_img_s": med["featcache_bf16"], "featcache_bf16_loop_img_s": med["featcache_bf16_loop"],
                "bf16_loop_speedup": med["featcache_bf16_loop"] / med["featcache_loop"],
                "featcache_openvino_loop_img_s": med.get("featcache_openvino_loop", med["featcache_loop"]),
                "bf16_loop_speedup_over_openvino": med["featcache_bf16_loop"] / med.get("featcache_openvino_loop",
                                                                                      med["featcache_loop"]),
                "model_only_openvino_bf16_img_s": med["model_only_openvino_bf16"],
                "bf16_engine_speedup": med["model_only_openvino_bf16"] / med["model_only_openvino"],
                "bf16_views_stacked_over_separate": med["views_stacked_openvino_bf16"] / med["views_separate_openvino_bf16"],
            })
        rows.append(row)
        print(f"{name:20s} baseline {row['baseline_img_s']:6.1f}  featcache {row['featcache_img_s']:6.1f} img/s "
              f"(x{row['ratio']:.2f}); loop {row['featcache_loop_img_s']:6.1f}, {default} alone "
              f"{model_only:6.1f} (efficiency {row['pipeline_efficiency']:.2f}); decode alone "
              f"{row['decode_only_img_s']:.0f}; "
              f"{row['achieved_gflop_s']:.0f} GFLOP/s = {row['fraction_of_matmul']:.0%} of matmul; "
              + ", ".join(f"{e} {med[f'model_only_{e}']:.0f}" for e in engines)
              + (f"; bf16 loop {row['featcache_bf16_loop_img_s']:.1f} (x{row['bf16_loop_speedup']:.2f}; x{row['bf16_loop_speedup_over_openvino']:.2f} over openvino "
                 f"float32), engine "
                 f"x{row['bf16_engine_speedup']:.2f}" if bf16 else "")
              + f"; views stacked/separate x{row['views_stacked_over_separate']:.2f}", flush=True)
    table = [
        f"# Extraction speed: {args.images} AffectNet JPEGs (224 px), batch {BATCH}, random weights",
        "",
        f"Medians of {args.repeats} interleaved runs; 4096^2 float32 matmul in the same run: {peak:.0f} GFLOP/s. "
        "Baseline = `image_dataset_from_directory` + `model.predict`; featcache = `featcache.extract` with its "
        "default engine (`auto`; the engine column says which it ran). Both whole-call figures include building the model; the loop "
        "figure is featcache's extraction loop alone (decode, model, HDF5 write); efficiency = loop / the "
        "engine alone on the same batches already decoded (as float32: the pipeline hands over uint8, whose "
        "conversion counts against the loop); decode alone = the input pipeline without a model; GFLOP/s "
        "from the engine alone.",
        "",
        "| backbone | engine | baseline img/s | featcache img/s | ratio | loop img/s | loop ratio | engine alone "
        "img/s | efficiency | decode alone img/s | GFLOP/s | of matmul | "
        + " | ".join(f"{e} alone" for e in engines) + " |",
        "|---|---|" + "---:|" * (10 + len(engines)),
    ]
    table += [f"| {r['backbone']} | {r['engine']} | {r['baseline_img_s']:.1f} | {r['featcache_img_s']:.1f} | "
              f"{r['ratio']:.2f}x | {r['featcache_loop_img_s']:.1f} | {r['loop_ratio']:.2f}x | "
              f"{r['model_only_img_s']:.1f} | {r['pipeline_efficiency']:.2f} | {r['decode_only_img_s']:.0f} | "
              f"{r['achieved_gflop_s']:.0f} | "
              f"{r['fraction_of_matmul']:.0%} | " + " | ".join(f"{r[f'model_only_{e}_img_s']:.1f}" for e in engines)
              + " |" for r in rows]
    if bf16:
        table += [
            "", "## bfloat16 (`precision=\"bf16\"`, OpenVINO) against float32",
            "",
            "Same runs. loop = featcache's extraction loop (float32 with `auto`'s engine, and with OpenVINO "
            "where `auto` ran ONNX Runtime); engine alone = OpenVINO on the decoded batches; "
            f"views = {VIEWS} views of {BATCH} images in one call of {VIEWS * BATCH} against {VIEWS} calls of {BATCH} "
            "(engine alone).",
            "",
            "| backbone | featcache bf16 img/s | loop float32 (auto) img/s | loop float32 openvino img/s | "
            "loop bf16 img/s | loop bf16 / float32 auto | loop bf16 / float32 openvino | "
            "openvino float32 alone | openvino bf16 alone | bf16 / float32 alone | views stacked / separate, "
            "float32 | bf16 |",
            "|---|" + "---:|" * 11,
        ]
        table += [f"| {r['backbone']} | {r['featcache_bf16_img_s']:.1f} | {r['featcache_loop_img_s']:.1f} | "
                  f"{r['featcache_openvino_loop_img_s']:.1f} | {r['featcache_bf16_loop_img_s']:.1f} | "
                  f"{r['bf16_loop_speedup']:.2f}x | {r['bf16_loop_speedup_over_openvino']:.2f}x | "
                  f"{r['model_only_openvino_img_s']:.1f} | {r['model_only_openvino_bf16_img_s']:.1f} | "
                  f"{r['bf16_engine_speedup']:.2f}x | {r['views_stacked_over_separate']:.2f}x | "
                  f"{r['bf16_views_stacked_over_separate']:.2f}x |" for r in rows]
    else:
        table += ["", "bfloat16: not measured, this processor has no bfloat16 units (or OpenVINO is not installed)."]
    paths = write_results("extract_speed", {"matmul_gflop_s": peak, "batch_size": BATCH, "engines": engines,
                                            "bf16": bf16, "rows": rows},
                          "\n".join(table) + "\n")
    print("wrote", *paths)


if __name__ == "__main__":
    main()
