"""Features stored in half precision: do the recipes' heads score the same?

Extracts every group and view of a recipe twice from ../shared's AffectNet subset, once
stored as float32 and once with ``dtype="float16"`` (each a cache of its own), then fits
the recipe's heads (cross-validated logistic regression, ridge) on ``--splits`` stored
splits (seeds 0..splits-1) of each cache and compares their test figures. Also records
the disk each cache takes.

    python benchmarks/bench_float16.py [--recipe affect] [--splits 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from _common import write_results  # noqa: E402
from featcache.experiment import run_head  # noqa: E402
from featcache.recipe import RECIPES, prepare, recipe_features  # noqa: E402
from featcache.splits import cached_split  # noqa: E402
from featcache.store import data_folder  # noqa: E402

SUBSET = Path(__file__).resolve().parents[2] / "shared" / "data" / "affectnet-subset"
FIGURES = {"classify": ("accuracy", "f1_macro", "kappa"), "regress": ("ccc_valence", "ccc_arousal")}
TOLERANCE = 0.003


def cache_bytes(cache: Path) -> int:
    return cache.stat().st_size + sum(p.stat().st_size for p in data_folder(cache).rglob("*.h5"))


def figures(report: dict, task: str) -> dict:
    """The compared figures of one head's test report."""
    if task == "classify":
        return {"accuracy": report["accuracy"], "f1_macro": report["f1_macro"], "kappa": report["cohen_kappa"]}
    return {"ccc_valence": report["valence"]["ccc"], "ccc_arousal": report["arousal"]["ccc"]}


def scores(cache: Path, keys: list[str], recipe, splits: int) -> list[dict]:
    features = recipe_features(cache, keys, recipe)
    rows = []
    for seed in range(splits):
        parts = cached_split(cache, f"seed{seed}", seed=seed)
        for task, (head, params) in (("classify", recipe.classify), ("regress", recipe.regress)):
            (result,) = run_head(features, parts, head, task, params=dict(params), seed=seed)
            rows.append({"split": seed, "task": task, "head": head, **figures(result["report"], task)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="affect", choices=sorted(RECIPES))
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the caches (default: a temporary one).")
    args = parser.parse_args()
    recipe = RECIPES[args.recipe]
    work = args.work or Path(tempfile.mkdtemp(prefix="featcache-float16-"))
    measured = {}
    for dtype in ("float32", "float16"):
        cache = work / f"{dtype}.features.h5"
        began = time.perf_counter()
        keys = prepare(SUBSET, cache, recipe, dtype=dtype)
        measured[dtype] = {"keys": keys, "extract_s": time.perf_counter() - began, "bytes": cache_bytes(cache),
                           "rows": scores(cache, keys, recipe, args.splits)}
        print(dtype, measured[dtype]["bytes"] / 2**20, "MiB", flush=True)
    comparison = []
    for full, half in zip(measured["float32"]["rows"], measured["float16"]["rows"]):
        for name in FIGURES[full["task"]]:
            comparison.append({"split": full["split"], "task": full["task"], "head": full["head"], "figure": name,
                               "float32": full[name], "float16": half[name], "difference": half[name] - full[name]})
    largest = max(abs(row["difference"]) for row in comparison)
    payload = {"recipe": recipe.name, "splits": args.splits, "tolerance": TOLERANCE, "largest_difference": largest,
               "within_tolerance": largest <= TOLERANCE,
               "caches": {dtype: {k: v for k, v in m.items() if k != "rows"} for dtype, m in measured.items()},
               "comparison": comparison}
    lines = [f"# Features stored as float16 vs float32: recipe `{recipe.name}` on the AffectNet subset\n",
             f"Each cache holds every group and view of the recipe; heads {recipe.classify[0]} and "
             f"{recipe.regress[0]} fitted on {args.splits} stored splits (70/15/15, seeds 0..{args.splits - 1}) "
             "of each cache and scored on their test parts.\n",
             "| cache | disk | extraction |", "|---|---:|---:|"]
    for dtype, m in measured.items():
        lines.append(f"| {dtype} | {m['bytes'] / 2**20:,.1f} MiB | {m['extract_s']:.0f} s |")
    lines += ["", "| figure | float32 (mean of splits) | float16 (mean of splits) | largest difference, any split |",
              "|---|---:|---:|---:|"]
    for task, names in FIGURES.items():
        for name in names:
            rows = [row for row in comparison if row["task"] == task and row["figure"] == name]
            lines.append(f"| {name} | {np.mean([r['float32'] for r in rows]):.4f} | "
                         f"{np.mean([r['float16'] for r in rows]):.4f} | "
                         f"{max(abs(r['difference']) for r in rows):.4f} |")
    lines.append(f"\nLargest difference over every figure and split: **{largest:.4f}** "
                 f"(bar: {TOLERANCE}).\n")
    write_results(f"float16_{recipe.name.replace('-', '_')}", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
