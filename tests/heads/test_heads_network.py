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


@pytest.mark.parametrize("head, chunked", [(heads.LogisticHead(C=0.1), False),
                                           (heads.MLPHead("classify", max_iter=5, random_state=0), False),
                                           (heads.LogisticHead(C=0.1, chunk_rows=16), True)],
                         ids=["LogisticHead", "MLPHead", "LogisticHead-chunked"])
def test_two_class_heads_give_both_columns(head, chunked):
    """A binary model keeps one score column; the network gives [1 - p, p] as predict_proba does,
    also for a head fitted from a chunked X."""
    problem = make_problem(300, seed=5)
    two = problem.labels <= 3
    X = heads.RowSubset(problem.X, two) if chunked else problem.X[two]
    head.fit(X, problem.labels[two])
    outputs = keras_network(head, problem.X.shape[1])(problem.X)
    assert largest_difference(outputs, head.predict_proba(problem.X)) < 1e-5


def test_ridge_fitted_from_a_chunked_x_becomes_a_network():
    problem = make_problem(300, seed=7)
    head = heads.RidgeHead(chunk_rows=16).fit(heads.RowSubset(problem.X, np.arange(300)), problem.va)
    outputs = keras_network(head, problem.X.shape[1])(problem.X)
    assert largest_difference(outputs, head.predict(problem.X)) < 1e-5


def test_a_head_from_elsewhere_is_refused():
    from sklearn.linear_model import LogisticRegression

    problem = make_problem(50, seed=6)
    with pytest.raises(ValueError, match="cannot turn a LogisticRegression into a network"):
        keras_network(LogisticRegression().fit(problem.X, problem.labels), problem.X.shape[1])
