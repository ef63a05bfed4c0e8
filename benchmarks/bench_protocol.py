"""The reference reports' whole protocol, end to end: a frozen base in ``model.fit`` vs featcache.

Two backbones (mobilenet_v2 with ../shared's genuine ImageNet weights, efficientnet_lite0
with its offline ImageNet weights) x classification (8 classes) and valence/arousal
regression x the Keras dense head (Dense 256 ReLU, Dropout 0.5, Adam 1e-4, batch 16,
10 epochs), on the real subset's 3,999 faces:

* baseline, what the reports did: tf.data reads and decodes the JPEGs, the frozen base sits
  inside one Keras model with the head, ``model.fit`` runs 10 epochs (the base runs over
  every training image in every epoch) and ``model.predict`` scores the test faces; one
  model per backbone and task;
* featcache: ``featcache.extract`` once per backbone into a fresh cache (default engine),
  then ``featcache.compare`` with the same dense head plus logistic, ridge and MLP, both
  tasks.

Both use featcache's stored split (stratified 70/15/15, byte-identical images together):
they train on the same 85% (train + validation parts) and are scored on the same 600 test
faces. Wall times are medians of ``--repeats`` interleaved runs (seed = run number).

    python benchmarks/bench_protocol.py [--repeats 3] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import featcache  # noqa: E402
import metrics  # noqa: E402
from _common import write_results  # noqa: E402
from featcache.experiment import compare  # noqa: E402
from featcache.splits import TEST, cached_split, stratified_split  # noqa: E402
from featcache.store import delete_cache  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = SHARED / "data" / "affectnet-subset"
BACKBONES = {"mobilenet_v2": SHARED / "weights" / "mobilenet_v2_imagenet_notop.weights.h5",
             "efficientnet_lite0": "pretrained"}
TASKS = ("classify", "regress")
HEADS = ("keras_dense", "logistic", "ridge", "mlp")
EPOCHS, BATCH, LEARNING_RATE = 10, 16, 1e-4


def images(paths: np.ndarray, targets: np.ndarray, size: int, shuffle_seed: int | None) -> tf.data.Dataset:
    """The usual user pipeline: read, decode, resize, batch, prefetch (AUTOTUNE)."""
    def load(path, target):
        image = tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(path), channels=3), (size, size))
        return image, target

    dataset = tf.data.Dataset.from_tensor_slices((paths, targets))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(paths), seed=shuffle_seed)
    return dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(BATCH).prefetch(tf.data.AUTOTUNE)


def baseline(backbone: str, task: str, dataset, parts: np.ndarray, seed: int) -> dict:
    """One model.fit run of the reports' protocol; returns its test report and wall time."""
    began = time.perf_counter()
    keras.utils.set_random_seed(seed)
    base = featcache.get_backbone(backbone, BACKBONES[backbone])  # frozen; preprocessing and pooling inside
    size = base.input_shape[1]
    inputs = keras.Input((size, size, 3))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(256, activation="relu")(base(inputs, training=False)))
    if task == "classify":
        outputs, loss = keras.layers.Dense(len(dataset.class_names), activation="softmax")(hidden), \
            "sparse_categorical_crossentropy"
        targets = dataset.labels.astype(np.int64)
    else:
        outputs, loss = keras.layers.Dense(2)(hidden), "mse"
        targets = np.stack([dataset.valence, dataset.arousal], axis=1).astype(np.float32)
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(LEARNING_RATE), loss)
    paths = np.asarray([str(p) for p in dataset.absolute_paths()])
    train, test = parts != TEST, parts == TEST
    model.fit(images(paths[train], targets[train], size, seed), epochs=EPOCHS, verbose=0)
    predictions = model.predict(images(paths[test], targets[test], size, None), verbose=0)
    seconds = time.perf_counter() - began
    if task == "classify":
        report = metrics.classification_report(targets[test], predictions.astype(np.float64),
                                               class_names=dataset.class_names)
    else:
        report = metrics.regression_report(targets[test].astype(np.float64), predictions.astype(np.float64))
    keras.backend.clear_session()
    return {"backbone": backbone, "task": task, "seconds": seconds, "report": summary(task, report)}


def with_featcache(work: Path, seed: int) -> dict:
    """Extract each backbone once into a fresh cache, then every head on both tasks."""
    cache = work / f"protocol-{seed}.features.h5"
    delete_cache(cache)
    began = time.perf_counter()
    extractions = {name: featcache.extract(DATA, name, cache, weights=weights) for name, weights in BACKBONES.items()}
    extracted = time.perf_counter()
    results = compare(cache, [], HEADS, "both", groups=[r.group for r in extractions.values()], seed=seed)
    finished = time.perf_counter()
    parts = cached_split(cache)
    delete_cache(cache)
    return {
        "seconds": finished - began, "extract_seconds": extracted - began, "heads_seconds": finished - extracted,
        "engine": next(iter(extractions.values())).engine, "parts": parts,
        "extractions": {name: {"seconds": r.seconds, "images_per_second": r.images_per_second}
                        for name, r in extractions.items()},
        "results": [{"backbone": r["backbone"], "head": r["head"], "task": r["task"], "fit_seconds": r["fit_seconds"],
                     "report": summary(r["task"], r["report"])} for r in results],
    }


def summary(task: str, report: dict) -> dict:
    """The reports' figures of one test report."""
    if task == "classify":
        return {key: report[key] for key in ("accuracy", "f1_macro", "cohen_kappa", "auc_roc")}
    return {f"{target}_{key}": report[target][key] for target in ("valence", "arousal") for key in ("ccc", "rmse")}


def mean(values: list[float]) -> float:
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None, help="scratch folder for caches (default: a temporary one)")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: the shared AffectNet subset is not here; this benchmark needs ../shared")
    work = args.work or Path(tempfile.mkdtemp(prefix="featcache-protocol-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset = featcache.open_dataset(DATA)
    parts = stratified_split(dataset.labels, dataset.fingerprint().content_hashes)  # = the cache's default split
    for backbone, weights in BACKBONES.items():
        featcache.extract(DATA, backbone, work / "warm-up.h5", weights=weights)  # one-time conversions and exports
    delete_cache(work / "warm-up.h5")

    baseline_runs, featcache_runs = [], []
    for seed in range(args.repeats):  # interleaved: load changes hit both alike
        runs = [baseline(b, t, dataset, parts, seed) for b in BACKBONES for t in TASKS]
        baseline_runs.append({"seconds": sum(r["seconds"] for r in runs), "runs": runs})
        print(f"run {seed}: baseline {baseline_runs[-1]['seconds']:.0f} s", flush=True)
        featcache_runs.append(with_featcache(work, seed))
        assert np.array_equal(featcache_runs[-1].pop("parts"), parts), "both sides must score the same test faces"
        print(f"run {seed}: featcache {featcache_runs[-1]['seconds']:.1f} s "
              f"(extract {featcache_runs[-1]['extract_seconds']:.1f} s, heads {featcache_runs[-1]['heads_seconds']:.1f} s)",
              flush=True)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)

    base_s = statistics.median(r["seconds"] for r in baseline_runs)
    fc_s = statistics.median(r["seconds"] for r in featcache_runs)
    fc_extract = statistics.median(r["extract_seconds"] for r in featcache_runs)
    fc_heads = statistics.median(r["heads_seconds"] for r in featcache_runs)
    rows = []  # test figures, mean over the runs
    for backbone in BACKBONES:
        for task in TASKS:
            reports = [next(r for r in run["runs"] if r["backbone"] == backbone and r["task"] == task)["report"]
                       for run in baseline_runs]
            rows.append({"backbone": backbone, "task": task, "method": "baseline: model.fit, frozen base, dense head",
                         **{k: mean([r[k] for r in reports]) for k in reports[0]},
                         "seconds": statistics.median(next(r for r in run["runs"] if r["backbone"] == backbone
                                                           and r["task"] == task)["seconds"] for run in baseline_runs)})
            for head in HEADS:
                found = [[r for r in run["results"] if r["backbone"] == backbone and r["task"] == task
                          and r["head"] == head] for run in featcache_runs]
                if not found[0]:
                    continue
                reports = [f[0]["report"] for f in found]
                rows.append({"backbone": backbone, "task": task, "method": f"featcache: {head}",
                             **{k: mean([r[k] for r in reports]) for k in reports[0]},
                             "seconds": statistics.median(f[0]["fit_seconds"] for f in found)})
    print(f"baseline {base_s:.0f} s, featcache {fc_s:.1f} s: {base_s / fc_s:.1f}x less wall time", flush=True)

    def cell(row: dict, key: str) -> str:
        return f"{row[key]:.3f}" if key in row else ""

    table = [
        "# The reports' whole protocol: frozen base in model.fit vs featcache (extract once, then heads)",
        "",
        f"Real AffectNet subset (3,999 faces, 224 px JPEGs); 2 backbones (mobilenet_v2, efficientnet_lite0, "
        f"ImageNet weights) x classification and valence/arousal regression x Keras dense head "
        f"({EPOCHS} epochs, batch {BATCH}, Adam {LEARNING_RATE:g}). Same split: trained on the same 85%, scored on "
        f"the same {int((parts == TEST).sum())} test faces. Medians of {args.repeats} interleaved runs (seeds "
        f"0..{args.repeats - 1}); test figures are means over the runs.",
        "",
        "| | wall time | of which extraction | of which heads | ratio |",
        "|---|---:|---:|---:|---:|",
        f"| baseline (4 x model.fit, {EPOCHS} epochs) | {base_s:.0f} s | | | 1.0x |",
        f"| featcache (2 extractions, engine {featcache_runs[0]['engine']}; 4 heads x 2 tasks x 2 backbones) | "
        f"{fc_s:.1f} s | {fc_extract:.1f} s | {fc_heads:.1f} s | {base_s / fc_s:.1f}x less |",
        "",
        "| backbone | task | method | Accuracy | F1 | kappa | AUC | CCC V | CCC A | RMSE V | RMSE A | fit s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    table += [f"| {r['backbone']} | {r['task']} | {r['method']} | {cell(r, 'accuracy')} | {cell(r, 'f1_macro')} | "
              f"{cell(r, 'cohen_kappa')} | {cell(r, 'auc_roc')} | {cell(r, 'valence_ccc')} | {cell(r, 'arousal_ccc')} | "
              f"{cell(r, 'valence_rmse')} | {cell(r, 'arousal_rmse')} | {r['seconds']:.1f} |" for r in rows]
    table += ["", "Baseline fit s is its whole model.fit + predict run; featcache fit s is the head's fit on cached "
              "features (extraction counted once in the wall time above)."]
    paths = write_results("protocol", {
        "baseline_seconds": base_s, "featcache_seconds": fc_s, "featcache_extract_seconds": fc_extract,
        "featcache_heads_seconds": fc_heads, "ratio": base_s / fc_s, "rows": rows,
        "baseline_runs": baseline_runs, "featcache_runs": featcache_runs,
    }, "\n".join(table) + "\n")
    print("wrote", *paths)


if __name__ == "__main__":
    main()
