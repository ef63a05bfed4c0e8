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


# ------------------------------------------------------------------------------ record groups

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from featcache.splits import PART_NAMES, together, unstratified  # noqa: E402


@st.composite
def grouped_records(draw):
    """Random group structures and class balances: group sizes 1..12, each group one class or a
    mix, class weights skewed or even, a few byte-identical copies across groups."""
    n_groups = draw(st.integers(3, 60))
    n_classes = draw(st.integers(2, 8))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 13, size=n_groups)
    weights = rng.dirichlet(np.full(n_classes, draw(st.sampled_from([0.3, 1.0, 10.0]))))
    mixed = draw(st.booleans())
    groups, labels = [], []
    for g, size in enumerate(sizes):
        own = rng.choice(n_classes, p=weights)
        labels += list(rng.choice(n_classes, size=size, p=weights)) if mixed else [own] * size
        groups += [f"person{g}"] * size
    hashes = np.array([f"h{i}" for i in range(len(labels))], dtype=object)
    for a, b in rng.choice(len(labels), size=(min(3, len(labels) // 2), 2), replace=False):
        hashes[b] = hashes[a]
    return np.array(labels), hashes.astype(str), np.array(groups), seed


def assert_groups_on_one_side(parts, groups, hashes):
    for key in (groups, hashes):
        for value in np.unique(key):
            assert len(np.unique(parts[key == value])) == 1, f"{value} on both sides"


@settings(max_examples=60, deadline=None)
@given(grouped_records(), st.sampled_from([(0.7, 0.15, 0.15), (0.8, 0.0, 0.2), (0.5, 0.25, 0.25)]))
def test_no_group_is_on_both_sides_of_a_split(records, fractions):
    labels, hashes, groups, seed = records
    parts = stratified_split(labels, hashes, fractions, seed=seed % 1000, groups=groups)
    assert parts.shape == labels.shape and set(np.unique(parts)) <= {0, 1, 2}
    assert_groups_on_one_side(parts, groups, hashes)
    for part, fraction in enumerate(fractions):
        if fraction == 0:
            assert not (parts == part).any()


@settings(max_examples=40, deadline=None)
@given(grouped_records(), st.integers(2, 5))
def test_no_group_is_in_two_folds(records, k):
    labels, hashes, groups, seed = records
    if together(hashes, groups).max() + 1 < k:
        with pytest.raises(ValueError, match="cannot make"):
            stratified_folds(labels, hashes, k, seed % 1000, groups=groups)
        return
    folds = stratified_folds(labels, hashes, k, seed % 1000, groups=groups)
    assert set(np.unique(folds)) <= set(range(k))
    assert_groups_on_one_side(folds, groups, hashes)


def test_a_copy_filed_under_two_people_joins_them():
    hashes = np.array(["a", "b", "c", "b", "d"])
    groups = np.array(["p1", "p1", "p2", "p3", "p3"])  # record 1 and 3 are one image under p1 and p3
    component = together(hashes, groups)
    assert component[0] == component[1] == component[3] == component[4] and component[2] != component[0]


def test_grouped_split_of_people_with_mixed_expressions_stays_stratified():
    rng = np.random.default_rng(0)
    people = np.repeat(np.arange(118), 8)  # about the posed set's shape: 118 people, 8 images each
    labels = rng.integers(0, 7, size=len(people))
    parts = stratified_split(labels, [str(i) for i in range(len(people))], seed=0, groups=people.astype(str))
    assert_groups_on_one_side(parts, people, np.arange(len(people)))
    shares = np.bincount(parts, minlength=3) / len(parts)
    np.testing.assert_allclose(shares, [0.70, 0.15, 0.15], atol=0.02)
    for label in range(7):
        within = np.bincount(parts[labels == label], minlength=3) / np.sum(labels == label)
        np.testing.assert_allclose(within, [0.70, 0.15, 0.15], atol=0.05)


def test_a_class_in_too_few_groups_is_named():
    labels = np.array([0] * 30 + [1] * 30 + [2] * 4)
    groups = np.array([f"p{i // 3}" for i in range(60)] + ["rare"] * 4)  # class 2: one person only
    parts = stratified_split(labels, [str(i) for i in range(64)], seed=0, groups=groups)
    notes = unstratified(labels, parts, PART_NAMES, ("calm", "happy", "rare-class"))
    assert len(notes) == 1 and notes[0].startswith("class 'rare-class' (4 records) has none in")
    spread = np.array([f"p{i // 3}" for i in range(60)] + [f"r{i}" for i in range(10)])  # class 2: ten people
    labels = np.r_[labels[:60], [2] * 10]
    parts = stratified_split(labels, [str(i) for i in range(70)], seed=0, groups=spread)
    assert all((parts[60:] == part).any() for part in range(3))
    assert unstratified(labels, parts, PART_NAMES) == []


def test_ungrouped_split_is_the_split_caches_had_before_groups():
    """Caches without groups keep the split they had: each duplicate set dealt by its most frequent
    class. The expected parts were made by the implementation before record groups existed."""
    labels = np.r_[np.repeat(np.arange(3), 6), [-1, -1]]
    hashes = np.array([f"h{i}" for i in range(20)])
    hashes[7], hashes[16] = hashes[2], hashes[4]  # byte-identical pairs; 4 and 16 with conflicting labels
    np.testing.assert_array_equal(stratified_split(labels, hashes, seed=7),
                                  [0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 0, 2, 0, 0, 1, 1, 0, 1])
    labels, hashes, _ = labelled(seed=4)
    parts = stratified_split(labels, hashes, seed=2)
    singletons = stratified_split(labels, hashes, seed=2, groups=np.array([str(i) for i in range(len(labels))]))
    np.testing.assert_array_equal(parts, singletons)  # one group per record is no grouping
