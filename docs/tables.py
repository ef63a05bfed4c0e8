"""The tables of measured figures in README.md and docs/*.md, generated from benchmarks/results/*.json.

A document holds a generated table between two markers::

    <!-- table: extract_speed -->
    (written by this script; do not edit by hand)
    <!-- /table -->

Each NAME is a function in :data:`TABLES` that reads the JSON files of ``benchmarks/results/``
(written by the scripts of ``benchmarks/``) and returns markdown. Run from anywhere:

    python docs/tables.py            # rewrite every table in README.md and docs/*.md
    python docs/tables.py --check    # exit 1, naming the tables that differ from the JSON

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Optional

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REGION = re.compile(r"(<!-- table: ([\w.-]+) -->\n)(.*?)(<!-- /table -->)", re.S)

TABLES: dict[str, Callable[[Path], str]] = {}


def table(name: str):
    """Register a table function under ``name`` (the NAME of its ``<!-- table: NAME -->`` marker)."""

    def register(function: Callable[[Path], str]) -> Callable[[Path], str]:
        TABLES[name] = function
        return function

    return register


# ---------------------------------------------------------------------------------------------- helpers

def load(results: Path, name: str) -> dict:
    return json.loads((results / name).read_text())


def source(data: dict, name: str) -> str:
    """One line naming the results file, the command that wrote it, its date and machine."""
    machine = data.get("machine", {})
    where = ", ".join(str(part) for part in (machine.get("cpu"), f"{machine['cores']} cores" if "cores" in machine
                                              else None) if part)
    date = str(data.get("date", ""))[:10]
    return (f"From `benchmarks/results/{name}` (`{data.get('command', '?')}`, {date}"
            + (f", {where}" if where else "") + ").")


def rows_to_markdown(header: Iterable[str], align: str, rows: Iterable[Iterable[object]]) -> str:
    """A markdown table; ``align`` has one letter per column: l (left) or r (right)."""
    header = list(header)
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def num(value: Optional[float], digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def pm(stats: Optional[dict], digits: int = 3) -> str:
    """``mean ± std`` of a summary dict."""
    if not stats:
        return "-"
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def times(value: Optional[float], digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}x"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


# ------------------------------------------------------------------------------------------------ tables

@table("results")
def results_table(results: Path) -> str:
    """README: the reference reports against featcache on the real AffectNet subset."""
    quality = load(results, "quality.json")
    subset = load(results, "affectnet_subset.json")
    rows = []
    references = quality.get("references", [])
    for reported in subset.get("reported", []):  # the reports' rows the quality references lack
        name = reported["Backbone"].replace(" (report)", "")
        if not any(name in reference["name"] for reference in references):
            references = references + [{"name": f"report: {name} (one split)", "accuracy": reported["Accuracy"],
                                         "valence_ccc": reported["CCC V"], "arousal_ccc": reported["CCC A"]}]
    for reference in sorted(references, key=lambda r: r["accuracy"]):
        rows.append([reference["name"], num(reference.get("accuracy")), num(reference.get("valence_ccc")),
                     num(reference.get("arousal_ccc"))])
    summary = {(s["source"], s["head"], s["task"]): s for s in subset["summary"]}
    for source_name, head, label in (("pixels", "cnn", "featcache: `cnn` head from scratch on the cached pixels"),
                                     ("mobilenet_v2", "keras_dense",
                                      "featcache: the reports' protocol (mobilenet_v2, dense head)")):
        classify, regress = summary.get((source_name, head, "classify")), summary.get((source_name, head, "regress"))
        if classify and regress:
            rows.append([label, pm(classify["accuracy"]), pm(regress["ccc_valence"]), pm(regress["ccc_arousal"])])
    recipes = sorted((c for c in quality["configurations"] if c["name"].startswith("recipe")),
                     key=lambda c: c["accuracy"]["mean"] + c["valence_ccc"]["mean"])
    nested_run = ""
    for configuration in recipes:
        name = configuration["name"].replace("recipe ", "").strip("'")
        if name == "affect" and "nested" in quality and all(
                configuration[key]["mean"] == quality["nested"][task]["nested"][key]["mean"]
                for task, key in (("classify", "accuracy"), ("regress", "valence_ccc"), ("regress", "arousal_ccc"))):
            continue  # the nested row below gives the same figures
        rows.append([f"featcache: recipe `{name}` (not nested)", pm(configuration["accuracy"]),
                     pm(configuration["valence_ccc"]), pm(configuration["arousal_ccc"])])
    if "nested" in quality:
        nested = {**quality["nested"]["classify"]["nested"], **quality["nested"]["regress"]["nested"]}
        rows.append(["**featcache: recipe `affect`, nested evaluation**", pm(nested["accuracy"]),
                     pm(nested["valence_ccc"]), pm(nested["arousal_ccc"])])
        if "nested_run" in quality:
            nested_run = " The nested row: " + source(quality["nested_run"], "quality.json").replace("From", "from", 1)
    return "\n".join([
        rows_to_markdown(["", "Accuracy", "Valence CCC", "Arousal CCC"], "lrrr", rows), "",
        f"Reports: one split each. featcache: mean ± std over {quality['splits']} seeded 70/15/15 splits, "
        "600 test faces each; nested: the configuration and every hyper-parameter chosen inside each split's "
        "training part alone ([recipes](docs/recipes.md#how-affect-was-chosen)). "
        + source(subset, "affectnet_subset.json") + " " + source(quality, "quality.json") + nested_run,
    ])


@table("backbones")
def backbones_table(results: Path) -> str:
    data = load(results, "backbones.json")
    rows = []
    for r in data["rows"]:
        taps = ", ".join(f"`{tap}` ({dim})" for tap, dim in r["recommended_taps"].items()) or "-"
        where = ("**offline**: " if r["offline"] else "") + r["weights_source"]
        rows.append([f"`{r['backbone']}`", r["input_size"], r["feature_dim"], taps, f"{r['params_millions']:.1f}",
                     f"{r['gflops']:.2f}", r["preprocessing"], where])
    return "\n".join([
        source(data, "backbones.json"), "",
        rows_to_markdown(["backbone", "input", "dim", "recommended tap (dim)", "params (M)", "GFLOPs",
                          "preprocessing", "pretrained weights"], "lrrlrrll", rows),
    ])


@table("reports_protocol")
def reports_protocol_table(results: Path) -> str:
    data = load(results, "affectnet_subset.json")
    classify = [s for s in data["summary"] if s["task"] == "classify"]
    regress = [s for s in data["summary"] if s["task"] == "regress"]
    floor = data.get("mean_predictor", {})
    lines = [source(data, "affectnet_subset.json") + f" Mean ± std over {data['splits']} splits.", "",
             rows_to_markdown(["source", "head", "Accuracy", "F1 (macro)", "Cohen's kappa", "AUC (ROC)", "fit s"],
                              "llrrrrr",
                              [[s["source"], s["head"], pm(s["accuracy"]), pm(s["f1_macro"]), pm(s["cohen_kappa"]),
                                pm(s["auc_roc"]), num(s["fit_seconds"]["mean"], 1)] for s in classify]), ""]
    if floor:
        lines += [f"Predicting the training mean gives RMSE {pm(floor['rmse_valence'])} (valence) and "
                  f"{pm(floor['rmse_arousal'])} (arousal); \"below the mean\" says whether a head beats it.", ""]
    lines.append(rows_to_markdown(
        ["source", "head", "CCC V", "CCC A", "RMSE V", "RMSE A", "below the mean", "fit s"], "llrrrrlr",
        [[s["source"], s["head"], pm(s["ccc_valence"]), pm(s["ccc_arousal"]), pm(s["rmse_valence"]),
          pm(s["rmse_arousal"]), s.get("below_mean", "-"), num(s["fit_seconds"]["mean"], 1)] for s in regress]))
    if data.get("extractions"):
        lines += ["", "Extraction, once per source: " + ", ".join(
            f"{name} {entry['seconds']:.0f} s" for name, entry in data["extractions"].items()) + "."]
    if data.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(f"`{name}` ({why})" for name, why in data["skipped"].items()) + "."]
    return "\n".join(lines)


@table("quality_nested")
def quality_nested_table(results: Path) -> str:
    """docs/recipes.md: the nested figures, and every candidate the nested evaluation chose from."""
    data = load(results, "quality.json")
    nested = data["nested"]
    figures = {**nested["classify"]["nested"], **nested["regress"]["nested"]}
    fit = max(max(nested[task]["fit_seconds"]["per_split"]) for task in nested)
    lines = [source(data.get("nested_run", data), "quality.json")
             + f" Mean ± std over {data['splits']} outer splits; inner: {data['inner_folds']}-fold "
             "cross-validation inside each training part.", "",
             rows_to_markdown(["", "Accuracy", "F1", "kappa", "AUC", "V CCC", "A CCC", "V RMSE", "A RMSE",
                               "slowest head fit"], "lrrrrrrrrr",
                              [["**nested**", pm(figures["accuracy"]), pm(figures["f1_macro"]),
                                pm(figures["cohen_kappa"]), pm(figures["auc_roc"]), pm(figures["valence_ccc"]),
                                pm(figures["arousal_ccc"]), num(figures["valence_rmse"]["mean"]),
                                num(figures["arousal_rmse"]["mean"]), f"{fit:.1f} s"]]), "",
             "Against the bar: " + ", ".join(f"{key.replace('_', ' ')} {figures[key]['mean']:.3f} vs {target}"
                                             for key, target in data["targets"].items()) + ".", ""]
    for task, key, label in (("classify", "accuracy", "accuracy"), ("regress", None, "V CCC / A CCC")):
        rows = []
        for c in nested[task]["candidates"]:
            test = (pm(c["test"][key]) if key else
                    f"{pm(c['test']['valence_ccc'])} / {pm(c['test']['arousal_ccc'])}")
            rows.append([c["name"], f"{c['inner']['mean']:.3f}", c["times_chosen"], test,
                         f"{c['fit_seconds']['mean']:.1f} s"])
        lines += [f"{task.capitalize()} candidates (inner: the cross-validated figure the choice sees; test: the "
                  "candidate's own outer test figure, never used to choose):", "",
                  rows_to_markdown(["candidate", "inner", f"chosen (of {data['splits']})", f"test {label}", "fit"],
                                   "lrrrr", rows), ""]
    return "\n".join(lines).rstrip()


@table("quality")
def quality_table(results: Path) -> str:
    data = load(results, "quality.json")
    rows = [[c["name"], pm(c["accuracy"]), pm(c["f1_macro"]), pm(c["cohen_kappa"]), pm(c["auc_roc"]),
             pm(c["valence_ccc"]), pm(c["arousal_ccc"]), num(c["valence_rmse"]["mean"]),
             num(c["arousal_rmse"]["mean"]), f"{c['extract_seconds']:.0f}", num(c["fit_seconds"]["max"], 1)]
            for c in data["configurations"]]
    rows += [[f"*{r['name']}*", num(r.get("accuracy")), num(r.get("f1_macro")), num(r.get("cohen_kappa")), "-",
              num(r.get("valence_ccc")), num(r.get("arousal_ccc")), "-", "-", "-", "-"]
             for r in data.get("references", [])]
    return "\n".join([
        source(data, "quality.json") + f" Mean ± std over {data['splits']} splits; extract s: the groups used, "
        "once; max fit s: the slowest single head fit.", "",
        rows_to_markdown(["configuration", "Accuracy", "F1", "kappa", "AUC", "V CCC", "A CCC", "V RMSE", "A RMSE",
                          "extract s", "max fit s"], "lrrrrrrrrrr", rows),
    ])


@table("accuracy_probes")
def accuracy_probes_table(results: Path) -> str:
    """docs/recipes.md: directions for the classes, scored inside one split's training part."""
    data = load(results, "accuracy_probes.json")
    rows = [[p["label"], f"{p['accuracy']:.3f}", f"{p['f1_macro']:.3f}", f"{p['fit_seconds']:.1f} s"]
            for p in data["probes"]]
    rows += [[f"reference blended with {b['probe']} (weight {b['weight']}, best on these folds)",
              f"{b['accuracy']:.3f}", f"{b['f1_macro']:.3f}", ""] for b in data["blends"]]
    return "\n".join([
        source(data, "accuracy_probes.json") + f" Pooled out-of-fold figures of {data['inner_folds']}-fold "
        f"cross-validation inside the training part of outer split 0 ({data['rows']} faces); the outer test "
        "faces are never used. Fit: the median over the folds of one fit and its prediction.", "",
        rows_to_markdown(["probe", "Accuracy", "F1", "fit"], "lrrr", rows),
    ])


@table("leaks")
def leaks_table(results: Path) -> str:
    data = load(results, "leaks.json")
    threshold = data["threshold"]
    rows = []
    for b in data["backbones"]:
        share = lambda check: f"{b[check]['test_with_twin'] / b[check]['test']:.1%}"  # noqa: E731
        rows.append([b["backbone"], share("subset_check"), share("video_check"), share("burst_check"),
                     f"{b['video_accuracy']['by image']:.3f} / {b['video_accuracy']['by source']:.3f}",
                     f"{b['burst_accuracy']['by image']:.3f} / {b['burst_accuracy']['by source']:.3f}",
                     f"{b['check_seconds']:.2f} s ({b['check_share']:.1%})"])
    return "\n".join([
        source(data, "leaks.json") + f" The AffectNet subset, and {data['sources']} of its faces each made into "
        f"{data['frames']} frames with the changes of consecutive video frames (video) or of a burst of photos "
        "(burst); each split by image.", "",
        rows_to_markdown(["backbone", f"test images with a twin (cosine ≥ {threshold}): subset", "video", "burst",
                          "logistic accuracy, video: by image / by source", "burst: by image / by source",
                          "check time (share of `compare`)"], "lrrrrrr", rows),
    ])


@table("store")
def store_table(results: Path) -> str:
    data = load(results, "store.json")
    rows = [[c["operation"], f"{c['records']:,}", c["format"], f"{c['seconds']:.2f} s",
             f"{c['beyond_own_s']:.2f} s", mib(c["extra_disk"])]
            for c in sorted(data["changes"], key=lambda c: (c["operation"], c["records"], c["format"]))]
    load_ = data.get("load")
    lines = [source(data, "store.json") + f" Synthetic caches of {dim_text(data)} float32 features in two views; "
             "medians. *Beyond own bytes*: the change's time minus a plain `tofile` + fsync of the bytes it adds.", "",
             rows_to_markdown(["change", "records", "format", "time", "beyond own bytes", "extra disk"], "lrrrrr",
                              rows)]
    if load_:
        lines += ["", f"`featcache.load` of one view ({load_['records']:,} records, {mib(load_['bytes'])}): "
                      f"{load_['load_gib_s']:.2f} GiB/s, {load_['fraction']:.2f} of `np.fromfile` of the same bytes "
                      "(both from the page cache)."]
    if data.get("memory"):
        lines += ["", "Peak resident memory of `featcache extract`: " + ", ".join(
            f"{m['images']:,} images {m['peak_rss_mib']:,.0f} MiB" for m in data["memory"]) + "."]
    return "\n".join(lines)


def dim_text(data: dict) -> str:
    sizes = " and ".join(f"{size:,}" for size in data.get("sizes", []))
    return f"{sizes} records x {data.get('dim', '?'):,}"


@table("float16")
def float16_table(results: Path) -> str:
    rows = []
    names = sorted(path.name for path in results.glob("float16_*.json"))
    for name in names:
        data = load(results, name)
        caches = data["caches"]
        rows.append([f"`{data['recipe']}`", mib(caches["float32"]["bytes"]), mib(caches["float16"]["bytes"]),
                     f"{data['largest_difference']:.6f}", data["tolerance"], "yes" if data["within_tolerance"] else
                     "**no**"])
    return "\n".join([
        "From " + ", ".join(f"`benchmarks/results/{name}`" for name in names)
        + f" (`{data['command'].split(' --recipe')[0]} --recipe NAME`, {data['date'][:10]}). Each recipe's "
        f"groups and views extracted in both dtypes; heads fitted on the same {data['splits']} splits; the "
        "largest change of any test figure (accuracy, macro F1, kappa, valence and arousal CCC) over every split.",
        "",
        rows_to_markdown(["recipe", "float32 cache", "float16 cache", "largest change of a figure", "tolerance",
                          "within"], "lrrrrl", rows),
    ])


@table("extract_speed")
def extract_speed_table(results: Path) -> str:
    data = load(results, "extract_speed.json")
    rows = []
    for r in data["rows"]:
        rows.append([r["backbone"], r["engine"], num(r["baseline_img_s"], 1), num(r["featcache_img_s"], 1),
                     f"**{times(r['ratio'])}**", num(r["featcache_loop_img_s"], 1), num(r["pipeline_efficiency"], 2),
                     num(r.get("featcache_openvino_loop_img_s"), 1), num(r.get("featcache_bf16_loop_img_s"), 1),
                     times(r.get("bf16_loop_speedup")), times(r.get("bf16_loop_speedup_over_openvino")),
                     times(r.get("bf16_engine_speedup"))])
    return "\n".join([
        source(data, "extract_speed.json") + f" {data['rows'][0]['images']} AffectNet JPEGs (224 px), batch "
        f"{data['batch_size']}, random weights, medians of interleaved runs; 4096² float32 matmul in the same run: "
        f"{data['matmul_gflop_s']:.0f} GFLOP/s.", "",
        rows_to_markdown(["backbone", "auto's engine", "baseline img/s", "featcache img/s", "ratio",
                          "loop float32 img/s", "loop / engine alone", "loop, OpenVINO float32", "loop bf16",
                          "bf16 / auto's float32 loop", "bf16 / OpenVINO float32 loop",
                          "bf16 / float32, OpenVINO alone"], "llrrrrrrrrrr", rows),
    ])


@table("bf16_quality")
def bf16_quality_table(results: Path) -> str:
    names = sorted(path.name for path in results.glob("bf16_*.json"))
    rows = []
    for name in names:
        data = load(results, name)
        diff = data["mean_difference"]
        rows.append([f"`{data['recipe']}`", f"{data['caches']['float32']['extract_s']:.0f} s",
                     f"{data['caches']['bf16']['extract_s']:.0f} s", times(data["speedup"]),
                     f"{diff['accuracy']:+.4f}", f"{diff['ccc_valence']:+.4f}", f"{diff['ccc_arousal']:+.4f}",
                     "yes" if data["within_tolerance"] else "**no**"])
    first = load(results, names[0]) if names else {}
    return "\n".join([
        "From " + ", ".join(f"`benchmarks/results/{name}`" for name in names)
        + (f" (`{first['command'].split(' --recipe')[0]} --recipe NAME --splits {first['splits']}`, "
           f"{first['date'][:10]}). Each recipe's groups and views extracted in float32 and in bf16, heads fitted on "
           f"the same {first['splits']} splits; differences are bf16 minus float32, means over the splits; "
           f"tolerance {first['tolerance']}." if first else ""), "",
        rows_to_markdown(["recipe", "float32 extraction", "bf16 extraction", "speed-up", "accuracy", "valence CCC",
                          "arousal CCC", "within tolerance"], "lrrrrrrl", rows),
    ])


@table("startup")
def startup_table(results: Path) -> str:
    data = load(results, "startup.json")
    medians, ratio, first_batch = data["medians_s"], data["ratio_naive_over_featcache"], data["first_batch_ratio"]
    rows = [[f"naive Keras script, {data['images']} faces", f"{medians['naive']:.1f} s", ""],
            ["`featcache extract`, float32", f"{medians['featcache_float32']:.1f} s", times(ratio["float32"])],
            ["`featcache extract --precision bf16`", f"{medians['featcache_bf16']:.1f} s", times(ratio["bf16"])],
            [f"one batch of {data['batch']} faces: naive / float32 / bf16",
             f"{medians['naive_first_batch']:.2f} / {medians['featcache_float32_first_batch']:.2f} / "
             f"{medians['featcache_bf16_first_batch']:.2f} s",
             f"{times(first_batch['float32'])} / {times(first_batch['bf16'])}"],
            ["`featcache backbones` / `featcache --help`",
             f"{medians['featcache_backbones']:.2f} / {medians['featcache_help']:.2f} s", ""]]
    first = data.get("first_run_s", {})
    return "\n".join([
        source(data, "startup.json") + f" Whole processes, medians of {data['repeats']} interleaved runs; "
        "MobileNetV2 with its ImageNet weights; featcache with its engine cached.", "",
        rows_to_markdown(["process", "median", "naive / featcache"], "lrr", rows), "",
        "First run of a feature model (export, check against TensorFlow, compile): "
        + ", ".join(f"{precision} {seconds:.1f} s" for precision, seconds in first.items()) + ".",
    ])


@table("protocol")
def protocol_table(results: Path) -> str:
    data = load(results, "protocol.json")
    base = [run["seconds"] for run in data["baseline_runs"]]
    ours = [run["seconds"] for run in data["featcache_runs"]]
    rows = [["baseline: frozen base inside `model.fit`", f"{data['baseline_seconds']:,.0f} s",
             " / ".join(f"{s:,.0f}" for s in base) + " s", "1.0x"],
            ["featcache: extract once, then every head", f"{data['featcache_seconds']:.1f} s",
             " / ".join(f"{s:.1f}" for s in ours) + " s", f"**{data['ratio']:.1f}x less**"]]
    figures = [[r["backbone"], r["task"], r["method"], num(r.get("accuracy")), num(r.get("auc_roc")),
                num(r.get("valence_ccc")), num(r.get("arousal_ccc")), num(r.get("valence_rmse")),
                num(r.get("arousal_rmse"))] for r in data["rows"] if "keras_dense" in r["method"]
               or r["method"].startswith("baseline")]
    return "\n".join([
        source(data, "protocol.json") + f" Medians of {len(base)} interleaved runs; of featcache's time, extraction "
        f"{data['featcache_extract_seconds']:.1f} s and heads {data['featcache_heads_seconds']:.1f} s.", "",
        rows_to_markdown(["", "wall time (median)", "runs", "ratio"], "lrlr", rows), "",
        "The same dense head both ways (test figures, means over the runs):", "",
        rows_to_markdown(["backbone", "task", "method", "Accuracy", "AUC", "CCC V", "CCC A", "RMSE V", "RMSE A"],
                         "lllrrrrrr", figures),
    ])


@table("predict_speed")
def predict_speed_table(results: Path) -> str:
    data = load(results, "predict_speed.json")
    rows = []
    for r in data["results"]:
        memory = sorted(r["memory"].items(), key=lambda item: int(item[0]))
        rss = " -> ".join(f"{entry['peak_rss_mib']:,.0f} MiB" for _, entry in memory)
        counts = " -> ".join(f"{int(n):,}" for n, _ in memory)
        rows.append([f"`{r['recipe']}`", f"{len(r['backbones'])} x {r['views']}", num(r["extract_img_s"], 1),
                     num(r["predict_img_s"], 1), f"**{times(r['ratio'])}**",
                     f"{r['extract_loop_img_s']:.1f} / {r['predict_loop_img_s']:.1f} ({times(r['loop_ratio'])})",
                     f"{rss} ({counts} images)"])
    return "\n".join([
        source(data, "predict_speed.json") + " Whole calls, medians of interleaved runs: every `featcache.extract` of "
        "the recipe's backbones and views against `load_model` + `predict_images` to a CSV; peak resident memory "
        "of `featcache predict` in a process of its own.", "",
        rows_to_markdown(["recipe", "backbones x views", "extract img/s", "predict img/s", "ratio",
                          "loops alone: extract / predict img/s", "peak RSS"], "llrrrll", rows),
    ])


@table("ray")
def ray_table(results: Path) -> str:
    data = load(results, "scale.json")["ray_engine"]
    config = data["config"]
    names = {"plain": "`featcache extract`"}
    rows = [[names.get(r["method"], "`--engine ray`"), f"{r['workers']} x {r['threads_per_worker']}",
             f"{r['wall_s']:.1f}", f"{r['wall_img_s']:.1f}", f"{r['loop_img_s']:.1f} ({r['loop_img_s_per_worker']:.1f})"]
            for r in data["results"]]
    return "\n".join([
        f"From `benchmarks/results/scale.json` (`{config['command']}`): one machine, {config['cores']} cores, "
        f"local Ray {config['ray_version']}, {config['images']:,} AffectNet JPEGs, {config['backbone']}, batch "
        f"{config['batch_size']}, engine {config['engine']}, medians of {config['repeats']} interleaved runs. Wall = "
        f"the whole call (Ray's own start, {config['ray_start_s']:.1f} s, not counted); loop = images over the "
        "slowest worker's extraction loop.", "",
        rows_to_markdown(["method", "workers x threads", "wall s", "wall img/s", "loop img/s (per worker)"], "llrrr",
                         rows),
    ])


@table("out_of_core")
def out_of_core_table(results: Path) -> str:
    data = load(results, "scale.json")["out_of_core"]
    config = data["config"]
    rows = []
    for fit in data["fits"]:
        notes = []
        if "lbfgs_iterations" in fit:
            notes.append(f"{fit['lbfgs_iterations']} L-BFGS iterations")
        rows.append([f"`{fit['head']}`", f"{fit['rows']:,}", f"{fit['seconds']:.1f}", f"{fit['peak_rss_mib']:,.0f}",
                     ", ".join(notes) or "one pass"])
    return "\n".join([
        f"From `benchmarks/results/scale.json` (`{data['command']}`): a synthetic cache of {config['rows']:,} x "
        f"{config['dim']:,} {config['dtype']} features ({config['file_gib']} GiB), read {config['chunk_rows']:,} "
        "rows at a time; each fit in a fresh process; peak resident memory of the whole process.", "",
        rows_to_markdown(["head", "rows", "fit s", "peak RSS (MiB)", "passes"], "lrrrl", rows),
    ])


@table("heads_fit_time")
def heads_fit_time_table(results: Path) -> str:
    data = load(results, "heads_fit_time.json")
    rows = [[r["head"], r["task"], f"{r['median_s']:.2f}", f"{r['max_s']:.2f}", r["epochs"], r["data"],
             r["test_score"]] for r in data["rows"]]
    return "\n".join([
        source(data, "heads_fit_time.json") + " Every head with its defaults, regularisation search included; "
        "synthetic features (the test scores only show that each head learns).", "",
        rows_to_markdown(["head", "task", "median fit s", "max fit s", "epochs", "data", "test score"], "llrrrll",
                         rows),
    ])


@table("metrics_speed")
def metrics_speed_table(results: Path) -> str:
    data = load(results, "metrics_speed.json")
    rows = [[r["figure"], f"{r['ours_s']:.4f}", f"{r['reference_s']:.4f}", f"{r['speedup']:.1f}x"]
            for r in data["rows"]]
    return "\n".join([
        source(data, "metrics_speed.json") + f" {data['samples']:,} samples x {data['classes']} classes, medians "
        f"of {data['repeats']} runs, ours and the reference in the same process.", "",
        rows_to_markdown(["figure", "featcache `metrics` s", "reference s", "speed-up"], "lrrr", rows),
    ])


# ----------------------------------------------------------------------------------------------- rewriting

def documents(root: Path = ROOT) -> list[Path]:
    """README.md and every page of docs/."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def render(text: str, results: Path = RESULTS) -> tuple[str, list[str]]:
    """``text`` with every table region regenerated, and the names of the regions that changed."""
    changed: list[str] = []

    def replace(match: re.Match) -> str:
        name = match.group(2)
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; known: {', '.join(sorted(TABLES))}")
        body = TABLES[name](results).rstrip("\n") + "\n"
        if body != match.group(3):
            changed.append(name)
        return match.group(1) + body + match.group(4)

    return REGION.sub(replace, text), changed


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Generate the tables of measured figures in README.md and docs/.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    parser.add_argument("--results", type=Path, default=RESULTS, help="the JSON folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    stale = []
    for path in documents():
        text = path.read_text()
        try:
            new, changed = render(text, args.results)
        except KeyError as error:
            print(f"{path.relative_to(ROOT)}: {error.args[0]}", file=sys.stderr)
            return 2
        stale += [f"{path.relative_to(ROOT)}: {name}" for name in changed]
        if changed and not args.check:
            path.write_text(new)
    if args.check and stale:
        print("stale tables (run python docs/tables.py):\n  " + "\n  ".join(stale), file=sys.stderr)
        return 1
    if not args.check:
        print(f"rewrote {len(stale)} table(s)" + (": " + ", ".join(stale) if stale else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
