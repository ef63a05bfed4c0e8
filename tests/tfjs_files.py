"""TensorFlow.js graph models in tests: files written for them, and graphs run by TensorFlow."""

import base64
import json

import numpy as np

from featcache.backbones.tfjs import read_tfjs_weights


def write_tfjs(folder, groups, name="model.json", nodes=()):
    """A TensorFlow.js graph-model manifest; groups: [[(name, array, stored dtype or None)], ...]."""
    manifest = []
    for g, weights in enumerate(groups):
        entries, blob = [], b""
        for weight_name, array, stored in weights:
            entry = {"name": weight_name, "shape": list(array.shape), "dtype": str(array.dtype)}
            if stored:
                entry["quantization"] = {"dtype": stored, "original_dtype": str(array.dtype)}
            entries.append(entry)
            blob += array.astype(stored or array.dtype).tobytes()
        (folder / f"group{g}.bin").write_bytes(blob)
        manifest.append({"paths": [f"group{g}.bin"], "weights": entries})
    path = folder / name
    path.write_text(json.dumps({"format": "graph-model", "modelTopology": {"node": list(nodes)}, "weightsManifest": manifest}))
    return path


def tensorflow_graph(path, feed, fetch):
    """The TensorFlow.js graph at ``path`` run by TensorFlow from node ``feed`` to node ``fetch``,
    its TF.js-only fused convolutions spelled out as convolution, BiasAdd and activation."""
    import tensorflow as tf
    from google.protobuf import json_format

    nodes = []
    for node in json.loads(path.read_text())["modelTopology"]["node"]:
        if node["op"] not in ("_FusedConv2D", "FusedDepthwiseConv2dNative"):
            nodes.append(node)
            continue
        base = "Conv2D" if node["op"] == "_FusedConv2D" else "DepthwiseConv2dNative"
        fused = [base64.b64decode(s).decode() for s in node["attr"]["fused_ops"]["list"]["s"]]
        x, kernel, bias = node["input"][:3]
        attr = {k: v for k, v in node["attr"].items() if k in ("strides", "padding", "dilations")}
        t = {"T": {"type": "DT_FLOAT"}}
        names = [node["name"] + "/conv", node["name"] + "/bias", node["name"]][-1 - len(fused):]
        nodes.append({"name": names[0], "op": base, "input": [x, kernel], "attr": {**attr, **t}})
        nodes.append({"name": names[1], "op": "BiasAdd", "input": [names[0], bias], "attr": t})
        if fused[1:]:
            nodes.append({"name": names[2], "op": fused[1], "input": [names[1]], "attr": t})
    graph = tf.compat.v1.GraphDef()
    json_format.ParseDict({"node": nodes}, graph, ignore_unknown_fields=True)
    weights = read_tfjs_weights(path)
    for node in graph.node:
        if node.op == "Const":
            node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.asarray(weights[node.name])))
    imported = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph, name=""), [])
    return imported.prune(feeds=feed + ":0", fetches=fetch + ":0")
