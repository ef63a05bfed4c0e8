"""Fit time of every head on 4,000 x 1,280 float32 features (an 8-class Gaussian mixture,
valence/arousal a noisy linear function of the features), as EfficientNet-Lite0 gives.

    python benchmarks/bench_heads.py [--repeats 3] [--cnn-repeats 1]

The ``cnn`` head, which trains a network from scratch on cached pixels, is timed on 4,000
rows of 48 x 48 values (the same mixture with 2,304 columns, read as grey images), with its
own number of repeats. Writes ``results/heads_fit_time.{md,json}`` (median and max of the
repeats). Budget: every head with its defaults under 10 s on 2 CPU cores; the CNN has none.
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

BUDGET = 10.0  # seconds, every head with its defaults (regularisation chosen from the data included)
FROM_SCRATCH = ("cnn",)  # heads that train a network on pixels: timed on images, without a budget


def budget_cell(budget) -> str:
    return "-" if budget is None else f"{budget:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cnn-repeats", type=int, default=1)
    args = parser.parse_args()
    features = mixture(), mixture(seed=1)
    pixels = mixture(d=48 * 48), mixture(d=48 * 48, seed=1)
    began = time.perf_counter()
    import keras  # noqa: F401  (its import cost, reported apart from the fit times)

    print(f"keras import {time.perf_counter() - began:.1f} s; load average {os.getloadavg()[0]:.2f}")
    warnings.simplefilter("ignore")  # the MLP regressor's ConvergenceWarning at max_iter=50; see the epochs column
    print(f"{'head':<12} {'task':<9} {'fit s (min)':>11} {'fit s (max)':>11} {'budget':>6} {'epochs':>6}  test score")
    rows = []
    for name in heads.names():
        (X, y, va, joint), (X_test, y_test, va_test, joint_test) = pixels if name in FROM_SCRATCH else features
        repeats = args.cnn_repeats if name in FROM_SCRATCH else args.repeats
        for task in heads.HEADS[name]:
            target = {"classify": y, "regress": va, "joint": joint}[task]
            seconds = []
            for repeat in range(repeats):
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
            budget = None if name in FROM_SCRATCH else BUDGET
            flag = "" if budget is None or max(seconds) < budget else "  OVER BUDGET"
            if hasattr(head, "history_"):
                epochs = str(len(head.history_["loss"]))
            else:
                epochs = str(int(np.max(head.n_iter_))) if hasattr(head, "n_iter_") else "-"
            print(f"{name:<12} {task:<9} {min(seconds):>11.2f} {max(seconds):>11.2f} {budget_cell(budget):>6} {epochs:>6}  "
                  f"{score}{flag}")
            rows.append({"head": name, "task": task, "median_s": float(np.median(seconds)), "max_s": max(seconds),
                         "runs_s": seconds, "repeats": repeats, "budget_s": budget, "epochs": epochs,
                         "test_score": score, "data": "4,000 x 48 x 48 pixels" if name in FROM_SCRATCH
                         else "4,000 x 1,280 features"})
    table = ["# Head fit time: 4,000 x 1,280 float32 features, 2 CPU cores", "",
             f"Median and max of {args.repeats} fits each ({args.cnn_repeats} for the CNN, on 4,000 x 48 x 48 "
             f"pixels); load average at start {os.getloadavg()[0]:.2f}. Every head with its defaults.", "",
             "| head | task | median fit (s) | max fit (s) | budget (s) | epochs | test score |",
             "|---|---|---:|---:|---:|---:|---|"]
    table += [f"| {r['head']} | {r['task']} | {r['median_s']:.2f} | {r['max_s']:.2f} | {budget_cell(r['budget_s'])} | "
              f"{r['epochs']} | {r['test_score']} |" for r in rows]
    print("wrote", *write_results("heads_fit_time", {"rows": rows}, "\n".join(table) + "\n"))


if __name__ == "__main__":
    main()
