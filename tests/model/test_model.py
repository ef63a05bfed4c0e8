"""Saved models: from train / recipe / compare --save-best to predictions on image files, arrays
and other caches, with the safety rules of loading (no unpickling, weights digests checked)."""

import csv
import json
import pickle

import subprocess
import sys

import joblib
import numpy as np
import pytest
import skops.io  # noqa: F401  (imported before the unpickling test replaces pickle's entry points)
import tensorflow as tf
from typer.testing import CliRunner

import featcache
import metrics
from featcache.cli import app
from featcache.demo import make_synthetic_faces
from featcache.errors import ModelError
from featcache.experiment import best_results, compare, run_head
from featcache.model import Model, TaskHead, load_model
from featcache.recipe import Extraction, Recipe, prepare, run_recipe
from featcache.sources import extract_command
from featcache.splits import cached_split
from imagegen import _truncated_jpeg

FACE = "fer_minixception"  # 64 px and 58k parameters; random weights (weights "none") need no download
JOINT = ("joint_linear", {"Cs": (0.01, 1.0), "cv": 2})  # one head for both tasks, as the affect recipe has
TINY = Recipe("tiny", (Extraction(FACE, ("add_4:2",), crops=(0.9,)), Extraction(FACE, image_size=48)),
              view="mean", classify=JOINT, regress=JOINT)


def squash(values):
    """A function of the tests' own, which no loader may call unless told to trust the file."""
    return np.tanh(values)


def files_of(cache, index):
    """The absolute image paths of cache records, in the order of ``index``."""
    records = featcache.load(cache, group=next(iter(featcache.info(cache)["groups"])), include_failed=True)
    root = featcache.info(cache)["dataset"]["root"]
    return [f"{root}/{records.paths[i]}" for i in index]


def decoded(paths):
    return np.stack([tf.io.decode_image(tf.io.read_file(str(p)), channels=3).numpy() for p in paths])


def agree(actual, expected, tolerance):
    """Largest difference relative to the largest expected value."""
    scale = float(np.max(np.abs(expected))) or 1.0
    assert float(np.max(np.abs(np.asarray(actual) - expected))) / scale <= tolerance


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_synthetic_faces(tmp_path_factory.mktemp("model") / "faces", per_class=10, seed=1)


@pytest.fixture(scope="module")
def recipe_run(faces, tmp_path_factory):
    out = tmp_path_factory.mktemp("recipe")
    results = run_recipe(faces, out, recipe=TINY, weights={FACE: "none"})
    return out, results


def test_recipe_model_predicts_on_image_files_what_the_experiment_predicted(recipe_run):
    out, results = recipe_run
    model = load_model(out / "model")
    assert [len(s.views) for s in model.sources] == [4, 2]  # 0.9 crops and mirror images: 4 views; 2 at 48 px
    assert {s.input_size for s in model.sources} == {64, 48}
    classify, regress = results
    files = files_of(out / "features.h5", classify["test_index"])
    predicted = model.predict_images(files)
    assert predicted.paths == files and predicted.errors == [None] * len(files)
    agree(predicted.predictions.probabilities, classify["scores"], 1e-5)
    agree(predicted.predictions.valence_arousal, regress["predictions"], 1e-5)
    np.testing.assert_array_equal(predicted.predictions.probabilities.argmax(axis=1), classify["predictions"])
    assert list(predicted.predictions.labels) == [model.class_names[i] for i in classify["predictions"]]
    in_memory = model.predict(decoded(files))  # arrays go through the same resizing and crops
    np.testing.assert_array_equal(in_memory.probabilities, predicted.predictions.probabilities)
    one = model.predict(decoded(files[:1])[0])  # one (height, width, 3) image; a batch of 1 may round differently
    agree(one.valence_arousal, predicted.predictions.valence_arousal[:1], 1e-5)


def test_recipe_model_scores_its_own_test_part_and_other_data_without_refitting(recipe_run, cached, tmp_path):
    out, results = recipe_run
    model = load_model(out / "model", check_weights=False)
    own = model.evaluate(out / "features.h5")
    assert own["classify"]["report"]["accuracy"] == results[0]["report"]["accuracy"]
    assert own["regress"]["report"]["valence"]["ccc"] == pytest.approx(results[1]["report"]["valence"]["ccc"], 1e-9)
    with pytest.raises(ModelError, match=r"faces.h5 has no group fer_minixception-\w+ .*featcache extract --data "
                                         r"DATA --out CACHE --backbone fer_minixception --weights none --tap "
                                         r"add_4:2 --image-size 64 --flip --crop 0.9$"):
        model.evaluate(cached)  # the same faces, without the model's groups
    other_data = make_synthetic_faces(tmp_path / "other", per_class=4, seed=7)
    prepare(other_data, tmp_path / "other.h5", TINY, weights={FACE: "none"})
    other = model.evaluate(tmp_path / "other.h5")
    assert other["classify"]["n"] == other["regress"]["n"] == 32 and other["classify"]["rows"].startswith("all 32")
    predicted = model.predict_images(other_data).predictions
    expected = featcache.load(tmp_path / "other.h5", group=model.sources[1].key)
    report = metrics.classification_report(expected.labels, predicted.probabilities, class_names=model.class_names)
    assert other["classify"]["report"]["accuracy"] == pytest.approx(report["accuracy"], abs=1e-12)

    # Other data often has classes only: the regressor is said to be unscored, the classifier is scored.
    manifest = tmp_path / "classes-only.csv"
    names = [model.class_names[label].upper() for label in expected.labels]  # matched by name, any case
    manifest.write_text("path,label\n" + "".join(f"{other_data / p},{n}\n" for p, n in zip(expected.paths, names)))
    prepare(manifest, tmp_path / "classes-only.h5", TINY, weights={FACE: "none"})
    result = CliRunner().invoke(app, ["evaluate", "--model", str(out / "model"), "--cache",
                                      str(tmp_path / "classes-only.h5")])
    assert result.exit_code == 0, result.output
    assert "classify on all 32 records of classes-only.h5 (32 scored): Accuracy" in result.output
    assert "regress: not scored, no valence/arousal-rated records in all 0 records of classes-only.h5" in result.output


def test_train_cli_model_predicts_what_compare_predicted(faces, recipe_run, tmp_path):
    out, _ = recipe_run
    cache = out / "features.h5"
    key = json.loads((out / "model" / "model.json").read_text())["sources"][0]["key"]
    trained = CliRunner().invoke(app, ["train", "--cache", str(cache), "--group", key, "--head", "logistic",
                                       "--task", "classify", "--out", str(tmp_path / "m")])
    assert trained.exit_code == 0, trained.output
    assert f"saved the model {tmp_path / 'm'} (logistic, classify); test part: Accuracy" in trained.output
    (reference,) = compare(cache, groups=[key], head_names=["logistic"], task="classify")
    files = files_of(cache, reference["test_index"])
    agree(load_model(tmp_path / "m").predict_images(files).predictions.probabilities, reference["scores"], 1e-5)
    described = CliRunner().invoke(app, ["info", str(tmp_path / "m")])
    assert described.exit_code == 0, described.output
    assert (f"classify: logistic on {key}; test accuracy {reference['report']['accuracy']:.3f}" in described.output
            and "views original" in described.output)


def test_compare_save_best_keeps_the_best_head_per_task_and_predicts_what_it_predicted(recipe_run, tmp_path):
    out, _ = recipe_run
    cache = out / "features.h5"
    saved = tmp_path / "best"
    groups = ",".join(json.loads((out / "model" / "model.json").read_text())["sources"][i]["key"] for i in (0, 1))
    result = CliRunner().invoke(app, ["compare", "--cache", str(cache), "--groups", groups, "--heads",
                                      "logistic,ridge,mlp", "--no-figures", "--out", str(tmp_path / "tables"),
                                      "--save-best", str(saved)])
    assert result.exit_code == 0, result.output
    results = compare(cache, groups=groups.split(","), head_names=["logistic", "ridge", "mlp"])
    best = best_results(results)
    accuracy = max(r["report"]["accuracy"] for r in results if r["task"] == "classify")
    assert best[0]["task"] == "classify" and best[0]["report"]["accuracy"] == accuracy
    manifest = json.loads((saved / "model.json").read_text())
    assert {task: entry["head"] for task, entry in manifest["tasks"].items()} == {r["task"]: r["head"] for r in best}
    assert [entry["sources"] for entry in manifest["tasks"].values()] == [[r["group"]] for r in best]
    model = load_model(saved)
    for task, reference in zip(("classify", "regress"), best):
        predicted = model.predict_images(files_of(cache, reference["test_index"])).predictions
        actual = predicted.probabilities if task == "classify" else predicted.valence_arousal
        agree(actual, reference["scores"] if task == "classify" else reference["predictions"], 1e-5)


def test_unreadable_images_give_error_rows_and_a_flat_folder_works_for_predict_and_extract(recipe_run, faces,
                                                                                         tmp_path):
    out, _ = recipe_run
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, source in (("a.jpg", "images/0.jpg"), ("c.jpg", "images/1.jpg")):
        (photos / name).write_bytes((faces / source).read_bytes())
    (photos / "b.jpg").write_bytes(_truncated_jpeg(np.random.default_rng(0)))
    (photos / "d.jpg").write_text("not an image")
    (photos / "notes.txt").write_text("not named as an image: left out, and said so")
    csv_path = tmp_path / "predictions.csv"
    result = CliRunner().invoke(app, ["predict", "--model", str(out / "model"), "--data", str(photos),
                                      "--out", str(csv_path), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (f"wrote {csv_path}: 4 images, 2 unreadable (see the error column); left out 1 files not named as "
            f"images: {photos / 'notes.txt'}") in result.output
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    model = load_model(out / "model")
    assert list(rows[0]) == ["path", "label", *[f"p_{c}" for c in model.class_names], "valence", "arousal", "error"]
    assert [row["path"] for row in rows] == [str(photos / n) for n in ("a.jpg", "b.jpg", "c.jpg", "d.jpg")]
    assert [bool(row["error"]) for row in rows] == [False, True, False, True]
    assert rows[1]["label"] == rows[1]["valence"] == "" and "JPEG" in rows[1]["error"]
    in_memory = model.predict_images(photos)
    assert [e is None for e in in_memory.errors] == [True, False, True, False]
    assert np.isnan(in_memory.predictions.probabilities[1]).all() and in_memory.predictions.labels[1] is None
    written = np.array([[float(row[f"p_{c}"]) for c in model.class_names] for row in rows if not row["error"]])
    np.testing.assert_allclose(written, in_memory.predictions.probabilities[[0, 2]], rtol=1e-6)
    assert [row["label"] for row in rows if not row["error"]] == list(in_memory.predictions.labels[[0, 2]])

    classes = tmp_path / "classes"
    (classes / "happy").mkdir(parents=True)
    (classes / "happy" / "h.jpg").write_bytes((photos / "a.jpg").read_bytes())
    (classes / "loose.jpg").write_bytes((photos / "c.jpg").read_bytes())  # beside the class folders: predicted too
    assert model.predict_images(classes).paths == [str(classes / "happy" / "h.jpg"), str(classes / "loose.jpg")]

    extracted = featcache.extract(photos, FACE, tmp_path / "photos.h5", weights=None, engine="tensorflow")
    assert extracted.images == 2 and [path for path, _ in extracted.failed] == ["b.jpg", "d.jpg"]
    summary = featcache.info(tmp_path / "photos.h5")
    assert summary["dataset"]["layout"] == "flat" and summary["label_counts"] == {"(unlabelled)": 4}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A face network's weights saved to a file, and the network's architecture to change them with."""
    from featcache.backbones import get_spec

    folder = tmp_path_factory.mktemp("weights")
    spec = get_spec(FACE)
    tf.keras.utils.set_random_seed(11)
    network = spec.build(None, (64, 64, spec.channels))
    network.save_weights(folder / "face.weights.h5")
    return folder / "face.weights.h5", network


def test_a_model_whose_weights_changed_is_refused_in_one_line(faces, weights_file, tmp_path):
    path, network = weights_file
    cache = featcache.extract(faces, FACE, tmp_path / "faces.h5", weights=path, engine="tensorflow").path
    Model.from_cache(cache, FACE, regress=None).save(tmp_path / "m")
    kept = tmp_path / "kept.weights.h5"
    kept.write_bytes(path.read_bytes())
    network.set_weights([w * 1.01 for w in network.get_weights()])
    network.save_weights(path)
    with pytest.raises(ModelError) as refused:
        load_model(tmp_path / "m")
    assert "\n" not in str(refused.value)
    assert str(refused.value).startswith(f"fer_minixception: the weights found ({path.resolve()}) have digest ")
    assert str(refused.value).endswith("use the weights it was trained with (--weights fer_minixception=PATH)")
    with_kept = load_model(tmp_path / "m", weights={FACE: str(kept)}).predict_images(faces / "images" / "3.jpg",
                                                                                    engine="tensorflow")
    assert with_kept.errors == [None] and with_kept.predictions.probabilities.shape == (1, 8)
    path.unlink()
    result = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "m"), "--data", str(faces)])
    assert result.exit_code == 2 and f"weights '{path}': no such file" in result.output
    assert "--weights fer_minixception=PATH" in result.output


def test_a_model_of_float16_features_rounds_its_features_as_the_cache_stored_them(faces, tmp_path):
    cache = tmp_path / "half.h5"
    key = featcache.extract(faces, FACE, cache, weights=None, flip=True, dtype="float16", engine="tensorflow").group
    features = featcache.combine(cache, [key], view="mean")  # original and flip, each stored in float16
    (reference,) = run_head(features, cached_split(cache), "ridge", "regress")
    model = featcache.Model.from_results([reference], cache=cache)
    assert model.sources[0].dtype == "float16" and "--dtype float16" in extract_command(model.sources[0])
    files = files_of(cache, reference["test_index"])
    predicted = model.predict_images(files, engine="tensorflow").predictions
    agree(predicted.valence_arousal, reference["predictions"], 1e-5)


@pytest.fixture(scope="module")
def cached(faces, tmp_path_factory):
    # TensorFlow runs it: the tests of this cache predict from its features, not from images
    return featcache.extract(faces, FACE, tmp_path_factory.mktemp("cached") / "faces.h5", weights=None,
                             engine="tensorflow").path


HEAD_MODELS = [("logistic", "ridge"), ("logistic_cv", "ridge_cv"),
               (("logistic", {"C": 1e-3}), ("ridge", {"alpha": 1.0})),  # regularisation fixed, not chosen
               ("mlp", "mlp"), (("keras_dense", {"epochs": 2}), ("keras_dense", {"epochs": 2})),
               (("multitask", {"epochs": 2}),) * 2, ("ensemble", "ensemble")]


@pytest.mark.parametrize("classify, regress", HEAD_MODELS, ids=lambda spec: str(spec[0] if isinstance(spec, tuple)
                                                                                 else spec))
def test_a_saved_model_of_every_builtin_head_loads_without_unpickling(cached, tmp_path, monkeypatch, classify,
                                                                      regress):
    model = Model.from_cache(cached, FACE, classify=classify, regress=regress)
    model.save(tmp_path / "m")
    features = {model.sources[0].key: featcache.load(cached, FACE).features}
    expected = model.predict_features(features)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling while loading a model")

    for module, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (joblib, "load")):
        monkeypatch.setattr(module, name, refuse)
    loaded = load_model(tmp_path / "m", check_weights=False)
    monkeypatch.undo()
    predicted = loaded.predict_features(features)
    np.testing.assert_array_equal(predicted.probabilities, expected.probabilities)
    np.testing.assert_array_equal(predicted.valence_arousal, expected.valence_arousal)
    formats = {entry["format"] for entry in json.loads((tmp_path / "m" / "model.json").read_text())["tasks"].values()}
    assert formats == ({"keras"} if "keras" in str(classify) or "multitask" in str(classify) else {"skops"})
    if "multitask" in str(classify):  # one head serves both tasks, saved once
        assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["classify.head", "model.json"]


def test_an_estimator_featcache_does_not_know_loads_only_when_trusted(cached, tmp_path):
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    features = featcache.load(cached, FACE)
    known = features.labels >= 0
    other = make_pipeline(FunctionTransformer(squash), KNeighborsClassifier(3)).fit(
        features.features[known], features.labels[known])
    trusted = Model.from_cache(cached, FACE, regress=None)
    model = Model(trusted.sources, {"classify": TaskHead("knn", other, trusted.tasks["classify"].sources)},
                  trusted.class_names, trusted.training)
    model.save(tmp_path / "m")
    with pytest.raises(ModelError, match=r"classify.head is a pickle \(joblib\) file, which runs code when loaded"):
        load_model(tmp_path / "m", check_weights=False)
    loaded = load_model(tmp_path / "m", trust=True, check_weights=False)
    np.testing.assert_array_equal(loaded.predict_features({model.sources[0].key: features.features}).probabilities,
                                  model.predict_features({model.sources[0].key: features.features}).probabilities)


def test_model_folders_are_checked(cached, tmp_path):
    model = Model.from_cache(cached, FACE, regress=None)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(ModelError, match="taken exists and is not a featcache model folder; choose another path"):
        model.save(tmp_path / "taken")
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    with pytest.raises(ModelError, match=r"taken: not a featcache model folder \(no model.json\)"):
        load_model(tmp_path / "taken")
    model.save(tmp_path / "m")
    model.save(tmp_path / "m")  # a model folder is replaced as a whole
    manifest = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**manifest, "format": "featcache.model/9"}))
    with pytest.raises(ModelError, match="model format 'featcache.model/9', this featcache reads featcache.model/1"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match=r"images must be uint8 RGB .* got float64 \(2, 8, 8\)"):
        model.predict(np.zeros((2, 8, 8)))
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "model.json").write_text('{"name": "a model.json of something else"}')
    with pytest.raises(ModelError, match="project exists and is not a featcache model folder"):
        model.save(tmp_path / "project")
    (tmp_path / "m" / "model.json").write_text(json.dumps(manifest))
    head = tmp_path / "m" / "classify.head"
    head.write_bytes(head.read_bytes()[:100])  # an unfinished copy
    with pytest.raises(ModelError, match=r"classify.head: not a saved head \(a damaged or unfinished file\?\)$"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelError, match="'multitask' is named for both tasks with other parameters"):
        Model.from_cache(cached, FACE, classify=("multitask", {"epochs": 1}), regress=("multitask", {"epochs": 2}))


def test_export_never_replaces_what_is_not_an_earlier_export(cached, tmp_path):
    from featcache.export import export_model

    model = Model.from_cache(cached, FACE, regress=None)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mine.txt").write_text("mine")
    for format in ("onnx", "keras"):
        with pytest.raises(ModelError, match=f"results exists and is not an? (ONNX file|SavedModel folder); "
                                             "choose another --out"):
            export_model(model, tmp_path / "results", format)
    assert (tmp_path / "results" / "mine.txt").read_text() == "mine"


RUN_EXPORTS = """
import sys
sys.modules["featcache"] = sys.modules["heads"] = sys.modules["metrics"] = None  # importing them would fail
import numpy as np, onnxruntime, keras
onnx_file, saved_model, *arrays = sys.argv[1:]
session = onnxruntime.InferenceSession(onnx_file)
served = keras.layers.TFSMLayer(saved_model, call_endpoint="serve")
for i, array in enumerate(arrays):
    images = np.load(array)
    outputs = session.run(None, {session.get_inputs()[0].name: images})
    np.savez(f"{array}.onnx.npz", **dict(zip([o.name for o in session.get_outputs()], outputs)))
    np.savez(f"{array}.keras.npz", **{k: np.asarray(v) for k, v in served(images).items()})
"""


def test_exported_networks_run_without_featcache_and_agree_with_predict(recipe_run, tmp_path):
    out, results = recipe_run
    files = files_of(out / "features.h5", results[0]["test_index"])[:6]
    faces_128 = decoded(files)
    other_size = np.pad(faces_128[:3], ((0, 0), (7, 15), (0, 22), (0, 0)), mode="edge")  # 150 x 150, off-centre
    for exported, format in ((tmp_path / "model.onnx", "onnx"), (tmp_path / "saved", "keras")):
        result = CliRunner().invoke(app, ["export", "--model", str(out / "model"), "--format", format,
                                          "--out", str(exported)])
        assert result.exit_code == 0, result.output
    arrays = []
    for name, images in (("faces", faces_128), ("other", other_size)):
        np.save(tmp_path / f"{name}.npy", images)
        arrays.append(str(tmp_path / f"{name}.npy"))
    subprocess.run([sys.executable, "-c", RUN_EXPORTS, str(tmp_path / "model.onnx"), str(tmp_path / "saved"),
                    *arrays], check=True, capture_output=True)
    model = load_model(out / "model")
    for array in arrays:
        expected = model.predict(np.load(array))
        for format in ("onnx", "keras"):
            outputs = np.load(f"{array}.{format}.npz")
            assert sorted(outputs.files) == ["probabilities", "valence_arousal"]
            agree(outputs["probabilities"], expected.probabilities, 1e-4)
            agree(outputs["valence_arousal"], expected.valence_arousal, 1e-4)


def test_resizing_inside_the_exported_network_is_the_pipelines_bit_for_bit():
    from featcache.export import resize_axis

    def resized(images, size):
        return resize_axis(resize_axis(images, 1, size), 2, size)

    graph = tf.function(resized, reduce_retracing=True)
    rng = np.random.default_rng(0)
    for height, width, size in ((128, 128, 64), (224, 224, 112), (50, 37, 64), (201, 150, 96), (1, 3, 48),
                                (64, 64, 64)):
        images = tf.constant(rng.integers(0, 256, (2, height, width, 3)).astype(np.float32))
        expected = tf.image.resize(images, (size, size), antialias=True).numpy()
        np.testing.assert_array_equal(resized(images, size).numpy(), expected)
        np.testing.assert_array_equal(graph(images, size).numpy(), expected)

