"""Read tensors from legacy (non-zip) PyTorch ``.pth`` files without torch.

The legacy format is a run of pickles: a magic number, the protocol version (1001), a
sys-info dict, the state dict (tensors refer to storages by persistent id), the list of
storage keys, then each storage as an int64 element count and its raw little-endian data.
Unpickling resolves only the few globals a tensor state dict needs, to local stand-ins;
any other global is refused before it can be imported or called.
"""

from __future__ import annotations

import collections
import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FeatcacheError

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
_ZIP_MAGIC = b"PK\x03\x04"
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),  # widened to float32 on read
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class UnsafePickleError(FeatcacheError, pickle.UnpicklingError):
    """The file's pickle names a global outside the tensor-only allow-list."""


class PthFormatError(FeatcacheError, ValueError):
    """The file is not a readable legacy PyTorch tensor file."""


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    key: str
    storage_type: _StorageType
    numel: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(storage: Any, storage_offset: Any, size: Any, stride: Any, *_: Any) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2``: records the view, reads nothing."""
    if not isinstance(storage, _StorageRef):
        raise TypeError(f"tensor rebuilt from {type(storage).__name__}, not a storage")
    return _TensorRef(storage, int(storage_offset), tuple(map(int, size)), tuple(map(int, stride)))


class _TensorUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor rebuilding, storage types and OrderedDict."""

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="utf-8")
        self._path = path
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise UnsafePickleError(
            f"{self._path}: refusing to unpickle global '{module}.{name}': "
            "only tensors and OrderedDict are allowed; do not load this file"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise PthFormatError(f"{self._path}: unsupported persistent id {pid!r:.80}; only storages are read")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType) or view is not None:
            raise PthFormatError(f"{self._path}: unsupported storage reference {pid!r:.80}")
        ref = _StorageRef(str(key), storage_type, int(numel))
        return self.storages.setdefault(ref.key, ref)


def _read_storage(f: BinaryIO, ref: _StorageRef, path: Path) -> np.ndarray:
    header = f.read(8)
    if len(header) != 8:
        raise PthFormatError(f"{path}: truncated before storage {ref.key}")
    numel = int.from_bytes(header, "little", signed=True)
    if numel != ref.numel:
        raise PthFormatError(f"{path}: storage {ref.key} holds {numel} elements, the pickle says {ref.numel}")
    dtype = ref.storage_type.dtype
    remaining = os.fstat(f.fileno()).st_size - f.tell()
    if not 0 <= numel * dtype.itemsize <= remaining:
        raise PthFormatError(f"{path}: storage {ref.key} claims {numel} elements, {remaining} bytes are left")
    data = f.read(numel * dtype.itemsize)
    array = np.frombuffer(data, dtype=dtype)
    if ref.storage_type.name == "BFloat16Storage":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32) if array.dtype.kind == "f" else array


def _materialise(name: str, ref: _TensorRef, buffer: np.ndarray, path: Path) -> np.ndarray:
    shape, stride = ref.shape, ref.stride
    in_bounds = ref.offset >= 0 and len(shape) == len(stride) and min(shape + stride, default=0) >= 0
    if in_bounds and 0 not in shape:
        in_bounds = ref.offset + sum((n - 1) * s for n, s in zip(shape, stride)) < buffer.size
    if not in_bounds:
        raise PthFormatError(f"{path}: tensor {name!r} (offset {ref.offset}, shape {shape}, stride {stride}) "
                             f"does not fit its storage of {buffer.size} elements")
    if 0 in shape:
        return np.zeros(shape, dtype=buffer.dtype)
    view = np.lib.stride_tricks.as_strided(
        buffer[ref.offset:], shape=shape, strides=[s * buffer.itemsize for s in stride], writeable=False
    )
    return np.array(view, copy=True, order="C")


def _load(f: BinaryIO, path: Path) -> dict[str, np.ndarray]:
    if f.read(4) == _ZIP_MAGIC:
        raise PthFormatError(f"{path}: zip-format PyTorch file; this reader handles the legacy format; "
                             "re-save it with torch.save(..., _use_new_zipfile_serialization=False)")
    f.seek(0)
    if _TensorUnpickler(f, path).load() != MAGIC_NUMBER:
        raise PthFormatError(f"{path}: no legacy PyTorch magic number; not a legacy .pth file")
    if (protocol := _TensorUnpickler(f, path).load()) != PROTOCOL_VERSION:
        raise PthFormatError(f"{path}: legacy protocol version {protocol!r}, expected {PROTOCOL_VERSION}")
    sys_info = _TensorUnpickler(f, path).load()
    if not (isinstance(sys_info, dict) and sys_info.get("little_endian") is True):
        raise PthFormatError(f"{path}: written on a big-endian machine or without sys info; not supported")
    unpickler = _TensorUnpickler(f, path)
    state = unpickler.load()
    if not (isinstance(state, dict) and all(isinstance(v, _TensorRef) for v in state.values())):
        raise PthFormatError(f"{path}: holds a {type(state).__name__}, not a flat state dict of tensors")
    keys = _TensorUnpickler(f, path).load()
    if not isinstance(keys, list) or set(map(str, keys)) != set(unpickler.storages):
        raise PthFormatError(f"{path}: storage key list does not match the storages the tensors use")
    buffers = {str(k): _read_storage(f, unpickler.storages[str(k)], path) for k in keys}
    return {str(name): _materialise(str(name), ref, buffers[ref.storage.key], path) for name, ref in state.items()}


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Tensors of a legacy ``.pth`` state dict by name: floats as float32, other dtypes kept.

    Raises UnsafePickleError if the pickle names any global beyond tensor rebuilding,
    storage types and OrderedDict, and PthFormatError for anything else unreadable.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            return _load(f, path)
    except (UnsafePickleError, PthFormatError):
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as err:
        raise PthFormatError(f"{path}: not a readable legacy PyTorch file ({type(err).__name__}: {err})") from err


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
