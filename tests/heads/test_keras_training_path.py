"""The Keras heads train an in-memory X and a chunked X through one loop: the same
early-stopping split, the same standardisation, close predictions; and the same one-line
errors for a bad y, whichever way X comes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

import heads
from heads._keras import KerasHead
from keras_helpers import keras_in_order

PARAMS = dict(hidden_units=32, epochs=6, learning_rate=1e-3, random_state=7)
CHUNK = 37  # rows per read: many blocks and a partial last one


class Problem:
    """400 rows, 64 features: 4 Gaussian classes with labels 0, 2, 4, 6 on shifted, scaled
    features (so the standardisation matters), and a linear (n, 2) valence/arousal in [-1, 1]."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        centres = rng.normal(size=(4, 64)) * 0.6
        index = rng.integers(0, 4, 400)
        noise = rng.normal(size=(400, 64))
        self.X = ((centres[index] + noise) * rng.uniform(0.5, 4, 64) + rng.uniform(-3, 3, 64)).astype(np.float32)
        self.labels = 2 * index
        self.va = np.clip((centres[index] + noise) @ rng.normal(size=(64, 2)) * 0.1, -1, 1)


@pytest.fixture(scope="module")
def problem():
    return Problem(seed=5)


@pytest.fixture(scope="module")
def on_disk(problem, tmp_path_factory):
    """A RowSubset over an h5py Dataset holding the problem's X behind 50 padding rows."""
    path = tmp_path_factory.mktemp("training_path") / "features.h5"
    padded = np.concatenate([np.full((50, problem.X.shape[1]), 1e6, np.float32), problem.X])
    with h5py.File(path, "w") as handle:
        handle.create_dataset("X", data=padded, chunks=(64, padded.shape[1]))
    with h5py.File(path, "r") as handle:
        yield heads.RowSubset(handle["X"], np.arange(50, len(padded)))


@pytest.fixture
def splits(monkeypatch):
    """Every (train, validation) split the training loop makes, in order."""
    made = []
    split = KerasHead._split

    def recording(self, n, stratify, seed):
        made.append(split(self, n, stratify, seed))
        return made[-1]

    monkeypatch.setattr(KerasHead, "_split", recording)
    return made


def test_array_and_chunked_x_share_split_standardisation_and_predictions(problem, on_disk, splits, monkeypatch):
    chunked = heads.fit_chunked(heads.KerasDenseClassifier(**PARAMS), on_disk, problem.labels, chunk_rows=CHUNK,
                                shuffle=False)
    keras_in_order(monkeypatch)
    memory = heads.KerasDenseClassifier(**PARAMS).fit(problem.X, problem.labels)

    (chunked_train, chunked_val), (train, val) = splits
    assert (len(train), len(val)) == (360, 40)  # ceil(0.1 * 400) held out
    np.testing.assert_array_equal(chunked_train, train)
    np.testing.assert_array_equal(chunked_val, val)
    assert set(problem.labels[val]) == set(problem.labels)  # stratified: every class validates

    np.testing.assert_allclose(memory.mean_, problem.X[train].mean(axis=0, dtype=np.float64), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(memory.scale_, problem.X[train].std(axis=0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_allclose(chunked.mean_, memory.mean_, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(chunked.scale_, memory.scale_, rtol=1e-6)

    assert chunked.n_features_in_ == memory.n_features_in_ == problem.X.shape[1]
    np.testing.assert_array_equal(chunked.classes_, [0, 2, 4, 6])
    np.testing.assert_array_equal(memory.classes_, [0, 2, 4, 6])
    assert chunked.best_epoch_ == memory.best_epoch_
    np.testing.assert_allclose(chunked.history_["val_loss"], memory.history_["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(chunked.predict_proba(on_disk), memory.predict_proba(problem.X), atol=1e-5)
    assert np.mean(memory.predict(problem.X) == problem.labels) >= 0.85


def test_fit_shuffles_a_chunked_x_by_blocks_and_lands_close_to_the_array_fit(problem, on_disk):
    memory = heads.KerasDenseClassifier(**PARAMS).fit(problem.X, problem.labels)
    chunked = heads.KerasDenseClassifier(**PARAMS).fit(on_disk, problem.labels)
    again = heads.KerasDenseClassifier(**PARAMS).fit(on_disk, problem.labels)
    np.testing.assert_array_equal(chunked.predict_proba(on_disk), again.predict_proba(on_disk))  # seeded
    np.testing.assert_allclose(chunked.mean_, memory.mean_, rtol=1e-6, atol=1e-6)
    # the two differ only in the order rows are shuffled into batches
    difference = np.abs(chunked.predict_proba(on_disk) - memory.predict_proba(problem.X))
    assert difference.mean() < 0.05 and difference.max() < 0.25
    assert np.mean(chunked.predict(on_disk) == memory.predict(problem.X)) >= 0.97


def test_chunked_regressor_fit_without_shuffling_is_reproducible_and_learns(problem, on_disk):
    first = heads.fit_chunked(heads.KerasDenseRegressor(**PARAMS), on_disk, problem.va, chunk_rows=CHUNK,
                              shuffle=False)
    again = heads.KerasDenseRegressor(**PARAMS)
    heads.fit_chunked(again, on_disk, problem.va, chunk_rows=CHUNK, shuffle=False)
    np.testing.assert_array_equal(first.predict(on_disk), again.predict(on_disk))
    assert first.predict(on_disk).shape == problem.va.shape
    assert first.history_["val_loss"][-1] < first.history_["val_loss"][0]


BAD_Y = {
    "NaN label": (heads.KerasDenseClassifier, lambda p: np.where(np.arange(len(p.labels)) == 3, np.nan, p.labels),
                  "Input y contains NaN"),
    "2-D labels": (heads.KerasDenseClassifier, lambda p: np.column_stack([p.labels, p.labels]),
                   r"y should be a 1d array, got an array of shape \(400, 2\) instead"),
    "infinite target": (heads.KerasDenseRegressor, lambda p: np.where(np.arange(len(p.va))[:, None] == 9, np.inf, p.va),
                        "Input y contains infinity"),
}


@pytest.mark.parametrize("case", list(BAD_Y))
def test_a_bad_y_is_the_same_one_line_error_for_array_and_chunked_x(problem, on_disk, case):
    cls, make_y, message = BAD_Y[case]
    y = make_y(problem)
    errors = []
    for X in (problem.X, on_disk):
        with pytest.raises(ValueError, match=message) as error:
            cls(**PARAMS).fit(X, y)
        errors.append(str(error.value))
    assert errors[0] == errors[1]
    assert "\n" not in errors[0]


def test_a_y_of_the_wrong_length_is_a_one_line_error(problem, on_disk):
    with pytest.raises(ValueError, match=r"X has 400 rows but y has 399") as error:
        heads.KerasDenseClassifier(**PARAMS).fit(on_disk, problem.labels[:-1])
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[400, 399\]"):
        heads.KerasDenseClassifier(**PARAMS).fit(problem.X, problem.labels[:-1])


def test_linear_heads_check_a_chunked_y_the_same_way(problem, on_disk):
    y = np.where(np.arange(len(problem.va))[:, None] == 9, np.nan, problem.va)
    for X in (problem.X, on_disk):
        with pytest.raises(ValueError, match="Input y contains NaN"):
            heads.RidgeHead(chunk_rows=CHUNK).fit(X, y)
    with pytest.raises(ValueError, match="X has 400 rows but y has 399"):
        heads.LogisticHead(chunk_rows=CHUNK).fit(on_disk, problem.labels[:-1])


def test_chunked_x_with_the_wrong_width_is_refused_at_predict(problem, on_disk):
    head = heads.KerasDenseRegressor(**{**PARAMS, "epochs": 1}).fit(problem.X, problem.va)
    narrow = heads.RowSubset(problem.X[:, :10].copy(order="C"), np.arange(20))
    with pytest.raises(ValueError, match="X has 10 features, but KerasDenseRegressor is expecting 64 features"):
        head.predict(narrow)
