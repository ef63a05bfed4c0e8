"""Tuned linear heads, spread matching and the block ensemble."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import heads
import metrics
from synthetic_features import mixture


@pytest.fixture(scope="module")
def noisy():
    """8 classes whose signal sits in 64 of 1,024 columns: it needs strong regularisation."""
    X, y, va, _ = mixture(n=1600, d=64, seed=1)
    rng = np.random.default_rng(2)
    X = np.hstack([X, rng.normal(size=(len(X), 960)).astype(np.float32)])
    return X[:1200], y[:1200], va[:1200], X[1200:], y[1200:], va[1200:]


def test_logistic_cv_chooses_a_c_as_good_as_the_best_fixed_one():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 64)) * 0.4
    y = rng.integers(0, 8, 1600)
    X = np.hstack([centres[y] + rng.normal(size=(1600, 64)), rng.normal(size=(1600, 960))]).astype(np.float32)
    Cs = (1e-4, 1e-3, 1e-2, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        tuned = heads.LogisticCVHead(Cs=Cs, random_state=0).fit(X[:400], y[:400])
        fixed = [metrics.accuracy(y[400:], heads.LogisticHead(C=C).fit(X[:400], y[:400]).predict(X[400:])) for C in Cs]
    accuracy = metrics.accuracy(y[400:], tuned.predict(X[400:]))
    assert tuned.C_ in Cs[1:]  # never the far too strong 1e-4 (test accuracy near chance)
    assert accuracy >= max(fixed) - 0.03 and accuracy > min(fixed) + 0.3, (accuracy, fixed)
    assert np.allclose(tuned.predict_proba(X[400:]).sum(axis=1), 1.0)


def test_ridge_cv_chooses_alpha_per_target_as_good_as_the_best_fixed_one(noisy):
    X, _, va, X_test, _, va_test = noisy
    alphas = (0.1, 10.0, 1e3, 1e4)
    tuned = heads.RidgeCVHead(alphas=alphas, clip=False).fit(X, va)
    assert np.shape(tuned.alpha_) == (2,) and set(np.ravel(tuned.alpha_)) <= set(alphas)
    fixed = np.array([metrics.rmse(va_test, heads.RidgeHead(alpha=a, clip=False).fit(X, va).predict(X_test))
                      for a in alphas])  # (alphas, targets)
    error = metrics.rmse(va_test, tuned.predict(X_test))
    assert np.all(error <= fixed.min(axis=0) * 1.02) and np.all(error < fixed.max(axis=0) * 0.9), (error, fixed)


def test_match_spread_makes_training_predictions_as_spread_as_the_targets_and_lifts_ccc(noisy):
    X, _, va, X_test, _, va_test = noisy
    shrunk = heads.RidgeHead(alpha=3e4, clip=False).fit(X, va)
    matched = heads.RidgeHead(alpha=3e4, clip=False, match_spread=True).fit(X, va)
    np.testing.assert_allclose(matched.predict(X).std(axis=0), va.std(axis=0), rtol=1e-6)
    np.testing.assert_allclose(matched.predict(X).mean(axis=0), shrunk.predict(X).mean(axis=0), atol=1e-9)
    assert np.all(shrunk.predict(X).std(axis=0) < 0.8 * va.std(axis=0))  # the shrinkage being corrected
    before, after = metrics.ccc(va_test, shrunk.predict(X_test)), metrics.ccc(va_test, matched.predict(X_test))
    assert np.all(after > before + 0.05), (before, after)
    np.testing.assert_allclose(metrics.pearson(va_test, matched.predict(X_test)),
                               metrics.pearson(va_test, shrunk.predict(X_test)), rtol=1e-9)  # an affine map


def test_block_ensemble_averages_one_member_per_block(noisy):
    X, y, va, X_test, _, _ = noisy
    blocks = (64, 960)
    ensemble = heads.make("ensemble", "classify", member=heads.LogisticHead(C=0.01), blocks=blocks).fit(X, y)
    assert [m.n_features_in_ for m in ensemble.estimators_] == [64, 960]
    members = [heads.LogisticHead(C=0.01).fit(X[:, :64], y), heads.LogisticHead(C=0.01).fit(X[:, 64:], y)]
    expected = (members[0].predict_proba(X_test[:, :64]) + members[1].predict_proba(X_test[:, 64:])) / 2
    np.testing.assert_allclose(ensemble.predict_proba(X_test), expected, rtol=1e-6, atol=1e-9)
    regressor = heads.make("ensemble", "regress", member=heads.RidgeHead(alpha=10.0, clip=False), blocks=blocks,
                           clip=False).fit(X, va)
    parts = [heads.RidgeHead(alpha=10.0, clip=False).fit(X[:, s], va) for s in (slice(0, 64), slice(64, None))]
    np.testing.assert_allclose(regressor.predict(X_test),
                               (parts[0].predict(X_test[:, :64]) + parts[1].predict(X_test[:, 64:])) / 2, rtol=1e-6)
    with pytest.raises(ValueError, match=r"blocks \[64, 900\] must be positive widths summing to the 1024 features"):
        heads.make("ensemble", "classify", blocks=(64, 900)).fit(X, y)


@parametrize_with_checks([heads.LogisticCVHead(Cs=(0.1, 1.0), random_state=0), heads.RidgeCVHead(match_spread=True),
                          heads.BlockEnsembleClassifier(member=heads.LogisticHead(random_state=0)),
                          heads.BlockEnsembleRegressor(member=heads.RidgeHead(), match_spread=True)])
def test_sklearn_compatible(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


# ------------------------------------------------------------------ regularisation chosen by default


def test_default_logistic_regularises_a_noisy_problem_harder_than_a_clean_one(noisy):
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 600)
    clean = (rng.normal(size=(4, 20))[y] * 0.5 + rng.normal(size=(600, 20))).astype(np.float32)  # all informative
    weak = heads.make("logistic", "classify", random_state=0).fit(clean, y)
    strong = heads.make("logistic", "classify", random_state=0).fit(noisy[0], noisy[1])  # 64 of 1,024 columns
    assert weak.C_ >= 1e-2 and strong.C_ <= 1e-3, (weak.C_, strong.C_)
    assert heads.LogisticHead(C=0.5).fit(clean, y).C_ == 0.5 and not hasattr(heads.LogisticHead(C=0.5), "cv_scores_")


def test_default_ridge_regularises_a_noisy_problem_harder_than_a_clean_one():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(500, 200)).astype(np.float32)
    w = rng.normal(size=(200, 2)) * 0.05
    clean = np.clip(X @ w + rng.normal(0, 0.01, size=(500, 2)), -1, 1)
    noisy = np.clip(X[:, :1] @ w[:1] + rng.normal(0, 0.5, size=(500, 2)), -1, 1)  # one weak column, much noise
    weak, strong = (heads.make("ridge", "regress").fit(X, va) for va in (clean, noisy))
    assert np.all(weak.alpha_ < strong.alpha_) and np.all(weak.alpha_ <= 10) and np.all(strong.alpha_ >= 1e3)
    assert heads.RidgeHead(alpha=3.0).fit(X, clean).alpha_ == 3.0


def test_mlp_regressor_learns_standardised_targets_and_stays_in_their_range():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(400, 30)).astype(np.float32)
    va = np.tanh(X[:, :2] @ rng.normal(size=(2, 2)))  # in (-1, 1)
    head = heads.make("mlp", "regress", random_state=0).fit(X, va)
    assert np.all(head.target_min_ == va.min(axis=0)) and np.all(head.target_max_ == va.max(axis=0))
    far = head.predict(X * 50)  # inputs far outside the training data: outputs still in the targets' range
    assert np.all(far >= va.min(axis=0)) and np.all(far <= va.max(axis=0))
    assert metrics.ccc(va[300:], heads.make("mlp", "regress", random_state=0).fit(X[:300], va[:300]).predict(X[300:])
                       ).min() >= 0.6
    scaled = heads.make("mlp", "regress", random_state=0).fit(X[:300], va[:300] * 100)  # units do not matter
    np.testing.assert_allclose(scaled.predict(X[300:]) / 100,
                               heads.make("mlp", "regress", random_state=0).fit(X[:300], va[:300]).predict(X[300:]),
                               atol=1e-6)
