"""Fitted heads as Keras networks, for exporting them inside one model.

:func:`keras_network` maps a fitted head of this package to a Keras functional model from its
features (float32) to what its ``predict_proba`` (classifiers: probabilities in ``classes_``
order) or ``predict`` (regressors: (n, n_targets) targets) computes: the standardisation
``(x - mean) / scale``, affine maps, ReLU, softmax or logistic outputs, averaging of an
ensemble's members, the spread match and the clipping of the regressors. A multi-task head
gives ``{"classes": probabilities, "va": targets}``. Only built-in Keras operations are used,
so the network exports to ONNX and SavedModel as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from ._keras import KerasHead, import_keras
from .ensemble import BlockEnsembleClassifier, BlockEnsembleRegressor
from .joint import JointLinearHead
from .linear import LogisticHead, RidgeHead
from .mlp import MLPHead
from .multitask import MultiTaskHead


def keras_network(head: Any, n_features: int):
    """A Keras model computing ``head``'s probabilities (classifiers), targets (regressors) or
    both (multi-task) from its features. ValueError for a head this package does not know."""
    keras = import_keras()
    inputs = keras.Input((n_features,), dtype="float32", name="features")
    return keras.Model(inputs, _outputs(keras, head, inputs), name=f"{type(head).__name__.lower()}_network")


def _outputs(keras, head: Any, x):
    ops = keras.ops
    if isinstance(head, MultiTaskHead):
        out = head.model_(_keras_standardised(head, x), training=False)
        return {"classes": _normalised(ops, out["classes"]), "va": out["va"]}
    if isinstance(head, KerasHead):
        out = head.model_(_keras_standardised(head, x), training=False)
        return _normalised(ops, out) if hasattr(head, "classes_") else out
    if isinstance(head, MLPHead) and hasattr(head, "target_min_"):  # a regressor: bounded to its targets' range
        out = _pipeline_outputs(ops, head.pipeline_, x)
        return ops.minimum(ops.maximum(out, head.target_min_.astype(np.float32)), head.target_max_.astype(np.float32))
    if isinstance(head, (LogisticHead, MLPHead)):
        return _pipeline_outputs(ops, head.pipeline_, x)
    if isinstance(head, RidgeHead):
        return _finished(ops, _pipeline_outputs(ops, head.pipeline_, x), head)
    if isinstance(head, JointLinearHead):
        probabilities = _outputs(keras, head.classifier_, x)
        targets = _outputs(keras, head.regressor_, x)
        return {"classes": probabilities,
                "va": _outputs(keras, head.combiner_, ops.concatenate([targets, probabilities], axis=-1))}
    if isinstance(head, (BlockEnsembleClassifier, BlockEnsembleRegressor)):
        members = [_outputs(keras, member, x[:, part]) for member, part in zip(head.estimators_, head.slices_)]
        mean = ops.mean(ops.stack(members, axis=0), axis=0)
        return _normalised(ops, mean) if isinstance(head, BlockEnsembleClassifier) else _finished(ops, mean, head)
    raise ValueError(f"cannot turn a {type(head).__name__} into a network: it is not a head of this package")


def _keras_standardised(head: KerasHead, x):
    return x if head.mean_ is None else (x - head.mean_.astype(np.float32)) / head.scale_.astype(np.float32)


def _pipeline_outputs(ops, pipeline: Pipeline, x):
    """A fitted ``StandardScaler`` + linear model or MLP: probabilities or targets."""
    scaler, model = pipeline.steps[0][1], pipeline.steps[-1][1]
    if len(pipeline.steps) != 2 or not hasattr(scaler, "scale_"):
        raise ValueError(f"cannot turn the pipeline {[name for name, _ in pipeline.steps]} into a network")
    x = x - np.asarray(scaler.mean_, np.float32) if scaler.with_mean else x
    x = x / np.asarray(scaler.scale_, np.float32) if scaler.with_std else x
    return _model_outputs(ops, model, x)


def _model_outputs(ops, model, x):
    """A fitted linear model or MLP on standardised features: probabilities or targets."""
    if hasattr(model, "transformer_"):  # targets learned standardised: the model's output, unscaled
        out = _model_outputs(ops, model.regressor_, x)
        return out * np.asarray(model.transformer_.scale_, np.float32) + np.asarray(model.transformer_.mean_,
                                                                                    np.float32)
    if hasattr(model, "coefs_"):  # a multi-layer perceptron
        for weights, bias in zip(model.coefs_[:-1], model.intercepts_[:-1]):
            x = _activation(ops, model.activation, ops.matmul(x, weights.astype(np.float32)) + bias.astype(np.float32))
        out = ops.matmul(x, model.coefs_[-1].astype(np.float32)) + model.intercepts_[-1].astype(np.float32)
        if model.out_activation_ == "identity":
            return out
        return _normalised(ops, _probabilities(ops, out))
    out = _affine(ops, x, model.coef_, model.intercept_)
    return _normalised(ops, _probabilities(ops, out)) if hasattr(model, "classes_") else out


def _affine(ops, x, coef: np.ndarray, intercept):
    """``x @ coef.T + intercept`` as (n, k), for coef (k, d) or (d,)."""
    coef = np.atleast_2d(np.asarray(coef, np.float64))
    return ops.matmul(x, coef.T.astype(np.float32)) + np.atleast_1d(np.asarray(intercept, np.float32))


def _probabilities(ops, scores):
    """Softmax of class scores; one column is a binary model's positive-class score: [1 - p, p]."""
    if scores.shape[-1] == 1:
        positive = ops.sigmoid(scores)
        return ops.concatenate([1.0 - positive, positive], axis=-1)
    return ops.softmax(scores, axis=-1)


def _activation(ops, name: str, x):
    functions = {"relu": ops.relu, "tanh": ops.tanh, "logistic": ops.sigmoid, "identity": lambda v: v}
    if name not in functions:
        raise ValueError(f"cannot export the activation {name!r}")
    return functions[name](x)


def _normalised(ops, probabilities):
    """Rows that sum to one, as :func:`heads._common.normalise_rows` makes them."""
    return probabilities / ops.sum(probabilities, axis=-1, keepdims=True)


def _finished(ops, predicted, head):
    """:func:`heads._common.finish_targets`: the spread match, then clipping to [-1, 1]."""
    if head.match_spread:
        mean = np.asarray(head.fitted_mean_, np.float32)
        predicted = (predicted - mean) * np.asarray(head.spread_scale_, np.float32) + mean
    return ops.clip(predicted, -1.0, 1.0) if head.clip else predicted
