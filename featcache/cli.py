"""The ``featcache`` command line: a thin typer layer over the library.

Every command is one library call that a user could also make from Python.
User errors print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, List, Optional

import typer

import featcache
from featcache.datasets import LAYOUTS
from featcache.engines import ENGINES, PRECISIONS
from featcache.export import EXPORT_FORMATS
from featcache.store import DTYPES

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off the terminal

app = typer.Typer(
    name="featcache",
    help="Run frozen backbones once, cache their features in HDF5, train light heads in seconds.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"featcache {featcache.__version__}")
        raise typer.Exit()


def fail(message: str) -> None:
    """One clear line on stderr and exit status 2."""
    typer.echo(f"featcache: error: {message}", err=True)
    raise typer.Exit(2)


@app.callback()
def main(
    version: Optional[bool] = typer.Option(
        None, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """featcache: transfer learning on images by cached features."""


@app.command()
def backbones(
    pattern: str = typer.Argument("*", help="Shell-style filter, e.g. 'efficientnet*'."),
    offline: bool = typer.Option(False, "--offline", help="Only backbones whose pretrained weights need no download."),
) -> None:
    """List the registered backbones: featcache.list_backbones(PATTERN)."""
    from featcache.backbones import get_spec, list_backbones

    names = list_backbones(pattern, offline=True if offline else None)
    if not names:
        fail(f"no backbone matches {pattern!r}; try 'featcache backbones' for all")
    typer.echo(f"{'backbone':22s} {'input':>5s} {'dim':>5s}  {'preprocess':10s} pretrained weights")
    for name in names:
        spec = get_spec(name)
        typer.echo(f"{name:22s} {spec.input_size:5d} {spec.feature_dim:5d}  {spec.preprocessing:10s} "
                   f"{spec.pretrained}: {spec.weights_source}")


class Pool(str, Enum):
    avg = "avg"
    max = "max"


class OnError(str, Enum):
    skip = "skip"
    fail = "fail"


Layout = Enum("Layout", {name: name for name in ("auto", *LAYOUTS)}, type=str)
# ray: featcache.ray_engine.extract_on_ray, one shard per Ray worker (the workers' engine is auto)
EngineName = Enum("EngineName", {name: name for name in (*ENGINES, "ray")}, type=str)
ExportFormat = Enum("ExportFormat", {name: name for name in EXPORT_FORMATS}, type=str)
Dtype = Enum("Dtype", {name: name for name in DTYPES}, type=str)
Precision = Enum("Precision", {name: name for name in PRECISIONS}, type=str)
PRECISION_HELP = ("bf16: OpenVINO's bfloat16, on processors with bfloat16 units; mixed: TensorFlow's (float16 on "
                  "a GPU); auto: bf16 where it runs, else float32.")


GROUP_BY_OPTION = typer.Option(None, "--group-by", metavar="SPEC",
                               help="Keep each person or video on one side of the split: col:NAME (CSV column), "
                                    "folder:N, or a regular expression over the paths.")


def _group(cache: Path, group_by: Optional[str]) -> None:
    """Group the cache's records as --group-by asks (once; the same again changes nothing)."""
    if group_by is not None:
        from featcache.record_groups import set_groups

        typer.echo(f"{cache}: {set_groups(cache, group_by)}")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with its C++ start-up log lines (which no setting silences) kept off
    the terminal; errors raised by the import itself still reach the user."""
    if "tensorflow" in sys.modules:
        return
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_logical_devices()  # the device probe logs too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user errors (:class:`featcache.errors.FeatcacheError`) into one line and
    exit status 2 (FEATCACHE_DEBUG=1: the traceback). Anything else is a bug and keeps its traceback."""
    from featcache.errors import FeatcacheError

    try:
        yield
    except FeatcacheError as error:
        if os.environ.get("FEATCACHE_DEBUG"):
            raise
        fail(" ".join(str(error).split()))


@app.command()
def extract(
    data: Path = typer.Option(..., "--data", help="Dataset folder (AffectNet layout, one folder per class, or a "
                                                  "folder of images) or CSV."),
    backbone: str = typer.Option("efficientnet_lite0", "--backbone", "-b", help="A name from `featcache backbones`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Cache file (default: <data name>.features.h5)."),
    weights: str = typer.Option("pretrained", help="pretrained | imagenet | none | PATH to a weights file."),
    tap: Optional[List[str]] = typer.Option(None, "--tap", help="LAYER or LAYER:GRID; repeat for several."),
    pool: Pool = typer.Option(Pool.avg, "--pool", help="Pooling of each tap."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Input size (default: the backbone's)."),
    flip: bool = typer.Option(False, "--flip", help="Also cache the horizontally flipped view."),
    crop: Optional[List[float]] = typer.Option(None, "--crop", help="Also cache a centre crop keeping this fraction "
                                                                    "of each side (e.g. 0.9); repeat for several."),
    on_error: OnError = typer.Option(OnError.skip, "--on-error", help="Unreadable images: skip and record, or fail."),
    layout: Layout = typer.Option(Layout.auto, "--layout", help="Force a dataset layout."),
    precision: Precision = typer.Option(Precision.float32, "--precision", help=PRECISION_HELP),
    dtype: Dtype = typer.Option(Dtype.float32, "--dtype", help="How features are stored (float16: half the disk)."),
    engine: EngineName = typer.Option(EngineName.auto, "--engine",
                                      help="auto: tensorflow on GPU, onnxruntime/openvino on CPU when installed; "
                                           "ray: one shard per Ray worker, then merged."),
    shard: Optional[str] = typer.Option(None, "--shard", metavar="K/N",
                                        help="Only the K-th of N blocks of records, into its own file, for `merge`."),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: the cluster, ray://HOST:10001 "
                                                                  "or auto (default: start Ray here)."),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="--engine ray: how many workers (default: "
                                                                         "one per GPU, else one per node)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
    group_by: Optional[str] = GROUP_BY_OPTION,
) -> None:
    """Run a frozen backbone once over a dataset and cache its features: featcache.extract(...)
    (--engine ray: featcache.ray_engine.extract_on_ray(...))."""
    import featcache

    options = dict(weights=None if weights.lower() == "none" else weights, taps=tap or None, pooling=pool.value,
                   batch_size=batch_size, image_size=image_size, flip=flip, crops=tuple(crop or ()),
                   on_error=on_error.value,
                   precision=precision.value, dtype=dtype.value, layout=layout.value, progress=progress,
                   group_by=group_by)
    if engine is EngineName.ray:
        if shard:
            fail("--engine ray makes one shard per worker itself; drop --shard")
        from featcache.datasets import LeftOutWarning
        from featcache.ray_engine import extract_on_ray

        with user_errors(), warnings.catch_warnings():
            warnings.simplefilter("ignore", LeftOutWarning)  # the summary below says what was left out
            result = extract_on_ray(data, backbone, out, workers=workers, address=address, **options)
        typer.echo(result.summary())
        return
    if address is not None or workers is not None:
        fail("--address and --workers go with --engine ray")
    with user_errors(), warnings.catch_warnings():
        from featcache.datasets import LeftOutWarning
        from featcache.engines import resolve_precision
        from featcache.extraction import cached_feature_model

        warnings.simplefilter("ignore", LeftOutWarning)  # the summary below says what was left out
        options["precision"] = resolve_precision(precision.value, engine.value)
        if cached_feature_model(backbone, options["weights"], options["taps"], pool.value, image_size,
                                options["precision"], engine.value) is None:
            import_tensorflow_quietly()  # the feature model will be built
        result = featcache.extract(data, backbone, out, engine=engine.value, shard=shard, **options)
    typer.echo(result.summary())


@app.command()
def merge(
    shards: List[Path] = typer.Argument(..., help="Every shard file of one `extract --shard K/N` split."),
    out: Path = typer.Option(..., "--out", "-o", help="The merged cache (new; keep the shard files beside it)."),
) -> None:
    """Join shard files into one cache that reads like an unsharded one: featcache.merge(SHARDS, OUT)."""
    import featcache

    with user_errors():
        result = featcache.merge(shards, out)
    typer.echo(result.summary())


@app.command()
def upgrade(
    cache: Path = typer.Argument(..., help="A cache written by an earlier featcache (format 1)."),
) -> None:
    """Convert a format 1 cache to format 2 in place (one file per view): featcache.upgrade(CACHE)."""
    import featcache

    with user_errors():
        result = featcache.upgrade(cache)
    typer.echo(result.summary())


@app.command()
def remove(
    cache: Path = typer.Argument(..., help="A cache file."),
    group: str = typer.Option(..., "--group", help="The group key (`featcache info CACHE` lists them)."),
    view: Optional[str] = typer.Option(None, "--view", help="Only this view of the group (default: all of them)."),
) -> None:
    """Delete a group, or one of its views, and free its disk: featcache.remove(CACHE, GROUP, VIEW)."""
    import featcache

    with user_errors():
        result = featcache.remove(cache, group, view)
    typer.echo(result.summary())


@app.command()
def groups(
    cache: Path = typer.Argument(..., help="A cache file."),
    group_by: str = typer.Option(..., "--group-by", metavar="SPEC",
                                 help="col:NAME (a column of the CSV manifest --data), folder:N (0 the first "
                                      "folder, -1 the image's own), or a regular expression over the paths "
                                      "(its first capture group, else the match)."),
    data: Optional[Path] = typer.Option(None, "--data", help="The CSV manifest the cache was extracted from "
                                                             "(for col:NAME)."),
) -> None:
    """Group the records (a person, a video) without extracting again, so that every split keeps a
    group on one side: featcache.set_groups(CACHE, SPEC, DATA)."""
    from featcache.record_groups import set_groups

    with user_errors():
        typer.echo(f"{cache}: {set_groups(cache, group_by, data)}")


@app.command()
def info(
    file: Path = typer.Argument(..., help="A cache file made by `featcache extract`, or a model folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a cache: records, labels, groups, shapes, failures: featcache.info(FILE).
    For a model folder: its sources, heads and test figures (featcache.model.describe_folder(FILE))."""
    import featcache

    if file.is_dir():
        from featcache.model import MANIFEST, describe_folder

        with user_errors():
            described = describe_folder(file)
        typer.echo((file / MANIFEST).read_text().strip() if as_json else described)
        return
    with user_errors():
        summary = featcache.info(file)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(format_info(summary))


Task = Enum("Task", {name: name for name in ("classify", "regress", "both")}, type=str)
# joint: one head that learns both tasks together (train only)
TrainTask = Enum("TrainTask", {name: name for name in (*Task.__members__, "joint")}, type=str)


def _names(text: Optional[str]) -> list[str]:
    return [name.strip() for name in (text or "").split(",") if name.strip()]


@app.command()
def compare(
    cache: Path = typer.Option(..., "--cache", help="A cache made by `featcache extract`."),
    backbones: Optional[str] = typer.Option(None, "--backbones", help="Comma-separated backbone names in the cache."),
    groups: Optional[str] = typer.Option(None, "--groups", help="Comma-separated group keys (see `featcache info`)."),
    head_names: str = typer.Option("keras_dense,logistic,ridge,mlp", "--heads", help="Comma-separated heads."),
    task: Task = typer.Option(Task.both, "--task"),
    out: Path = typer.Option(Path("featcache-results"), "--out", help="Folder for tables, figures and report.html."),
    split: str = typer.Option("default", "--split", help="Name of the stored split (made on first use)."),
    seed: int = typer.Option(0, "--seed"),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Also write PNG figures (and show them in "
                                 "report.html)."),
    save_best: Optional[Path] = typer.Option(None, "--save-best", metavar="DIR",
                                             help="Save the best head of each task (accuracy, mean CCC) as a model."),
    group_by: Optional[str] = GROUP_BY_OPTION,
) -> None:
    """Every head on every backbone, on the cache's shared split: featcache.compare(...);
    --save-best: featcache.Model.from_results(best_results(...)).save(DIR)."""
    from featcache.experiment import best_results, compare as run_compare
    from featcache.report import classification_rows, markdown_table, regression_rows, write_all
    from featcache.splits import split_summary

    if not _names(backbones) and not _names(groups):
        fail("name --backbones or --groups to compare")
    import_tensorflow_quietly()
    with user_errors():
        _group(cache, group_by)
        results = run_compare(cache, _names(backbones), _names(head_names), task.value,
                              groups=_names(groups) or None, split=split, seed=seed)
        notes = split_summary(cache, split)
    typer.echo(markdown_table(classification_rows(results), "Classification (test part)"))
    typer.echo(markdown_table(regression_rows(results), "Valence and arousal (test part)"))
    typer.echo("\n".join(notes))
    written = write_all(results, out, "compare", notes=notes, cache=cache, figures=figures,
                        title=f"featcache compare: {cache.name}",
                        intro=[f"Heads fitted on the training parts of the split {split!r} of {cache}, "
                               "scored once on its test part."])
    typer.echo("wrote " + ", ".join(str(path) for path in written.paths))
    typer.echo(f"report (one page, open it in a browser): {written.report}")
    if save_best is not None:
        from featcache.model import Model

        with user_errors():
            model = Model.from_results(best_results(results), cache=cache, split=split, seed=seed)
            model.save(save_best)
        typer.echo(f"saved the best heads as the model {save_best}:\n{model.describe()}")


@app.command()
def train(
    cache: Path = typer.Option(..., "--cache"),
    head: str = typer.Option("logistic", "--head"),
    task: TrainTask = typer.Option(TrainTask.classify, "--task", help="both: a head per task, or one fitted once "
                                   "when it learns both together; joint: that, and refused for a head that cannot."),
    out: Path = typer.Option(..., "--out", help="The model folder to write."),
    backbone: Optional[str] = typer.Option(None, "--backbone"),
    group: Optional[str] = typer.Option(None, "--group", help="A group key, or several comma-separated to combine."),
    view: str = typer.Option("original", "--view", help="original, flip, crop0.9, ..., or mean (every view)."),
    split: str = typer.Option("default", "--split"),
    seed: int = typer.Option(0, "--seed"),
    group_by: Optional[str] = GROUP_BY_OPTION,
) -> None:
    """Fit a head on the train part of a cache and save it as a model: featcache.train(...)."""
    from featcache.model import train as run_train
    from featcache.splits import split_summary

    import_tensorflow_quietly()
    with user_errors():
        _group(cache, group_by)
        model = run_train(cache, head, task.value, out, backbone=backbone, group=_names(group) or None, view=view,
                          split=split, seed=seed)
    for fitted, trained in model.training["tasks"].items():
        typer.echo(f"saved the model {out} ({head}, {fitted}); test part: " + _headline(trained["test_report"], fitted))
    typer.echo("\n".join(split_summary(cache, split)))


@app.command()
def evaluate(
    cache: Path = typer.Option(..., "--cache", help="A cache holding the model's groups (its own, or other data)."),
    model: Path = typer.Option(..., "--model", help="A model folder (train, recipe, compare --save-best)."),
    split: Optional[str] = typer.Option(None, "--split", help="Score the test part of this split (default: the model's "
                                                              "own split on its cache, every record on other data)."),
    trust: bool = typer.Option(False, "--trust", help="Allow a pickled head (only from a trusted source)."),
    group_by: Optional[str] = GROUP_BY_OPTION,
) -> None:
    """Score a model on a cache without refitting: featcache.evaluate(CACHE, MODEL)."""
    from featcache.model import evaluate as run_evaluate

    import_tensorflow_quietly()
    with user_errors():
        _group(cache, group_by)
        outcome = run_evaluate(cache, model, split=split, trust=trust)
    for task, scored in outcome.items():
        if "skipped" in scored:
            typer.echo(f"{task}: not scored, {scored['skipped']}")
            continue
        left_out = f"; left out {scored['left_out']} records of classes the model does not know" \
            if scored["left_out"] else ""
        typer.echo(f"{task} on {scored['rows']} ({scored['n']} scored{left_out}): "
                   + _headline(scored["report"], task))


def _weights(items: Optional[List[str]]) -> dict:
    """BACKBONE=PATH options as a mapping (a one-line error for anything else)."""
    chosen = dict(item.split("=", 1) for item in items or [] if "=" in item)
    if len(chosen) != len(items or []):
        fail("--weights takes BACKBONE=PATH, e.g. --weights mobilenet_v2=mobilenet_v2.weights.h5")
    return chosen


@app.command()
def predict(
    model: Path = typer.Option(..., "--model", help="A model folder (train, recipe, compare --save-best)."),
    data: List[Path] = typer.Option(..., "--data", help="An image, a folder of images (any layout), or a CSV "
                                                        "manifest; repeat for several."),
    out: Path = typer.Option(Path("predictions.csv"), "--out", "-o", help="The CSV to write."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    engine: EngineName = typer.Option(EngineName.auto, "--engine", help="As for extract (not ray)."),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="BACKBONE=PATH: weights to use instead of "
                                                                        "the recorded file; repeat."),
    trust: bool = typer.Option(False, "--trust", help="Allow a pickled head (only from a trusted source)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Predict classes and valence/arousal for new images: featcache.load_model(MODEL).predict_images(DATA, OUT)."""
    from featcache.model import load_model

    if engine is EngineName.ray:
        fail("predict runs here; --engine ray is for extract")
    chosen = _weights(weights)
    import_tensorflow_quietly()
    with user_errors():
        written = load_model(model, trust=trust, weights=chosen).predict_images(
            data, out, batch_size=batch_size, engine=engine.value, progress=progress)
    typer.echo(written.summary())


@app.command()
def export(
    model: Path = typer.Option(..., "--model", help="A model folder (train, recipe, compare --save-best)."),
    format: ExportFormat = typer.Option(ExportFormat.onnx, "--format",
                                        help="onnx: one file for onnxruntime; keras: a SavedModel folder "
                                             "(TensorFlow Serving, keras.layers.TFSMLayer)."),
    out: Path = typer.Option(..., "--out", "-o", help="The file (onnx) or folder (keras) to write."),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="BACKBONE=PATH, as for predict; repeat."),
    trust: bool = typer.Option(False, "--trust", help="Allow a pickled head (only from a trusted source)."),
) -> None:
    """One network from uint8 images to probabilities and valence/arousal:
    featcache.export_model(featcache.load_model(MODEL), OUT, FORMAT)."""
    from featcache.export import export_model
    from featcache.model import load_model

    chosen = _weights(weights)
    import_tensorflow_quietly()
    with user_errors():
        written = export_model(load_model(model, trust=trust, weights=chosen), out, format.value)
    typer.echo(f"wrote {written} ({format.value}): input 'images', uint8 (n, height, width, 3); outputs "
               "'probabilities' and/or 'valence_arousal'")


def _headline(report: dict, task: str) -> str:
    from metrics import CLASSIFICATION_COLUMNS, REGRESSION_COLUMNS, table_row

    if task == "classify":
        row = table_row(report, CLASSIFICATION_COLUMNS)
        return ", ".join(f"{k} {v:.3f}" for k, v in row.items() if v is not None)
    return "; ".join(
        f"{target}: " + ", ".join(f"{k} {v:.3f}" for k, v in table_row(report, REGRESSION_COLUMNS, target).items())
        for target in ("valence", "arousal")
    )


@app.command()
def recipe(
    data: Path = typer.Option(..., "--data", help="Dataset folder (AffectNet layout for landmarks) or CSV."),
    out: Path = typer.Option(Path("featcache-recipe"), "--out", help="Folder for tables, the model, the cache."),
    cache: Optional[Path] = typer.Option(None, "--cache", help="Cache file to use (default: OUT/features.h5)."),
    name: str = typer.Option("affect", "--recipe", help="Which recipe (featcache.recipe.RECIPES)."),
    weights: Optional[List[str]] = typer.Option(None, "--weights", help="BACKBONE=PATH weights; repeat."),
    seed: int = typer.Option(0, "--seed"),
    precision: Precision = typer.Option(Precision.float32, "--precision", help=PRECISION_HELP),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    group_by: Optional[str] = GROUP_BY_OPTION,
) -> None:
    """The best measured configuration on your data: featcache.run_recipe(...)."""
    from featcache.recipe import RECIPES, run_recipe
    from featcache.report import classification_rows, markdown_table, regression_rows
    from featcache.splits import split_summary

    if name not in RECIPES:
        fail(f"no recipe {name!r}; choose one of {', '.join(RECIPES)}")
    chosen = _weights(weights)
    import_tensorflow_quietly()
    with user_errors():
        results = run_recipe(data, out, cache=cache, recipe=RECIPES[name], weights=chosen, seed=seed,
                             precision=precision.value, progress=progress, group_by=group_by)
    typer.echo(markdown_table(classification_rows(results), "Classification (test part)"))
    typer.echo(markdown_table(regression_rows(results), "Valence and arousal (test part)"))
    typer.echo("\n".join(split_summary(cache or out / "features.h5")))
    if (out / "model").is_dir():
        typer.echo(f"tables in {out}/; the model in {out / 'model'}/: featcache predict --model {out / 'model'} "
                   "--data YOUR_IMAGES --out predictions.csv")
    else:
        typer.echo(f"tables in {out}/")
    typer.echo(f"report (one page, open it in a browser): {out / 'report.html'}")


@app.command()
def demo(
    out: Path = typer.Option(Path("featcache-demo"), "--out", help="Folder for the data, cache, tables and figures."),
    per_class: int = typer.Option(150, "--per-class", min=4, help="Synthetic faces per class."),
) -> None:
    """The main job on an embedded default: synthetic faces -> efficientnet_lite0 -> every head."""
    from featcache.demo import run_demo

    import_tensorflow_quietly()
    with user_errors():
        run_demo(out, per_class=per_class, echo=typer.echo)


def _left_out_lines(left_out: Optional[dict]) -> list[str]:
    """What the dataset folder left out, as recorded by the last extraction (nothing in older caches)."""
    from featcache.datasets import describe_left_out

    if left_out is None:
        return []
    return [describe_left_out(left_out, shown=10) if left_out else "left out: nothing"]


def format_info(summary: dict) -> str:
    """The human form of :func:`featcache.info`."""
    from featcache.splits import split_lines

    lines = [
        f"{summary['path']}: {summary['records']} records ({summary['dataset']['layout']} layout, "
        f"{summary['dataset']['root']}), format {summary['format']}, created {summary['created']}",
        *_left_out_lines(summary["dataset"].get("left_out")),
        "labels: " + ", ".join(f"{name} {count}" for name, count in summary["label_counts"].items()),
    ]
    for target in ("valence", "arousal"):
        stats = summary[target]
        lines.append(f"{target}: " + (f"{stats['present']} values in [{stats['min']:.3f}, {stats['max']:.3f}], "
                                      f"mean {stats['mean']:.3f}" if stats["present"] else "absent"))
    lines.append(f"landmarks: {'present' if summary['landmarks'] else 'absent'}")
    grouped = summary["record_groups"]
    lines.append(f"record groups: {grouped['summary']}" if grouped else
                 "record groups: none (splits keep byte-identical images together, nothing else; group people or "
                 "videos with `featcache groups`)")
    if not summary["splits"]:
        lines.append("splits: none yet")
    for name, details in summary["split_details"].items():
        lines += split_lines(name, details)
    if not summary["groups"]:
        lines.append("groups: none")
    for key, group in summary["groups"].items():
        config = group["config"]
        lines.append(
            f"group {key}: {config['backbone']}, weights {config['weights']} "
            f"({'pretrained' if config['pretrained'] else 'NOT pretrained'}, digest {config['weights_digest']}), "
            f"input {config['input_size']}, taps {', '.join(config['taps'])}, pool {config['pooling']}, "
            f"precision {config['precision']}; TensorFlow {group['tensorflow_version']}, Keras {group['keras_version']}"
        )
        for view, details in group["views"].items():
            stored = (f", in {Path(details['file']).name} ({details['bytes'] / 2**20:,.1f} MiB)"
                      if details["file"] else "")
            lines.append(f"  {view}: features {' x '.join(map(str, details['shape']))} {details['dtype']}{stored}, "
                         f"{len(details['failed'])} unreadable, {details['seconds']:.1f} s, "
                         f"{details.get('engine', 'tensorflow')} on {details['device']}, decoded by "
                         f"{details.get('decoder', 'tf.data')}")
            for failure in details["failed"]:
                lines.append(f"    unreadable: {failure['path']}: {failure['reason']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    app()
