"""Prediction on new images against extraction of the same backbones and views, side by side in one run.

For each recipe (``fer-views``: one face network, 8 views; ``affect``: four face networks, 8
views each), on the first ``--images`` faces of ../shared's AffectNet subset (linked into a
temporary AffectNet-layout folder, nothing copied):

* a model is made once: ``featcache.run_recipe`` (extraction, heads fitted on the cache's split);
* extract: every ``featcache.extract`` of the recipe into a fresh cache (decode, resize, each
  backbone over every view, HDF5 write), summed over the backbones;
* predict: ``featcache.load_model`` + ``Model.predict_images(folder, out=CSV)`` (decode once,
  every backbone over every view, views averaged, heads, CSV rows);

interleaved, ``--repeats`` times; images per second are medians, and the ratio is
predict / extract. The loop alone is also timed (extraction's loop seconds; prediction on a
model already loaded, engines built). Then peak resident memory of ``featcache predict`` in
a fresh process on ``--images`` and on all images (os.wait4's ru_maxrss of that process):
prediction streams, so it should not grow with the number of images.

    python benchmarks/bench_predict.py [--images 1000] [--repeats 3] [--recipes fer-views,affect]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))
import featcache  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.model import load_model  # noqa: E402
from featcache.recipe import RECIPES, run_recipe  # noqa: E402
from featcache.store import delete_cache  # noqa: E402

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "affectnet-subset"


def linked_subset(n: int, folder: Path) -> Path:
    """An AffectNet-layout folder of links to the first n faces and their annotations."""
    images, annotations = folder / "images", folder / "annotations"
    images.mkdir(parents=True)
    annotations.mkdir()
    for image in sorted((SUBSET / "images").glob("*.jpg"), key=lambda p: int(p.stem))[:n]:
        (images / image.name).symlink_to(image)
        for kind in ("exp", "val", "aro"):
            name = f"{image.stem}_{kind}.npy"
            (annotations / name).symlink_to(SUBSET / "annotations" / name)
    return folder


def extract_all(recipe, data: Path, cache: Path) -> tuple[float, float]:
    """(wall seconds, loop seconds) of extracting every group and view of the recipe into a fresh cache."""
    began, loop = time.perf_counter(), 0.0
    for part in recipe.extractions:
        result = featcache.extract(data, part.backbone, cache, taps=list(part.taps), image_size=part.image_size,
                                   flip=recipe.view == "mean", crops=part.crops if recipe.view == "mean" else ())
        loop += result.seconds
    wall = time.perf_counter() - began
    delete_cache(cache)
    return wall, loop


def predict_all(model_folder: Path, data: Path, out: Path) -> float:
    """Wall seconds of loading the model and predicting every image of ``data`` into a CSV."""
    began = time.perf_counter()
    load_model(model_folder).predict_images(data, out)
    return time.perf_counter() - began


def peak_memory(model_folder: Path, data: Path, out: Path) -> tuple[float, float]:
    """(peak resident MiB, seconds) of ``featcache predict`` in a process of its own."""
    command = [str(Path(sys.executable).with_name("featcache")), "predict", "--model", str(model_folder),
               "--data", str(data), "--out", str(out), "--no-progress"]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    if status != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:]}")
    return usage.ru_maxrss / 1024, seconds


def bench(name: str, n: int, repeats: int, work: Path) -> dict:
    recipe = RECIPES[name]
    data = linked_subset(n, work / f"{name}-{n}")
    run_recipe(data, work / f"{name}-recipe", recipe=recipe)  # the model (and the ONNX exports, cached)
    model = work / f"{name}-recipe" / "model"
    runs = []
    for repeat in range(repeats):
        extract_wall, extract_loop = extract_all(recipe, data, work / f"{name}-timing.h5")
        predict_wall = predict_all(model, data, work / "predictions.csv")
        loaded = load_model(model)
        loaded.predict_images(sorted((data / "images").iterdir())[:32])  # engines built and run once
        began = time.perf_counter()
        loaded.predict_images(data, work / "predictions.csv")
        predict_loop = time.perf_counter() - began
        runs.append({"extract_s": extract_wall, "extract_loop_s": extract_loop, "predict_s": predict_wall,
                     "predict_loop_s": predict_loop})
        print(f"{name} run {repeat + 1}: extract {n / extract_wall:.1f} img/s (loop {n / extract_loop:.1f}), "
              f"predict {n / predict_wall:.1f} img/s (loop {n / predict_loop:.1f})", flush=True)
    everything = len(list((SUBSET / "images").glob("*.jpg")))
    all_data = linked_subset(everything, work / f"{name}-all")
    memory = {}
    for count, folder in ((n, data), (everything, all_data)):
        mib, seconds = peak_memory(model, folder, work / "memory.csv")
        memory[count] = {"peak_rss_mib": mib, "seconds": seconds}
        print(f"{name} predict on {count} images in its own process: peak RSS {mib:.0f} MiB, {seconds:.0f} s",
              flush=True)
    median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    return {
        "recipe": name, "images": n, "runs": runs,
        "extract_img_s": n / median["extract_s"], "predict_img_s": n / median["predict_s"],
        "ratio": median["extract_s"] / median["predict_s"],
        "extract_loop_img_s": n / median["extract_loop_s"], "predict_loop_img_s": n / median["predict_loop_s"],
        "loop_ratio": median["extract_loop_s"] / median["predict_loop_s"],
        "memory": memory, "memory_growth": memory[everything]["peak_rss_mib"] / memory[n]["peak_rss_mib"] - 1,
        "views": 8, "backbones": [part.backbone for part in RECIPES[name].extractions],
    }


def markdown(results: list[dict]) -> str:
    lines = ["| recipe | backbones x views | extract img/s | predict img/s | ratio | loops: extract / predict "
             "img/s (ratio) | peak RSS, 1,000 -> all images | growth |",
             "|---|---|---:|---:|---:|---|---|---:|"]
    for r in results:
        counts = sorted(r["memory"], key=int)
        rss = " -> ".join(f"{r['memory'][c]['peak_rss_mib']:,.0f} MiB" for c in counts)
        lines.append(f"| {r['recipe']} | {len(r['backbones'])} x {r['views']} | {r['extract_img_s']:.1f} | "
                     f"{r['predict_img_s']:.1f} | **{r['ratio']:.2f}x** | {r['extract_loop_img_s']:.1f} / "
                     f"{r['predict_loop_img_s']:.1f} ({r['loop_ratio']:.2f}x) | {rss} ({', '.join(map(str, counts))}) "
                     f"| {100 * r['memory_growth']:+.1f}% |")
    return ("Prediction against extraction of the same backbones and views (medians of the interleaved runs; "
            "whole calls: extract = every `featcache.extract` of the recipe, predict = `load_model` + "
            "`predict_images` to a CSV).\n\n" + "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", default="fer-views,affect")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="featcache-bench-predict-"))
    try:
        results = [bench(name, args.images, args.repeats, work) for name in args.recipes.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    json_path, md_path = write_results("predict_speed", {"results": results}, markdown(results))
    print(markdown(results))
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
