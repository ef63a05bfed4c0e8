"""The ``featcache`` command line: a thin typer layer over the library.

Every command is one library call that a user could also make from Python.
User errors print one line and exit with status 2, never a traceback.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, List, Optional

import typer

import featcache

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


class Layout(str, Enum):
    auto = "auto"
    affectnet = "affectnet"
    csv = "csv"
    folders = "folders"


class Precision(str, Enum):
    float32 = "float32"
    mixed = "mixed"


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user errors into one line and exit status 2 (FEATCACHE_DEBUG=1: traceback)."""
    from featcache.backbones.errors import WeightsError
    from featcache.cache import CacheError
    from featcache.datasets import DatasetError
    from featcache.extraction import ExtractionError

    try:
        yield
    except (DatasetError, CacheError, WeightsError, ExtractionError, ValueError) as error:
        if os.environ.get("FEATCACHE_DEBUG"):
            raise
        fail(" ".join(str(error).split()))


@app.command()
def extract(
    data: Path = typer.Option(..., "--data", help="Dataset folder (AffectNet layout or one folder per class) or CSV."),
    backbone: str = typer.Option("efficientnet_lite0", "--backbone", "-b", help="A name from `featcache backbones`."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Cache file [default: <data name>.features.h5]."),
    weights: str = typer.Option("pretrained", help="pretrained | imagenet | none | PATH to a weights file."),
    tap: Optional[List[str]] = typer.Option(None, "--tap", help="LAYER or LAYER:GRID; repeat for several."),
    pool: Pool = typer.Option(Pool.avg, "--pool", help="Pooling of each tap."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    image_size: Optional[int] = typer.Option(None, "--image-size", help="Input size [default: the backbone's]."),
    flip: bool = typer.Option(False, "--flip", help="Also cache the horizontally flipped view."),
    on_error: OnError = typer.Option(OnError.skip, "--on-error", help="Unreadable images: skip and record, or fail."),
    layout: Layout = typer.Option(Layout.auto, "--layout", help="Force a dataset layout."),
    precision: Precision = typer.Option(Precision.float32, "--precision", help="mixed: float16 on GPU."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar on stderr."),
) -> None:
    """Run a frozen backbone once over a dataset and cache its features: featcache.extract(...)."""
    import featcache

    with user_errors():
        result = featcache.extract(
            data, backbone, out, weights=None if weights.lower() == "none" else weights, taps=tap or None,
            pooling=pool.value, batch_size=batch_size, image_size=image_size, flip=flip, on_error=on_error.value,
            precision=precision.value, layout=layout.value, progress=progress,
        )
    typer.echo(result.summary())


@app.command()
def info(
    file: Path = typer.Argument(..., help="A cache file made by `featcache extract`."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Summarise a cache: records, labels, groups, shapes, failures: featcache.info(FILE)."""
    import featcache

    with user_errors():
        summary = featcache.info(file)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(format_info(summary))


def format_info(summary: dict) -> str:
    """The human form of :func:`featcache.info`."""
    lines = [
        f"{summary['path']}: {summary['records']} records ({summary['dataset']['layout']} layout, "
        f"{summary['dataset']['root']}), created {summary['created']}",
        "labels: " + ", ".join(f"{name} {count}" for name, count in summary["label_counts"].items()),
    ]
    for target in ("valence", "arousal"):
        stats = summary[target]
        lines.append(f"{target}: " + (f"{stats['present']} values in [{stats['min']:.3f}, {stats['max']:.3f}], "
                                      f"mean {stats['mean']:.3f}" if stats["present"] else "absent"))
    lines.append(f"landmarks: {'present' if summary['landmarks'] else 'absent'}")
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
            lines.append(f"  {view}: features {' x '.join(map(str, details['shape']))}, "
                         f"{len(details['failed'])} unreadable, {details['seconds']:.1f} s on {details['device']}")
            for failure in details["failed"]:
                lines.append(f"    unreadable: {failure['path']}: {failure['reason']}")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    app()
