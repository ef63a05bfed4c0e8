"""Reading the weights of a TensorFlow.js graph model (``model.json`` plus ``.bin`` shards).

Only the weights (float16-quantised ones widened to their original dtype): the architecture
is rebuilt in Keras either by a backbone's own builder (``hse_faceres`` fills
``keras.applications.MobileNet``) or from the graph itself by
:mod:`featcache.backbones.tfjs_graph`. Nothing of TensorFlow.js is needed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Union

import numpy as np

from featcache.errors import WeightsError


def read_tfjs_weights(model_json: Union[str, Path]) -> dict[str, np.ndarray]:
    """Every weight of the graph model at ``model_json``, by name, as numpy arrays."""
    model_json = Path(model_json)
    try:
        manifest = json.loads(model_json.read_text())["weightsManifest"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{model_json}: not a TensorFlow.js graph model ({type(error).__name__}: {error})") from None
    weights: dict[str, np.ndarray] = {}
    for group in manifest:
        try:
            blob = b"".join((model_json.parent / shard).read_bytes() for shard in group["paths"])
        except OSError as error:
            raise WeightsError(f"{model_json}: a weights shard is missing beside it ({error})") from None
        offset = 0
        for entry in group["weights"]:
            stored = entry.get("quantization") or {}
            dtype = np.dtype(stored.get("dtype", entry["dtype"]))
            count = int(np.prod(entry["shape"], dtype=np.int64))
            if "scale" in stored:
                raise WeightsError(f"{model_json}: {entry['name']} is integer-quantised; use the float32 model")
            if offset + count * dtype.itemsize > len(blob):
                raise WeightsError(f"{model_json}: its shards end before {entry['name']}; the download is truncated")
            array = np.frombuffer(blob, dtype, count, offset).reshape(entry["shape"])
            weights[entry["name"]] = array.astype(entry["dtype"])  # a copy, widened from float16 if stored so
            offset += count * dtype.itemsize
        if offset != len(blob):
            raise WeightsError(f"{model_json}: {len(blob) - offset} bytes of its shards belong to no weight")
    return weights
