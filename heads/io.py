"""Saving and loading fitted heads, without running code from the file for every head of this package.

One file per head, in one of three formats, chosen by :func:`save` and recognised by :func:`load`:

``keras``
    Keras heads: a zip holding ``head.json`` (class, constructor parameters, JSON-able learned
    attributes such as ``history_``), ``arrays.npz`` (learned arrays such as ``classes_``,
    ``mean_``, ``scale_``, read with ``allow_pickle=False``) and ``model.keras`` (read with
    ``keras.saving.load_model(..., safe_mode=True)``); only the Keras head classes of this
    package are instantiated. :func:`load` also accepts the zip's contents unpacked into a folder.
``skops``
    Every other head of this package (logistic, ridge, their CV forms, MLP, ensembles of
    them): a `skops <https://skops.readthedocs.io>`_ file, which stores the fitted
    arrays (scaler, coefficients, intercepts, classes) as plain ``.npy`` arrays read with
    ``allow_pickle=False`` and the objects around them as a JSON schema; loading instantiates
    only the types of :data:`KNOWN_TYPES` and those scikit-learn and numpy types skops trusts.
``joblib``
    Any other estimator. A joblib file is a pickle: loading one runs whatever code it names,
    so :func:`load` refuses it unless ``trust=True``; pass that only for files from trusted
    sources. An skops file naming types outside :data:`KNOWN_TYPES` is refused the same way.
"""

from __future__ import annotations

import io
import json
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, Union

import joblib
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._keras import KerasHead, import_keras
from .cnn import CNNClassifier, CNNMultiTaskHead, CNNRegressor
from .ensemble import BlockEnsembleClassifier, BlockEnsembleRegressor
from .joint import JointLinearHead
from .keras_dense import KerasDenseClassifier, KerasDenseRegressor
from .linear import LogisticCVHead, LogisticHead, RidgeCVHead, RidgeHead
from .mlp import MLPHead
from .multitask import MultiTaskHead

FORMAT = "heads.keras/1"
MANIFEST, ARRAYS, MODEL = "head.json", "arrays.npz", "model.keras"
SKOPS_SCHEMA = "schema.json"  # the member every skops file holds
PICKLE_START = b"\x80"  # the first byte of a pickle (protocol 2 and later), as joblib writes it
KERAS_CLASSES = {cls.__name__: cls for cls in (KerasDenseClassifier, KerasDenseRegressor, MultiTaskHead, CNNClassifier,
                                                CNNRegressor, CNNMultiTaskHead)}
_SKOPS_CLASSES = (LogisticHead, LogisticCVHead, RidgeHead, RidgeCVHead, MLPHead, BlockEnsembleClassifier,
                  BlockEnsembleRegressor, JointLinearHead)
#: Types an skops head file may name beyond those skops trusts itself: this package's heads
#: and the optimiser state scikit-learn's MLP keeps for further training.
KNOWN_TYPES = tuple(f"{cls.__module__}.{cls.__qualname__}" for cls in _SKOPS_CLASSES) + (
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
)

PathLike = Union[str, Path]


def save(head: BaseEstimator, path: PathLike) -> Path:
    """Write a fitted head to ``path`` (one file) in the safest format that holds it
    (see the module docstring); :func:`file_format` tells which was used."""
    check_is_fitted(head)
    path = Path(path)
    if isinstance(head, KerasHead):
        _save_keras(head, path)
        return path
    import skops.io as sio  # imported when needed: its import is slow

    try:
        data = sio.dumps(head)
    except (TypeError, NotImplementedError):
        data = None  # a type skops cannot describe: only a pickle holds it
    if data is not None and set(sio.get_untrusted_types(data=data)) <= set(KNOWN_TYPES):
        path.write_bytes(data)
        return path
    if isinstance(head, _SKOPS_CLASSES):  # e.g. an ensemble of Keras heads
        warnings.warn(f"{type(head).__name__} holds an estimator only a pickle can keep: {path} will load only "
                      "with trust=True", UserWarning, stacklevel=2)
    joblib.dump(head, path)
    return path


def file_format(path: PathLike) -> str:
    """``"keras"``, ``"skops"`` or ``"joblib"``: the format of a file written by :func:`save`
    (FileNotFoundError if there is none; ValueError for a file that is none of them)."""
    path = Path(path)
    if path.is_dir():
        return "keras"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such head file")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
        if MANIFEST in names:
            return "keras"
        if SKOPS_SCHEMA in names:
            return "skops"
    with open(path, "rb") as handle:
        if handle.read(1) == PICKLE_START:
            return "joblib"
    raise ValueError(f"{path}: not a saved head (a damaged or unfinished file?)")


def load(path: PathLike, *, trust: bool = False) -> BaseEstimator:
    """Read a head written by :func:`save`. Keras and skops heads of this package load
    without running code from the file; a joblib (pickle) file, or an skops file naming other
    types, runs code when loaded and is refused unless ``trust=True``: pass it only for
    files from trusted sources."""
    path = Path(path)
    kind = file_format(path)
    if kind == "keras":
        if path.is_dir():
            return _load_keras_parts(lambda name: (path / name).read_bytes())
        with zipfile.ZipFile(path) as archive:
            return _load_keras_parts(archive.read)
    if kind == "skops":
        import skops.io as sio

        named = sio.get_untrusted_types(file=path)
        unknown = sorted(set(named) - set(KNOWN_TYPES))
        if unknown and not trust:
            raise ValueError(f"{path} names types this package does not know ({', '.join(unknown)}); load it with "
                             "trust=True only if you trust where it came from")
        head = sio.load(path, trusted=named)
    else:
        if not trust:
            raise ValueError(f"{path} is a pickle (joblib) file, which runs code when loaded; load it with "
                             "trust=True only if you trust where it came from")
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
