"""Nested evaluation: the choice is made on each outer training part alone, the test part is scored once."""

from __future__ import annotations

import numpy as np
import pytest

import featcache.nested as nested
import heads as heads_module
from featcache.errors import UsageError
from featcache.nested import Candidate, nested_evaluate
from featcache.reading import FeatureSet
from featcache.splits import TEST, stratified_split

N, K = 240, 4


class RecordingArray(np.ndarray):
    """Features that log the rows each read takes, and whether the read happened while choosing."""

    log: list  # (choosing, rows)

    def __getitem__(self, key):
        rows = np.arange(len(self))[key if not isinstance(key, tuple) else key[0]]
        RecordingArray.log.append((_choosing[0], np.atleast_1d(rows)))
        return np.asarray(super().__getitem__(key))

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):  # a whole-array computation reads every row
        RecordingArray.log.append((_choosing[0], np.arange(len(self))))
        inputs = [np.asarray(x) if isinstance(x, RecordingArray) else x for x in inputs]
        return getattr(ufunc, method)(*inputs, **kwargs)


_choosing = [False]


def _features(X: np.ndarray, labels: np.ndarray, va: np.ndarray, name: str) -> FeatureSet:
    n = len(labels)
    return FeatureSet(features=X, labels=labels.astype(np.int16), valence=va[:, 0].astype(np.float32),
                      arousal=va[:, 1].astype(np.float32), ids=np.array([str(i) for i in range(n)]),
                      paths=np.array([f"{i}.png" for i in range(n)]),
                      content_hashes=np.array([f"h{i}" for i in range(n)]), landmarks=None,
                      index=np.arange(n), class_names=tuple(f"c{i}" for i in range(K)), group=name,
                      view="original", config={"backbone": name})


def _problem(seed: int = 0):
    """An informative feature set (classes separate, valence/arousal linear in it) and pure noise."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(K), N // K)
    informative = (np.eye(K)[labels] @ rng.normal(size=(K, 16)) * 2 + rng.normal(size=(N, 16))).astype(np.float32)
    va = np.tanh(informative[:, :2] / 3)
    noise = rng.normal(size=(N, 16)).astype(np.float32)
    return labels, va, informative, noise


def _candidates(task: str, recording: bool = False, seed: int = 0) -> list[Candidate]:
    labels, va, informative, noise = _problem(seed)
    wrap = (lambda X: X.view(RecordingArray)) if recording else (lambda X: X)
    head, grid = ("logistic", "C") if task == "classify" else ("ridge", "alpha")
    return [Candidate(f"{name} {grid}={value}", _features(wrap(X), labels, va, name), head, {grid: value})
            for name, X in (("noise", noise), ("informative", informative)) for value in (0.01, 1.0)]


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_choosing_never_reads_the_outer_test_rows(task, monkeypatch):
    """Instrumented: every row read while the candidates are scored lies in the outer training
    part; the outer test rows are read once per split, by the chosen candidate's prediction."""
    RecordingArray.log = []
    choose = nested.inner_cv_scores

    def instrumented(*args, **kwargs):
        _choosing[0] = True
        try:
            return choose(*args, **kwargs)
        finally:
            _choosing[0] = False

    monkeypatch.setattr(nested, "inner_cv_scores", instrumented)
    candidates = _candidates(task, recording=True)
    result = nested_evaluate(candidates, task, splits=3, inner=3)
    labels = candidates[0].features.labels
    tests = [stratified_split(labels, candidates[0].features.content_hashes, seed=s) == TEST for s in range(3)]

    choosing_reads = [rows for choosing, rows in RecordingArray.log if choosing]
    assert len(choosing_reads) == 3 * len(candidates) * 3 * 2  # splits x candidates x folds x (fit, predict)
    per_split = np.array_split(np.arange(len(choosing_reads)), 3)
    for split, reads in enumerate(per_split):
        for i in reads:
            assert not tests[split][choosing_reads[i]].any(), f"split {split} read a test row while choosing"
    final_reads = [rows for choosing, rows in RecordingArray.log if not choosing]
    assert len(final_reads) == 3 * 2  # per split: the chosen candidate's refit, then its one prediction
    for split in range(3):
        refit, prediction = final_reads[2 * split], final_reads[2 * split + 1]
        assert np.array_equal(np.sort(refit), np.flatnonzero(~tests[split]))
        assert np.array_equal(np.sort(prediction), np.flatnonzero(tests[split]))
    assert all(s.chosen.startswith("informative") for s in result.splits)


@pytest.mark.parametrize("task", ["classify", "regress"])
def test_the_choice_is_the_same_whatever_the_test_rows_hold(task):
    """Scrambling the outer test rows' features and targets changes no inner score and no choice."""
    candidates = _candidates(task)
    test = stratified_split(candidates[0].features.labels, candidates[0].features.content_hashes, seed=0) == TEST
    rng = np.random.default_rng(7)
    scrambled = []
    for candidate in candidates:
        features = candidate.features
        X, va = features.features.copy(), features.targets.copy()
        X[test] = rng.normal(size=X[test].shape) * 50
        va[test] = rng.uniform(-1, 1, size=va[test].shape)
        scrambled.append(Candidate(candidate.name, _features(X, features.labels, va, features.group),
                                   candidate.head, candidate.params))
    before = nested_evaluate(candidates, task, splits=1).splits[0]
    after = nested_evaluate(scrambled, task, splits=1).splits[0]
    assert after.inner_scores == before.inner_scores
    assert after.chosen == before.chosen
    key = "accuracy" if task == "classify" else "valence_ccc"
    assert nested.figure(after.report, key) < nested.figure(before.report, key) - 0.3  # the test rows were read


def test_nested_figures_choose_the_informative_candidate():
    result = nested_evaluate(_candidates("classify"), "classify", splits=2, inner=3, score_every=True)
    for split in result.splits:
        assert split.chosen.startswith("informative")
        assert split.inner_scores[split.chosen] == max(split.inner_scores.values())
    accuracy = result.figures("accuracy")
    assert accuracy.shape == (2,) and accuracy.min() > 0.8
    assert result.figures("accuracy", "noise C=1.0").max() < 0.45  # four classes: chance is 0.25
    assert set(result.splits[0].reports) == {c.name for c in _candidates("classify")}
    assert all(0 < s.fit_seconds < 30 for s in result.splits)
    inner = result.splits[0].inner_scores
    assert inner["informative C=1.0"] > inner["noise C=1.0"] + 0.4


def test_bad_candidates_fail_in_one_line():
    candidates = _candidates("classify")
    with pytest.raises(UsageError, match="names must differ"):
        nested_evaluate([candidates[0], candidates[0]], "classify")
    other = candidates[1].features
    shifted = Candidate("shifted", FeatureSet(**{**other.__dict__, "index": other.index + 1}), "logistic")
    with pytest.raises(UsageError, match="other records"):
        nested_evaluate([candidates[0], shifted], "classify")
    with pytest.raises(UsageError, match="cannot regress"):
        nested_evaluate([Candidate("x", other, "logistic")], "regress")
    with pytest.raises(UsageError, match="task must be"):
        nested_evaluate(candidates, "joint")


def test_a_joint_head_competes_for_regression_on_the_class_labels_too():
    """A joint head (classes and valence/arousal learned together) is a regression candidate: it
    is fitted on [class, valence, arousal] of the training rows and scored on its valence/arousal."""
    ridge = _candidates("regress")[3]  # informative features, alpha 1
    joint = Candidate("joint", ridge.features, "joint_linear")
    result = nested_evaluate([ridge, joint], "regress", splits=1, score_every=True)
    split = result.splits[0]
    assert set(split.inner_scores) == {ridge.name, "joint"} and split.chosen in split.inner_scores
    assert result.figures("valence_ccc", "joint")[0] > 0.8  # valence is linear in the informative features
    with pytest.raises(UsageError, match="cannot classify"):
        nested_evaluate([joint], "classify")


def test_a_joint_candidate_learns_each_training_rows_own_class_and_targets(monkeypatch):
    """The class ids a joint head is fitted on belong to the very rows it is fitted on."""
    labels, va, informative, _ = _problem()
    X = np.column_stack([np.arange(N), informative]).astype(np.float32)  # column 0: the row's own index
    seen = []
    make = heads_module.make

    def spying(name, task, **params):
        head = make(name, task, **params)
        if task == "joint":
            fit = head.fit

            def checked_fit(X_train, y_train):
                rows = X_train[:, 0].astype(int)
                np.testing.assert_array_equal(y_train[:, 0], labels[rows])
                np.testing.assert_allclose(y_train[:, 1:], va[rows].astype(np.float32))
                seen.append(len(rows))
                return fit(X_train, y_train)

            head.fit = checked_fit
        return head

    monkeypatch.setattr(heads_module, "make", spying)
    features = _features(X, labels, va, "informative")
    nested_evaluate([Candidate("joint", features, "joint_linear")], "regress", splits=1, inner=3)
    assert len(seen) == 3 + 1  # three inner folds, then the refit on the outer training part
