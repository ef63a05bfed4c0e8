"""Hard-coded published or hand-derived values."""

import numpy as np
import pytest

import metrics

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
# four observers, twelve units, missing values; alpha for four levels of measurement.
KRIPPENDORFF_2011 = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
    [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan],
]


@pytest.mark.parametrize(
    "level, published", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797)]
)
def test_krippendorff_2011_worked_example(level, published):
    assert metrics.krippendorff_alpha_reliability(KRIPPENDORFF_2011, level) == pytest.approx(published, abs=5e-4)


def test_krippendorff_two_coder_example_by_hand():
    # Krippendorff (2011), section A: binary data, two observers, ten units; alpha = 0.095.
    a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert metrics.krippendorff_alpha(a, b) == pytest.approx(0.095, abs=5e-4)


def test_cohen_kappa_textbook_two_by_two():
    # 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
    rater_a = [1] * 25 + [0] * 25
    rater_b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    assert metrics.cohen_kappa(rater_a, rater_b) == pytest.approx(0.4, abs=1e-12)


def test_scikit_learn_docstring_examples_for_roc_and_ap():
    y_true = [0, 0, 1, 1]
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    two_columns = np.column_stack([1 - scores, scores])
    assert metrics.auc_roc(y_true, two_columns, average=None)[1] == pytest.approx(0.75, abs=1e-12)
    assert metrics.auc_pr(y_true, two_columns, average=None)[1] == pytest.approx(0.8333333333333333, abs=1e-12)


def test_ccc_by_hand():
    # Shift by one: var 2/3 on both sides, cov 2/3, mean gap 1 -> CCC = (4/3) / (4/3 + 1) = 4/7.
    assert metrics.ccc([1, 2, 3], [2, 3, 4]) == pytest.approx(4 / 7, abs=1e-12)
    assert metrics.pearson([1, 2, 3], [2, 3, 4]) == pytest.approx(1.0, abs=1e-12)


def test_regression_report_by_hand():
    truth = np.array([[0.5, -0.5], [-0.5, 0.5], [0.0, 0.25]])
    pred = np.array([[0.25, -0.25], [-0.25, 0.25], [0.1, 0.0]])
    report = metrics.regression_report(truth, pred)
    assert report["n_samples"] == 3
    assert report["valence"]["mae"] == pytest.approx((0.25 + 0.25 + 0.1) / 3, abs=1e-12)
    assert report["arousal"]["rmse"] == pytest.approx(np.sqrt((0.0625 * 3) / 3), abs=1e-12)
    assert report["valence"]["sagr"] == pytest.approx(2 / 3, abs=1e-12)  # the 0.0 truth vs 0.1 disagrees
    assert report["arousal"]["sagr"] == pytest.approx(2 / 3, abs=1e-12)  # 0.25 vs 0.0 disagrees
