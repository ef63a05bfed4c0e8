"""Splits: stratified, duplicates kept together, seeded, stored in the cache and shared."""

import numpy as np
import pytest

import featcache
from featcache.store import CacheError
from featcache.splits import TEST, TRAIN, VALIDATION, cached_split, stratified_folds, stratified_split
from imagegen import make_affectnet_tree


def labelled(n_per_class=40, n_classes=8, duplicates=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    hashes = np.array([f"h{i}" for i in range(len(labels))], dtype=object)
    copies = rng.choice(len(labels), size=(duplicates, 2), replace=False)
    for a, b in copies:
        hashes[b] = hashes[a]  # byte-identical pairs, some with conflicting labels
    return labels, hashes.astype(str), copies


def test_split_is_stratified_and_keeps_duplicates_together():
    labels, hashes, copies = labelled()
    parts = stratified_split(labels, hashes, (0.7, 0.15, 0.15), seed=1)
    for label in range(8):
        counts = np.bincount(parts[labels == label], minlength=3)
        assert abs(counts[TRAIN] - 28) <= 2 and abs(counts[VALIDATION] - 6) <= 2 and abs(counts[TEST] - 6) <= 2
    for a, b in copies:
        assert parts[a] == parts[b]


def test_split_is_seeded():
    labels, hashes, _ = labelled()
    first = stratified_split(labels, hashes, seed=3)
    np.testing.assert_array_equal(first, stratified_split(labels, hashes, seed=3))
    assert (first != stratified_split(labels, hashes, seed=4)).any()


def test_split_rejects_bad_fractions():
    labels, hashes, _ = labelled(n_per_class=4)
    with pytest.raises(ValueError, match="summing to 1"):
        stratified_split(labels, hashes, (0.5, 0.2, 0.2))


def test_folds_cover_every_record_once_with_duplicates_together():
    labels, hashes, copies = labelled()
    folds = stratified_folds(labels, hashes, k=5, seed=0)
    assert set(np.unique(folds)) == set(range(5))
    assert all(abs(np.sum(folds == f) - 64) <= 4 for f in range(5))
    for a, b in copies:
        assert folds[a] == folds[b]


def test_cached_split_is_stored_once_and_shared(tmp_path):
    made = make_affectnet_tree(tmp_path / "data", n=40, seed=2)
    cache = tmp_path / "c.h5"
    featcache.extract(made.data, "fer_minixception", cache, weights=None)
    before = featcache.load(cache, "fer_minixception").features
    parts = cached_split(cache)
    np.testing.assert_array_equal(parts, cached_split(cache))
    assert len(parts) == len(featcache.open_dataset(made.data)) and set(np.unique(parts)) <= {0, 1, 2}
    (a, b), *_ = made.duplicates
    paths = list(featcache.open_dataset(made.data).paths)
    assert parts[paths.index(a)] == parts[paths.index(b)]
    with pytest.raises(CacheError, match="split 'default' was made with"):
        cached_split(cache, seed=5)
    other = cached_split(cache, "seed5", seed=5)
    assert other.shape == parts.shape
    np.testing.assert_array_equal(featcache.load(cache, "fer_minixception").features, before)
