"""Tables (markdown, CSV, JSON) and figures (PNG) from experiment results."""

import csv
import json

import matplotlib.image
import numpy as np

import metrics
from featcache import plots
from featcache.report import classification_rows, regression_rows, write_tables
from imagegen import make_class_folders


def fake_results():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    scores = rng.dirichlet(np.ones(3), size=60)
    va = rng.uniform(-1, 1, size=(60, 2))
    return [
        {"backbone": "b1", "head": "logistic", "task": "classify", "fit_seconds": 0.5,
         "report": metrics.classification_report(y, scores, class_names=["a", "b", "c"])},
        {"backbone": "b1", "head": "ridge", "task": "regress", "fit_seconds": 0.25,
         "report": metrics.regression_report(va, va * 0.5)},
    ]


def test_tables_have_the_reports_columns(tmp_path):
    results = fake_results()
    (row,) = classification_rows(results)
    assert list(row) == ["Backbone", "Head", "Accuracy", "F1-Score", "Cohen's Kappa", "AUC (ROC)", "AUC (PR)",
                         "Krippendorff's alpha", "Fit (s)"]
    assert row["Accuracy"] == results[0]["report"]["accuracy"]
    (reg,) = regression_rows(results)
    assert reg["CCC V"] == results[1]["report"]["valence"]["ccc"] and "RMSE A" in reg
    written = write_tables(results, tmp_path, "t")
    markdown = written["markdown"].read_text()
    assert "| Backbone | Head | Accuracy |" in markdown and "| b1 | ridge |" in markdown
    with open(written["classification"]) as handle:
        (parsed,) = list(csv.DictReader(handle))
    assert float(parsed["Accuracy"]) == row["Accuracy"]
    assert json.loads(written["json"].read_text())["regression"][0]["Head"] == "ridge"


def test_figures_are_real_pngs(tmp_path):
    made = make_class_folders(tmp_path / "faces")
    images = [str(made.data / p) for p in made.paths if p not in made.unreadable][:6]
    history = {"loss": [1.0, 0.8, 0.7], "val_loss": [1.1, 0.9, 0.85], "accuracy": [0.3, 0.5, 0.6],
               "val_accuracy": [0.25, 0.4, 0.5]}
    made_paths = [
        plots.training_curves({"b1 dense": history, "b2 dense": history}, tmp_path / "curves.png"),
        plots.confusion_matrix(np.array([[5, 1], [2, 4]]), ["a", "b"], tmp_path / "cm.png", "title"),
        plots.face_grid(images, [0, 1, 0, 1, 0, 1], [0, 0, 0, 1, 1, 1], ["a", "b"], tmp_path / "grid.png", columns=3),
        plots.va_scatter(np.zeros((5, 2)) + 0.1, np.zeros((5, 2)), tmp_path / "va.png"),
    ]
    for path in made_paths:
        pixels = matplotlib.image.imread(path)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0.01
    grid = matplotlib.image.imread(made_paths[2])
    reds = np.sum((grid[..., 0] > 0.8) & (grid[..., 1] < 0.3) & (grid[..., 2] < 0.3))
    greens = np.sum((grid[..., 1] > 0.5) & (grid[..., 0] < 0.3))
    assert reds > 100 and greens > 100  # both wrong (red) and correct (green) frames are drawn
