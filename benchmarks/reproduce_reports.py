"""The reference reports' protocol on the real AffectNet subset, with featcache, over 5 seeded splits.

Frozen backbones, every default head, classification and valence/arousal regression, each
scored on the 15% test part of ``--splits`` stored splits (seeds 0.., stratified,
byte-identical images kept together); mean and standard deviation per figure. Backbones:
mobilenet_v2 with the genuine ImageNet weights file in ``../shared/weights`` and the
offline-pretrained efficientnet_lite0, last layer, as the reports. The reports' "Custom CNN
trained from scratch" is the ``cnn`` head on the ``pixels`` source (48 x 48 grey, cached once).
Beside each regression head, the RMSE of predicting the training part's mean (the floor a
useful head must beat). Backbones whose ImageNet weights cannot be had offline are listed as
skipped, never run with random weights as if pretrained. Writes
``results/affectnet_subset.{md,json}`` beside the reports' own numbers.

    python benchmarks/reproduce_reports.py [--splits 5] [--work DIR] [--heads keras_dense,logistic,ridge,mlp,multitask]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import numpy as np  # noqa: E402

import featcache  # noqa: E402
import metrics  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.experiment import fitted_tasks, run_head, targets  # noqa: E402
from featcache.splits import TEST, cached_split  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "affectnet-subset"
MOBILENET_WEIGHTS = SHARED / "weights" / "mobilenet_v2_imagenet_notop.weights.h5"
SOURCES = (("mobilenet_v2", MOBILENET_WEIGHTS), ("efficientnet_lite0", "pretrained"), ("pixels", "none"))
FROM_SCRATCH = {"pixels": ("cnn",)}  # the heads of a source without a pretrained network
CLASSIFY = ("accuracy", "f1_macro", "cohen_kappa", "auc_roc")
REGRESS = ("rmse", "corr", "sagr", "ccc")

# The reports' own figures (frozen backbone + dense head, and a CNN from scratch; 15% test split of this subset).
REPORTED = [
    {"Backbone": "mobilenet_v2 (report)", "Accuracy": 0.295, "CCC V": 0.19, "CCC A": 0.13},
    {"Backbone": "densenet121 (report)", "Accuracy": 0.338, "CCC V": None, "CCC A": None},
    {"Backbone": "Custom CNN from scratch (report)", "Accuracy": 0.155, "CCC V": 0.007, "CCC A": -0.025},
    {"Backbone": "resnet50 (report)", "Accuracy": 0.408, "CCC V": 0.434, "CCC A": 0.320},
]
SKIPPED = {
    "densenet121": "Keras ImageNet weights cannot be downloaded here and no weights file is available offline",
    "resnet50": "Keras ImageNet weights cannot be downloaded here and no weights file is available offline",
}


def figures(result: dict) -> dict:
    report = result["report"]
    if result["task"] == "classify":
        return {name: float(report[name]) for name in CLASSIFY}
    return {f"{name}_{target}": float(report[target][name]) for target in ("valence", "arousal") for name in REGRESS}


def mean_rmse(features, parts: np.ndarray) -> dict:
    """RMSE on the test part of predicting the training part's mean valence and arousal."""
    y, usable = targets(features, "regress")
    part = parts[features.index]
    train, test = usable & (part != TEST), usable & (part == TEST)
    rmse = metrics.rmse(y[test], np.broadcast_to(y[train].mean(axis=0), y[test].shape))
    return {"rmse_valence": float(rmse[0]), "rmse_arousal": float(rmse[1])}


def runs_of(features, parts: np.ndarray, names: list[str], seed: int) -> list[dict]:
    """Every head on one source and split, both tasks (a multi-task head fitted once)."""
    rows = []
    for name in names:
        for task in fitted_tasks(name, ("classify", "regress")):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for result in run_head(features, parts, name, task, seed=seed):
                    rows.append({"source": features.config["backbone"], "head": name, "task": result["task"],
                                 "seed": seed, "fit_seconds": result["fit_seconds"], **figures(result)})
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """Mean and standard deviation over the splits per (source, head, task)."""
    keys = list(dict.fromkeys((r["source"], r["head"], r["task"]) for r in rows))
    out = []
    for source, head, task in keys:
        mine = [r for r in rows if (r["source"], r["head"], r["task"]) == (source, head, task)]
        names = [k for k in mine[0] if k not in ("source", "head", "task", "seed")]
        out.append({"source": source, "head": head, "task": task, "splits": len(mine),
                    **{k: {"mean": float(np.mean([r[k] for r in mine])), "std": float(np.std([r[k] for r in mine])),
                           "min": float(np.min([r[k] for r in mine])), "max": float(np.max([r[k] for r in mine]))}
                       for k in names}})
    return out


def cell(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def markdown(table: list[dict], floors: dict, splits: int, extractions: dict) -> str:
    classify = [r for r in table if r["task"] == "classify"]
    regress = [r for r in table if r["task"] == "regress"]
    lines = [
        "# The reference reports' protocol on the real AffectNet subset (3,999 faces)", "",
        f"Frozen backbone (last layer, averaged) and every default head; `cnn` is a network trained from scratch on "
        f"the cached 48 x 48 grey pixels (the reports' Custom CNN). Mean ± standard deviation over {splits} stored "
        "splits (seeds 0.., 70/15/15, stratified, byte-identical images kept together), fitted on the train and "
        "validation parts, scored once on the test part (600 faces). Extraction, once: "
        + ", ".join(f"{name} {e['seconds']:.0f} s" for name, e in extractions.items()) + ".", "",
        "### Classification", "",
        "| source | head | accuracy | F1 (macro) | Cohen's kappa | AUC (ROC) | fit s |",
        "|---|---|---|---|---|---|---:|",
    ]
    lines += [f"| {r['source']} | {r['head']} | " + " | ".join(cell(r[k]) for k in CLASSIFY)
              + f" | {r['fit_seconds']['mean']:.1f} |" for r in classify]
    lines += ["", "### Valence and arousal", "",
              f"Mean predictor (the training part's mean): RMSE valence {cell(floors['rmse_valence'])}, arousal "
              f"{cell(floors['rmse_arousal'])}; a head beats it on every split when its worst RMSE is below the "
              "floor of that split (`every split`).", "",
              "| source | head | CCC V | CCC A | RMSE V | RMSE A | CORR V | CORR A | below the mean's RMSE | fit s |",
              "|---|---|---|---|---|---|---|---|---|---:|"]
    for r in regress:
        beats = r["below_mean"]
        lines.append(f"| {r['source']} | {r['head']} | {cell(r['ccc_valence'])} | {cell(r['ccc_arousal'])} | "
                     f"{cell(r['rmse_valence'])} | {cell(r['rmse_arousal'])} | {cell(r['corr_valence'])} | "
                     f"{cell(r['corr_arousal'])} | {beats} | {r['fit_seconds']['mean']:.1f} |")
    lines += ["", "### The reports' own numbers (one split)", "", "| | accuracy | CCC V | CCC A |", "|---|---|---|---|"]
    lines += [f"| {r['Backbone']} | {r['Accuracy']} | {r['CCC V'] if r['CCC V'] is not None else '-'} | "
              f"{r['CCC A'] if r['CCC A'] is not None else '-'} |" for r in REPORTED]
    lines += ["", "### Skipped", ""]
    lines += [f"- `{name}`: {why}; not run with random weights as if pretrained." for name, why in SKIPPED.items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "benchmarks",
                        help="where the feature cache is kept (never inside the repository)")
    parser.add_argument("--heads", default="keras_dense,logistic,ridge,mlp,multitask")
    parser.add_argument("--splits", type=int, default=5)
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "affectnet-subset.features.h5"
    extractions = {}
    for source, weights in SOURCES:
        result = featcache.extract(DATA, source, cache, weights=weights, progress=True)
        print(result.summary(), flush=True)
        extractions[source] = {"group": result.group, "seconds": featcache.info(cache)["groups"][result.group]
                               ["views"]["original"]["seconds"]}
    names = [h for h in args.heads.split(",") if h]
    rows, floors = [], []
    began = time.perf_counter()
    for seed in range(args.splits):
        parts = cached_split(cache, f"seed{seed}", seed=seed)
        for source, _ in SOURCES:
            features = featcache.load(cache, group=extractions[source]["group"])
            if source == SOURCES[0][0]:
                floors.append({"seed": seed, **mean_rmse(features, parts)})
            rows += runs_of(features, parts, list(FROM_SCRATCH.get(source, names)), seed)
            print(f"split {seed} {source}: {time.perf_counter() - began:.0f} s", flush=True)
    table = summary(rows)
    floor_of = {f["seed"]: f for f in floors}
    for entry in table:
        if entry["task"] == "regress":
            mine = [r for r in rows if (r["source"], r["head"], r["task"]) == (entry["source"], entry["head"], "regress")]
            entry["below_mean"] = ("every split" if all(r["rmse_valence"] < floor_of[r["seed"]]["rmse_valence"]
                                                        and r["rmse_arousal"] < floor_of[r["seed"]]["rmse_arousal"]
                                                        for r in mine) else "not on every split")
    floor_stats = {k: {"mean": float(np.mean([f[k] for f in floors])), "std": float(np.std([f[k] for f in floors]))}
                   for k in ("rmse_valence", "rmse_arousal")}
    payload = {"splits": args.splits, "extractions": extractions, "runs": rows, "summary": table,
               "mean_predictor": {"per_split": floors, **floor_stats}, "reported": REPORTED, "skipped": SKIPPED,
               "seconds": time.perf_counter() - began}
    text = markdown(table, floor_stats, args.splits, extractions)
    print(text)
    print("wrote", *write_results("affectnet_subset", json.loads(json.dumps(payload, default=float)), text))


if __name__ == "__main__":
    main()
