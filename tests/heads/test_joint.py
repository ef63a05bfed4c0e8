"""JointLinearHead: valence/arousal told by the class probabilities too, learned out of fold."""

import numpy as np
import pytest

from sklearn.model_selection import StratifiedKFold

import heads
import metrics


def class_driven(n: int, seed: int):
    """Valence/arousal set by the class (plus a little noise), classes seen through noisy features:
    the class probabilities carry what a linear map of the features only half recovers."""
    fixed = np.random.default_rng(99)
    centres = fixed.normal(size=(6, 40)) * 0.6
    table = fixed.uniform(-0.8, 0.8, size=(6, 2))
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 6, n)
    X = (centres[classes] + rng.normal(size=(n, 40))).astype(np.float32)
    va = np.clip(table[classes] + 0.1 * rng.normal(size=(n, 2)), -1, 1)
    return X, classes, va


def test_class_probabilities_lift_valence_and_arousal_over_ridge_alone():
    X, classes, va = class_driven(1500, seed=0)
    X_test, classes_test, va_test = class_driven(1500, seed=1)
    joint = heads.JointLinearHead(random_state=0).fit(X, np.column_stack([classes, va]))
    ridge = heads.RidgeHead(match_spread=True).fit(X, va)
    joint_ccc = metrics.ccc(va_test, joint.predict(X_test)[:, 1:])
    ridge_ccc = metrics.ccc(va_test, ridge.predict(X_test))
    assert (joint_ccc > ridge_ccc + 0.05).all(), (joint_ccc, ridge_ccc)


def test_its_classes_are_the_logistic_heads_and_the_combiner_learns_out_of_fold():
    X, classes, va = class_driven(600, seed=2)
    joint = heads.JointLinearHead(Cs=(0.01, 0.1, 1.0), random_state=0).fit(X, np.column_stack([classes, va]))
    alone = heads.LogisticHead(Cs=(0.01, 0.1, 1.0), random_state=0).fit(X, classes)
    np.testing.assert_allclose(joint.predict_proba(X), alone.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(joint.predict(X)[:, 0], alone.predict(X))
    assert joint.classifier_.C_ == alone.C_
    # the classifier's cross-validation left each row's held-out probabilities: what the combiner learned from
    held_out = joint.classifier_.cv_proba_
    assert held_out.shape == (600, 6)
    np.testing.assert_allclose(held_out.sum(axis=1), 1.0, rtol=1e-6)  # float32 inside the path
    best = list(joint.classifier_.Cs).index(joint.classifier_.C_)
    assert np.mean(held_out.argmax(axis=1) == classes) == pytest.approx(joint.classifier_.cv_scores_[:, best].mean(),
                                                                         abs=0.01)
    training = joint.predict_proba(X)
    assert np.mean(training.argmax(axis=1) == classes) > np.mean(held_out.argmax(axis=1) == classes)  # in-sample is better
    # the combiner is the ridge of [out-of-fold ridge predictions at the chosen alpha, held-out probabilities]
    out_of_fold = np.zeros(va.shape)
    for train, held in StratifiedKFold(3, shuffle=True, random_state=0).split(X, classes):
        ridge = heads.RidgeHead(alpha=joint.regressor_.alpha_).fit(X[train], va[train])
        out_of_fold[held] = ridge.predict(X[held])
    combiner = heads.RidgeHead(match_spread=True).fit(np.column_stack([out_of_fold, held_out]), va)
    np.testing.assert_allclose(joint.combiner_.pipeline_[-1].coef_, combiner.pipeline_[-1].coef_, rtol=1e-6)
    in_sample = heads.RidgeHead(match_spread=True).fit(
        np.column_stack([joint.regressor_.predict(X), training]), va)
    assert not np.allclose(joint.combiner_.pipeline_[-1].coef_, in_sample.pipeline_[-1].coef_, rtol=1e-2)


def test_a_fixed_c_classifier_gets_out_of_fold_fits_and_bad_targets_fail():
    X, classes, va = class_driven(300, seed=3)
    fixed = heads.JointLinearHead(classifier=heads.LogisticHead(C=0.1), cv=2, random_state=0)
    fixed.fit(X, np.column_stack([classes, va]))
    assert not hasattr(fixed.classifier_, "cv_proba_") and fixed.predict(X).shape == (300, 3)
    with pytest.raises(ValueError, match=r"y must be \(n, 3\)"):
        heads.JointLinearHead().fit(X, va)
    with pytest.raises(ValueError, match="integer class ids"):
        heads.JointLinearHead().fit(X, np.column_stack([classes + 0.5, va]))
