"""TensorFlow.js graphs rebuilt as Keras layers, checked against the same ops run by TensorFlow."""

import base64

import keras
import numpy as np
import pytest
import tensorflow as tf

from featcache.backbones.tfjs import read_tfjs_weights
from featcache.backbones.tfjs_graph import graph_to_keras
from tfjs_files import write_tfjs

RNG = np.random.default_rng(4)
WEIGHTS = {
    "k0": RNG.normal(0, 0.3, (3, 3, 3, 8)), "b0": RNG.normal(0, 0.1, 8),
    "dk": RNG.normal(0, 0.3, (3, 3, 8, 1)), "db": RNG.normal(0, 0.1, 8),
    "alpha": RNG.uniform(0.05, 0.2, 8), "k2": RNG.normal(0, 0.3, (1, 1, 8, 8)), "b2": RNG.normal(0, 0.1, 8),
    "c": np.array(0.15), "unused": RNG.normal(0, 1, 8),
}


def encoded(text):
    return base64.b64encode(text.encode()).decode()


def node(name, op, *inputs, **attr):
    return {"name": name, "op": op, "input": list(inputs), "attr": attr}


def conv_attr(strides=1, padding="SAME", fused=()):
    attr = {"strides": {"list": {"i": ["1", str(strides), str(strides), "1"]}}, "padding": {"s": encoded(padding)}}
    if fused:
        attr["fused_ops"] = {"list": {"s": [encoded(op) for op in fused]}}
    return attr


def graph_nodes(fused0=("BiasAdd", "Relu"), extra=()):
    """conv (bias, relu, stride 2) -> depthwise (bias) -> PReLU as relu(x) + a (x - |x|) ->
    conv -> BiasAdd -> PReLU as x + c (x - |x|) -> residual add -> 3 x 3 max pool, stride 2
    (beside it, a Square the outputs do not need)."""
    return [
        node("x", "Placeholder"), *(node(name, "Const") for name in WEIGHTS),
        node("net/c0", "_FusedConv2D", "x", "k0", "b0", **conv_attr(2, fused=fused0)),
        node("net/d1", "FusedDepthwiseConv2dNative", "net/c0", "dk", "db", **conv_attr(fused=("BiasAdd",))),
        node("net/r", "Relu", "net/d1"), node("net/a", "Abs", "net/d1"), node("net/s", "Sub", "net/d1", "net/a"),
        node("net/m", "Mul", "net/s", "alpha"), node("net/p", "Add", "net/r", "net/m"),
        node("net/c2", "Conv2D", "net/p", "k2", **conv_attr()), node("net/bb", "BiasAdd", "net/c2", "b2"),
        node("net/a2", "Abs", "net/bb"), node("net/s2", "Sub", "net/bb", "net/a2"),
        node("net/m2", "Mul", "c", "net/s2"), node("net/q", "AddV2", "net/bb", "net/m2"),
        node("net/res", "AddV2", "net/q", "net/p"), node("net/out", "Square", "net/res"),
        node("net/pool", "MaxPool", "net/res", ksize={"list": {"i": ["1", "3", "3", "1"]}}, **conv_attr(2)), *extra,
    ]


def write_graph(folder, nodes):
    return write_tfjs(folder, [[(k, np.asarray(v, np.float32), None) for k, v in WEIGHTS.items()]], nodes=nodes)


def reference(x):
    w = {k: tf.constant(v, tf.float32) for k, v in WEIGHTS.items()}
    c0 = tf.nn.relu(tf.nn.conv2d(x, w["k0"], 2, "SAME") + w["b0"])
    d1 = tf.nn.depthwise_conv2d(c0, w["dk"], [1, 1, 1, 1], "SAME") + w["db"]
    p = tf.nn.relu(d1) + w["alpha"] * (d1 - tf.abs(d1))
    bb = tf.nn.conv2d(p, w["k2"], 1, "SAME") + w["b2"]
    res = bb + w["c"] * (bb - tf.abs(bb)) + p
    return {"net/c0": c0, "net/p": p, "net/pool": tf.nn.max_pool2d(res, 3, 2, "SAME")}


def test_graph_is_rebuilt_as_keras_layers_computing_the_same_values(tmp_path):
    path = write_graph(tmp_path, graph_nodes())
    model = graph_to_keras(path, read_tfjs_weights(path), "net/pool", (16, 16, 3))
    x = RNG.uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    expected = reference(tf.constant(x))
    assert model.output.shape == (None, 4, 4, 8)
    np.testing.assert_allclose(model(x).numpy(), expected["net/pool"].numpy(), rtol=1e-5, atol=1e-5)
    names = {layer.name: type(layer).__name__ for layer in model.layers}
    assert names["net_p"] == names["net_q"] == "PReLU" and names["net_res"] == "Add"
    assert names["net_c0"] == "Conv2D" and names["net_d1"] == "DepthwiseConv2D" and names["net_pool"] == "MaxPooling2D"
    assert not {"net_a", "net_s", "net_m", "net_r", "net_out"} & set(names)  # folded into PReLU, or past the output
    inner = model.get_layer("net_c0").output
    np.testing.assert_allclose(keras.Model(model.input, inner)(x).numpy(), expected["net/c0"].numpy(), rtol=1e-5, atol=1e-5)


def test_a_custom_layer_name_map_names_every_layer(tmp_path):
    path = write_graph(tmp_path, graph_nodes())
    model = graph_to_keras(path, read_tfjs_weights(path), "net/p", (8, 8, 3), rename=lambda n: n.replace("net/", "m_"))
    assert [layer.name for layer in model.layers] == ["x", "m_c0", "m_d1", "m_p"]


@pytest.mark.parametrize("nodes, output, message", [
    (graph_nodes(), "net/out", r"net/out is a Square, which featcache cannot rebuild"),
    (graph_nodes(), "net/nothing", r"no node 'net/nothing' in the graph"),
    (graph_nodes(fused0=("BiasAdd", "Elu")), "net/c0", r"net/c0 fuses BiasAdd\+Elu"),
    (graph_nodes(extra=[node("net/plus", "Add", "net/c0", "unused")]), "net/plus", r"adds a constant"),
])
def test_ops_it_cannot_rebuild_are_refused_by_name(tmp_path, nodes, output, message):
    path = write_graph(tmp_path, nodes)
    with pytest.raises(ValueError, match=message):
        graph_to_keras(path, read_tfjs_weights(path), output, (8, 8, 3))
