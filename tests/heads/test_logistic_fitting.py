"""How the logistic heads fit: in the span of their training rows when the features outnumber
them (the same model as scikit-learn's on all the features, mapped back to them), and C chosen
along a warm-started path (the held-out accuracies of cold fits, float32 kept)."""

import warnings

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import heads
from sklearn.model_selection import StratifiedKFold

from heads._logistic_path import LogisticPathCV
from heads._row_space import RowSpace


def wide(rows: int, columns: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, rows)
    X = rng.normal(size=(rows, columns)).astype(np.float32)
    X[:, :4] += 2.0 * np.eye(4, dtype=np.float32)[y]
    return X, y


@pytest.mark.parametrize("rows, columns", [(120, 400), (300, 40)])
def test_logistic_head_equals_scikit_learn_on_all_the_features(rows, columns):
    X, y = wide(rows, columns)
    test, _ = wide(50, columns, seed=1)
    head = heads.LogisticHead(C=0.01, tol=1e-10).fit(X, y)
    scaler = StandardScaler().fit(X)
    reference = LogisticRegression(C=0.01, tol=1e-10, max_iter=5000).fit(scaler.transform(X), y)
    model = head.pipeline_[-1]
    assert [name for name, _ in head.pipeline_.steps] == ["scale", "logistic"]  # the basis is folded away
    assert model.coef_.shape == (4, columns) and model.n_features_in_ == columns
    np.testing.assert_allclose(model.coef_, reference.coef_, atol=1e-4 * np.abs(reference.coef_).max())
    np.testing.assert_allclose(head.predict_proba(test), reference.predict_proba(scaler.transform(test)), atol=2e-4)


def test_logistic_cv_head_chooses_and_fits_as_on_all_the_features():
    X, y = wide(150, 500, seed=2)
    test, _ = wide(40, 500, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        head = heads.LogisticCVHead(Cs=(1e-3, 1e-2, 0.1), tol=1e-10, random_state=0).fit(X, y)
    scaler = StandardScaler().fit(X)
    reference = LogisticRegression(C=head.C_, tol=1e-10, max_iter=5000).fit(scaler.transform(X), y)
    model = head.pipeline_[-1]
    assert model.coef_.shape == (4, 500) and head.cv_scores_.shape == (3, 3)
    np.testing.assert_allclose(head.predict_proba(test), reference.predict_proba(scaler.transform(test)), atol=2e-4)


def test_row_space_basis_is_orthonormal_and_spans_the_rows():
    X, _ = wide(30, 100)
    step = RowSpace().fit(X)
    basis = step.basis_
    assert basis.shape == (100, 30)
    np.testing.assert_allclose(basis.T @ basis, np.eye(30), atol=1e-5)
    np.testing.assert_allclose(step.transform(X) @ basis.T, X, atol=1e-4)  # nothing of a row is lost
    tall, _ = wide(100, 30)
    assert RowSpace().fit(tall).basis_ is None and RowSpace().fit(tall).transform(tall) is tall


def test_path_cv_scores_are_those_of_cold_fits_and_the_best_c_is_refitted_on_all_rows():
    X, y = wide(240, 60, seed=4)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    Cs = (0.1, 1e-3, 1e-2)  # any order: the path runs from the strongest penalty up
    splitter = StratifiedKFold(3, shuffle=True, random_state=0)
    search = LogisticPathCV(Cs=Cs, cv=splitter, tol=1e-10).fit(X, y)
    for fold, (train, held) in enumerate(splitter.split(X, y)):
        for i, C in enumerate(Cs):
            cold = LogisticRegression(C=C, tol=1e-10, max_iter=1000).fit(X[train], y[train])
            assert search.scores_[fold, i] == pytest.approx(cold.score(X[held], y[held]), abs=1.5 / len(held))
    assert search.C_ == Cs[int(np.argmax(search.scores_.mean(axis=0)))]
    assert len(set(np.round(search.scores_.mean(axis=0), 6))) > 1  # the Cs differ on this data
    best = LogisticRegression(C=search.C_, tol=1e-10, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(search.predict_proba(X), best.predict_proba(X), atol=1e-4)
    assert search.best_estimator_.coef_.dtype == best.coef_.dtype  # float32 kept where the solver keeps it
