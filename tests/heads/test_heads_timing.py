"""The linear heads fit 4,000 x 1,280 float32 features fast: with their regularisation fixed
in under 2 s, and choosing it from the data (as by default) at a bounded multiple of that.

Both are timed in processor seconds with one BLAS thread: that is the work a fit does, which a
busy CI machine (the other test worker on the second core) does not change, whereas wall time
with two BLAS threads waiting on a contended core does. benchmarks/bench_heads.py times every
head's wall time on an idle machine against the 10 s budget. The best of up to 3 fits counts.
"""

import time

import pytest
from threadpoolctl import threadpool_limits

import heads

from synthetic_features import mixture

FIXED_BUDGET_SECONDS = 2.0
CHOICE_FACTOR = {"logistic": 25, "ridge": 80}  # choosing costs at most this many fixed fits


@pytest.fixture(scope="module")
def big():
    return mixture()  # X (4000, 1280) float32, class ids, valence/arousal, joint


def best_fit_seconds(head, X, y, budget: float, tries: int = 3) -> float:
    best = float("inf")
    with threadpool_limits(1):
        for _ in range(tries):
            began = time.process_time()
            head.fit(X, y)
            best = min(best, time.process_time() - began)
            if best < budget:
                break
    return best


def test_logistic_fits_in_budget(big):
    X, y, _, _ = big
    fixed = heads.LogisticHead(C=1e-3)
    fixed_seconds = best_fit_seconds(fixed, X, y, FIXED_BUDGET_SECONDS)
    assert fixed_seconds < FIXED_BUDGET_SECONDS and fixed.n_iter_[0] < fixed.max_iter  # converged, not cut short
    head = heads.LogisticHead(random_state=0)
    budget = CHOICE_FACTOR["logistic"] * max(fixed_seconds, 0.1)
    assert best_fit_seconds(head, X, y, budget) < budget and head.C_ in head.Cs


def test_ridge_fits_in_budget(big):
    X, _, va, _ = big
    fixed = heads.RidgeHead(alpha=100.0)
    fixed_seconds = best_fit_seconds(fixed, X, va, FIXED_BUDGET_SECONDS)
    assert fixed_seconds < FIXED_BUDGET_SECONDS
    head = heads.RidgeHead()
    budget = CHOICE_FACTOR["ridge"] * max(fixed_seconds, 0.1)
    assert best_fit_seconds(head, X, va, budget) < budget and set(head.alpha_) <= set(head.alphas)
