"""Figures a person would rather look at than read (matplotlib, PNG, no display needed).

:func:`write_figures` draws the standard set for experiment results (demo, compare, benchmarks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

CORRECT, WRONG = "#1a9850", "#d73027"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.clf()
    _pyplot().close(fig)
    return path


def training_curves(histories: Mapping[str, Mapping[str, Sequence[float]]], path: Path) -> Path:
    """Loss and the second metric (accuracy or MAE) per epoch, train solid and validation dashed,
    one colour per run: the comparison across backbones or heads in one figure."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (label, history), colour in zip(histories.items(), plt.cm.tab10.colors):
        metric = next((k for k in history if not k.startswith("val_") and k.endswith(("accuracy", "mae"))), None)
        for ax, key in zip(axes, ("loss", metric)):
            if key is None or key not in history:
                continue
            epochs = np.arange(1, len(history[key]) + 1)
            ax.plot(epochs, history[key], color=colour, label=f"{label} train")
            if f"val_{key}" in history:
                ax.plot(epochs, history[f"val_{key}"], color=colour, linestyle="--", label=f"{label} validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(key)
    axes[0].set_title("loss")
    axes[1].set_title("accuracy / MAE")
    for ax in axes:
        if ax.lines:
            ax.legend(fontsize=7, loc="best")
    return _save(fig, path)


def confusion_matrix(cm: np.ndarray, class_names: Sequence[str], path: Path, title: str = "") -> Path:
    """Row-normalised confusion matrix with counts in each cell."""
    plt = _pyplot()
    cm = np.asarray(cm)
    normalised = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if normalised[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="fraction of the true class")
    ax.set_title(title)
    return _save(fig, path)


def face_grid(images: Sequence[str], true: Sequence[int], predicted: Sequence[int], class_names: Sequence[str],
              path: Path, columns: int = 6, title: str = "") -> Path:
    """Test faces framed green (correct) or red (wrong), with true and predicted labels."""
    plt = _pyplot()
    rows = int(np.ceil(len(images) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(2.0 * columns, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, t, p in zip(axes.flat, images, true, predicted):
        ax.imshow(plt.imread(image), cmap="gray")
        ax.axis("on")
        ax.set_xticks([])
        ax.set_yticks([])
        colour = CORRECT if t == p else WRONG
        for spine in ax.spines.values():
            spine.set_edgecolor(colour)
            spine.set_linewidth(4)
        ax.set_title(f"true {class_names[t]}\npred {class_names[p]}", fontsize=8, color=colour)
    fig.suptitle(title)
    return _save(fig, path)


def va_scatter(true: np.ndarray, predicted: np.ndarray, path: Path, title: str = "") -> Path:
    """Predicted against true valence and arousal, with the identity line."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.3))
    fig.subplots_adjust(wspace=0.35)  # room for the right panel's label
    for ax, j, name in zip(axes, (0, 1), ("valence", "arousal")):
        ax.scatter(true[:, j], predicted[:, j], s=6, alpha=0.5)
        ax.plot([-1, 1], [-1, 1], color="grey", linewidth=1)
        ax.set_xlim(-1.05, 1.05)
        ax.set_ylim(-1.05, 1.05)
        ax.set_xlabel(f"true {name}")
        ax.set_ylabel(f"predicted {name}")
        ax.set_aspect("equal")
    fig.suptitle(title)
    return _save(fig, path)


CAPTIONS = {  # what write_figures' files show, for the HTML report
    "training_curves.png": "Loss and accuracy (or MAE) per epoch: training solid, validation dashed.",
    "confusion_matrix.png": "The best classifier's confusion matrix on the test part: rows are the true "
                            "classes, shaded by the fraction of each, with the counts in the cells.",
    "test_faces.png": "Test faces as the best classifier labels them: green frame correct, red wrong "
                      "(true and predicted class above each).",
    "valence_arousal.png": "The best regressor's predicted against true valence and arousal on the test part; "
                           "the grey line is a perfect prediction.",
}


def write_figures(results: list[dict], cache: Path, out: Path, max_faces: int = 24) -> list[Path]:
    """Training curves, the best classifier's confusion matrix and face grid, the best regressor's scatter."""
    from .reading import info, load

    written = []
    histories = {}
    for r in results:
        if r["history"]:
            joint = sum(1 for o in results if o["estimator"] is r["estimator"]) > 1
            histories[f"{r['backbone']} {r['head']}" + ("" if joint else f" ({r['task']})")] = r["history"]
    if histories:
        written.append(training_curves(histories, out / "training_curves.png"))
    classifiers = [r for r in results if r["task"] == "classify"]
    if classifiers:
        best = max(classifiers, key=lambda r: r["report"]["accuracy"])
        names = best["report"]["classes"]
        title = f"{best['backbone']} + {best['head']}: accuracy {best['report']['accuracy']:.3f}"
        written.append(confusion_matrix(np.array(best["report"]["confusion_matrix"]), names,
                                              out / "confusion_matrix.png", title))
        # a combined feature set (featcache.feature_sets) names its groups; any one has the records' paths
        features = load(cache, group=(best.get("config") or {}).get("groups", [best["group"]])[0])
        root = Path(info(cache)["dataset"]["root"])
        position = {record: row for row, record in enumerate(features.index)}
        chosen = _mixed_sample(best["truth"] == best["predictions"], max_faces)
        paths = [str(root / features.paths[position[best["test_index"][i]]]) for i in chosen]
        written.append(face_grid(paths, best["truth"][chosen], best["predictions"][chosen], names,
                                       out / "test_faces.png", title=title))
    regressors = [r for r in results if r["task"] == "regress"]
    if regressors:
        best = max(regressors, key=lambda r: r["report"]["valence"]["ccc"] + r["report"]["arousal"]["ccc"])
        title = (f"{best['backbone']} + {best['head']}: CCC valence {best['report']['valence']['ccc']:.3f}, "
                 f"arousal {best['report']['arousal']['ccc']:.3f}")
        written.append(va_scatter(best["truth"], best["predictions"], out / "valence_arousal.png", title))
    return written


def _mixed_sample(correct: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Up to half the faces wrongly classified (when there are any), the rest correct, shuffled."""
    rng = np.random.default_rng(seed)
    wrong = rng.permutation(np.flatnonzero(~correct))[: size // 2]
    right = rng.permutation(np.flatnonzero(correct))[: size - len(wrong)]
    return rng.permutation(np.concatenate([wrong, right]))
