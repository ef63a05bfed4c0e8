"""save/load: a round trip gives identical predictions for every head."""

import json
import zipfile

import joblib
import numpy as np
import pytest
from conftest import HEAD_TASKS

import heads
from heads.io import MANIFEST, file_format


def squash(values):
    """A function of the tests' own, which no loader may call unless told to trust the file."""
    return np.tanh(values)


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
    keras_head = name in ("keras_dense", "multitask", "cnn")
    assert file_format(path) == ("keras" if keras_head else "skops")  # never a pickle for this package's heads
    if keras_head:
        assert loaded.history_ == head.history_ and loaded.best_epoch_ == head.best_epoch_
        np.testing.assert_array_equal(loaded.mean_, head.mean_)
        assert loaded.model_ is not head.model_
        with zipfile.ZipFile(path) as archive:
            assert sorted(archive.namelist()) == ["arrays.npz", "head.json", "model.keras"]
            manifest = json.loads(archive.read(MANIFEST))
        assert manifest["class"] == type(head).__name__


def test_a_head_this_package_does_not_know_is_pickled_and_loads_only_when_trusted(tmp_path):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 3
    other = make_pipeline(FunctionTransformer(squash), KNeighborsClassifier(3)).fit(X, y)  # squash: unknown to skops
    path = heads.save(other, tmp_path / "other.head")
    assert file_format(path) == "joblib"
    with pytest.raises(ValueError, match="is a pickle .joblib. file, which runs code when loaded; load it with "
                                         "trust=True only if you trust where it came from"):
        heads.load(path)
    np.testing.assert_array_equal(heads.load(path, trust=True).predict(X), other.predict(X))


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
        heads.load(tmp_path / "dict.joblib", trust=True)


def test_an_skops_file_naming_other_types_is_refused_unless_trusted(fitted, tmp_path):
    """A file that says it holds another class (here os.system's module, as a forged file would)
    is refused before anything is instantiated."""
    path = heads.save(fitted("logistic", "classify"), tmp_path / "logistic.head")
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    schema["__module__"], schema["__class__"] = "posix", "system"
    members["schema.json"] = json.dumps(schema).encode()
    forged = tmp_path / "forged.head"
    with zipfile.ZipFile(forged, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=r"names types this package does not know \(posix.system\)"):
        heads.load(forged)
