"""Saving and loading fitted heads.

Keras heads are saved as one zip holding ``head.json`` (class, constructor parameters,
JSON-able learned attributes such as ``history_``), ``arrays.npz`` (learned numpy
arrays such as ``classes_``, ``mean_``, ``scale_``) and ``model.keras``; loading reads the
model with ``keras.saving.load_model(..., safe_mode=True)``, the arrays with
``allow_pickle=False``, and only instantiates the Keras head classes of this package.
:func:`load` also accepts that zip's contents unpacked into a directory.

scikit-learn heads are saved with joblib. A joblib file is a pickle: loading one runs
whatever code it names, so load joblib files **only from trusted sources** (or pass
``allow_pickle=False`` to refuse them).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Union

import joblib
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._keras import KerasHead, import_keras
from .keras_dense import KerasDenseClassifier, KerasDenseRegressor
from .multitask import MultiTaskHead

FORMAT = "heads.keras/1"
MANIFEST, ARRAYS, MODEL = "head.json", "arrays.npz", "model.keras"
KERAS_CLASSES = {cls.__name__: cls for cls in (KerasDenseClassifier, KerasDenseRegressor, MultiTaskHead)}

PathLike = Union[str, Path]


def save(head: BaseEstimator, path: PathLike) -> Path:
    """Write a fitted head to ``path`` (one file): a zip for Keras heads, joblib otherwise."""
    check_is_fitted(head)
    path = Path(path)
    if isinstance(head, KerasHead):
        _save_keras(head, path)
    else:
        joblib.dump(head, path)
    return path


def load(path: PathLike, *, allow_pickle: bool = True) -> BaseEstimator:
    """Read a head written by :func:`save`. Joblib files run code when loaded: only load
    them from trusted sources; ``allow_pickle=False`` accepts Keras heads only."""
    path = Path(path)
    if path.is_dir():
        return _load_keras_parts(lambda name: (path / name).read_bytes())
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if MANIFEST in archive.namelist():
                return _load_keras_parts(archive.read)
    if not allow_pickle:
        raise ValueError(f"{path} is not a saved Keras head, and allow_pickle=False refuses joblib (pickle) files")
    head = joblib.load(path)
    if not isinstance(head, BaseEstimator):
        raise TypeError(f"{path} holds a {type(head).__name__}, not a head")
    return head


# -- Keras heads ------------------------------------------------------------------------
def _learned(head: KerasHead) -> dict[str, Any]:
    return {k: v for k, v in vars(head).items() if k.endswith("_") and not k.startswith("_") and k != "model_"}


def _save_keras(head: KerasHead, path: Path) -> None:
    arrays, attributes, object_arrays = {}, {}, []
    for name, value in _learned(head).items():
        if isinstance(value, np.ndarray):
            if value.dtype == object:  # e.g. string labels, feature_names_in_
                object_arrays.append(name)
                value = value.astype(str)
            arrays[name] = value
        else:
            attributes[name] = _encode(value, name)
    manifest = {
        "format": FORMAT,
        "class": type(head).__name__,
        "params": _encode(head.get_params(deep=False), "params"),
        "attributes": attributes,
        "object_arrays": object_arrays,
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / MODEL
        head.model_.save(model_file)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
            archive.writestr(ARRAYS, buffer.getvalue())
            archive.write(model_file, MODEL)


def _load_keras_parts(read) -> KerasHead:
    manifest = json.loads(read(MANIFEST))
    if manifest.get("format") != FORMAT:
        raise ValueError(f"not a saved head of format {FORMAT}: {manifest.get('format')!r}")
    cls = KERAS_CLASSES.get(manifest["class"])
    if cls is None:
        raise ValueError(f"unknown Keras head class {manifest['class']!r}; known: {', '.join(KERAS_CLASSES)}")
    head = cls(**_decode(manifest["params"]))
    for name, value in manifest["attributes"].items():
        setattr(head, name, _decode(value))
    with np.load(io.BytesIO(read(ARRAYS)), allow_pickle=False) as arrays:
        for name in arrays.files:
            value = arrays[name]
            setattr(head, name, value.astype(object) if name in manifest["object_arrays"] else value)
    keras = import_keras()
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / MODEL
        model_file.write_bytes(read(MODEL))
        head.model_ = keras.saving.load_model(model_file, compile=False, safe_mode=True)
    return head


def _encode(value: Any, where: str) -> Any:
    """JSON form keeping tuples and non-string dict keys distinct from lists and strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        return value.item() if isinstance(value, np.generic) else value
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(k, where), _encode(v, where)] for k, v in value.items()]}
    raise TypeError(f"cannot save {where}: a {type(value).__name__} has no JSON form (use an int random_state)")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_decode(v) for v in value["tuple"])
        return {_decode(k): _decode(v) for k, v in value["dict"]}
    return value
