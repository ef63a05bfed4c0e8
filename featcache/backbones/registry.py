"""The backbone registry: one entry per backbone with its default configuration.

In the manner of timm: a builder function is registered once, under the name users
type, with its input size, pooled feature size, preprocessing, recommended taps and
where its pretrained weights come from. :func:`list_backbones` filters by wildcard.

Nothing here imports Keras (nor do the built-in family modules at import time), so
listing backbones, resolving weights and fingerprinting weight files stay fast; only
``spec.build`` needs Keras.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Union

from ..errors import UsageError, WeightsError

if TYPE_CHECKING:
    import keras

# What a builder receives as weights: None (random), "pretrained", or a file path.
BuilderWeights = Union[None, str, Path]
Builder = Callable[[BuilderWeights, tuple[int, int, int]], "keras.Model"]
# What a user may pass as weights: None, "none"/"random", "pretrained" or the weights' name, a path.
WeightsArg = Union[None, str, Path]
# Files or folders holding a backbone's pretrained weights, as its builder reads them.
PretrainedFiles = Callable[[], tuple[Path, ...]]
_NO_WEIGHTS = {"none", "random"}


@dataclass(frozen=True)
class BackboneSpec:
    """Default configuration of one registered backbone.

    ``build(weights, input_shape)`` returns the headless network (no pooling) whose
    input is already preprocessed; ``feature_layer`` names the layer whose output is
    the backbone's "last" feature map (``None``: the network's output).
    ``pretrained_files()`` gives the files or folders whose contents are the weights
    ``build("pretrained", ...)`` reads (``None``: not known), for :func:`weights_fingerprint`.
    """

    name: str
    family: str
    build: Builder = field(repr=False, compare=False)
    input_size: int
    feature_dim: int
    preprocessing: str
    pretrained: str  # name of the pretrained weights: "imagenet", "fer2013", ...
    weights_source: str  # where the pretrained weights come from, for people
    offline: bool = False  # pretrained weights available without network access
    channels: int = 3  # channels the network itself takes (after preprocessing)
    feature_layer: Optional[str] = None
    taps: tuple[str, ...] = ()  # recommended intermediate layers, "layer" or "layer:grid"
    min_input_size: int = 32
    pretrained_files: Optional[PretrainedFiles] = field(default=None, compare=False, repr=False)


_REGISTRY: dict[str, BackboneSpec] = {}


def register(name: str, **config) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name`` with its default config."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise UsageError(f"backbone {name!r} is already registered")
        _REGISTRY[name] = BackboneSpec(name=name, build=builder, **config)
        return builder

    return decorator


def list_backbones(pattern: str = "*", *, offline: Optional[bool] = None) -> list[str]:
    """Sorted names matching a shell-style ``pattern`` (``"efficientnet*"``, ``"*net*"``).

    ``offline=True`` keeps only backbones whose pretrained weights need no download.
    """
    _load_builtin_backbones()
    names = fnmatch.filter(sorted(_REGISTRY), pattern.lower())
    if offline is not None:
        names = [n for n in names if _REGISTRY[n].offline == offline]
    return names


def get_spec(name: str) -> BackboneSpec:
    """The registered spec of ``name``, or a ValueError listing close names."""
    _load_builtin_backbones()
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        import difflib

        close = difflib.get_close_matches(key, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `featcache backbones`"
        raise UsageError(f"unknown backbone {name!r}{hint}")
    return _REGISTRY[key]


def _load_builtin_backbones() -> None:
    """Import the modules that register featcache's own backbones (once)."""
    from . import bigxception, fer, hse, keras_apps, lite, pixels  # noqa: F401  (registration is the import's effect)


def resolve_weights(spec: BackboneSpec, weights: WeightsArg) -> tuple[BuilderWeights, str]:
    """(what ``spec.build`` receives, the source recorded with the features) for a user's ``weights``.

    ``None``/"none"/"random": random weights; "pretrained" or the weights' own name: the
    pretrained ones; anything else must be an existing weights file (a WeightsError otherwise).
    """
    if spec.pretrained == "none" and (weights is None or str(weights).lower() in (*_NO_WEIGHTS, "pretrained")):
        return None, "none"  # a source without weights (pixels): the same features whichever is asked
    if weights is None or (isinstance(weights, str) and weights.lower() in _NO_WEIGHTS):
        return None, "random"
    if isinstance(weights, str) and weights.lower() in ("pretrained", spec.pretrained):
        return "pretrained", spec.pretrained
    if isinstance(weights, str) and weights.lower() in ("imagenet", "fer2013"):
        raise WeightsError(
            f"{spec.name} has no {weights.lower()!r} weights; its pretrained weights are "
            f"{spec.pretrained!r} (or pass 'none' or a weights file)"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"weights {str(weights)!r}: no such file; use 'pretrained' ({spec.pretrained}), 'none' or a weights file path"
        )
    return path, str(path.resolve())


def weights_fingerprint(spec: BackboneSpec, weights: WeightsArg) -> Optional[list[list]]:
    """``[path, size, mtime_ns, ctime_ns]`` of every file the weights are read from, sorted by path,
    as JSON-able lists.

    A weights file: that file; the pretrained weights: every file under ``spec.pretrained_files()``
    (folders recursed into, missing paths skipped); random weights: ``[]``. ``None`` when the
    pretrained weights' files are not known, so they cannot be fingerprinted. Writing, adding
    or removing any of those files changes it, so it can key things derived from the weights
    (a copy that keeps a file's size and mtime, as ``tar`` and ``cp -p`` do, still has a new ctime).
    """
    builder_weights, _ = resolve_weights(spec, weights)
    if builder_weights is None:
        return []
    if builder_weights != "pretrained":
        roots: tuple[Path, ...] = (Path(builder_weights),)
    elif spec.pretrained_files is None:
        return None
    else:
        roots = tuple(spec.pretrained_files())
    files = sorted({str(path.resolve()): path for root in roots for path in _files_under(Path(root))}.items())
    return [[name, *_stamp(path)] for name, path in files]


def _files_under(root: Path) -> Iterator[Path]:
    """``root`` itself if a file, else every file below it (symbolic links followed, each folder once)."""
    if root.is_file():
        yield root
        return
    seen: set[tuple[int, int]] = set()
    for folder, folders, names in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:  # a link back to a folder already walked
            folders.clear()
            continue
        seen.add((stat.st_dev, stat.st_ino))
        for name in names:
            path = Path(folder, name)
            if path.is_file():
                yield path


def _stamp(path: Path) -> tuple[int, int, int]:
    """Size, modification and change times: a file replaced by unpacking an archive (which sets
    an old mtime) still gets a new change time."""
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns
