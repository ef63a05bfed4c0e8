"""The reference reports' protocol on the real AffectNet subset, with featcache.

Frozen backbones, every head, classification and valence/arousal regression, scored
on the 15% test part of featcache's stored split (stratified, byte-identical images
kept together). Backbones: mobilenet_v2 with the genuine ImageNet weights file in
``../shared/weights`` and the offline-pretrained efficientnet_lite0. Backbones whose
ImageNet weights cannot be had offline are listed as skipped, never run with random
weights as if pretrained. Writes ``results/affectnet_subset.{md,json}`` (beside the
reports' own numbers), the per-table CSVs and figures under ``results/affectnet_subset/``.

    python benchmarks/reproduce_reports.py [--work DIR] [--heads keras_dense,logistic,ridge,mlp,multitask]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import featcache  # noqa: E402
from _common import RESULTS, write_results  # noqa: E402
from featcache.plots import write_figures  # noqa: E402
from featcache.experiment import compare  # noqa: E402
from featcache.report import classification_rows, markdown_table, regression_rows, write_tables  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "affectnet-subset"
MOBILENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"

# The two reports' own figures (frozen backbone + dense head, 15% test split of this subset).
REPORTED = [
    {"Backbone": "mobilenet_v2 (report)", "Accuracy": 0.295, "CCC V": 0.19, "CCC A": 0.13},
    {"Backbone": "densenet121 (report)", "Accuracy": 0.338, "CCC V": None, "CCC A": None},
    {"Backbone": "resnet50 (report)", "Accuracy": 0.408, "CCC V": 0.434, "CCC A": 0.320},
]
SKIPPED = {
    "densenet121": "Keras ImageNet weights cannot be downloaded here and no weights file is available offline",
    "resnet50": "Keras ImageNet weights cannot be downloaded here and no weights file is available offline",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "benchmarks",
                        help="where the feature cache is kept (never inside the repository)")
    parser.add_argument("--heads", default="keras_dense,logistic,ridge,mlp,multitask")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")

    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "affectnet-subset.features.h5"
    extractions = {}
    for backbone, weights in (("mobilenet_v2", MOBILENET_WEIGHTS), ("efficientnet_lite0", "pretrained")):
        result = featcache.extract(DATA, backbone, cache, weights=weights, progress=True)
        print(result.summary(), flush=True)
        extractions[backbone] = {"group": result.group, "seconds": result.seconds,
                                 "images_per_second": result.images_per_second, "already_cached": not result.views}
    began = time.perf_counter()
    results = compare(cache, [], [h for h in args.heads.split(",") if h], "both",
                      groups=[e["group"] for e in extractions.values()], seed=args.seed)
    heads_seconds = time.perf_counter() - began

    folder = RESULTS / "affectnet_subset"
    tables = write_tables(results, folder, "tables")
    figures = write_figures(results, cache, folder)
    classification, regression = classification_rows(results), regression_rows(results)
    markdown = "\n".join([
        "# The reference reports' protocol on the real AffectNet subset (3,999 faces)",
        "",
        "Frozen backbone, features cached once; every head fitted on the train+validation parts (85%) of "
        "featcache's stored split and scored once on its 15% test part (600 faces, stratified, byte-identical "
        f"images kept together). All heads together took {heads_seconds:.0f} s to fit and score.",
        "",
        markdown_table(classification, "Classification"),
        markdown_table(regression, "Valence and arousal"),
        markdown_table(REPORTED, "The reports' own numbers (frozen backbone + dense head)"),
        "### Skipped",
        "",
        *[f"- `{name}`: {why}; not run with random weights as if pretrained." for name, why in SKIPPED.items()],
        "",
        "Figures: " + ", ".join(f"`{p.relative_to(RESULTS)}`" for p in figures)
        + " (the grid of test faces shows real AffectNet images: it stays on the machine, never committed).",
    ])
    payload = {"extractions": extractions, "classification": classification, "regression": regression,
               "reported": REPORTED, "skipped": SKIPPED, "heads_seconds": heads_seconds,
               "tables": [str(p.relative_to(RESULTS)) for p in tables.values()]}
    paths = write_results("affectnet_subset", json.loads(json.dumps(payload, default=float)), markdown)
    print(markdown)
    print("wrote", *paths)


if __name__ == "__main__":
    main()
