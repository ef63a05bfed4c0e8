"""Rebuild a convolutional TensorFlow.js graph model as a Keras functional model.

A TF.js graph model is a frozen TensorFlow graph (``modelTopology.node``) with its
weights in shards (read by :func:`featcache.backbones.tfjs.read_tfjs_weights`). This
module turns the graph's convolutional trunk into standard Keras layers, so the result
runs under every featcache engine and its intermediate layers can be tapped by name.

It knows the ops such trunks are made of: (fused) 2-D and depthwise convolutions with
their bias and activation, ``BiasAdd``, ``Relu``/``Relu6``, ``MaxPool``, residual ``Add``, and PReLU
in the form the TF.js converter leaves it (``relu(x) + c * (x - |x|)``, or ``x + c * (x - |x|)``).
The graph is walked back from the requested output, so nodes past it (embedding heads,
normalisation) need not be supported; any other op on the way is refused by name.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Callable, Mapping, Union

import keras
import numpy as np

from featcache.errors import WeightsError

from ..errors import UsageError

CONVOLUTIONS = {"_FusedConv2D": "conv", "Conv2D": "conv", "FusedDepthwiseConv2dNative": "depthwise",
                "DepthwiseConv2dNative": "depthwise"}
ACTIVATIONS = {"Relu": "relu", "Relu6": "relu6"}


def layer_name(node: str) -> str:
    """A Keras layer name for a graph node (Keras names cannot hold ``/``)."""
    return node.replace("/", "_")


def graph_to_keras(
    model_json: Union[str, Path],
    weights: Mapping[str, np.ndarray],
    output: str,
    input_shape: tuple[int, int, int],
    *,
    rename: Callable[[str], str] = layer_name,
) -> keras.Model:
    """The Keras model computing node ``output`` of the graph at ``model_json`` from its
    placeholder, with ``weights`` (by node name) in its layers; each layer is named
    ``rename(node)`` after the node whose value it computes."""
    try:
        nodes = {n["name"]: n for n in json.loads(Path(model_json).read_text())["modelTopology"]["node"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise WeightsError(f"{model_json}: not a TensorFlow.js graph model ({type(error).__name__}: {error})") from None
    if output not in nodes:
        raise UsageError(f"{model_json}: no node {output!r} in the graph")
    return _Builder(str(model_json), nodes, weights, input_shape, rename).model(output)


def _inputs(node: dict) -> list[str]:
    return [i.split(":")[0] for i in node.get("input", []) if not i.startswith("^")]


def _ints(node: dict, attr: str, default: list[int]) -> list[int]:
    return [int(i) for i in node.get("attr", {}).get(attr, {}).get("list", {}).get("i", default)]


def _string(node: dict, attr: str, default: str = "") -> str:
    value = node.get("attr", {}).get(attr, {}).get("s")
    return base64.b64decode(value).decode() if value else default


def _strings(node: dict, attr: str) -> list[str]:
    return [base64.b64decode(s).decode() for s in node.get("attr", {}).get(attr, {}).get("list", {}).get("s", [])]


class _Builder:
    """Builds layers on demand, walking back from the output (each node once)."""

    def __init__(self, source, nodes, weights, input_shape, rename) -> None:
        self.source, self.nodes, self.weights, self.rename = source, nodes, weights, rename
        self.input_shape = input_shape
        self.tensors: dict[str, object] = {}
        self.placeholder = None

    def model(self, output: str) -> keras.Model:
        result = self.tensor(output)
        if self.placeholder is None:
            raise UsageError(f"{self.source}: {output!r} does not depend on the graph's input")
        return keras.Model(self.placeholder, result, name=self.rename(output))

    def const(self, name: str) -> np.ndarray:
        if self.nodes.get(name, {}).get("op") != "Const" or name not in self.weights:
            raise UsageError(f"{self.source}: {name!r} is not a constant with stored weights")
        return np.asarray(self.weights[name])

    def tensor(self, name: str):
        if name not in self.tensors:
            self.tensors[name] = self.build(self.nodes[name])
        return self.tensors[name]

    def build(self, node: dict):
        op, name, args = node["op"], node["name"], _inputs(node)
        if op == "Placeholder":
            self.placeholder = keras.Input(self.input_shape, name=self.rename(name))
            return self.placeholder
        if op in CONVOLUTIONS:
            return self.convolution(node, args)
        if op in ACTIVATIONS:
            return keras.layers.Activation(ACTIVATIONS[op], name=self.rename(name))(self.tensor(args[0]))
        if op == "MaxPool":
            return keras.layers.MaxPooling2D(tuple(_ints(node, "ksize", [1, 1, 1, 1])[1:3]),
                                             tuple(_ints(node, "strides", [1, 1, 1, 1])[1:3]),
                                             padding=_string(node, "padding").lower(), name=self.rename(name))(
                self.tensor(args[0]))
        if op == "BiasAdd":
            return _Bias(self.const(args[1]), name=self.rename(name))(self.tensor(args[0]))
        if op in ("Add", "AddV2"):
            prelu = self.prelu(node, args)
            if prelu is not None:
                return prelu
            if any(self.nodes[a]["op"] == "Const" for a in args):
                raise UsageError(f"{self.source}: {name} adds a constant; only residual sums are supported")
            return keras.layers.Add(name=self.rename(name))([self.tensor(a) for a in args])
        raise UsageError(f"{self.source}: node {name} is a {op}, which featcache cannot rebuild in Keras")

    def convolution(self, node: dict, args: list[str]):
        name, kind = node["name"], CONVOLUTIONS[node["op"]]
        if _string(node, "data_format", "NHWC") != "NHWC" or _string(node, "padding") not in ("SAME", "VALID"):
            raise UsageError(f"{self.source}: {name} is not an NHWC convolution with SAME or VALID padding")
        fused = _strings(node, "fused_ops")
        if fused and fused[0] != "BiasAdd" or len(fused) > 2 or fused[1:] and fused[1] not in ACTIVATIONS:
            raise UsageError(f"{self.source}: {name} fuses {'+'.join(fused)}, which featcache cannot rebuild")
        kernel = self.const(args[1])
        values = [kernel] + ([self.const(args[2])] if fused else [])
        options = dict(strides=tuple(_ints(node, "strides", [1, 1, 1, 1])[1:3]), padding=_string(node, "padding").lower(),
                       dilation_rate=tuple(_ints(node, "dilations", [1, 1, 1, 1])[1:3]), use_bias=bool(fused),
                       activation=ACTIVATIONS[fused[1]] if len(fused) == 2 else None, name=self.rename(name))
        if kind == "conv":
            layer = keras.layers.Conv2D(kernel.shape[3], kernel.shape[:2], **options)
        else:
            layer = keras.layers.DepthwiseConv2D(kernel.shape[:2], depth_multiplier=kernel.shape[3], **options)
        result = layer(self.tensor(args[0]))
        layer.set_weights(values)
        return result

    def prelu(self, node: dict, args: list[str]):
        """``Add(relu(x) or x, Mul(Sub(x, Abs(x)), c))`` as one PReLU layer, else None."""
        for first, second in (args, args[::-1]):
            mul = self.nodes[second]
            if mul["op"] != "Mul":
                continue
            operands = _inputs(mul)
            consts = [o for o in operands if self.nodes[o]["op"] == "Const"]
            subs = [o for o in operands if self.nodes[o]["op"] == "Sub"]
            if len(consts) != 1 or len(subs) != 1:
                continue
            x, absolute = _inputs(self.nodes[subs[0]])
            if self.nodes[absolute]["op"] != "Abs" or _inputs(self.nodes[absolute]) != [x]:
                continue
            c = self.const(consts[0]).astype(np.float32)
            if self.nodes[first]["op"] == "Relu" and _inputs(self.nodes[first]) == [x]:
                alpha = 2.0 * c  # relu(x) + c (x - |x|): x < 0 gives 2 c x
            elif first == x:
                alpha = 1.0 + 2.0 * c  # x + c (x - |x|): x < 0 gives (1 + 2 c) x
            else:
                continue
            layer = keras.layers.PReLU(shared_axes=[1, 2], name=self.rename(node["name"]))
            result = layer(self.tensor(x))
            channels = layer.get_weights()[0].shape[-1]
            layer.set_weights([np.broadcast_to(alpha, (channels,)).reshape(1, 1, channels)])
            return result
        return None


@keras.saving.register_keras_serializable(package="featcache")
class _Bias(keras.layers.Layer):
    """A stand-alone ``BiasAdd`` with a fixed bias."""

    def __init__(self, bias, **kwargs) -> None:
        super().__init__(**kwargs)
        self.initial = np.asarray(bias, np.float32)

    def build(self, input_shape) -> None:
        self.bias = self.add_weight(shape=self.initial.shape, initializer="zeros", name="bias")
        self.bias.assign(self.initial)

    def call(self, x):
        return x + self.bias

    def get_config(self) -> dict:
        return {**super().get_config(), "bias": self.initial.tolist()}
