"""The main job on an embedded default: synthetic faces, extraction, every head, tables, plots.

The faces are drawn so that the expression class, valence and arousal drive what is
seen (mouth curve and opening, eye opening, brow slant and height), so the task is
learnable and the numbers mean something. They are synthetic: the demo says so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .datasets import AFFECTNET_CLASSES

# Each class's centre on the valence/arousal circumplex, and its brow slant (+: inner ends down).
PROTOTYPES = {
    "neutral": (0.0, 0.0, 0.0),
    "happy": (0.7, 0.3, 0.0),
    "sad": (-0.6, -0.4, -0.6),
    "surprise": (0.2, 0.8, -0.2),
    "fear": (-0.5, 0.7, -0.7),
    "disgust": (-0.6, 0.2, 0.4),
    "anger": (-0.6, 0.6, 0.9),
    "contempt": (-0.3, 0.1, 0.2),
}
SIZE = 128
SYNTHETIC_NOTE = ("These faces are SYNTHETIC (drawn by featcache.demo): the numbers show the machinery works, not "
                  "how well a backbone reads real faces.")
NEAR_COPIES_NOTE = ("The drawn faces are variations of 8 prototypes, so many are near-copies of each other and the "
                    "leak check says so; on real faces it fires when a split separates frames or photos of one person.")


def _ellipse(yy, xx, cy, cx, ry, rx) -> np.ndarray:
    return ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0


def _stroke(yy, xx, points: np.ndarray, width: float) -> np.ndarray:
    """Pixels within ``width`` of a polyline given by dense points (k, 2) in (y, x)."""
    distance = np.min((yy[..., None] - points[:, 0]) ** 2 + (xx[..., None] - points[:, 1]) ** 2, axis=-1)
    return distance <= width**2


def draw_face(label: int, valence: float, arousal: float, rng: np.random.Generator) -> np.ndarray:
    """One 128 x 128 RGB face whose features follow the class, valence and arousal."""
    name = AFFECTNET_CLASSES[label]
    slant = PROTOTYPES[name][2]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    cy, cx = SIZE / 2 + rng.normal(0, 3), SIZE / 2 + rng.normal(0, 3)
    image = np.ones((SIZE, SIZE, 3), np.float32) * rng.uniform(40, 200, size=3)
    skin = np.array([224, 180, 150]) * rng.uniform(0.7, 1.1)
    image[_ellipse(yy, xx, cy, cx, 52, 42)] = skin
    dark = np.array([40, 30, 30])
    eye_open = 3 + 4 * (arousal + 1) / 2 + (3 if name in ("surprise", "fear") else 0)
    for side in (-1, 1):
        ex = cx + side * 17
        image[_ellipse(yy, xx, cy - 12, ex, eye_open, 7)] = 255
        image[_ellipse(yy, xx, cy - 12, ex, min(eye_open, 3.5), 3.5)] = dark
        brow_height = cy - 24 - 4 * arousal - (5 if name == "surprise" else 0)
        t = np.linspace(0, 1, 24)[:, None]
        inner, outer = np.array([brow_height + 4 * slant, ex - side * 8]), np.array([brow_height - 2 * slant, ex + side * 9])
        image[_stroke(yy, xx, inner + t * (outer - inner), 1.8)] = dark
    mouth_y, half = cy + 22, 14 + 4 * max(valence, 0)
    xs = np.linspace(-half, half, 40)
    curve = -10 * valence * (1 - (xs / half) ** 2)  # smile: corners up relative to the middle
    if name == "contempt":
        curve += np.where(xs > 0, -5 * xs / half, 0)  # one corner raised
    points = np.column_stack([mouth_y - curve + 10 * valence, cx + xs])
    image[_stroke(yy, xx, points, 2.0)] = np.array([150, 40, 50])
    opening = 2 + 7 * max(arousal, 0)
    if arousal > 0.3:
        image[_ellipse(yy, xx, mouth_y + 10 * valence, cx, opening, half * 0.45)] = np.array([70, 20, 25])
    if name == "disgust":
        for side in (-1, 1):
            image[_stroke(yy, xx, np.array([[cy + 6, cx + side * 4], [cy + 10, cx + side * 9]]), 1.2)] = dark
    image += rng.normal(0, 6, size=image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_synthetic_faces(root: Path, per_class: int = 150, seed: int = 0) -> Path:
    """Write an AffectNet-layout dataset of synthetic faces (images/, annotations/)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    images, annotations = root / "images", root / "annotations"
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    index = 0
    for label, name in enumerate(AFFECTNET_CLASSES):
        centre = np.array(PROTOTYPES[name][:2])
        for _ in range(per_class):
            valence, arousal = np.clip(centre + rng.normal(0, 0.15, size=2), -1, 1)
            face = draw_face(label, float(valence), float(arousal), rng)
            (images / f"{index}.jpg").write_bytes(tf.io.encode_jpeg(face, quality=92).numpy())
            for kind, value in (("exp", label), ("val", valence), ("aro", arousal)):
                np.save(annotations / f"{index}_{kind}.npy", np.array(str(value)))  # strings, as AffectNet has
            index += 1
    return root


def run_demo(
    out: Path,
    *,
    per_class: int = 150,
    backbone: str = "efficientnet_lite0",
    head_names=("keras_dense", "logistic", "ridge", "mlp", "multitask"),
    seed: int = 0,
    echo: Callable[[str], None] = print,
    progress: bool = True,
) -> dict:
    """Make the synthetic set (once), extract, train every head, write tables, plots and
    ``report.html`` (all on one page) into ``out``, and save the best head of each task as a model
    (``out/model``)."""
    from .experiment import best_results, compare
    from .extraction import extract
    from .model import Model
    from .report import classification_rows, markdown_table, regression_rows, write_all
    from .splits import split_summary

    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "synthetic-faces"
    if not (data / "images").is_dir():
        echo(f"Drawing {per_class * len(AFFECTNET_CLASSES)} SYNTHETIC faces into {data} ...")
        make_synthetic_faces(data, per_class, seed)
    cache = out / "synthetic-faces.features.h5"
    echo(extract(data, backbone, cache, progress=progress).summary())
    import heads as head_package

    usable = [h for h in head_names if h in head_package.HEADS]
    results = compare(cache, [backbone], usable, "both", seed=seed)
    split = split_summary(cache)
    leak = [NEAR_COPIES_NOTE] if any("LEAK" in line for line in split) else []
    written = write_all(results, out, "demo", notes=split, cache=cache,
                        title=f"featcache demo: {backbone} on SYNTHETIC faces", intro=[SYNTHETIC_NOTE, *leak])
    tables, figures = written.tables, written.figures
    model = Model.from_results(best_results(results), cache=cache, seed=seed).save(out / "model")
    echo(markdown_table(classification_rows(results), "Classification (test part, synthetic faces)"))
    echo(markdown_table(regression_rows(results), "Valence and arousal (test part, synthetic faces)"))
    echo("\n".join(split))
    if leak:
        echo(f"({NEAR_COPIES_NOTE})")
    echo(f"Tables: {', '.join(str(p) for p in tables.values())}")
    echo(f"Figures: {', '.join(str(p) for p in figures)}")
    echo(f"Report (one page, open it in a browser): {written.report}")
    echo(f"Model (the best head of each task): {model}; predict with: featcache predict --model {model} "
         f"--data {data / 'images'} --out predictions.csv")
    echo(f"Done in {time.perf_counter() - began:.0f} s. {SYNTHETIC_NOTE}\nOn real data: featcache extract --data "
         "PATH/TO/AFFECTNET --backbone efficientnet_lite0 --out faces.h5 && featcache compare --cache faces.h5 "
         "--backbones efficientnet_lite0 --heads keras_dense,logistic,ridge,mlp --task both")
    return {"results": results, "tables": tables, "figures": figures, "report": written.report, "model": model}
