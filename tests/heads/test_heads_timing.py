"""The linear heads, regularisation chosen from the data as by default, fit 4,000 x 1,280
float32 features in under 10 s; with it fixed, in under 2 s.

benchmarks/bench_heads.py times every head. The best of up to 3 fits counts, to ride out a
busy CI machine.
"""

import time

import pytest

import heads

from synthetic_features import mixture

BUDGET_SECONDS = 10.0  # tuned, as by default
FIXED_BUDGET_SECONDS = 2.0


@pytest.fixture(scope="module")
def big():
    return mixture()  # X (4000, 1280) float32, class ids, valence/arousal, joint


def best_fit_seconds(head, X, y, budget: float, tries: int = 3) -> float:
    best = float("inf")
    for _ in range(tries):
        began = time.perf_counter()
        head.fit(X, y)
        best = min(best, time.perf_counter() - began)
        if best < budget:
            break
    return best


def test_logistic_fits_in_budget(big):
    X, y, _, _ = big
    head = heads.LogisticHead(random_state=0)
    assert best_fit_seconds(head, X, y, BUDGET_SECONDS) < BUDGET_SECONDS
    assert head.n_iter_[0] < head.max_iter and head.C_ in head.Cs  # converged, not cut short
    fixed = heads.LogisticHead(C=head.C_)
    assert best_fit_seconds(fixed, X, y, FIXED_BUDGET_SECONDS) < FIXED_BUDGET_SECONDS


def test_ridge_fits_in_budget(big):
    X, _, va, _ = big
    head = heads.RidgeHead()
    assert best_fit_seconds(head, X, va, BUDGET_SECONDS) < BUDGET_SECONDS
    assert set(head.alpha_) <= set(head.alphas)
    fixed = heads.RidgeHead(alpha=float(head.alpha_[0]))
    assert best_fit_seconds(fixed, X, va, FIXED_BUDGET_SECONDS) < FIXED_BUDGET_SECONDS
