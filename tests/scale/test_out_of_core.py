"""Out-of-core heads: fitted from an HDF5 file in row chunks, they equal in-memory fits.

Ridge exactly (alpha fixed, or chosen by leave-one-out as RidgeCV chooses it), logistic
regression to the optimiser's tolerance (C fixed, or chosen by the same cross-validation),
the Keras dense heads bit for bit when neither shuffles. X is an h5py Dataset read in chunks
of 37 rows, so every fit crosses many chunk boundaries (and a last partial chunk).
"""

import json
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

import featcache
import heads
from featcache.store import Records, add_view
from heads import LogisticHead, RidgeHead, RowSubset
from keras_helpers import keras_in_order
from synthetic_features import mixture

CHUNK = 37


class RecordingRows:
    """A 2-D source that remembers the largest number of rows any one read asked for."""

    def __init__(self, source):
        self.source, self.shape, self.dtype, self.largest, self.reads = source, source.shape, source.dtype, 0, 0

    def __getitem__(self, key):
        assert isinstance(key, slice), "a chunked reader reads row ranges"
        rows = len(range(*key.indices(self.shape[0])))
        self.largest, self.reads = max(self.largest, rows), self.reads + 1
        return self.source[key]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """(X, labels, targets, an open h5py Dataset holding X as float32)."""
    X, labels, va, _ = mixture(n=700, d=24, k=5, seed=3)
    path = tmp_path_factory.mktemp("ooc") / "features.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("X", data=X, chunks=(64, X.shape[1]))
    handle = h5py.File(path, "r")
    yield X.astype(np.float64), labels, va, handle["X"]
    handle.close()


# ------------------------------------------------------------------------ ridge


def fitted_steps(head, model_type):
    """The scaler and model of a head's ``pipeline_``, checked to be the types an in-memory fit leaves."""
    scaler, model = head.pipeline_[0], head.pipeline_[-1]
    assert len(head.pipeline_.steps) == 2 and type(scaler) is StandardScaler and type(model) is model_type
    return scaler, model


@pytest.mark.parametrize("two_targets", [True, False], ids=["valence+arousal", "one target"])
def test_chunked_ridge_with_a_fixed_alpha_equals_in_memory_ridge(data, two_targets):
    X, _, va, on_disk = data
    y = va if two_targets else va[:, 0]
    reference = RidgeHead(alpha=5.0, clip=False).fit(X, y)
    chunked = RidgeHead(alpha=5.0, clip=False, chunk_rows=CHUNK).fit(on_disk, y)
    predicted = chunked.predict(X)  # float64, as the reference (float32 rows predict in float32)
    assert predicted.shape == chunked.predict(on_disk).shape == y.shape and chunked.alpha_ == 5.0
    np.testing.assert_allclose(predicted, reference.predict(X), rtol=1e-6, atol=1e-9)
    scaler, model = fitted_steps(chunked, Ridge)
    for name in ("mean_", "var_", "scale_"):
        np.testing.assert_allclose(getattr(scaler, name), getattr(reference.pipeline_[0], name), rtol=1e-9)
    assert scaler.n_samples_seen_ == reference.pipeline_[0].n_samples_seen_ == len(X)
    np.testing.assert_allclose(model.coef_, reference.pipeline_[-1].coef_, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(model.intercept_, reference.pipeline_[-1].intercept_, rtol=1e-9)
    clipped = RidgeHead(alpha=5.0, chunk_rows=CHUNK).fit(on_disk, y).predict(X)
    np.testing.assert_allclose(clipped, RidgeHead(alpha=5.0).fit(X, y).predict(X), rtol=1e-6, atol=1e-9)


def regression_problem(seed: int, n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifted, scaled features with a constant column; targets: a sparse linear signal plus
    noise, and noise alone (they want very different alphas)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.2, 5, d) + rng.uniform(-3, 3, d)
    X[:, 1] = 2.5
    signal = X @ (rng.normal(size=d) * (rng.random(d) < 0.3))
    return X, np.column_stack([signal / signal.std() + 0.7 * rng.normal(size=n), rng.normal(size=n)])


@pytest.mark.parametrize("seed, n, d", [(0, 300, 20), (1, 120, 40), (2, 40, 70)],
                         ids=["tall", "squarer", "more features than rows"])
@pytest.mark.parametrize("shape", ["two targets", "1-D", "one column"])
def test_chunked_ridge_chooses_alpha_as_ridge_cv_does(tmp_path, seed, n, d, shape):
    X, Y = regression_problem(seed, n, d)
    y = {"two targets": Y, "1-D": Y[:, 0], "one column": Y[:, :1]}[shape]
    reference = RidgeHead(clip=False).fit(X, y)  # RidgeCV's leave-one-out, alpha per target
    chunked = RidgeHead(clip=False, chunk_rows=CHUNK).fit(_memmap(tmp_path, X), y)
    np.testing.assert_array_equal(chunked.alpha_, reference.alpha_)
    assert np.shape(chunked.alpha_) == ((2,) if shape == "two targets" else ())
    if shape == "two targets" and n > d:
        assert chunked.alpha_[0] < chunked.alpha_[1]  # the signal is regularised less than the noise
    np.testing.assert_allclose(chunked.predict(X), reference.predict(X), rtol=1e-8, atol=1e-10)
    scaler, _ = fitted_steps(chunked, Ridge)
    assert scaler.scale_[1] == reference.pipeline_[0].scale_[1] == 1.0  # a constant column, as StandardScaler


def test_chunked_ridge_reads_a_chunk_at_a_time_in_one_pass_or_two_when_choosing(data):
    _, _, va, on_disk = data
    blocks = -(-on_disk.shape[0] // CHUNK)
    for alpha, passes in ((1.0, 1), (None, 2)):
        recording = RecordingRows(on_disk)
        head = RidgeHead(alpha=alpha, chunk_rows=CHUNK).fit(recording, va)
        assert recording.largest == CHUNK and recording.reads == passes * blocks
    head.predict(recording)
    assert recording.largest == CHUNK


def test_chunk_size_does_not_change_the_ridge(data):
    X, _, va, _ = data
    rows = np.arange(len(X))
    for alpha in (1.0, None):
        one_chunk = RidgeHead(alpha=alpha, chunk_rows=10_000).fit(RowSubset(X, rows), va)
        for chunk_rows in (1, 7, 699):
            head = RidgeHead(alpha=alpha, chunk_rows=chunk_rows).fit(RowSubset(X, rows), va)
            np.testing.assert_array_equal(head.alpha_, one_chunk.alpha_)
            np.testing.assert_allclose(head.predict(X), one_chunk.predict(X), rtol=1e-9, atol=1e-12)


def test_a_chunked_fit_does_not_write_to_its_x(data, tmp_path):
    X, labels, va, _ = data
    writable = _memmap(tmp_path, X, mode="r+")  # float64: its blocks are views of the file
    RidgeHead(chunk_rows=CHUNK).fit(writable, va)
    LogisticHead(C=0.05, chunk_rows=CHUNK).fit(writable, labels)
    np.testing.assert_array_equal(writable, X)


# --------------------------------------------------------------------- logistic


@pytest.mark.parametrize("classes", [5, 2])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_chunked_logistic_with_a_fixed_c_equals_in_memory_logistic(data, classes, class_weight):
    X, labels, _, on_disk = data
    y = labels if classes == 5 else (labels > 1).astype(int)
    reference = LogisticHead(C=0.05, class_weight=class_weight).fit(X, y)
    chunked = LogisticHead(C=0.05, class_weight=class_weight, chunk_rows=CHUNK).fit(on_disk, y)
    np.testing.assert_array_equal(chunked.classes_, reference.classes_)
    assert chunked.C_ == 0.05 and not hasattr(chunked, "cv_scores_") and chunked.n_iter_[0] > 0
    _, model = fitted_steps(chunked, LogisticRegression)
    assert model.coef_.shape == reference.pipeline_[-1].coef_.shape
    np.testing.assert_allclose(chunked.predict_proba(on_disk), reference.predict_proba(X), atol=1e-3)
    assert np.mean(chunked.predict(on_disk) == reference.predict(X)) >= 0.99
    scores = chunked.decision_function(on_disk)
    assert scores.shape == ((len(y),) if classes == 2 else (len(y), classes))
    tight = dict(C=0.05, class_weight=class_weight, tol=1e-9, max_iter=5000)
    np.testing.assert_allclose(LogisticHead(**tight, chunk_rows=CHUNK).fit(on_disk, y).predict_proba(X),
                               LogisticHead(**tight).fit(X, y).predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("classes", [5, 2])
def test_chunked_logistic_chooses_c_as_in_memory(data, classes):
    """The same folds, paths and refit: the same accuracies, C_ and (to the tolerance) model."""
    X, labels, _, on_disk = data
    rows = np.arange(0, len(X), 3)  # a RowSubset, whose folds are subsets of it
    y = (labels if classes == 5 else (labels > 1).astype(int))[rows]
    tight = dict(random_state=0, tol=1e-7, max_iter=5000)
    reference = LogisticHead(**tight).fit(X[rows], y)
    chunked = LogisticHead(**tight, chunk_rows=64).fit(RowSubset(on_disk, rows), y)
    assert len(np.unique(reference.cv_scores_.mean(axis=0))) > 2  # a real choice, not among equals
    np.testing.assert_allclose(chunked.cv_scores_, reference.cv_scores_, rtol=0, atol=1e-12)
    assert chunked.C_ == reference.C_
    np.testing.assert_allclose(chunked.predict_proba(X), reference.predict_proba(X), atol=1e-4)
    default = LogisticHead(random_state=0, chunk_rows=64).fit(RowSubset(on_disk, rows), y)
    assert default.C_ in default.Cs and default.cv_scores_.shape == (3, len(default.Cs))


def test_chunked_logistic_reads_chunks_and_warns_when_stopped_early(data):
    _, labels, _, on_disk = data
    recording = RecordingRows(on_disk)
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        head = LogisticHead(C=0.05, max_iter=2, chunk_rows=CHUNK).fit(recording, labels)
    assert recording.largest == CHUNK
    assert head.n_iter_[0] == 2


# ------------------------------------------------------- predicting, saving


def test_chunked_predict_equals_array_predict(data):
    X, labels, va, on_disk = data
    in_memory = on_disk[()]  # the same float32 rows as one array
    ridge = RidgeHead(clip=False, chunk_rows=CHUNK).fit(X, va)
    logistic = LogisticHead(C=0.05, chunk_rows=CHUNK).fit(X, labels)
    for head, method in ((ridge, "predict"), (logistic, "predict"), (logistic, "predict_proba"),
                         (logistic, "decision_function")):
        np.testing.assert_allclose(getattr(head, method)(on_disk), getattr(head, method)(in_memory), rtol=1e-12)
    with pytest.raises(ValueError, match="X has 10 features, but RidgeHead is expecting 24 features as input"):
        ridge.predict(RowSubset(X[:, :10].copy(), np.arange(5)))


@pytest.mark.parametrize("head, target", [(RidgeHead(chunk_rows=CHUNK), "targets"),
                                          (LogisticHead(C=0.05, chunk_rows=CHUNK), "labels")],
                         ids=["ridge", "logistic"])
def test_a_head_fitted_on_chunked_x_saves_and_loads(data, tmp_path, head, target):
    X, labels, va, on_disk = data
    head.fit(on_disk, va if target == "targets" else labels)
    path = heads.save(head, tmp_path / "chunked.head")
    assert heads.io.file_format(path) == "skops"
    loaded = heads.load(path)  # no trust needed: the types of an in-memory fit
    methods = ("predict",) if target == "targets" else ("predict", "predict_proba", "decision_function")
    for method in methods:
        for rows in (on_disk, X):
            np.testing.assert_array_equal(getattr(loaded, method)(rows), getattr(head, method)(rows))


# ------------------------------------------------------------------------ keras


KERAS = {heads.KerasDenseClassifier: lambda head, X: head.predict_proba(X),
         heads.KerasDenseRegressor: lambda head, X: head.predict(X)}


@pytest.mark.parametrize("cls", list(KERAS), ids=lambda c: c.__name__)
def test_keras_from_chunks_without_shuffling_equals_in_memory(data, cls, monkeypatch):
    X, labels, va, on_disk = data
    y = labels if cls is heads.KerasDenseClassifier else va
    params = dict(hidden_units=16, epochs=3, learning_rate=1e-3, random_state=0)
    recording = RecordingRows(on_disk)
    streamed = heads.fit_chunked(cls(**params), recording, y, chunk_rows=CHUNK, shuffle=False)
    assert recording.largest <= CHUNK
    keras_in_order(monkeypatch)
    reference = cls(**params).fit(X.astype(np.float32), y)
    np.testing.assert_allclose(streamed.mean_, reference.mean_, rtol=1e-6)
    np.testing.assert_allclose(streamed.history_["val_loss"], reference.history_["val_loss"], rtol=1e-5)
    np.testing.assert_allclose(KERAS[cls](streamed, on_disk), KERAS[cls](reference, X), atol=1e-5)


def test_keras_fit_takes_an_on_disk_x_and_shuffles_by_chunks(data):
    _, labels, _, on_disk = data
    params = dict(hidden_units=16, epochs=3, learning_rate=1e-3, random_state=0)
    head = heads.KerasDenseClassifier(**params).fit(on_disk, labels)
    again = heads.KerasDenseClassifier(**params).fit(on_disk, labels)
    np.testing.assert_array_equal(head.predict_proba(on_disk), again.predict_proba(on_disk))  # seeded
    in_order = heads.fit_chunked(heads.KerasDenseClassifier(**params), on_disk, labels, shuffle=False)
    assert not np.array_equal(head.predict_proba(on_disk), in_order.predict_proba(on_disk))
    memory = heads.KerasDenseClassifier(**params).fit(on_disk[()], labels)  # Keras' own full shuffle
    assert head.history_["val_loss"][-1] < head.history_["val_loss"][0]
    assert head.history_["val_loss"][-1] == pytest.approx(memory.history_["val_loss"][-1], rel=0.03)


# --------------------------------------------------------------- failed rows


def test_nan_rows_are_refused_with_a_pointer_to_leaving_them_out(data, tmp_path):
    X, _, va, _ = data
    broken = X.copy()
    broken[100] = np.nan
    with pytest.raises(ValueError, match="NaN or infinity in row 100; leave failed"):
        RidgeHead(alpha=1.0, chunk_rows=CHUNK).fit(_memmap(tmp_path, broken), va)
    keep = np.ones(len(X), dtype=bool)
    keep[100] = False
    subset = RowSubset(_memmap(tmp_path, broken), keep)
    np.testing.assert_allclose(RidgeHead(alpha=1.0, chunk_rows=CHUNK).fit(subset, va[keep]).predict(X[keep]),
                               heads.RidgeHead(alpha=1.0).fit(X[keep], va[keep]).predict(X[keep]), rtol=1e-6, atol=1e-9)


def _memmap(folder, array, mode="r"):
    path = folder / f"x{np.random.default_rng().integers(1 << 30)}.dat"
    out = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
    out[:] = array
    out.flush()
    return np.memmap(path, dtype=array.dtype, mode=mode, shape=array.shape)


def test_row_subset_reads_selected_rows_in_bounded_windows(data):
    X, _, _, on_disk = data
    rows = np.array([650, 3, 4, 5, 90, 91, 400])
    recording = RecordingRows(on_disk)
    subset = RowSubset(recording, rows)
    assert subset.shape == (7, X.shape[1]) and len(subset) == 7
    np.testing.assert_array_equal(subset[1:5], X[rows[1:5]].astype(np.float32))
    assert recording.largest <= 4
    np.testing.assert_array_equal(subset[[6, 0]], X[[400, 650]].astype(np.float32))
    nested = RowSubset(subset, [0, 2])
    np.testing.assert_array_equal(np.asarray(nested), X[[650, 4]].astype(np.float32))
    assert nested.source is recording and list(nested.rows) == [650, 4]  # one selection of the source
    np.testing.assert_array_equal(RowSubset(nested, np.array([False, True]))[:], X[[4]].astype(np.float32))
    with pytest.raises(ValueError, match="must not repeat"):
        RowSubset(on_disk, [1, 1])
    with pytest.raises(ValueError, match=r"row indices must be in \[0, 700\)"):
        RowSubset(on_disk, [700])
    assert heads.is_chunked(on_disk) and heads.is_chunked(subset) and not heads.is_chunked(X)


# -------------------------------------------------------------- featcache cache


def write_cache(path, X, labels, va, failed):
    """A one-group cache in featcache's schema, failed rows NaN as extraction leaves them."""
    n = len(X)
    records = Records(ids=[f"r{i}" for i in range(n)], paths=[f"img/{i}.png" for i in range(n)],
                      labels=labels, valence=va[:, 0], arousal=va[:, 1], landmarks=None,
                      content_hashes=[f"{i:064x}" for i in range(n)], class_names=[f"c{i}" for i in range(5)],
                      fingerprint="synthetic", layout="synthetic", root="/nowhere")
    features = X.astype(np.float32)
    features[failed] = np.nan
    config = {"backbone": "synthetic", "taps": ["last"], "weights": "none", "feature_dim": X.shape[1]}
    add_view(path, "synthetic-0", "original", features, group_attrs={"config": json.dumps(config)}, failed=failed,
             reasons=["unreadable"] * len(failed), records=records)


def test_open_features_leaves_features_on_disk_without_failed_rows(data, tmp_path):
    X, labels, va, _ = data
    failed = [0, 37, 38, 500]
    cache = tmp_path / "faces.h5"
    write_cache(cache, X, labels, va, failed)
    loaded = featcache.load(cache)
    with featcache.open_features(cache, "synthetic") as lazy:
        assert isinstance(lazy.features, RowSubset) and isinstance(lazy.features.source, h5py.Dataset)
        assert lazy.features.shape == loaded.features.shape == (len(X) - len(failed), X.shape[1])
        np.testing.assert_array_equal(lazy.index, loaded.index)
        np.testing.assert_array_equal(lazy.labels, loaded.labels)
        np.testing.assert_array_equal(lazy.features[:100], loaded.features[:100])
        head = RidgeHead(alpha=1.0, chunk_rows=CHUNK).fit(lazy.features, lazy.targets)
        in_memory = loaded.features.astype(np.float64)
        np.testing.assert_allclose(head.predict(in_memory), heads.RidgeHead(alpha=1.0).fit(
            in_memory, loaded.targets).predict(in_memory), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(head.predict(lazy.features), head.predict(loaded.features), rtol=1e-12)
    with pytest.raises(ValueError, match="NaN or infinity in row 0"):  # the raw dataset still holds them
        with h5py.File(cache, "r") as handle:
            RidgeHead(alpha=1.0, chunk_rows=CHUNK).fit(handle["groups/synthetic-0/original/features"], va)


# ------------------------------------------------------------ sklearn's checks


@parametrize_with_checks([RidgeHead(chunk_rows=16), LogisticHead(chunk_rows=16, random_state=0)])
def test_linear_heads_with_small_chunks_are_sklearn_estimators(estimator, check):
    """The checks' read-only memmap inputs take the chunked path, here 16 rows at a time."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
