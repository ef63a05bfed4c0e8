"""Result quality on the real AffectNet subset: frozen features and light heads, 5 seeded splits.

Each configuration (feature groups, view, heads) is scored on 5 stratified 70/15/15 splits
(seeds 0-4, byte-identical images kept together, and record groups with ``--group-by`` or when
the cache has them). Heads train on the training and validation parts (85%), choose their
hyper-parameters by cross-validation inside that part only, and are scored once on the test
part. Reported: mean and standard deviation over the
splits of every classification and regression figure, the extraction time of the groups
used (once, from the cache) and the mean fit time, beside the reference reports and the
fine-tuned ResNet50. The recipe row is :data:`featcache.recipe.AFFECT`, exactly as
``featcache recipe`` runs it.

    python benchmarks/quality.py [--splits 5] [--work DIR] [--configs NAME,...] [--group-by SPEC]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

import featcache  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.experiment import run_head  # noqa: E402
from featcache.feature_sets import combine  # noqa: E402
from featcache.landmarks import add_landmark_group  # noqa: E402
from featcache.recipe import AFFECT, FER_VIEWS, Extraction, Recipe, recipe_views  # noqa: E402
from featcache.record_groups import group_ids  # noqa: E402
from featcache.splits import stratified_split  # noqa: E402
from featcache.store import open_cache  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "affectnet-subset"
WEIGHTS = {"mobilenet_v2": str(SHARED / "weights" / "mobilenet_v2_imagenet_notop.weights.h5")}
CLASSIFY = ("accuracy", "f1_macro", "cohen_kappa", "auc_roc", "auc_pr", "krippendorff_alpha")
REGRESS = ("rmse", "corr", "sagr", "ccc")
TUNED = (("logistic_cv", {}), ("ridge_cv", {"match_spread": True}))

MV2_LAST = Extraction("mobilenet_v2")
MV2_MID = Extraction("mobilenet_v2", ("block_13_expand_relu:2",))
LITE_MID = Extraction("efficientnet_lite0", ("block6a_expand_activation:2",))
FER = Extraction("fer_minixception", ("add_4:4",))
FER96 = Extraction("fer_minixception", ("add_3:4", "add_4:4"), 96)
HSE = Extraction("hse_faceres", ("conv_pw_11_relu:2",))
BIGX = Extraction("fer_bigxception", ("add_2_add:2",))
AGE_GENDER = Extraction("hse_agegender", ("conv_pw_11_relu:2",))
LANDMARKS = "landmarks"
ORIGINAL, MIRRORED = ("original",), ("original", "flip")  # views averaged


@dataclass(frozen=True)
class Config:
    name: str
    parts: tuple  # Extraction or LANDMARKS
    view: tuple  # the views averaged (each group contributes those it holds)
    classify: tuple
    regress: tuple
    ensemble: bool = False  # one member head per part (heads "ensemble" with blocks = the parts' widths)
    notes: str = field(default="", compare=False)


def recipe_config(recipe: Recipe) -> Config:
    return Config(f"recipe '{recipe.name}'", recipe.extractions + ((LANDMARKS,) if recipe.landmarks else ()),
                  recipe_views(recipe), recipe.classify, recipe.regress, notes=recipe.notes)


CONFIGS = [
    Config("reports' protocol: mobilenet_v2 last layer, dense head", (MV2_LAST,), ORIGINAL,
           ("keras_dense", {}), ("keras_dense", {})),
    Config("mobilenet_v2 block_13_expand_relu:2, tuned linear", (MV2_MID,), MIRRORED, *TUNED),
    Config("efficientnet_lite0 block6a_expand_activation:2, tuned linear", (LITE_MID,), MIRRORED, *TUNED),
    Config("landmark geometry, tuned linear", (LANDMARKS,), ORIGINAL, *TUNED),
    Config("fer_minixception add_4:4, original view, tuned linear without spread matching", (FER,), ORIGINAL,
           ("logistic_cv", {}), ("ridge_cv", {})),
    Config("fer_minixception add_4:4, original and flipped views averaged, tuned linear", (FER,), MIRRORED,
           ("logistic_cv", {}), ("ridge_cv", {"match_spread": True})),
    recipe_config(AFFECT),
    recipe_config(FER_VIEWS),
    Config("hse_faceres conv_pw_11_relu:2, original and flipped views averaged, tuned linear", (HSE,), MIRRORED,
           *TUNED),
    Config("ensemble: fer add_4:4 + fer 96 px add_3:4,add_4:4 + efficientnet_lite0 block6a:2", (FER, FER96, LITE_MID),
           MIRRORED, ("ensemble", {}), ("ensemble", {"match_spread": True}), ensemble=True),
    Config("fer_bigxception add_2_add:2, original and flipped views averaged, tuned linear", (BIGX,), MIRRORED,
           *TUNED),
    Config("hse_agegender conv_pw_11_relu:2, original and flipped views averaged, tuned linear", (AGE_GENDER,),
           MIRRORED, *TUNED),
]
REFERENCES = [
    {"name": "report: mobilenet_v2 frozen + dense head (one split)", "accuracy": 0.295, "valence_ccc": 0.19,
     "arousal_ccc": 0.13},
    {"name": "report: densenet121 frozen + dense head (one split)", "accuracy": 0.338},
    {"name": "report: resnet50 frozen + dense head (one split)", "accuracy": 0.408, "valence_ccc": 0.434,
     "arousal_ccc": 0.320},
    {"name": "fine-tuned ResNet50 (VGGFace2 start, 100 epochs, GPU; one split)", "accuracy": 0.529, "f1_macro": 0.524,
     "cohen_kappa": 0.461, "valence_ccc": 0.585, "arousal_ccc": 0.470},
]
TARGETS = {"accuracy": 0.53, "valence_ccc": 0.59, "arousal_ccc": 0.47}


def group_of(part, cache: Path) -> str:
    """Extract (once; original, flipped and the part's cropped views) or add landmarks; the group key."""
    if part == LANDMARKS:
        return add_landmark_group(cache)
    result = featcache.extract(DATA, part.backbone, cache, weights=WEIGHTS.get(part.backbone, "pretrained"),
                               taps=list(part.taps), image_size=part.image_size, flip=True, crops=part.crops,
                               progress=True)
    if result.views:
        print(result.summary(), flush=True)
    return result.group


def extraction_seconds(cache: Path, keys: list[str], views: tuple) -> float:
    """Seconds of the extraction runs that made these views (views made in one run counted once)."""
    groups = featcache.info(cache)["groups"]
    runs = {(key, view["created"]): view["seconds"] for key in keys for name, view in groups[key]["views"].items()
            if name in views}
    return sum(runs.values())


def record_groups(cache: Path, features, group_by: Optional[str]) -> Optional[np.ndarray]:
    """Each row's record group: from ``--group-by``, else as stored in the cache, else None."""
    if group_by is not None:
        return group_ids(group_by, features.paths)
    with open_cache(cache) as reader:
        stored = reader.record_groups()
    return None if stored is None else stored[0][features.index]


def evaluate(config: Config, cache: Path, splits: int, group_by: Optional[str] = None) -> dict:
    keys = [group_of(part, cache) for part in config.parts]
    features = combine(cache, keys, view=config.view)
    extra = {"blocks": features.config["dims"]} if config.ensemble else {}
    groups = record_groups(cache, features, group_by)
    runs = []
    for seed in range(splits):
        parts = np.full(features.index.max() + 1, -1, dtype=np.int8)
        parts[features.index] = stratified_split(features.labels, features.content_hashes, seed=seed, groups=groups)
        for task, (head, params) in (("classify", config.classify), ("regress", config.regress)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # lbfgs convergence notes at the weakest C
                result, = run_head(features, parts, head, task, params={**params, **extra}, seed=seed)
            report = result["report"]
            figures = ({k: report[k] for k in CLASSIFY} if task == "classify" else
                       {f"{t}_{k}": report[t][k] for t in ("valence", "arousal") for k in REGRESS})
            runs.append({"seed": seed, "task": task, "fit_seconds": result["fit_seconds"], **figures})
        print(f"  {config.name} split {seed}: " + ", ".join(
            f"{k} {v:.3f}" for r in runs[-2:] for k, v in r.items() if k in ("accuracy", "valence_ccc", "arousal_ccc")),
            flush=True)
    summary = {"name": config.name, "groups": keys, "view": config.view, "feature_dim": int(features.features.shape[1]),
               "classify_head": config.classify[0], "regress_head": config.regress[0],
               "extract_seconds": extraction_seconds(cache, keys, config.view), "runs": runs, "notes": config.notes}
    for key in [*CLASSIFY, *(f"{t}_{k}" for t in ("valence", "arousal") for k in REGRESS), "fit_seconds"]:
        values = [r[key] for r in runs if key in r and r[key] is not None]
        summary[key] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "max": float(np.max(values))}
    return summary


COLUMNS = [("Accuracy", "accuracy"), ("F1", "f1_macro"), ("kappa", "cohen_kappa"), ("AUC", "auc_roc"),
           ("AUC-PR", "auc_pr"), ("alpha", "krippendorff_alpha"), ("V RMSE", "valence_rmse"),
           ("V CORR", "valence_corr"), ("V SAGR", "valence_sagr"), ("V CCC", "valence_ccc"),
           ("A RMSE", "arousal_rmse"), ("A CORR", "arousal_corr"), ("A SAGR", "arousal_sagr"), ("A CCC", "arousal_ccc")]


def markdown(rows: list[dict], splits: int, best: dict) -> str:
    head = "| configuration | " + " | ".join(t for t, _ in COLUMNS) + " | extract s | max fit s |"
    lines = [
        "# Result quality: frozen features and light heads on the real AffectNet subset (3,999 faces)",
        "",
        f"Mean ± standard deviation over {splits} seeded stratified 70/15/15 splits (byte-identical images kept "
        "together); heads fit on the 85% training part with hyper-parameters chosen by cross-validation inside it, "
        "and are scored once on the 15% test part (600 faces). Extraction time: the groups used, once (original and "
        "flipped views where averaged); max fit s: the slowest single head fit over the splits and tasks.",
        "", head, "|---|" + "---:|" * (len(COLUMNS) + 2),
    ]
    for row in rows:
        cells = [f"{row[k]['mean']:.3f} ± {row[k]['std']:.3f}" for _, k in COLUMNS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) +
                     f" | {row['extract_seconds']:.0f} | {row['fit_seconds']['max']:.1f} |")
    for ref in REFERENCES:
        lines.append(f"| *{ref['name']}* | " + " | ".join(f"{ref[k]:.3f}" if k in ref else "" for _, k in COLUMNS)
                     + " | | |")
    gaps = {k: best[k]["mean"] - target for k, target in TARGETS.items()}
    lines += ["", f"Best configuration: **{best['name']}**. Against the targets (mean over the splits): " +
              ", ".join(f"{k} {best[k]['mean']:.3f} vs {t} ({gaps[k]:+.3f})" for k, t in TARGETS.items()) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "quality",
                        help="where the feature cache is kept (never inside the repository)")
    parser.add_argument("--configs", default="", help="comma-separated indices into CONFIGS (default: all)")
    parser.add_argument("--group-by", default=None, metavar="SPEC",
                        help="keep record groups on one side of every split (featcache.record_groups); default: "
                             "the groups stored in the cache, if any")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "affectnet.h5"
    chosen = [CONFIGS[int(i)] for i in args.configs.split(",")] if args.configs else CONFIGS
    began = time.perf_counter()
    rows = []
    for config in chosen:  # the files are rewritten after each configuration, so a cut-short run keeps its rows
        rows.append(evaluate(config, cache, args.splits, args.group_by))
        best = max(rows, key=lambda r: r["accuracy"]["mean"] + r["valence_ccc"]["mean"] + r["arousal_ccc"]["mean"])
        paths = write_results("quality", {"splits": args.splits, "configurations": rows, "references": REFERENCES,
                                          "targets": TARGETS, "best": best["name"], "complete": len(rows) == len(chosen),
                                          "seconds": time.perf_counter() - began}, markdown(rows, args.splits, best))
        print("wrote", *paths, flush=True)


if __name__ == "__main__":
    main()
