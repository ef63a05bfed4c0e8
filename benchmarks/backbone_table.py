"""The table of registered backbones: input size, feature dims, parameters, GFLOPs, weights.

GFLOPs are counted by TensorFlow's profiler on each feature model (random weights,
one image at the default input size, last layer average-pooled), with a multiply-add
counted as two FLOPs.

    python benchmarks/backbone_table.py [--pattern "*"] [--update]

``--update`` recomputes only the backbones matching ``--pattern`` and keeps the other rows
of the existing ``results/backbones.json`` (the whole table takes about half an hour on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.framework.convert_to_constants import (  # noqa: E402
    convert_variables_to_constants_v2_as_graph,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import featcache.backbones as fb  # noqa: E402
from _common import RESULTS, write_results  # noqa: E402


def gflops(model: keras.Model, size: int) -> float:
    """Forward-pass GFLOPs for one image, from TensorFlow's profiler."""
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 3], tf.float32)
    )
    _, graph_def = convert_variables_to_constants_v2_as_graph(concrete)
    with tf.Graph().as_default() as graph:
        tf.graph_util.import_graph_def(graph_def, name="")
        options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
        options["output"] = "none"
        profile = tf.compat.v1.profiler.profile(graph=graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op",
                                                options=options)
    return profile.total_float_ops / 1e9


def row(name: str) -> dict:
    spec = fb.get_spec(name)
    taps = ["last", *spec.taps]
    extractor = fb.load_backbone(name, weights=None, taps=taps)
    trunk = extractor.model.get_layer(f"{name}_trunk")
    tap_dims = {
        tap: fb.Tap.parse(tap).grid ** 2 * int(output.shape[-1]) for tap, output in zip(spec.taps, trunk.outputs[1:])
    }
    plain = fb.load_backbone(name, weights=None)
    result = {
        "backbone": name,
        "input_size": spec.input_size,
        "feature_dim": spec.feature_dim,
        "recommended_taps": tap_dims,
        "params_millions": plain.model.count_params() / 1e6,
        "gflops": gflops(plain.model, spec.input_size),
        "preprocessing": spec.preprocessing,
        "pretrained": spec.pretrained,
        "offline": spec.offline,
        "weights_source": spec.weights_source,
    }
    keras.backend.clear_session()
    return result


def markdown(rows: list[dict]) -> str:
    lines = [
        "| backbone | input | dim | recommended tap (dim) | params (M) | GFLOPs | preprocessing | pretrained weights |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        taps = ", ".join(f"`{tap}` ({dim})" for tap, dim in r["recommended_taps"].items()) or "-"
        where = ("**offline**: " if r["offline"] else "") + r["weights_source"]
        lines.append(f"| `{r['backbone']}` | {r['input_size']} | {r['feature_dim']} | {taps} | "
                     f"{r['params_millions']:.1f} | {r['gflops']:.2f} | {r['preprocessing']} | {where} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pattern", default="*")
    parser.add_argument("--update", action="store_true", help="keep the rows of backbones not matching --pattern")
    args = parser.parse_args()
    kept = json.loads((RESULTS / "backbones.json").read_text())["rows"] if args.update else []
    rows = []
    for name in fb.list_backbones(args.pattern):
        rows.append(row(name))
        print(f"{name:24s} dim {rows[-1]['feature_dim']:5d}  {rows[-1]['gflops']:7.2f} GFLOPs", flush=True)
    fresh = {r["backbone"] for r in rows}
    rows = sorted([r for r in kept if r["backbone"] not in fresh] + rows, key=lambda r: r["backbone"])
    intro = ("# Registered backbones\n\nGFLOPs: TensorFlow profiler, one image at the default input size, "
             "multiply-add = 2 FLOPs. Params: the feature model without classifier.\n\n")
    paths = write_results("backbones", {"rows": rows}, intro + markdown(rows))
    print("wrote", *paths)


if __name__ == "__main__":
    main()
