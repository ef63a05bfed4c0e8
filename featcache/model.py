"""Saved models: what a comparison's winner becomes, to predict on new images without a cache.

A :class:`Model` holds, for each feature source (:mod:`featcache.sources`), the backbone
configuration exactly as the cache group recorded it (backbone, weights and their digest, taps,
pooling, input size, precision) and the views averaged into its features; for each task
(``classify``, ``regress``), the fitted head and the sources whose features it reads, side by
side in order. It applies them to images through the same pipeline and engines as extraction
(:mod:`featcache.inference`), scores them on any cache that holds their groups
(:meth:`Model.evaluate`); :mod:`featcache.export` builds it into one network.

On disk a model is a folder that can be sent to someone else::

    model.json        the manifest: class names, sources, tasks, how it was trained and scored
    classify.head     the fitted heads (heads.io: a Keras zip or an skops file, read without
    regress.head      running code from the file; joblib only for other estimators, trust=True)

:func:`load_model` rebuilds each source's feature model and refuses, in one line, a source
whose weights no longer have the recorded digest.
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

import heads
import metrics

from . import __version__
from .errors import ModelError, UsageError
from .experiment import TASKS, predict_task, run_heads, scoring_split, targets
from .feature_sets import ViewSpec, combine, combine_views
from .files import replace_folder
from .inference import FeatureRunner, array_features, file_features, image_files
from .predictions import ImagePredictions, Predictions, WrittenPredictions, collect, columns, joined, write_csv
from .reading import FeatureSet, info
from .sources import Source, extract_command, sources_of
from .splits import TEST, cached_split, split_digest
from .store import now, open_cache

FORMAT = "featcache.model/1"
MANIFEST = "model.json"
# How features are combined, as the manifest states it: each source's views averaged, the
# sources a head reads concatenated in order (the only rules so far; a reader checks them).
VIEWS_AVERAGE, SOURCES_COMBINE = "mean", "concatenate"
LABELLED = {"classify": "labelled", "regress": "valence/arousal-rated"}
PathLike = Union[str, Path]
HeadSpec = Union[str, tuple[str, Mapping[str, Any]], None]  # a head name, or (name, parameters)


@dataclass(frozen=True)
class TaskHead:
    """The fitted head of one task and the sources it reads (their features side by side, in order)."""

    head: str  # the head's name in heads.HEADS
    estimator: Any
    sources: tuple[str, ...]
    joint: bool = False  # a multi-task head: its regression output is columns 1: of predict()


@dataclass
class Model:
    """Feature sources + fitted heads: predictions on new images, as one artifact.

    Make one with :meth:`from_cache` (fits heads on a cache's split), :meth:`from_results`
    (from heads already fitted by :func:`featcache.experiment.run_head`), or
    :func:`load_model`. ``weights`` maps a backbone name to a weights file to use instead
    of the recorded one (its digest must still match).
    """

    sources: tuple[Source, ...]
    tasks: Mapping[str, TaskHead]
    class_names: tuple[str, ...] = ()
    training: Mapping[str, Any] = field(default_factory=dict)
    weights: Mapping[str, str] = field(default_factory=dict)
    _runner: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        known = {source.key for source in self.sources}
        if len(known) != len(self.sources):
            raise ModelError("a model lists a feature source twice")
        for task, part in self.tasks.items():
            if task not in TASKS:
                raise ModelError(f"unknown task {task!r}; a model's tasks are {', '.join(TASKS)}")
            missing = set(part.sources) - known
            if missing:
                raise ModelError(f"the {task} head reads a source the model does not hold: {', '.join(missing)}")
        if not self.tasks:
            raise ModelError("a model needs a head for classify, regress or both")
        if "classify" in self.tasks and not self.class_names:
            raise ModelError("a classifying model needs its class names")

    # -- making models ------------------------------------------------------------------
    @classmethod
    def from_cache(
        cls,
        cache: PathLike,
        groups: Union[str, Sequence[str]],
        *,
        view: ViewSpec = "original",
        classify: HeadSpec = "logistic_cv",
        regress: HeadSpec = "ridge_cv",
        split: str = "default",
        seed: int = 0,
        group_by: Optional[str] = None,
    ) -> "Model":
        """Fit heads on the training and validation parts of a cache's split, score them on its
        test part (kept in ``training``), and return the model.

        ``groups``: a group key or backbone name, or several, whose features are joined as
        :func:`featcache.combine` joins them; ``view`` as there (``"mean"`` averages every view
        each group holds). ``classify`` / ``regress``: a head name or ``(name, parameters)``,
        or None to leave the task out; a head that learns both at once (``multitask``, ``cnn``)
        named for both with the same parameters is fitted once for both.
        ``group_by`` groups the records first, as :func:`featcache.experiment.scoring_split` does.
        """
        cache = Path(cache)
        features = combine(cache, [groups] if isinstance(groups, str) else list(groups), view=view)
        parts = scoring_split(cache, split, features, group_by=group_by)
        asked = {task: _head_spec(spec) for task, spec in (("classify", classify), ("regress", regress)) if spec}
        if not asked:
            raise ModelError("name a head for classify, regress or both")
        try:
            results = run_heads(features, parts, asked, seed=seed)
        except UsageError as error:
            raise ModelError(str(error)) from None
        return cls.from_results(results, cache=cache, split=split, seed=seed)

    @classmethod
    def from_results(cls, results: Sequence[dict], *, cache: PathLike, split: str = "default",
                     seed: int = 0) -> "Model":
        """The model of fitted heads as :func:`featcache.experiment.run_head` returns them (at
        most one per task): their estimators, and the sources of the features they were fitted on."""
        cache = Path(cache)
        tasks, sources, trained = {}, {}, {}
        for result in results:
            if result["task"] in tasks:
                raise ModelError(f"two heads for the {result['task']} task; keep one per task")
            found = sources_of(result["config"], result["group"], result["view"])
            for source in found:
                if sources.setdefault(source.key, source).views != source.views:
                    raise ModelError(f"the heads read group {source.key} through other views "
                                     f"({'+'.join(sources[source.key].views)} and {'+'.join(source.views)}); "
                                     "fit them on the same views")
            tasks[result["task"]] = TaskHead(result["head"], result["estimator"], tuple(s.key for s in found),
                                             bool(result.get("joint")))
            trained[result["task"]] = {"head": result["head"], "n_train": result["n_train"],
                                       "n_test": result["n_test"], "test_report": result["report"]}
        summary = info(cache)
        class_names = tuple(_class_names(cache)) if "classify" in tasks else ()
        training = {"cache": str(cache), "dataset_fingerprint": summary["dataset"]["fingerprint"],
                    "split": split, "split_digest": split_digest(cached_split(cache, split)), "seed": seed,
                    "tasks": trained}
        return cls(tuple(sources.values()), tasks, class_names, training)

    # -- predicting ---------------------------------------------------------------------
    def predict_features(self, features: Mapping[str, np.ndarray]) -> Predictions:
        """Predictions from each source's (averaged) features, source key -> (n, dim)."""
        probabilities = valence_arousal = None
        for task, part in self.tasks.items():
            X = np.concatenate([np.asarray(features[key], dtype=np.float32) for key in part.sources], axis=1)
            output = predict_task(part.estimator, X, task, len(self.class_names), joint=part.joint)
            if task == "classify":
                probabilities = output
            else:
                valence_arousal = output.reshape(len(X), -1)
        return Predictions(self.class_names, probabilities, valence_arousal)

    def predict(self, images: np.ndarray, *, batch_size: int = 32, engine: str = "auto") -> Predictions:
        """Predictions for images in memory: uint8 RGB, (height, width, 3) or (n, height, width, 3),
        resized and cropped exactly as files are."""
        return joined([self.predict_features(features) for features in
                       array_features(self.feature_runner(), images, batch_size=batch_size, engine=engine)])

    def predict_images(self, data, out: Optional[PathLike] = None, *, batch_size: int = 32, engine: str = "auto",
                       progress: bool = False) -> Union[ImagePredictions, WrittenPredictions]:
        """Predictions for image files: one file, several, a folder (any layout featcache
        reads, a flat folder of images included) or a CSV manifest.

        Without ``out``: :class:`~featcache.predictions.ImagePredictions` (paths, errors and
        :class:`Predictions`, NaN rows for unreadable images). With ``out``: rows streamed to
        that CSV (path, label, p_<class>, valence, arousal, error) in constant memory, and a
        :class:`~featcache.predictions.WrittenPredictions` summary.
        """
        shown, files, left_out = image_files(data)
        stream = file_features(self.feature_runner(), files, batch_size=batch_size, engine=engine, progress=progress)
        batches = ((indices, None if features is None else self.predict_features(features), failures)
                   for indices, features, failures in stream)
        classify, regress = "classify" in self.tasks, "regress" in self.tasks
        if out is None:
            return collect(shown, batches, self.class_names, classify, regress, left_out)
        return write_csv(out, shown, batches, columns(self.class_names, classify, regress), left_out)

    def feature_runner(self) -> FeatureRunner:
        """The sources' :class:`~featcache.inference.FeatureRunner`: their feature models rebuilt
        and checked against the recorded configuration and weights digest (once)."""
        if self._runner is None:
            self._runner = FeatureRunner(self.sources, self.weights)
        return self._runner

    # -- scoring on a cache ---------------------------------------------------------------
    def evaluate(self, cache: PathLike, *, split: Optional[str] = None) -> dict[str, dict]:
        """Score the model on a cache that holds its sources' groups and views, without refitting.

        On the cache it was trained on: the test part of its split (or of ``split``). On other
        data (cross-dataset): every record with a label (valence and arousal), or the test part
        of ``split`` when given. Classes are matched by name; records of classes the model does
        not know are left out and counted. Returns task -> ``{"report", "rows", "n", "left_out"}``,
        or ``{"skipped": why}`` for a task the cache has no labels for (other data often carries
        classes only, or valence and arousal only); a ModelError when no task can be scored.
        """
        cache = Path(cache)
        same_data = info(cache)["dataset"]["fingerprint"] == self.training.get("dataset_fingerprint")
        chosen = split or (self.training.get("split", "default") if same_data else None)
        if same_data and chosen == self.training.get("split") and "split_digest" in self.training \
                and split_digest(cached_split(cache, chosen)) != self.training["split_digest"]:
            raise ModelError(f"{cache}: split {chosen!r} is not the one the model was trained on (the records were "
                             "grouped since, and the split made again): its test part may hold training records; "
                             "score on other data, or fit the model again")
        outcome = {}
        for task, part in self.tasks.items():
            features = self._cache_features(cache, part)
            y, usable = targets(features, task)
            rows = f"all {int(usable.sum())} records of {cache.name}"
            if chosen is not None:
                usable = usable & (cached_split(cache, chosen)[features.index] == TEST)
                rows = f"the test part of split {chosen!r} of {cache.name}"
            left_out = 0
            if task == "classify":
                mapped = _class_map(features.class_names, self.class_names)[np.maximum(y, 0)]
                left_out = int(np.sum(usable & (mapped < 0)))
                usable &= mapped >= 0
                y = mapped
            if not usable.any():
                known = f", {left_out} of classes the model does not know ({', '.join(self.class_names)})" \
                    if left_out else ""
                outcome[task] = {"skipped": f"no {LABELLED[task]} records in {rows}{known}"}
                continue
            output = predict_task(part.estimator, features.features[usable], task, len(self.class_names),
                                  joint=part.joint)
            report = (metrics.classification_report(y[usable], output, class_names=self.class_names)
                      if task == "classify" else metrics.regression_report(y[usable], output))
            outcome[task] = {"report": report, "rows": rows, "n": int(usable.sum()), "left_out": left_out}
        if all("skipped" in scored for scored in outcome.values()):
            raise ModelError(f"{cache}: nothing to score the model on: "
                             + "; ".join(f"{task}: {scored['skipped']}" for task, scored in outcome.items()))
        return outcome

    def _cache_features(self, cache: Path, part: TaskHead) -> FeatureSet:
        """The features the head reads, from a cache holding its sources' groups and views."""
        summary = info(cache)
        wanted = {}
        for key in part.sources:
            source = self.source(key)
            held = summary["groups"].get(key)
            if held is None or held["config"] != dict(source.config):
                raise ModelError(f"{cache} has no group {key} ({source.backbone} as the model was trained on it); "
                                 f"extract it: {extract_command(source)}")
            wanted[key] = source.views
        return combine_views(cache, wanted)

    def source(self, key: str) -> Source:
        return next(source for source in self.sources if source.key == key)

    # -- files ----------------------------------------------------------------------------
    def save(self, path: PathLike) -> Path:
        """Write the model folder (replaced as a whole when it holds a model already)."""
        path = Path(path)
        if path.exists() and not _is_model_folder(path) and (not path.is_dir() or any(path.iterdir())):
            raise ModelError(f"{path} exists and is not a featcache model folder; choose another path")
        temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        temporary.mkdir(parents=True)
        try:
            files = {}
            for task, part in self.tasks.items():
                same = next((t for t, f in files.items() if self.tasks[t].estimator is part.estimator), None)
                if same is not None:  # one multi-task head serves both tasks
                    files[task] = files[same]
                    continue
                files[task] = f"{task}.head"
                heads.save(part.estimator, temporary / files[task])
            manifest = {
                "format": FORMAT,
                "featcache_version": __version__,
                "created": now(),
                "class_names": list(self.class_names),
                "sources": [{"key": s.key, "config": dict(s.config), "views": list(s.views),
                             "average": VIEWS_AVERAGE} for s in self.sources],
                "tasks": {task: {"head": part.head, "file": files[task],
                                 "format": heads.io.file_format(temporary / files[task]),
                                 "sources": list(part.sources), "combine": SOURCES_COMBINE, "joint": part.joint}
                          for task, part in self.tasks.items()},
                "training": dict(self.training),
            }
            (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_plain) + "\n")
            replace_folder(temporary, path)
        finally:
            shutil.rmtree(temporary, ignore_errors=True)
        return path

    def describe(self) -> str:
        """A few lines for people: sources, heads, where it was trained."""
        lines = [f"sources: {len(self.sources)}"] + [f"  {source.describe()}" for source in self.sources]
        for task, part in self.tasks.items():
            report = self.training.get("tasks", {}).get(task, {}).get("test_report")
            score = ""
            if report:
                score = (f"; test accuracy {report['accuracy']:.3f}" if task == "classify" else
                         f"; test CCC valence {report['valence']['ccc']:.3f}, arousal {report['arousal']['ccc']:.3f}")
            lines.append(f"{task}: {part.head} on {' + '.join(part.sources)}{score}")
        if self.class_names:
            lines.append(f"classes: {', '.join(self.class_names)}")
        if self.training.get("cache"):
            lines.append(f"trained on {self.training['cache']} (split {self.training.get('split')!r})")
        return "\n".join(lines)


def load_model(path: PathLike, *, trust: bool = False, weights: Optional[Mapping[str, str]] = None,
               check_weights: bool = True) -> Model:
    """Read a model folder written by :meth:`Model.save`.

    No code from the folder runs: heads of this package load as plain arrays (skops) or in
    Keras' safe mode; a pickled head (an estimator featcache does not know) needs
    ``trust=True``. ``check_weights`` (default) rebuilds every source's feature model now and
    refuses a model whose weights digest no longer matches; ``weights``: backbone name -> a
    weights file to use instead of the recorded path.
    """
    path = Path(path)
    manifest = _manifest(path)
    loaded = {entry["file"]: _load_head(path / entry["file"], entry["format"], trust)
              for entry in manifest["tasks"].values()}
    model = _model_of(manifest, loaded, weights)
    if check_weights:
        model.feature_runner()
    return model


def describe_folder(path: PathLike) -> str:
    """:meth:`Model.describe` of a model folder from its manifest alone (no head is loaded)."""
    return _model_of(_manifest(Path(path)), {}, None).describe()


def _manifest(path: Path) -> dict:
    """The checked manifest of a model folder, or a one-line ModelError."""
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{path}: not a featcache model folder (no {MANIFEST}); make one with `featcache train`, "
                         "`featcache recipe` or `featcache compare --save-best`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as error:
        raise ModelError(f"{manifest_path}: cannot be read ({error}); the model folder is damaged") from None
    if manifest.get("format") != FORMAT:
        raise ModelError(f"{path}: model format {manifest.get('format')!r}, this featcache reads {FORMAT}; "
                         "upgrade featcache or train the model again")
    rules = {entry.get("average") for entry in manifest["sources"]} | {
        entry.get("combine") for entry in manifest["tasks"].values()}
    if not rules <= {VIEWS_AVERAGE, SOURCES_COMBINE}:
        raise ModelError(f"{path}: combines features by {sorted(map(str, rules))}, this featcache knows "
                         f"{VIEWS_AVERAGE!r} (views) and {SOURCES_COMBINE!r} (sources); upgrade featcache")
    return manifest


def _model_of(manifest: dict, heads_by_file: Mapping[str, Any], weights: Optional[Mapping[str, str]]) -> Model:
    """The model a manifest describes, with the loaded heads (None where not loaded)."""
    sources = tuple(Source(s["key"], s["config"], tuple(s["views"])) for s in manifest["sources"])
    tasks = {task: TaskHead(entry["head"], heads_by_file.get(entry["file"]), tuple(entry["sources"]),
                            bool(entry["joint"])) for task, entry in manifest["tasks"].items()}
    return Model(sources, tasks, tuple(manifest["class_names"]), manifest.get("training", {}), dict(weights or {}))


def train(
    cache: PathLike,
    head: str,
    task: str,
    out: PathLike,
    *,
    backbone: Optional[str] = None,
    group: Union[str, Sequence[str], None] = None,
    view: ViewSpec = "original",
    split: str = "default",
    seed: int = 0,
    group_by: Optional[str] = None,
) -> Model:
    """Fit a head for ``task`` (classify, regress, or both: a head that learns both together is
    fitted once for both; joint: such a head, and refused for any other) on a cache's
    train+validation parts, score it on the test part, and save the model to the folder ``out``. ``group``: a key, or several to combine; ``group_by`` groups the records
    first (:func:`featcache.record_groups.set_groups`)."""
    if task not in (*TASKS, "both", "joint"):
        raise ModelError(f"train fits classify, regress, both or joint, not {task!r}")
    groups = group if group is not None else backbone
    if groups is None:
        raise ModelError("name the backbone or the group(s) to train on")
    if task == "joint" and "joint" not in heads.HEADS.get(head, ()):
        able = ", ".join(name for name, tasks in heads.HEADS.items() if "joint" in tasks)
        raise ModelError(f"head {head!r} cannot learn both tasks at once; these can: {able}")
    heads_by_task = {t: (head if task in (t, "both", "joint") else None) for t in TASKS}
    model = Model.from_cache(cache, groups, view=view, split=split, seed=seed, group_by=group_by, **heads_by_task)
    model.save(out)
    return model


def evaluate(cache: PathLike, model: PathLike, *, split: Optional[str] = None, trust: bool = False) -> dict:
    """:meth:`Model.evaluate` of the model folder ``model`` on ``cache`` (no feature model is built)."""
    return load_model(model, trust=trust, check_weights=False).evaluate(cache, split=split)


# -- helpers --------------------------------------------------------------------------------
def _head_spec(spec: HeadSpec) -> tuple[str, dict]:
    if isinstance(spec, str):
        return spec, {}
    name, params = spec
    return name, dict(params)


def _class_names(cache: Path) -> list[str]:
    with open_cache(cache) as reader:
        return reader.class_names


def _class_map(theirs: Sequence[str], ours: Sequence[str]) -> np.ndarray:
    """For each class id of another cache, the model's class id of the same name (any case), or -1
    (one entry at least, so unlabelled records index it safely)."""
    lowered = {name.lower(): i for i, name in enumerate(ours)}
    return np.array([lowered.get(name.lower(), -1) for name in theirs] or [-1], dtype=np.int64)


def _load_head(file: Path, recorded: str, trust: bool) -> Any:
    """A head of the model folder, or a one-line ModelError (missing, damaged, or refused)."""
    try:
        found = heads.io.file_format(file)
        if found != recorded:
            raise UsageError(f"holds a {found} file where the model recorded a {recorded} one")
        return heads.load(file, trust=trust)
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise ModelError(f"{file}: {message}" if str(file) not in message else message) from None


def _is_model_folder(path: Path) -> bool:
    """Whether ``path`` holds a model this featcache wrote (what :meth:`Model.save` may replace)."""
    try:
        return json.loads((path / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _plain(value):
    """JSON for numpy values in reports."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
