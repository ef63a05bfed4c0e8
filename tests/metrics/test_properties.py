"""Property tests: symmetry, bounds, invariances and perfect-prediction values."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import metrics
from metrics import UndefinedMetricWarning

settings.register_profile("featcache", max_examples=150, deadline=None)
settings.load_profile("featcache")


@st.composite
def label_pairs(draw, min_classes=2):
    n_classes = draw(st.integers(min_classes, 8))
    n = draw(st.integers(1, 60))
    labels = st.integers(0, n_classes - 1)
    y_true = np.array(draw(st.lists(labels, min_size=n, max_size=n)))
    y_pred = np.array(draw(st.lists(labels, min_size=n, max_size=n)))
    return y_true, y_pred


@st.composite
def target_pairs(draw):
    n = draw(st.integers(2, 60))
    values = st.floats(-1, 1, allow_nan=False).map(lambda v: round(v, 2))  # rounding makes ties and zeros
    return (np.array(draw(st.lists(values, min_size=n, max_size=n))),
            np.array(draw(st.lists(values, min_size=n, max_size=n))))


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        return fn(*args, **kwargs)


def same(a, b):
    return (np.isnan(a) and np.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@given(label_pairs())
def test_agreement_measures_are_symmetric(pair):
    y_true, y_pred = pair
    for weights in (None, "linear", "quadratic"):
        assert same(quiet(metrics.cohen_kappa, y_true, y_pred, weights=weights),
                    quiet(metrics.cohen_kappa, y_pred, y_true, weights=weights))
    for level in ("nominal", "ordinal", "interval"):
        assert same(quiet(metrics.krippendorff_alpha, y_true, y_pred, level),
                    quiet(metrics.krippendorff_alpha, y_pred, y_true, level))
    assert metrics.accuracy(y_true, y_pred) == metrics.accuracy(y_pred, y_true)
    # Precision and recall swap roles when truth and prediction swap.
    np.testing.assert_allclose(quiet(metrics.precision, y_true, y_pred, average=None),
                               quiet(metrics.recall, y_pred, y_true, average=None))


@given(label_pairs())
def test_label_metrics_are_bounded(pair):
    y_true, y_pred = pair
    for value in (metrics.accuracy(y_true, y_pred), quiet(metrics.f1_score, y_true, y_pred),
                  quiet(metrics.f1_score, y_true, y_pred, average="weighted"),
                  quiet(metrics.precision, y_true, y_pred), quiet(metrics.recall, y_true, y_pred)):
        assert 0.0 <= value <= 1.0
    kappa = quiet(metrics.cohen_kappa, y_true, y_pred)
    assert np.isnan(kappa) or -1.0 <= kappa <= 1.0
    cm = metrics.confusion_matrix(y_true, y_pred)
    assert cm.sum() == len(y_true) and np.trace(cm) == np.sum(y_true == y_pred)


@given(label_pairs())
def test_perfect_prediction(pair):
    y_true, _ = pair
    assume(np.unique(y_true).size >= 2)
    assert metrics.accuracy(y_true, y_true) == 1.0
    assert metrics.f1_score(y_true, y_true) == 1.0
    for weights in (None, "linear", "quadratic"):
        assert metrics.cohen_kappa(y_true, y_true, weights=weights) == pytest.approx(1.0)
    for level in ("nominal", "ordinal", "interval", "ratio"):
        assert metrics.krippendorff_alpha(y_true + 1, y_true + 1, level) == pytest.approx(1.0)
    n_classes = int(y_true.max()) + 1
    one_hot = np.eye(n_classes)[y_true]
    report = quiet(metrics.classification_report, y_true, one_hot)
    assert report["accuracy"] == 1.0
    assert report["auc_roc"] == 1.0 and report["auc_pr"] == 1.0


@given(st.integers(2, 6), st.integers(2, 80), st.integers(0, 2**31 - 1))
def test_auc_invariances(n_classes, n, seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, n_classes, n)
    scores = np.round(rng.uniform(size=(n, n_classes)), 1)  # many ties
    roc = quiet(metrics.auc_roc, y_true, scores, average=None)
    pr = quiet(metrics.auc_pr, y_true, scores, average=None)
    defined = ~np.isnan(roc)
    assert np.all((roc[defined] >= 0) & (roc[defined] <= 1))
    assert np.all((pr[~np.isnan(pr)] > 0) & (pr[~np.isnan(pr)] <= 1))
    # A strictly increasing transform of the scores changes nothing.
    np.testing.assert_allclose(quiet(metrics.auc_roc, y_true, np.exp(3 * scores), average=None), roc, atol=1e-12)
    np.testing.assert_allclose(quiet(metrics.auc_pr, y_true, 2 * scores - 7, average=None), pr, atol=1e-12)
    # Reversing the ranking mirrors the ROC curve.
    np.testing.assert_allclose(quiet(metrics.auc_roc, y_true, -scores, average=None)[defined],
                               1 - roc[defined], atol=1e-12)
    # Permuting samples changes nothing.
    order = rng.permutation(n)
    np.testing.assert_allclose(quiet(metrics.auc_roc, y_true[order], scores[order], average=None), roc,
                               atol=1e-12)


@given(target_pairs())
def test_regression_symmetry_and_bounds(pair):
    y_true, y_pred = pair
    for fn in (metrics.rmse, metrics.mae, metrics.sagr):
        assert fn(y_true, y_pred) == pytest.approx(fn(y_pred, y_true), abs=1e-12)
    assert metrics.rmse(y_true, y_pred) >= metrics.mae(y_true, y_pred) - 1e-12 >= -1e-12
    assert 0.0 <= metrics.sagr(y_true, y_pred) <= 1.0
    corr = quiet(metrics.pearson, y_true, y_pred)
    concordance = quiet(metrics.ccc, y_true, y_pred)
    assert same(concordance, quiet(metrics.ccc, y_pred, y_true))
    if not np.isnan(corr):
        assert -1.0 <= corr <= 1.0
        assert abs(concordance) <= abs(corr) + 1e-12  # CCC = CORR x bias-correction factor in [0, 1]


@given(arrays(np.float64, st.integers(2, 50), elements=st.floats(-1, 1)))
def test_perfect_regression(values):
    assume(np.ptp(values) > 1e-6)
    assert metrics.rmse(values, values) == 0.0 and metrics.mae(values, values) == 0.0
    assert metrics.pearson(values, values) == pytest.approx(1.0)
    assert metrics.ccc(values, values) == pytest.approx(1.0)
    assert metrics.sagr(values, values) == 1.0
    # A rescaled prediction keeps CORR at 1 but loses concordance.
    assert metrics.pearson(values, 2 * values + 0.5) == pytest.approx(1.0)
    assert metrics.ccc(values, 2 * values + 0.5) < 1.0


@given(target_pairs())
def test_two_column_arrays_equal_column_by_column(pair):
    a, b = pair
    truth, pred = np.column_stack([a, b]), np.column_stack([b, a[::-1]])
    for fn in (metrics.rmse, metrics.mae, metrics.sagr, metrics.ccc, metrics.pearson):
        both = quiet(fn, truth, pred)
        for j in range(2):
            assert same(both[j], quiet(fn, truth[:, j], pred[:, j]))
