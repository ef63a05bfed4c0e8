"""The ``cnn`` head: a small CNN learns drawn shapes and disc sizes (classes, targets, or both at once)
from flattened 24 x 24 grey images.

Shapes and discs are symmetric left to right and drawn away from the border, so the default
training augmentation (random flip and shift) keeps their labels. Narrower filters than the
default keep each fit to a few seconds on two cores.
"""

import numpy as np
import pytest
import sklearn.utils.estimator_checks as sklearn_checks

import heads
import metrics
from heads.cnn import infer_image_shape
from keras_helpers import keras_in_order

SIDE = 24
FAST = dict(filters=(16, 32, 64), batch_size=32, epochs=12, random_state=0)


def shapes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 576) images of one of 4 shapes (horizontal bar, vertical bar, plus, hollow square) at a random
    place and size, brightness and noise; labels 0-3."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 4, n)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    images = np.empty((n, SIDE, SIDE))
    for i, label in enumerate(labels):
        cy, cx = rng.integers(8, 16, 2)
        half = rng.integers(4, 7)
        dy, dx = np.abs(yy - cy), np.abs(xx - cx)
        horizontal, vertical = (dy <= 1) & (dx <= half), (dx <= 1) & (dy <= half)
        square = (np.maximum(dy, dx) <= half) & (np.maximum(dy, dx) >= half - 1)
        mask = (horizontal, vertical, horizontal | vertical, square)[label]
        images[i] = 0.2 + 0.6 * rng.uniform(0.6, 1.0) * mask + rng.normal(0, 0.1, (SIDE, SIDE))
    return np.clip(images, 0, 1).reshape(n, -1).astype(np.float32), labels


def discs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, 576) images of a noisy disc; targets (n, 2): its radius and its contrast, scaled to [-1, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE]
    radius, contrast = rng.uniform(2, 9, n), rng.uniform(0.2, 0.8, n)
    images = np.empty((n, SIDE, SIDE))
    for i in range(n):
        cy, cx = rng.uniform(9, 15, 2)
        images[i] = 0.1 + contrast[i] * (np.hypot(yy - cy, xx - cx) <= radius[i]) + rng.normal(0, 0.1, (SIDE, SIDE))
    targets = np.column_stack([(radius - 5.5) / 3.5, (contrast - 0.5) / 0.3])
    return np.clip(images, 0, 1).reshape(n, -1).astype(np.float32), targets


@pytest.fixture(scope="module")
def classifier():
    X, y = shapes(480, seed=1)
    return heads.make("cnn", "classify", **FAST).fit(X, y)


def test_classifier_tells_the_shapes_apart(classifier):
    X, y = shapes(300, seed=2)
    assert classifier.image_shape_ == (SIDE, SIDE, 1)
    accuracy = np.mean(classifier.predict(X) == y)
    assert accuracy >= 0.8, f"accuracy {accuracy:.3f} (chance 0.25)"
    proba = classifier.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(classifier.predict_proba(X), proba)  # augmentation is off at inference


def test_regressor_learns_disc_radius_and_contrast():
    X, y = discs(480, seed=3)
    regressor = heads.make("cnn", "regress", **FAST).fit(X, y)
    X_test, y_test = discs(300, seed=4)
    predicted = regressor.predict(X_test)
    assert predicted.shape == (300, 2)
    ccc = metrics.ccc(y_test, predicted)
    assert np.all(ccc >= 0.5), f"CCC radius, contrast: {ccc}"


def test_joint_head_learns_disc_size_classes_and_targets_at_once(tmp_path):
    X, targets = discs(480, seed=9)
    y = np.column_stack([np.digitize(targets[:, 0], [-0.33, 0.33]), targets])  # [size class 0-2, radius, contrast]
    joint = heads.make("cnn", "joint", **FAST).fit(X, y)
    X_test, targets_test = discs(300, seed=10)
    classes = np.digitize(targets_test[:, 0], [-0.33, 0.33])
    predicted = joint.predict(X_test)
    assert type(joint) is heads.CNNMultiTaskHead and predicted.shape == (300, 3)
    accuracy = np.mean(predicted[:, 0] == classes)
    ccc = metrics.ccc(targets_test, predicted[:, 1:])
    assert accuracy >= 0.75 and np.all(ccc >= 0.5), f"accuracy {accuracy:.3f} (chance 0.33), CCC {ccc}"
    loaded = heads.load(heads.save(joint, tmp_path / "joint.head"))
    assert type(loaded) is heads.CNNMultiTaskHead and loaded.image_shape_ == (SIDE, SIDE, 1)
    np.testing.assert_array_equal(loaded.predict(X_test[:20]), predicted[:20])


@pytest.mark.parametrize("task", ["classify", "joint"])
def test_a_chunked_x_trains_the_cnn_as_the_array_does(task, tmp_path, monkeypatch):
    X, targets = discs(160, seed=11)
    classes = np.digitize(targets[:, 0], [-0.33, 0.33])
    y = classes if task == "classify" else np.column_stack([classes, targets])
    on_disk = np.lib.format.open_memmap(tmp_path / "pixels.npy", mode="w+", dtype=np.float32, shape=X.shape)
    on_disk[:] = X
    params = dict(filters=(8, 16), augment=False, epochs=3, batch_size=32, random_state=0)
    chunked = heads.fit_chunked(heads.make("cnn", task, **params), on_disk, y, chunk_rows=50, shuffle=False)
    keras_in_order(monkeypatch)
    memory = heads.make("cnn", task, **params).fit(X, y)
    np.testing.assert_allclose(chunked.history_["val_loss"], memory.history_["val_loss"], rtol=1e-4)
    np.testing.assert_allclose(chunked.predict_proba(on_disk), memory.predict_proba(X), atol=1e-5)


def test_save_and_load_predict_the_same(classifier, tmp_path):
    X, _ = shapes(50, seed=5)
    loaded = heads.load(heads.save(classifier, tmp_path / "cnn.head"))
    assert type(loaded) is heads.CNNClassifier and loaded.image_shape_ == classifier.image_shape_
    assert loaded.get_params() == classifier.get_params()
    np.testing.assert_array_equal(loaded.predict_proba(X), classifier.predict_proba(X))


def test_an_explicit_rgb_shape_that_is_not_square_fits():
    rng = np.random.default_rng(6)
    X = rng.uniform(0, 1, (40, 8 * 12 * 3)).astype(np.float32)
    y = rng.normal(size=40)
    head = heads.CNNRegressor(image_shape=(8, 12, 3), epochs=1, filters=(4,), early_stopping=False,
                              validation_fraction=0, random_state=0).fit(X, y)
    assert head.image_shape_ == (8, 12, 3) and head.predict(X).shape == (40,)


def test_a_wrong_image_shape_is_a_one_line_value_error():
    X, y = shapes(20, seed=7)
    head = heads.CNNClassifier(image_shape=(20, 20, 1), epochs=1)
    with pytest.raises(ValueError, match=r"^image_shape=\(20, 20, 1\) holds 400 values but X has 576 features per "
                                         r"row; give the shape the pixels were extracted at$"):
        head.fit(X, y)
    with pytest.raises(ValueError, match=r"^X has 500 features per row, neither side \* side \(grey\) nor side \* side "
                                         r"\* 3 \(RGB\) pixels; pass image_shape=\(height, width, channels\)$"):
        heads.CNNRegressor(epochs=1).fit(np.zeros((20, 500), np.float32), np.zeros(20))


@pytest.mark.parametrize("n, shape", [(576, (24, 24, 1)), (1728, (24, 24, 3)), (2304, (48, 48, 1)),
                                      (6912, (48, 48, 3)), (48, (4, 4, 3)), (1, (1, 1, 1))])
def test_the_inferred_shape_is_square_grey_else_square_rgb(n, shape):
    assert infer_image_shape(n) == shape


@pytest.mark.parametrize("params", [{"augment": "yes"}, {"filters": ()}, {"filters": (32, 0)}])
def test_nonsense_trunk_parameters_are_refused_by_fit(params):
    X, y = shapes(20, seed=8)
    with pytest.raises(ValueError, match="augment|filters"):
        heads.CNNClassifier(**params).fit(X, y)


API_CHECKS = ["check_no_attributes_set_in_init", "check_parameters_default_constructible", "check_get_params_invariance",
              "check_set_params", "check_estimator_cloneable", "check_estimators_unfitted", "check_estimator_repr"]


@pytest.mark.parametrize("cls", [heads.CNNClassifier, heads.CNNRegressor, heads.CNNMultiTaskHead],
                         ids=lambda c: c.__name__)
@pytest.mark.parametrize("check_name", API_CHECKS)
def test_scikit_learn_api_checks_that_do_not_fit(cls, check_name):
    getattr(sklearn_checks, check_name)(cls.__name__, cls())
