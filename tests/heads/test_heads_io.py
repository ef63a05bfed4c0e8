"""save/load: a round trip gives identical predictions for every head."""

import json
import zipfile

import joblib
import numpy as np
import pytest
from conftest import HEAD_TASKS

import heads
from heads.io import MANIFEST


@pytest.mark.parametrize("name, task", HEAD_TASKS)
def test_round_trip_gives_identical_predictions(name, task, fitted, test, tmp_path):
    head = fitted(name, task)
    path = heads.save(head, tmp_path / f"{name}-{task}.head")
    loaded = heads.load(path)
    assert type(loaded) is type(head) and loaded is not head
    assert repr(loaded.get_params()) == repr(head.get_params())  # nested members compare by their parameters
    np.testing.assert_array_equal(loaded.predict(test.X), head.predict(test.X))
    if task != "regress":
        np.testing.assert_array_equal(loaded.predict_proba(test.X), head.predict_proba(test.X))
        np.testing.assert_array_equal(loaded.classes_, head.classes_)
        assert loaded.classes_.dtype == head.classes_.dtype
    keras_head = name in ("keras_dense", "multitask")
    assert zipfile.is_zipfile(path) == keras_head
    if keras_head:
        assert loaded.history_ == head.history_ and loaded.best_epoch_ == head.best_epoch_
        np.testing.assert_array_equal(loaded.mean_, head.mean_)
        assert loaded.model_ is not head.model_
        with zipfile.ZipFile(path) as archive:
            assert sorted(archive.namelist()) == ["arrays.npz", "head.json", "model.keras"]
            manifest = json.loads(archive.read(MANIFEST))
        assert manifest["class"] == type(head).__name__
        with pytest.raises(ValueError, match="allow_pickle=False"):  # a Keras head needs no pickle ...
            heads.load(heads.save(fitted("logistic", "classify"), tmp_path / "l.joblib"), allow_pickle=False)
        assert type(heads.load(path, allow_pickle=False)) is type(head)  # ... and loads without it


def test_keras_head_loads_from_an_unpacked_directory_and_with_parameters_kept(small_fit, tmp_path):
    head, X = small_fit
    path = heads.save(head, tmp_path / "head.zip")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unpacked")
    loaded = heads.load(tmp_path / "unpacked")
    np.testing.assert_array_equal(loaded.predict(X), head.predict(X))
    assert loaded.get_params()["loss_weights"] == (2.0, 0.5)  # a tuple stays a tuple
    assert loaded.get_params()["class_weight"] == {1: 1.0, 3: 2.0}  # int keys stay ints
    np.testing.assert_array_equal(loaded.classes_, [1, 3])


@pytest.fixture(scope="module")
def small_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 6)).astype(np.float32)
    y = np.column_stack([np.where(X[:, 0] > 0, 3, 1), np.tanh(X[:, 1:3])])
    head = heads.MultiTaskHead(epochs=1, loss_weights=(2.0, 0.5), class_weight={1: 1.0, 3: 2.0}, random_state=0)
    return head.fit(X, y), X


def test_load_refuses_unknown_classes_and_formats(small_fit, tmp_path):
    head, _ = small_fit
    path = heads.save(head, tmp_path / "head.zip")
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "d")
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    (tmp_path / "d" / MANIFEST).write_text(json.dumps({**manifest, "class": "os.system"}))
    with pytest.raises(ValueError, match="unknown Keras head class 'os.system'"):
        heads.load(tmp_path / "d")
    (tmp_path / "d" / MANIFEST).write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(ValueError, match="not a saved head"):
        heads.load(tmp_path / "d")
    joblib.dump({"not": "a head"}, tmp_path / "dict.joblib")
    with pytest.raises(TypeError, match="holds a dict, not a head"):
        heads.load(tmp_path / "dict.joblib")


def test_joblib_warning_is_documented():
    assert "only from trusted sources" in heads.io.__doc__ and "trusted sources" in heads.load.__doc__
