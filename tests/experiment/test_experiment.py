"""Experiments end to end: synthetic faces -> cache -> heads -> reports, train/evaluate, the demo."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache.cli import app
from featcache.demo import make_synthetic_faces, run_demo
from featcache.experiment import compare
from featcache.model import evaluate, train

FACE = "fer_minixception"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    data = make_synthetic_faces(root / "faces", per_class=30, seed=1)
    path = root / "faces.h5"
    featcache.extract(data, FACE, path)
    return path


def test_compare_scores_every_head_on_the_shared_test_part(cache):
    results = compare(cache, [FACE], ["logistic", "ridge", "keras_dense"], "both")
    assert [(r["head"], r["task"]) for r in results] == [
        ("logistic", "classify"), ("keras_dense", "classify"), ("ridge", "regress"), ("keras_dense", "regress")]
    tests = {tuple(r["test_index"]) for r in results}
    assert len(tests) == 1 and abs(len(next(iter(tests))) - 36) <= 8  # 15% of 240 (+-1 a class): shared
    logistic = results[0]["report"]
    assert logistic["accuracy"] >= 0.5  # chance is 0.125: the drawn expressions are learnable
    ridge = results[2]["report"]
    assert ridge["valence"]["ccc"] >= 0.5 and ridge["arousal"]["ccc"] >= 0.3
    dense = results[1]
    assert len(dense["history"]["loss"]) >= 1 and dense["fit_seconds"] < 60


def test_train_then_evaluate_gives_the_same_report(cache, tmp_path):
    saved = tmp_path / "logistic"
    trained = train(cache, "logistic", "classify", saved, backbone=FACE)
    outcome = evaluate(cache, saved)
    test_report = trained.training["tasks"]["classify"]["test_report"]
    assert list(outcome) == ["classify"] and outcome["classify"]["report"]["accuracy"] == test_report["accuracy"]
    assert outcome["classify"]["rows"] == "the test part of split 'default' of faces.h5"
    manifest = json.loads((saved / "model.json").read_text())
    assert manifest["tasks"]["classify"]["sources"] == [trained.sources[0].key]
    assert trained.sources[0].config == featcache.load(cache, FACE).config  # the group's configuration, as cached


def test_cli_compare_writes_tables_and_figures(cache, tmp_path):
    result = CliRunner().invoke(app, ["compare", "--cache", str(cache), "--backbones", FACE, "--heads", "logistic,ridge",
                                      "--task", "both", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "| fer_minixception | logistic |" in result.output and "| fer_minixception | ridge |" in result.output
    for name in ("compare.md", "compare.json", "compare_classification.csv", "confusion_matrix.png",
                 "test_faces.png", "valence_arousal.png"):
        assert (tmp_path / name).stat().st_size > 0
    page = (tmp_path / "report.html").read_text()  # one page: the tables and every figure embedded
    assert f"report (one page, open it in a browser): {tmp_path / 'report.html'}" in result.output
    assert page.count("<table>") == 2 and page.count('<img src="data:image/png;base64,') == 3


def test_cli_compare_needs_something_to_compare(cache):
    result = CliRunner().invoke(app, ["compare", "--cache", str(cache)])
    assert result.exit_code == 2 and "name --backbones or --groups" in result.output


def test_demo_runs_end_to_end_and_says_the_faces_are_synthetic(tmp_path):
    lines = []
    outcome = run_demo(tmp_path, per_class=8, backbone=FACE, head_names=("logistic", "ridge"), echo=lines.append,
                       progress=False)
    text = "\n".join(lines)
    assert "SYNTHETIC" in text and "featcache extract --data" in text
    assert "split 'default': train " in text and ("LEAK: " in text) == ("near-copies of each other" in text)
    assert {r["head"] for r in outcome["results"]} == {"logistic", "ridge"}
    assert all(path.stat().st_size > 0 for path in outcome["figures"])
    page = outcome["report"].read_text()
    assert "SYNTHETIC" in page and page.count('<img src="data:image/png;base64,') == len(outcome["figures"]) == 3
    assert f"Report (one page, open it in a browser): {outcome['report']}" in text
    assert (tmp_path / "demo.md").read_text().count("| fer_minixception |") == 2
    model = featcache.load_model(outcome["model"], check_weights=False)
    assert {task: part.head for task, part in model.tasks.items()} == {"classify": "logistic", "regress": "ridge"}
    assert f"featcache predict --model {outcome['model']}" in text


def test_multitask_head_is_fitted_once_and_scored_in_both_tables(cache):
    results = compare(cache, [FACE], ["multitask"], "both")
    assert [r["task"] for r in results] == ["classify", "regress"]
    assert results[0]["estimator"] is results[1]["estimator"]
    assert results[0]["report"]["accuracy"] > 0.3 and results[1]["report"]["valence"]["ccc"] > 0.2
    only = compare(cache, [FACE], ["multitask"], "regress")
    assert [r["task"] for r in only] == ["regress"]


def test_the_cnn_on_cached_pixels_is_fitted_per_task_by_compare_and_once_by_train_both(tmp_path):
    data = make_synthetic_faces(tmp_path / "faces", per_class=12, seed=2)
    cache = featcache.extract(data, "pixels", tmp_path / "pixels.h5", image_size=16).path
    params = {"filters": (8, 16), "epochs": 2, "random_state": 0}
    compared = compare(cache, ["pixels"], ["cnn"], "both")
    assert [(r["head"], r["task"], r["joint"]) for r in compared] == [("cnn", "classify", False),
                                                                     ("cnn", "regress", False)]
    assert type(compared[0]["estimator"]).__name__ == "CNNClassifier"
    model = featcache.Model.from_cache(cache, "pixels", classify=("cnn", params), regress=("cnn", params))
    assert model.tasks["classify"].estimator is model.tasks["regress"].estimator  # one joint fit
    assert type(model.tasks["classify"].estimator).__name__ == "CNNMultiTaskHead"
    assert model.tasks["classify"].estimator.image_shape_ == (16, 16, 1)
    report = model.training["tasks"]
    assert 0 <= report["classify"]["test_report"]["accuracy"] <= 1
    assert np.isfinite(report["regress"]["test_report"]["valence"]["rmse"])


def test_train_both_tasks_fits_a_multitask_head_once_and_scores_both(cache, tmp_path):
    model = train(cache, "multitask", "both", tmp_path / "joint", backbone=FACE)
    assert set(model.tasks) == {"classify", "regress"}
    assert model.tasks["classify"].estimator is model.tasks["regress"].estimator  # one fit for both
    outcome = evaluate(cache, tmp_path / "joint")
    assert outcome["classify"]["report"]["accuracy"] > 0.3 and outcome["regress"]["report"]["valence"]["ccc"] > 0.2
    result = CliRunner().invoke(app, ["train", "--cache", str(cache), "--head", "logistic", "--task", "both",
                                      "--backbone", FACE, "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "head 'logistic' cannot regress" in result.output
    joint = CliRunner().invoke(app, ["train", "--cache", str(cache), "--head", "multitask", "--task", "joint",
                                     "--backbone", FACE, "--out", str(tmp_path / "joint2")])
    assert joint.exit_code == 0, joint.output
    assert "(multitask, classify)" in joint.output and "(multitask, regress)" in joint.output
    refused = CliRunner().invoke(app, ["train", "--cache", str(cache), "--head", "keras_dense", "--task", "joint",
                                       "--backbone", FACE, "--out", str(tmp_path / "bad")])
    assert refused.exit_code == 2
    assert "head 'keras_dense' cannot learn both tasks at once; these can: multitask, cnn" in refused.output
