"""heads.network: each fitted head as a Keras network computes what the head predicts."""

import numpy as np
import pytest
from conftest import HEAD_TASKS, make_problem

import heads
from heads.network import keras_network


def largest_difference(actual, expected) -> float:
    """Largest absolute difference over the largest expected value."""
    expected = np.asarray(expected, np.float64)
    return float(np.max(np.abs(np.asarray(actual, np.float64) - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("name, task", HEAD_TASKS)
def test_network_computes_the_heads_predictions(name, task, fitted, test):
    head = fitted(name, task)
    outputs = keras_network(head, test.X.shape[1])(test.X)
    if task == "joint":
        assert largest_difference(outputs["classes"], head.predict_proba(test.X)) < 1e-5
        assert largest_difference(outputs["va"], head.predict(test.X)[:, 1:]) < 1e-5
    elif task == "classify":
        assert outputs.shape == (len(test.X), len(head.classes_))
        assert largest_difference(outputs, head.predict_proba(test.X)) < 1e-5
        np.testing.assert_allclose(np.sum(outputs, axis=1), 1.0, rtol=1e-6)
    else:
        assert largest_difference(outputs, head.predict(test.X)) < 1e-5


@pytest.mark.parametrize("head", [heads.LogisticHead(C=0.1), heads.MLPHead("classify", max_iter=5, random_state=0),
                                  heads.StreamingLogisticHead(C=0.1)], ids=lambda h: type(h).__name__)
def test_two_class_heads_give_both_columns(head):
    """A binary model keeps one score column; the network gives [1 - p, p] as predict_proba does."""
    problem = make_problem(300, seed=5)
    two = problem.labels <= 3
    head.fit(problem.X[two], problem.labels[two])
    outputs = keras_network(head, problem.X.shape[1])(problem.X)
    assert largest_difference(outputs, head.predict_proba(problem.X)) < 1e-5


def test_a_head_from_elsewhere_is_refused():
    from sklearn.linear_model import LogisticRegression

    problem = make_problem(50, seed=6)
    with pytest.raises(ValueError, match="cannot turn a LogisticRegression into a network"):
        keras_network(LogisticRegression().fit(problem.X, problem.labels), problem.X.shape[1])
