"""Features computed in bfloat16: do the recipes' heads score the same, and how much sooner?

Extracts every group and view of a recipe twice from ../shared's AffectNet subset, once
computed in float32 and once with ``precision="bf16"`` (OpenVINO's bfloat16 inference; each a
cache of its own, every engine already exported and checked so that both times are the
extraction itself), then fits the recipe's heads on ``--splits`` stored splits (seeds
0..splits-1) of each cache and compares their test figures with the bar of ``--tolerance``.
Needs a processor with bfloat16 units (AVX512-BF16 or AMX).

    python benchmarks/bench_bf16.py [--recipe affect] [--splits 5] [--work DIR]
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

from _common import SUBSET, linked_folder, write_results  # noqa: E402
from bench_float16 import FIGURES, scores  # noqa: E402
from featcache.engines import bf16_supported  # noqa: E402
from featcache.recipe import RECIPES, prepare  # noqa: E402

TOLERANCE = 0.005
PRECISIONS = ("float32", "bf16")


def warm_engines(recipe, work: Path) -> None:
    """Export and check every engine of the recipe once (on a few faces), so that the timed
    extractions are extraction alone."""
    folder = linked_folder(8)
    for precision in PRECISIONS:
        prepare(folder, work / f"warm-{precision}.features.h5", recipe, precision=precision)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="affect", choices=sorted(RECIPES))
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument("--work", type=Path, default=None, help="Folder for the caches (default: a temporary one).")
    args = parser.parse_args()
    if not bf16_supported():
        sys.exit("this processor has no bfloat16 units (avx512_bf16 or amx_bf16): nothing to compare")
    recipe = RECIPES[args.recipe]
    work = args.work or Path(tempfile.mkdtemp(prefix="featcache-bf16-"))
    warm_engines(recipe, work)
    measured = {}
    for precision in PRECISIONS:
        cache = work / f"{precision}.features.h5"
        began = time.perf_counter()
        keys = prepare(SUBSET, cache, recipe, precision=precision)
        measured[precision] = {"keys": keys, "extract_s": time.perf_counter() - began,
                               "rows": scores(cache, keys, recipe, args.splits)}
        print(precision, f"{measured[precision]['extract_s']:.0f} s", flush=True)
    comparison = []
    for full, half in zip(measured["float32"]["rows"], measured["bf16"]["rows"]):
        for name in FIGURES[full["task"]]:
            comparison.append({"split": full["split"], "task": full["task"], "head": full["head"], "figure": name,
                               "float32": full[name], "bf16": half[name], "difference": half[name] - full[name]})
    mean_difference = {}
    for task, names in FIGURES.items():
        for name in names:
            rows = [row for row in comparison if row["task"] == task and row["figure"] == name]
            mean_difference[name] = float(np.mean([r["bf16"] for r in rows]) - np.mean([r["float32"] for r in rows]))
    guarded = ("accuracy", "ccc_valence", "ccc_arousal")
    within = all(abs(mean_difference[name]) <= args.tolerance for name in guarded)
    speedup = measured["float32"]["extract_s"] / measured["bf16"]["extract_s"]
    payload = {"recipe": recipe.name, "splits": args.splits, "tolerance": args.tolerance,
               "mean_difference": mean_difference, "within_tolerance": within, "speedup": speedup,
               "caches": {p: {k: v for k, v in m.items() if k != "rows"} for p, m in measured.items()},
               "comparison": comparison}
    lines = [f"# Features computed in bfloat16 vs float32: recipe `{recipe.name}` on the AffectNet subset\n",
             f"Each cache holds every group and view of the recipe (3,999 faces), extracted with every engine "
             f"already exported and checked; heads {recipe.classify[0]} and {recipe.regress[0]} fitted on "
             f"{args.splits} stored splits (70/15/15, seeds 0..{args.splits - 1}) of each cache and scored on "
             "their test parts.\n",
             "| precision | extraction | speed-up |", "|---|---:|---:|"]
    for precision, m in measured.items():
        lines.append(f"| {precision} | {m['extract_s']:.0f} s | "
                     f"{measured['float32']['extract_s'] / m['extract_s']:.2f}x |")
    lines += ["", "| figure | float32 (mean of splits) | bf16 (mean of splits) | mean difference | "
              "largest difference, any split |", "|---|---:|---:|---:|---:|"]
    for task, names in FIGURES.items():
        for name in names:
            rows = [row for row in comparison if row["task"] == task and row["figure"] == name]
            lines.append(f"| {name} | {np.mean([r['float32'] for r in rows]):.4f} | "
                         f"{np.mean([r['bf16'] for r in rows]):.4f} | {mean_difference[name]:+.4f} | "
                         f"{max(abs(r['difference']) for r in rows):.4f} |")
    lines.append(f"\nAccuracy and both CCCs within {args.tolerance} of float32 (means over the splits): "
                 f"**{'yes' if within else 'no'}**.\n")
    write_results(f"bf16_{recipe.name.replace('-', '_')}", payload, "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
