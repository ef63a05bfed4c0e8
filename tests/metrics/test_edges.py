"""Behaviour at the edges, as documented in each docstring."""

import re

import numpy as np
import pytest
import scipy.stats

import metrics
from metrics import UndefinedMetricWarning

LABEL_METRICS = [metrics.accuracy, metrics.f1_score, metrics.precision, metrics.recall,
                 metrics.cohen_kappa, metrics.krippendorff_alpha, metrics.confusion_matrix]
TARGET_METRICS = [metrics.rmse, metrics.mae, metrics.pearson, metrics.sagr, metrics.ccc]


@pytest.mark.parametrize("metric", LABEL_METRICS + TARGET_METRICS)
def test_empty_input_names_the_argument(metric):
    with pytest.raises(ValueError, match="y_true is empty"):
        metric([], [])


@pytest.mark.parametrize("metric", LABEL_METRICS + TARGET_METRICS)
def test_mismatched_lengths_are_refused(metric):
    with pytest.raises(ValueError, match=re.escape("y_true has")):
        metric([0, 1, 1], [0, 1])


@pytest.mark.parametrize("metric", TARGET_METRICS)
@pytest.mark.parametrize("where", ["y_true", "y_pred"])
def test_nan_in_targets_names_the_argument(metric, where):
    clean = np.array([0.1, -0.2, 0.3])
    dirty = clean.copy()
    dirty[1] = np.nan
    args = (dirty, clean) if where == "y_true" else (clean, dirty)
    with pytest.raises(ValueError, match=f"{where} contains 1 NaN"):
        metric(*args)


@pytest.mark.parametrize("metric", [metrics.accuracy, metrics.auc_roc, metrics.auc_pr, metrics.f1_score])
def test_nan_in_scores_is_refused(metric):
    scores = np.array([[0.2, 0.8], [np.nan, 0.5]])
    with pytest.raises(ValueError, match="contains 1 NaN"):
        metric([0, 1], scores)


def test_two_by_two_target_shapes_must_match():
    with pytest.raises(ValueError, match=r"y_true has shape \(3, 2\) but y_pred has shape \(3,\)"):
        metrics.ccc(np.zeros((3, 2)), np.zeros(3))


def test_score_columns_must_cover_true_ids():
    with pytest.raises(ValueError, match="class id 2, outside 0..1"):
        metrics.auc_roc([0, 1, 2], np.eye(3)[:, :2])
    with pytest.raises(ValueError, match="integer class ids"):
        metrics.auc_roc(["a", "b"], np.eye(2))


def test_label_outside_explicit_labels():
    with pytest.raises(ValueError, match="y_pred holds label 5, which is not in labels"):
        metrics.f1_score([0, 1], [0, 5], labels=[0, 1])


def test_constant_prediction_corr_is_nan_ccc_is_zero():
    truth = np.array([-0.5, 0.0, 0.5, 0.9])
    constant = np.full(4, 0.2)
    with pytest.warns(UndefinedMetricWarning, match="constant"):
        assert np.isnan(metrics.pearson(truth, constant))
    assert metrics.ccc(truth, constant) == 0.0
    with pytest.warns(UndefinedMetricWarning, match="same constant"):
        assert np.isnan(metrics.ccc(constant, constant))
    # Different constants: no variance anywhere, but the means differ: zero concordance.
    assert metrics.ccc(constant, constant + 0.1) == 0.0


def test_constant_column_in_two_target_arrays_only_affects_that_column():
    truth = np.array([[0.1, 0.5], [0.2, -0.5], [0.4, 0.3]])
    pred = np.array([[0.1, 0.0], [0.25, 0.0], [0.35, 0.0]])
    with pytest.warns(UndefinedMetricWarning):
        corr = metrics.pearson(truth, pred)
    assert corr[0] == pytest.approx(scipy.stats.pearsonr(truth[:, 0], pred[:, 0])[0], abs=1e-12)
    assert np.isnan(corr[1])


def test_sagr_zero_rule():
    assert metrics.sagr([0.0, 0.4, -0.3], [0.0, 0.1, -0.9]) == 1.0
    assert metrics.sagr([0.0], [0.01]) == 0.0
    assert metrics.sagr([0.3], [0.0]) == 0.0


def test_class_absent_from_truth_is_left_out_of_auc_macro():
    y_true = np.array([0, 0, 1, 1, 0, 1])
    scores = np.array([[0.6, 0.3, 0.1], [0.5, 0.2, 0.3], [0.2, 0.7, 0.1],
                       [0.3, 0.4, 0.3], [0.7, 0.1, 0.2], [0.1, 0.5, 0.4]])
    with pytest.warns(UndefinedMetricWarning, match=r"class\(es\) \[2\]"):
        per_class = metrics.auc_roc(y_true, scores, average=None)
        macro = metrics.auc_roc(y_true, scores)
    assert np.isnan(per_class[2]) and per_class[0] == 1.0 and per_class[1] == 1.0
    assert macro == 1.0
    with pytest.warns(UndefinedMetricWarning):
        assert metrics.auc_pr(y_true, scores) == 1.0


def test_scores_need_not_sum_to_one():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, 300)
    scores = rng.uniform(0.0, 1.0, size=(300, 4))  # rows do not sum to one
    increasing = np.column_stack([scores[:, 0] * 5 - 2, np.exp(scores[:, 1]), scores[:, 2] ** 3, scores[:, 3]])
    np.testing.assert_allclose(metrics.auc_roc(y_true, increasing, average=None),
                               metrics.auc_roc(y_true, scores, average=None), atol=1e-12)
    np.testing.assert_allclose(metrics.auc_pr(y_true, increasing, average=None),
                               metrics.auc_pr(y_true, scores, average=None), atol=1e-12)
    assert metrics.accuracy(y_true, scores) == np.mean(scores.argmax(axis=1) == y_true)
    # Scaling whole rows keeps the argmax but not the per-column ranking: AUC differs.
    rescaled = scores * rng.uniform(0.1, 10.0, size=(300, 1))
    assert metrics.accuracy(y_true, rescaled) == metrics.accuracy(y_true, scores)
    assert metrics.auc_roc(y_true, rescaled) != metrics.auc_roc(y_true, scores)


def test_single_class_on_both_sides():
    with pytest.warns(UndefinedMetricWarning, match="kappa is undefined"):
        assert np.isnan(metrics.cohen_kappa([1, 1, 1], [1, 1, 1]))
    with pytest.warns(UndefinedMetricWarning, match="alpha is undefined"):
        assert np.isnan(metrics.krippendorff_alpha([2, 2], [2, 2]))
    assert metrics.accuracy([1, 1, 1], [1, 1, 1]) == 1.0
    assert metrics.f1_score([1, 1, 1], [1, 1, 1]) == 1.0


def test_class_with_no_samples_on_either_side_is_left_out_of_macro_f1():
    y_true, y_pred = [0, 0, 1, 1], [0, 1, 1, 1]
    with pytest.warns(UndefinedMetricWarning, match="1 class"):
        with_absent = metrics.f1_score(y_true, y_pred, labels=[0, 1, 2])
    assert with_absent == pytest.approx(metrics.f1_score(y_true, y_pred))
    per_class = metrics.f1_score(y_true, y_pred, average=None, labels=[0, 1, 2])
    assert np.isnan(per_class[2]) and per_class[0] == pytest.approx(2 / 3)


def test_never_predicted_class_scores_zero_precision_not_nan():
    per_class = metrics.precision([0, 1, 2], [0, 1, 1], average=None)
    np.testing.assert_array_equal(per_class, [1.0, 0.5, 0.0])


def test_krippendorff_reliability_errors():
    with pytest.raises(ValueError, match="no unit coded by at least two coders"):
        metrics.krippendorff_alpha_reliability([[1, np.nan], [np.nan, 2]])
    with pytest.raises(ValueError, match="level must be one of"):
        metrics.krippendorff_alpha([0, 1], [1, 0], level="cardinal")
    with pytest.raises(ValueError, match="needs numeric values"):
        metrics.krippendorff_alpha(["a", "b"], ["b", "a"], level="interval")


def test_string_labels_work_for_label_metrics():
    y_true = ["happy", "sad", "sad", "neutral"]
    y_pred = ["happy", "sad", "neutral", "neutral"]
    assert metrics.accuracy(y_true, y_pred) == 0.75
    np.testing.assert_array_equal(metrics.confusion_matrix(y_true, y_pred), [[1, 0, 0], [0, 1, 0], [0, 1, 1]])


def test_classification_report_with_labels_only_has_no_auc():
    report = metrics.classification_report([0, 1, 1, 2], [0, 1, 2, 2], class_names=["a", "b", "c"])
    assert report["auc_roc"] is None and report["auc_pr"] is None
    assert report["classes"] == ["a", "b", "c"]
    assert report["per_class"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3),
                                        "support": 2, "auc_roc": None, "auc_pr": None}
    assert metrics.table_row(report, metrics.CLASSIFICATION_COLUMNS)["Accuracy"] == 0.75


def test_classification_report_class_names_must_match_columns():
    with pytest.raises(ValueError, match="class_names has 2 names but y_pred has 3 score columns"):
        metrics.classification_report([0, 1], np.eye(3)[:2], class_names=["a", "b"])


def test_regression_report_names_must_match_columns():
    with pytest.raises(ValueError, match="names has 2 entries but y_true has 1 target column"):
        metrics.regression_report([0.1, 0.2], [0.1, 0.3])
    single = metrics.regression_report([0.1, 0.2, -0.3], [0.1, 0.3, -0.1], names=["valence"])
    assert set(single) == {"n_samples", "valence"}
    assert metrics.table_row(single, metrics.REGRESSION_COLUMNS, "valence")["RMSE"] == pytest.approx(
        np.sqrt((0.01 + 0.04) / 3))
