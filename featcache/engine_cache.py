"""The cache of exported feature models: what lets a run with a known engine skip TensorFlow.

A CPU engine runs the Keras feature model exported once to ONNX
(``$FEATCACHE_HOME/exports/<backbone>-<digest>.onnx``). Beside each export a small JSON
*manifest* records what the model computes (the extractor's configuration, weights digest
included) and every engine check it passed (engine, precision, library version, measured
deviation from TensorFlow). A later run asking for the same feature model finds the manifest
by a key made only of what it asked for and of the weights' files as they are on disk
(:func:`featcache.backbones.weights_fingerprint`), so it needs neither TensorFlow nor the
Keras model: the group's configuration comes from the manifest and the engine from the ONNX
file. Any change to the weights' files, the taps, pooling, input size, or the versions of
featcache, Keras, TensorFlow or tf2onnx gives another key; a check holds only for the engine
library version that made it, and only while the ONNX file is the one it checked.

OpenVINO's compiled models are cached too (its ``CACHE_DIR``, one folder per OpenVINO
version), so an engine starts without recompiling.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import numpy as np

from ._home import featcache_home
from .backbones import get_spec, weights_fingerprint
from .errors import FeatcacheError
from .files import atomic_file

_BUILD_LIBRARIES = ("keras", "tensorflow", "tf2onnx")  # what an export's graph and weights depend on
EXPORT_FORMAT = 2  # 2: graph inputs that no node reads are removed (ONNX Runtime demands a value for each)


class ExportError(FeatcacheError, RuntimeError):
    """The feature model could not be exported to ONNX."""


def exports_dir() -> Path:
    return featcache_home() / "exports"


def library_version(package: str) -> str:
    """An installed distribution's version, read from its metadata (nothing is imported)."""
    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def openvino_cache_dir() -> Path:
    """Where OpenVINO keeps compiled models: one folder per OpenVINO version, so a blob is never
    offered to another version of the library."""
    return featcache_home() / "openvino" / library_version("openvino")


def _digest(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def export_path(extractor) -> Path:
    """Where the ONNX export of this feature model is cached (keyed by its config and versions)."""
    identity = {**extractor.config(), **{name: library_version(name) for name in _BUILD_LIBRARIES},
                "export_format": EXPORT_FORMAT}
    return exports_dir() / f"{extractor.name}-{_digest(identity)}.onnx"


def export_onnx(extractor) -> Path:
    """The feature model as an ONNX file, exported once by Keras and then reused."""
    path = export_path(extractor)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model = extractor.model
    size = extractor.input_size
    model(np.zeros((1, size, size, 3), np.float32), training=False)  # Keras exports only models that were called
    try:
        with atomic_file(path) as temporary, warnings.catch_warnings():  # never a truncated model
            warnings.simplefilter("ignore")  # tf2onnx's own FutureWarnings under numpy 2
            model.export(str(temporary), format="onnx", verbose=False)
            drop_unread_inputs(temporary)
    except Exception as error:
        raise ExportError(f"could not export {extractor.name} to ONNX ({type(error).__name__}: {error}); "
                          "use --engine tensorflow") from error
    return path


def drop_unread_inputs(path: Path) -> list[str]:
    """Remove the graph inputs of an ONNX file that no node reads (the export of a Keras
    ``Normalization`` layer leaves two), rewriting it only if there are any; their names."""
    import onnx

    model = onnx.load(str(path))
    read = {output.name for output in model.graph.output} | set(_names_read(model.graph))
    unread = [entry for entry in model.graph.input if entry.name not in read]
    for entry in unread:
        model.graph.input.remove(entry)
    if unread:
        onnx.save(model, str(path))
    return [entry.name for entry in unread]


def _names_read(graph) -> list[str]:
    """Every name the nodes of ``graph`` read, those of subgraphs (If, Loop, Scan bodies) included."""
    import onnx

    names = []
    for node in graph.node:
        names += list(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                names += _names_read(attribute.g)
            elif attribute.type == onnx.AttributeProto.GRAPHS:
                names += [name for body in attribute.graphs for name in _names_read(body)]
    return names


@dataclass(frozen=True)
class Request:
    """A feature model as asked for, before anything is built: backbone, weights source (as
    :func:`featcache.backbones.resolve_weights` records it), taps, pooling, input size."""

    backbone: str
    weights: str
    taps: tuple[str, ...]
    pooling: str
    input_size: int

    @classmethod
    def of(cls, extractor) -> "Request":
        """The request an extractor answers."""
        config = extractor.config()
        return cls(config["backbone"], config["weights"], tuple(config["taps"]), config["pooling"],
                   int(config["input_size"]))

    def key(self) -> Optional[str]:
        """The manifest key: the request, the weights' files as they are now and the libraries that
        build the model; None when the weights' files cannot be fingerprinted."""
        spec = get_spec(self.backbone)
        asked = "pretrained" if self.weights == spec.pretrained else None if self.weights == "random" else self.weights
        files = weights_fingerprint(spec, asked)
        if files is None:
            return None
        identity = {"backbone": self.backbone, "weights": self.weights, "weights_files": files, "taps": self.taps,
                    "pooling": self.pooling, "input_size": self.input_size,
                    "featcache": library_version("featcache"),
                    **{name: library_version(name) for name in _BUILD_LIBRARIES}}
        return f"{self.backbone}-{_digest(identity)}"


@dataclass(frozen=True)
class Exported:
    """A manifest: the configuration the export computes, its ONNX file, and the checks it passed."""

    path: Path  # the manifest file
    config: dict
    onnx: Path
    onnx_stamp: list  # [size, mtime_ns] of the ONNX file when it was checked
    checks: dict  # "engine/precision" -> {"version": library version, "deviation": ...}
    fastest: dict = field(default_factory=dict)  # "processor/precision" -> {"engine": ..., "img_s": {...}}

    @property
    def name(self) -> str:
        return str(self.config["backbone"])

    @property
    def input_size(self) -> int:
        return int(self.config["input_size"])

    def fastest_engine(self, precision: str, processor: str) -> Optional[str]:
        """The engine that won the race on this processor at this precision, if one was run and
        the winner's check still holds."""
        found = self.fastest.get(f"{processor}/{precision}")
        return found["engine"] if found and self.check(found["engine"], precision) is not None else None

    def check(self, engine: str, precision: str) -> Optional[dict]:
        """The recorded check of ``engine`` at ``precision``, if it still holds: made by the engine
        library installed now, on the ONNX file as it is now."""
        found = self.checks.get(f"{engine}/{precision}")
        if found is None or found.get("version") != library_version(engine):
            return None
        return found if self.onnx.is_file() and _stamp(self.onnx) == self.onnx_stamp else None


def _stamp(path: Path) -> list:
    status = path.stat()
    return [status.st_size, status.st_mtime_ns]


def manifest_path(key: str) -> Path:
    return exports_dir() / f"{key}.json"


def lookup(request: Request) -> Optional[Exported]:
    """The manifest answering ``request``, or None (never asked, weights changed, or unreadable)."""
    key = request.key()
    return None if key is None else _read(key)


def _read(key: str) -> Optional[Exported]:
    """The manifest stored under ``key``, or None (none, or unreadable)."""
    if not manifest_path(key).is_file():
        return None
    try:
        stored = json.loads(manifest_path(key).read_text())
        return Exported(manifest_path(key), stored["config"], exports_dir() / stored["onnx"], stored["onnx_stamp"],
                        stored["checks"], stored.get("fastest", {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged manifest is only a missed shortcut: the model is built again


def remember(extractor, onnx: Path, engine: str, precision: str, measured: dict) -> None:
    """Record that ``engine`` at ``precision`` agreed with TensorFlow on ``extractor``'s export."""
    _update(extractor, onnx, lambda manifest: manifest["checks"].update(
        {f"{engine}/{precision}": {"version": library_version(engine), **measured}}))


def remember_fastest(extractor, onnx: Path, precision: str, processor: str, engine: str,
                     images_per_second: dict) -> None:
    """Record which engine ran ``extractor``'s export ``onnx`` fastest on ``processor``."""
    _update(extractor, onnx, lambda manifest: manifest["fastest"].update(
        {f"{processor}/{precision}": {"engine": engine, "img_s": images_per_second}}))


def _update(extractor, onnx: Path, change) -> None:
    """Rewrite the manifest of ``extractor`` with ``change`` applied; what it recorded of another
    ONNX file (or of this file before it changed) is dropped."""
    key = Request.of(extractor).key()  # the weights' files walked once
    if key is None:
        return
    previous = _read(key)
    same_file = previous is not None and previous.onnx == onnx and previous.onnx_stamp == _stamp(onnx)
    manifest = {"config": extractor.config(), "onnx": onnx.name, "onnx_stamp": _stamp(onnx),
                "checks": dict(previous.checks) if same_file else {},
                "fastest": dict(previous.fastest) if same_file else {}}
    change(manifest)
    with atomic_file(manifest_path(key)) as temporary:
        Path(temporary).write_text(json.dumps(manifest, indent=1, sort_keys=True))
