"""The registry, and what every head's fit/predict gives: shapes, classes_, probabilities."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import HEAD_TASKS, LABELS, N_FEATURES
from sklearn.base import is_classifier, is_regressor
from sklearn.exceptions import NotFittedError

import heads

EXPECTED_CLASSES = {
    ("keras_dense", "classify"): heads.KerasDenseClassifier,
    ("keras_dense", "regress"): heads.KerasDenseRegressor,
    ("logistic", "classify"): heads.LogisticHead,
    ("ridge", "regress"): heads.RidgeHead,
    ("mlp", "classify"): heads.MLPHead,
    ("mlp", "regress"): heads.MLPHead,
    ("cnn", "classify"): heads.CNNClassifier,
    ("cnn", "regress"): heads.CNNRegressor,
    ("cnn", "joint"): heads.CNNMultiTaskHead,
    ("logistic_cv", "classify"): heads.LogisticCVHead,
    ("ensemble", "classify"): heads.BlockEnsembleClassifier,
    ("ensemble", "regress"): heads.BlockEnsembleRegressor,
    ("ridge_cv", "regress"): heads.RidgeCVHead,
    ("multitask", "joint"): heads.MultiTaskHead,
    ("joint_linear", "joint"): heads.JointLinearHead,
}


def test_names_and_task_table():
    assert heads.names() == ("keras_dense", "logistic", "ridge", "logistic_cv", "ridge_cv", "mlp", "multitask",
                             "ensemble", "cnn", "joint_linear")
    assert dict(heads.HEADS) == {
        "keras_dense": ("classify", "regress"),
        "logistic": ("classify",),
        "ridge": ("regress",),
        "logistic_cv": ("classify",),
        "ridge_cv": ("regress",),
        "mlp": ("classify", "regress"),
        "multitask": ("joint",),
        "cnn": ("classify", "regress", "joint"),
        "ensemble": ("classify", "regress"),
        "joint_linear": ("joint",),
    }
    assert sorted(EXPECTED_CLASSES) == sorted(HEAD_TASKS)
    with pytest.raises(TypeError):
        heads.HEADS["new"] = ("classify",)  # read-only


@pytest.mark.parametrize("name, task", HEAD_TASKS)
def test_make_returns_the_right_estimator_type(name, task):
    head = heads.make(name, task)
    assert type(head) is EXPECTED_CLASSES[name, task]
    assert is_classifier(head) == (task == "classify")
    assert is_regressor(head) == (task == "regress")
    assert hasattr(head, "predict_proba") == (task in ("classify", "joint"))
    if name == "mlp":
        assert head.task == task


@pytest.mark.parametrize("name, task, valid", [("ridge", "classify", "'regress'"),
                                               ("logistic", "regress", "'classify'"),
                                               ("multitask", "classify", "'joint'")])
def test_make_refuses_a_task_the_head_does_not_do(name, task, valid):
    message = rf"head '{name}' does not support task '{task}'; valid task\(s\): {valid}$"
    with pytest.raises(ValueError, match=message):
        heads.make(name, task)


def test_make_refuses_unknown_names_and_conflicting_task_and_passes_params():
    with pytest.raises(ValueError, match="unknown head 'svm'; choose one of keras_dense, logistic, ridge, logistic_cv, "):
        heads.make("svm", "classify")
    with pytest.raises(ValueError, match="conflicting task='regress'"):
        heads.make("mlp", "classify", task="regress")
    assert heads.make("logistic", "classify", C=0.25).C == 0.25
    assert heads.make("keras_dense", "regress", epochs=3, output_activation="tanh").get_params()["epochs"] == 3
    with pytest.raises(TypeError):
        heads.make("ridge", "regress", C=1.0)


NONSENSE = {  # one parameter per class, with a value fit would refuse
    heads.KerasDenseClassifier: {"learning_rate": "fast"},
    heads.KerasDenseRegressor: {"output_activation": "relu"},
    heads.MultiTaskHead: {"loss_weights": (1.0,)},
    heads.LogisticHead: {"C": "x"},
    heads.RidgeHead: {"alpha": "x"},
    heads.MLPHead: {"task": "cluster"},
}


@pytest.mark.parametrize("cls", list(NONSENSE), ids=lambda c: c.__name__)
def test_init_only_stores_parameters(cls, small_problem):
    """No validation in __init__ (sklearn manners): nonsense is stored, and refused by fit."""
    (name, value), = NONSENSE[cls].items()
    head = cls(**{name: value})
    assert head.get_params()[name] == value
    assert not [k for k in vars(head) if k.endswith("_")]
    X, y = small_problem
    with pytest.raises((ValueError, TypeError)):
        head.fit(X, y if cls is not heads.MultiTaskHead else np.column_stack([y, y * 0, y * 0]))


@pytest.fixture(scope="module")
def small_problem():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 20)
    return (rng.normal(size=(40, 3)) + y[:, None]).astype(np.float32), y


def test_import_heads_does_not_start_keras():
    code = ("import sys, heads; heads.make('keras_dense', 'classify'); "
            "print(sorted({'keras', 'tensorflow'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name, task", HEAD_TASKS)
def test_fit_predict_shapes(name, task, fitted, test):
    head = fitted(name, task)
    predicted = head.predict(test.X)
    n = len(test.X)
    assert head.n_features_in_ == N_FEATURES
    if task == "classify":
        assert predicted.shape == (n,)
        np.testing.assert_array_equal(head.classes_, LABELS)  # 1, 3, ..., 15: not contiguous
        assert set(np.unique(predicted)) <= set(LABELS)
    elif task == "regress":
        assert predicted.shape == (n, 2) and predicted.dtype == np.float64
        assert np.isfinite(predicted).all()
    else:
        assert predicted.shape == (n, 3)
        assert set(np.unique(predicted[:, 0])) <= set(LABELS)
        assert np.abs(predicted[:, 1:]).max() <= 1.0  # tanh
        np.testing.assert_array_equal(head.classes_, LABELS)
    if task != "regress":
        proba = head.predict_proba(test.X)
        assert proba.shape == (n, len(LABELS)) and (proba >= 0).all()
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)
        labels = predicted if task == "classify" else predicted[:, 0]
        np.testing.assert_array_equal(head.classes_[proba.argmax(axis=1)], labels)
    with pytest.raises(ValueError, match="features"):
        head.predict(test.X[:, :10])


@pytest.mark.parametrize("name, task", HEAD_TASKS)
def test_not_fitted_error_before_fit(name, task, test):
    head = heads.make(name, task)
    with pytest.raises(NotFittedError):
        head.predict(test.X)
    if task != "regress":
        with pytest.raises(NotFittedError):
            head.predict_proba(test.X)
    with pytest.raises(NotFittedError):
        heads.save(head, "never-written.bin")


@pytest.mark.parametrize("head", [heads.LogisticHead(), heads.MLPHead("classify", random_state=0)], ids=repr)
def test_sklearn_classifiers_learn_non_contiguous_and_string_labels(head):
    rng = np.random.default_rng(0)
    y = np.repeat([1, 3, 7], 40)
    X = rng.normal(size=(120, 5)) + 5 * np.eye(5)[[0, 1, 2]][np.searchsorted([1, 3, 7], y)]
    head.fit(X, y)
    np.testing.assert_array_equal(head.classes_, [1, 3, 7])
    assert head.predict_proba(X).shape == (120, 3)
    assert np.mean(head.predict(X) == y) > 0.8  # chance 1/3
    names = np.array(["anger", "fear", "joy"])[np.searchsorted([1, 3, 7], y)]
    np.testing.assert_array_equal(head.fit(X, names).classes_, ["anger", "fear", "joy"])
    assert set(head.predict(X)) == {"anger", "fear", "joy"}


@pytest.mark.parametrize("head", [heads.RidgeHead(), heads.MLPHead("regress", random_state=0),
                                  heads.KerasDenseRegressor(epochs=2, random_state=0)], ids=repr)
def test_regressors_keep_a_1d_target_1d(head, train):
    predicted = head.fit(train.X, train.va[:, 0]).predict(train.X[:7])
    assert predicted.shape == (7,)


def test_ridge_clips_to_the_valence_arousal_range_unless_told_not_to(train):
    far = train.X * 5
    clipped = heads.RidgeHead().fit(train.X, train.va).predict(far)
    raw = heads.RidgeHead(clip=False).fit(train.X, train.va).predict(far)
    assert np.abs(raw).max() > 1.5 and np.abs(clipped).max() == 1.0
    np.testing.assert_array_equal(clipped, np.clip(raw, -1, 1))


def test_logistic_class_weight_balanced_raises_minority_recall():
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(450, int), np.ones(50, int)]
    X = rng.normal(size=(500, 4)) + 1.0 * y[:, None]
    plain = heads.LogisticHead().fit(X, y).predict(X)
    balanced = heads.LogisticHead(class_weight="balanced").fit(X, y).predict(X)
    assert np.mean(balanced[y == 1] == 1) > np.mean(plain[y == 1] == 1) + 0.2


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_mlp_drops_early_stopping_only_when_no_validation_split_fits(train):
    small = heads.MLPHead("classify", random_state=0).fit(train.X[:12], train.labels[:12])  # 8 classes, 2 val rows
    assert small.pipeline_[-1].early_stopping is False and small.early_stopping is True
    assert heads.MLPHead("classify", random_state=0, max_iter=5).fit(train.X, train.labels).pipeline_[-1].early_stopping
    with pytest.raises(ValueError, match="task must be one of"):
        heads.MLPHead("cluster").fit(train.X, train.labels)
