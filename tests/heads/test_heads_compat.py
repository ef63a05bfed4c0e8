"""Heads inside scikit-learn's Pipelines, GridSearchCV and cross-validation."""

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, StratifiedKFold, check_cv, cross_val_score
from sklearn.pipeline import make_pipeline

import heads
import metrics


def test_grid_search_over_logistic_c(train, test):
    search = GridSearchCV(heads.LogisticHead(), {"C": [0.1, 1]}, cv=3).fit(train.X, train.labels)
    assert search.best_params_["C"] in (0.1, 1)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert isinstance(check_cv(3, train.labels, classifier=True), StratifiedKFold)  # classifier => stratified folds
    assert metrics.accuracy(test.labels, search.predict(test.X)) >= 0.75
    assert search.predict_proba(test.X).shape == (len(test.X), 8)


def test_pca_then_ridge_pipeline(train, test):
    pipeline = make_pipeline(PCA(16), heads.RidgeHead()).fit(train.X, train.va)
    predicted = pipeline.predict(test.X)
    assert predicted.shape == (len(test.X), 2)
    assert metrics.ccc(test.va, predicted).min() >= 0.3  # 0.415, 0.530: 16 of 64 directions keep part of W
    pca = PCA(16).fit(train.X)
    direct = heads.RidgeHead().fit(pca.transform(train.X), train.va).predict(pca.transform(test.X))
    np.testing.assert_allclose(predicted, direct, rtol=1e-10, atol=1e-12)
    assert pipeline.get_params()["ridgehead__alpha"] is None  # chosen by leave-one-out when fitted
    pipeline.set_params(ridgehead__alpha=10.0)
    assert pipeline[-1].alpha == 10.0


def test_grid_search_over_a_keras_head_in_a_pipeline(train):
    """Keras heads clone and refit like any estimator: 2 x 2 folds + the refit."""
    rows = slice(0, 240)
    pipeline = make_pipeline(PCA(16), heads.KerasDenseClassifier(epochs=2, learning_rate=1e-3, random_state=0))
    search = GridSearchCV(pipeline, {"kerasdenseclassifier__hidden_units": [8, 32]}, cv=2)
    search.fit(train.X[rows], train.labels[rows])
    units = search.best_params_["kerasdenseclassifier__hidden_units"]
    assert units in (8, 32) and search.best_estimator_[-1].model_.layers[1].units == units
    assert search.predict(train.X[:5]).shape == (5,)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_regressor_scores_r2_in_cross_validation(train):
    scores = cross_val_score(heads.MLPHead("regress", random_state=0), train.X, train.va, cv=2)
    assert scores.shape == (2,) and (scores > 0.5).all()  # R^2: the regressor's default score


def test_multitask_scores_in_cross_validation(train):
    """Its score: (accuracy + mean valence/arousal CCC) / 2."""
    rows = slice(0, 240)
    head = heads.MultiTaskHead(epochs=3, learning_rate=1e-3, random_state=0)
    scores = cross_val_score(head, train.X[rows], train.joint[rows], cv=2)
    assert scores.shape == (2,) and (scores > 0.15).all() and (scores <= 1).all()  # 0.34, 0.25; chance ~0.06
