"""Out-of-core heads: fitted from an HDF5 file in row chunks, they equal in-memory fits.

Ridge exactly, logistic regression to the optimiser's tolerance, the Keras dense heads
bit for bit when neither shuffles. X is an h5py Dataset read in chunks of 37 rows, so
every fit crosses many chunk boundaries (and a last partial chunk).
"""

import json
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

import featcache
import heads
from featcache.store import Records, add_view
from heads import RowSubset, StreamingLogisticHead, StreamingRidgeHead
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


@pytest.mark.parametrize("two_targets", [True, False], ids=["valence+arousal", "one target"])
def test_streaming_ridge_equals_in_memory_ridge(data, two_targets):
    X, _, va, on_disk = data
    y = va if two_targets else va[:, 0]
    reference = heads.RidgeHead(alpha=5.0, clip=False).fit(X, y)
    streamed = StreamingRidgeHead(alpha=5.0, clip=False, chunk_rows=CHUNK).fit(on_disk, y)
    predicted = streamed.predict(on_disk)
    assert predicted.shape == y.shape
    np.testing.assert_allclose(predicted, reference.predict(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(streamed.mean_, reference.pipeline_[0].mean_, rtol=1e-9)
    np.testing.assert_allclose(streamed.scale_, reference.pipeline_[0].scale_, rtol=1e-9)
    np.testing.assert_allclose(streamed.coef_, reference.pipeline_[-1].coef_, rtol=1e-6, atol=1e-10)
    clipped = StreamingRidgeHead(alpha=5.0, chunk_rows=CHUNK).fit(on_disk, y).predict(X)
    np.testing.assert_allclose(clipped, heads.RidgeHead(alpha=5.0).fit(X, y).predict(X), rtol=1e-6, atol=1e-9)


def test_streaming_ridge_never_reads_more_than_a_chunk(data):
    _, _, va, on_disk = data
    recording = RecordingRows(on_disk)
    head = StreamingRidgeHead(chunk_rows=CHUNK).fit(recording, va)
    assert recording.largest == CHUNK and recording.reads == -(-on_disk.shape[0] // CHUNK)  # one pass
    head.predict(recording)
    assert recording.largest == CHUNK


def test_chunk_size_does_not_change_the_ridge(data):
    X, _, va, _ = data
    one_chunk = StreamingRidgeHead(chunk_rows=10_000).fit(X, va).predict(X)
    for chunk_rows in (1, 7, 699):
        np.testing.assert_allclose(StreamingRidgeHead(chunk_rows=chunk_rows).fit(X, va).predict(X), one_chunk,
                                   rtol=1e-9, atol=1e-12)


def test_streaming_ridge_does_not_touch_an_in_memory_x(data):
    X, _, va, _ = data
    copy = X.copy()
    StreamingRidgeHead(chunk_rows=CHUNK).fit(X, va)
    np.testing.assert_array_equal(X, copy)


# --------------------------------------------------------------------- logistic


@pytest.mark.parametrize("classes", [5, 2])
@pytest.mark.parametrize("class_weight", [None, "balanced"])
def test_streaming_logistic_equals_in_memory_logistic(data, classes, class_weight):
    X, labels, _, on_disk = data
    y = labels if classes == 5 else (labels > 1).astype(int)
    reference = heads.LogisticHead(C=0.05, class_weight=class_weight).fit(X, y)
    streamed = StreamingLogisticHead(C=0.05, class_weight=class_weight, chunk_rows=CHUNK).fit(on_disk, y)
    np.testing.assert_array_equal(streamed.classes_, reference.classes_)
    proba = streamed.predict_proba(on_disk)
    np.testing.assert_allclose(proba, reference.predict_proba(X), atol=1e-3)
    assert np.mean(streamed.predict(on_disk) == reference.predict(X)) >= 0.99
    scores = streamed.decision_function(on_disk)
    assert scores.shape == ((len(y),) if classes == 2 else (len(y), classes))
    tight = dict(C=0.05, class_weight=class_weight, tol=1e-9, max_iter=5000)
    np.testing.assert_allclose(StreamingLogisticHead(**tight, chunk_rows=CHUNK).fit(on_disk, y).predict_proba(X),
                               heads.LogisticHead(**tight).fit(X, y).predict_proba(X), atol=1e-6)


def test_streaming_logistic_reads_chunks_and_warns_when_stopped_early(data):
    _, labels, _, on_disk = data
    recording = RecordingRows(on_disk)
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 iterations"):
        head = StreamingLogisticHead(C=0.05, max_iter=2, chunk_rows=CHUNK).fit(recording, labels)
    assert recording.largest == CHUNK
    assert head.n_iter_[0] == 2


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
        StreamingRidgeHead(chunk_rows=CHUNK).fit(_memmap(tmp_path, broken), va)
    keep = np.ones(len(X), dtype=bool)
    keep[100] = False
    subset = RowSubset(_memmap(tmp_path, broken), keep)
    np.testing.assert_allclose(StreamingRidgeHead(chunk_rows=CHUNK).fit(subset, va[keep]).predict(X[keep]),
                               heads.RidgeHead(alpha=1.0).fit(X[keep], va[keep]).predict(X[keep]), rtol=1e-6, atol=1e-9)


def _memmap(folder, array):
    path = folder / f"x{np.random.default_rng().integers(1 << 30)}.dat"
    out = np.memmap(path, dtype=array.dtype, mode="w+", shape=array.shape)
    out[:] = array
    out.flush()
    return np.memmap(path, dtype=array.dtype, mode="r", shape=array.shape)


def test_row_subset_reads_selected_rows_in_bounded_windows(data):
    X, _, _, on_disk = data
    rows = np.array([650, 3, 4, 5, 90, 91, 400])
    recording = RecordingRows(on_disk)
    subset = RowSubset(recording, rows)
    assert subset.shape == (7, X.shape[1]) and len(subset) == 7
    np.testing.assert_array_equal(subset[1:5], X[rows[1:5]].astype(np.float32))
    assert recording.largest <= 4
    np.testing.assert_array_equal(subset[[6, 0]], X[[400, 650]].astype(np.float32))
    np.testing.assert_array_equal(np.asarray(RowSubset(subset, [0, 2])), X[[650, 4]].astype(np.float32))
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
        head = StreamingRidgeHead(chunk_rows=CHUNK).fit(lazy.features, lazy.targets)
        np.testing.assert_allclose(head.predict(lazy.features), heads.RidgeHead(alpha=1.0).fit(
            loaded.features.astype(np.float64), loaded.targets).predict(loaded.features.astype(np.float64)),
            rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="NaN or infinity in row 0"):  # the raw dataset still holds them
        with h5py.File(cache, "r") as handle:
            StreamingRidgeHead(chunk_rows=CHUNK).fit(handle["groups/synthetic-0/original/features"], va)


# ------------------------------------------------------------ sklearn's checks


@parametrize_with_checks([StreamingRidgeHead(), StreamingLogisticHead(), StreamingRidgeHead(chunk_rows=5),
                          StreamingLogisticHead(chunk_rows=5)])
def test_streaming_heads_are_sklearn_estimators(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)
