"""Fit time of every head on 4,000 x 1,280 float32 features (an 8-class Gaussian mixture,
valence/arousal a noisy linear function of the features), as EfficientNet-Lite0 gives.

    python benchmarks/bench_heads.py [--repeats 3]

Writes ``results/heads_fit_time.{md,json}`` (median and max of the repeats).
Budget: every head under 10 s on 2 CPU cores, the linear heads under 2 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import numpy as np  # noqa: E402

import heads  # noqa: E402
import metrics  # noqa: E402
from _common import write_results  # noqa: E402
from synthetic_features import mixture  # noqa: E402

BUDGET = {"logistic": 2.0, "ridge": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    X, y, va, joint = mixture()
    X_test, y_test, va_test, joint_test = mixture(seed=1)
    began = time.perf_counter()
    import keras  # noqa: F401  (its import cost, reported apart from the fit times)

    print(f"keras import {time.perf_counter() - began:.1f} s; load average {os.getloadavg()[0]:.2f}")
    warnings.simplefilter("ignore")  # the MLP regressor's ConvergenceWarning at max_iter=50; see the epochs column
    print(f"{'head':<12} {'task':<9} {'fit s (min)':>11} {'fit s (max)':>11} {'budget':>6} {'epochs':>6}  test score")
    rows = []
    for name in heads.names():
        for task in heads.HEADS[name]:
            target = {"classify": y, "regress": va, "joint": joint}[task]
            seconds = []
            for repeat in range(args.repeats):
                head = heads.make(name, task)
                if "random_state" in head.get_params():
                    head.set_params(random_state=repeat)
                began = time.perf_counter()
                head.fit(X, target)
                seconds.append(time.perf_counter() - began)
            predicted = head.predict(X_test)
            if task == "classify":
                score = f"accuracy {metrics.accuracy(y_test, predicted):.3f}"
            elif task == "regress":
                score = f"CCC {np.mean(metrics.ccc(va_test, predicted)):.3f}"
            else:
                score = (f"accuracy {metrics.accuracy(y_test, predicted[:, 0].astype(int)):.3f}, "
                         f"CCC {np.mean(metrics.ccc(va_test, predicted[:, 1:])):.3f}")
            budget = BUDGET.get(name, 10.0)
            flag = "" if max(seconds) < budget else "  OVER BUDGET"
            if hasattr(head, "history_"):
                epochs = str(len(head.history_["loss"]))
            else:
                epochs = str(int(np.max(head.n_iter_))) if hasattr(head, "n_iter_") else "-"
            print(f"{name:<12} {task:<9} {min(seconds):>11.2f} {max(seconds):>11.2f} {budget:>6.0f} {epochs:>6}  "
                  f"{score}{flag}")
            rows.append({"head": name, "task": task, "median_s": float(np.median(seconds)), "max_s": max(seconds),
                         "runs_s": seconds, "budget_s": budget, "epochs": epochs, "test_score": score})
    table = ["# Head fit time: 4,000 x 1,280 float32 features, 2 CPU cores", "",
             f"Median and max of {args.repeats} fits each; load average at start {os.getloadavg()[0]:.2f}.", "",
             "| head | task | median fit (s) | max fit (s) | budget (s) | epochs | test score |",
             "|---|---|---:|---:|---:|---:|---|"]
    table += [f"| {r['head']} | {r['task']} | {r['median_s']:.2f} | {r['max_s']:.2f} | {r['budget_s']:.0f} | "
              f"{r['epochs']} | {r['test_score']} |" for r in rows]
    print("wrote", *write_results("heads_fit_time", {"rows": rows}, "\n".join(table) + "\n"))


if __name__ == "__main__":
    main()
