"""How fast are the metrics? Each figure against its reference, in one run.

Times every figure of the classification and regression reports on 1,000,000
samples x 8 classes (and x 2 targets), ours against scikit-learn / scipy /
krippendorff computing the same number, then both whole reports against the sum
of their references. Medians of ``--repeats`` runs. Also checks the values agree.

    python benchmarks/bench_metrics.py [--samples 1000000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import krippendorff
import numpy as np
import scipy.stats
from sklearn import metrics as skm
from sklearn.preprocessing import label_binarize

sys.path.insert(0, str(Path(__file__).resolve().parent))
import metrics  # noqa: E402
from _common import median_seconds, write_results  # noqa: E402

N_CLASSES = 8


def make_data(n: int, seed: int = 0):
    """Imbalanced 8-class truth, noisy informative softmax scores, correlated targets."""
    rng = np.random.default_rng(seed)
    prior = np.array([0.3, 0.25, 0.1, 0.1, 0.08, 0.07, 0.06, 0.04])
    y = rng.choice(N_CLASSES, size=n, p=prior)
    logits = rng.normal(size=(n, N_CLASSES))
    logits[np.arange(n), y] += 1.0
    scores = np.exp(logits)
    scores /= scores.sum(axis=1, keepdims=True)
    truth = np.clip(rng.normal(0, 0.5, size=(n, 2)), -1, 1)
    pred = np.clip(0.6 * truth + rng.normal(0, 0.3, size=(n, 2)), -1, 1)
    return y, scores, truth, pred


def classification_pairs(y, scores):
    """(figure, ours, reference) closures for the classification report."""
    labels = scores.argmax(axis=1)
    truth2 = np.vstack([y, labels]).astype(float)
    binary = label_binarize(y, classes=np.arange(N_CLASSES))
    return [
        ("accuracy", lambda: metrics.accuracy(y, labels), lambda: skm.accuracy_score(y, labels)),
        ("precision (macro)", lambda: metrics.precision(y, labels),
         lambda: skm.precision_score(y, labels, average="macro", zero_division=0)),
        ("recall (macro)", lambda: metrics.recall(y, labels),
         lambda: skm.recall_score(y, labels, average="macro", zero_division=0)),
        ("F1 (macro)", lambda: metrics.f1_score(y, labels),
         lambda: skm.f1_score(y, labels, average="macro", zero_division=0)),
        ("F1 (weighted)", lambda: metrics.f1_score(y, labels, average="weighted"),
         lambda: skm.f1_score(y, labels, average="weighted", zero_division=0)),
        ("confusion matrix", lambda: metrics.confusion_matrix(y, labels), lambda: skm.confusion_matrix(y, labels)),
        ("Cohen's kappa", lambda: metrics.cohen_kappa(y, labels), lambda: skm.cohen_kappa_score(y, labels)),
        ("kappa (linear)", lambda: metrics.cohen_kappa(y, labels, "linear"),
         lambda: skm.cohen_kappa_score(y, labels, weights="linear")),
        ("kappa (quadratic)", lambda: metrics.cohen_kappa(y, labels, "quadratic"),
         lambda: skm.cohen_kappa_score(y, labels, weights="quadratic")),
        ("AUC-ROC (macro OvR)", lambda: metrics.auc_roc(y, scores),
         lambda: skm.roc_auc_score(y, scores, multi_class="ovr", average="macro")),
        ("AUC-PR (macro AP)", lambda: metrics.auc_pr(y, scores),
         lambda: skm.average_precision_score(binary, scores, average="macro")),
        ("Krippendorff alpha (nominal)", lambda: metrics.krippendorff_alpha(y, labels),
         lambda: krippendorff.alpha(truth2, level_of_measurement="nominal")),
        ("Krippendorff alpha (ordinal)", lambda: metrics.krippendorff_alpha(y, labels, "ordinal"),
         lambda: krippendorff.alpha(truth2, level_of_measurement="ordinal")),
        ("Krippendorff alpha (interval)", lambda: metrics.krippendorff_alpha(y, labels, "interval"),
         lambda: krippendorff.alpha(truth2, level_of_measurement="interval")),
    ]


def regression_pairs(truth, pred):
    """(figure, ours, reference) closures for the regression report (two targets)."""

    def ccc_reference():
        out = []
        for j in range(truth.shape[1]):
            cov = np.cov(truth[:, j], pred[:, j], bias=True)
            out.append(2 * cov[0, 1] / (cov[0, 0] + cov[1, 1] + (truth[:, j].mean() - pred[:, j].mean()) ** 2))
        return np.array(out)

    return [
        ("RMSE", lambda: metrics.rmse(truth, pred),
         lambda: skm.root_mean_squared_error(truth, pred, multioutput="raw_values")),
        ("MAE", lambda: metrics.mae(truth, pred),
         lambda: skm.mean_absolute_error(truth, pred, multioutput="raw_values")),
        ("CORR (Pearson)", lambda: metrics.pearson(truth, pred),
         lambda: np.array([scipy.stats.pearsonr(truth[:, j], pred[:, j])[0] for j in range(truth.shape[1])])),
        ("SAGR", lambda: metrics.sagr(truth, pred), lambda: np.mean(np.sign(truth) == np.sign(pred), axis=0)),
        ("CCC", lambda: metrics.ccc(truth, pred), ccc_reference),
    ]


def run_pairs(pairs, repeats: int) -> list[dict]:
    rows = []
    for figure, ours, reference in pairs:
        t_ours, runs_ours, value_ours = median_seconds(ours, repeats)
        t_ref, runs_ref, value_ref = median_seconds(reference, repeats)
        difference = float(np.max(np.abs(np.asarray(value_ours, float) - np.asarray(value_ref, float))))
        rows.append({
            "figure": figure, "ours_s": t_ours, "reference_s": t_ref, "speedup": t_ref / t_ours,
            "max_abs_difference": difference, "ours_runs_s": runs_ours, "reference_runs_s": runs_ref,
        })
        print(f"{figure:32s} ours {t_ours:8.4f} s  reference {t_ref:8.4f} s  x{t_ref / t_ours:6.1f}  "
              f"|diff| {difference:.1e}", flush=True)
    return rows


def run_report(name: str, ours, references, repeats: int) -> dict:
    t_ours, runs, _ = median_seconds(ours, repeats)
    t_ref, runs_ref, _ = median_seconds(lambda: [reference() for reference in references], repeats)
    print(f"{name:32s} ours {t_ours:8.4f} s  reference {t_ref:8.4f} s  x{t_ref / t_ours:6.1f}", flush=True)
    return {"figure": name, "ours_s": t_ours, "reference_s": t_ref, "speedup": t_ref / t_ours,
            "ours_runs_s": runs, "reference_runs_s": runs_ref}


def markdown(rows: list[dict], n: int, repeats: int) -> str:
    lines = [
        f"# Metrics speed: {n:,} samples x {N_CLASSES} classes (2 regression targets)",
        "",
        f"Median of {repeats} runs each, ours and the reference in the same process, one after the other.",
        "",
        "| figure | featcache metrics (s) | reference (s) | speed-up | max abs difference |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in rows:
        difference = f"{row['max_abs_difference']:.1e}" if "max_abs_difference" in row else "-"
        lines.append(f"| {row['figure']} | {row['ours_s']:.4f} | {row['reference_s']:.4f} | "
                     f"{row['speedup']:.1f}x | {difference} |")
    lines += ["", "References: scikit-learn (label and ranking figures, RMSE, MAE), scipy.stats.pearsonr (CORR), "
              "krippendorff (alpha), numpy formulas where no library has the figure (SAGR, CCC via np.cov)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    y, scores, truth, pred = make_data(args.samples)
    cls_pairs = classification_pairs(y, scores)
    reg_pairs = regression_pairs(truth, pred)
    rows = run_pairs(cls_pairs, args.repeats) + run_pairs(reg_pairs, args.repeats)
    rows.append(run_report("classification_report (all)", lambda: metrics.classification_report(y, scores),
                           [reference for _, _, reference in cls_pairs], args.repeats))
    rows.append(run_report("regression_report (all)", lambda: metrics.regression_report(truth, pred),
                           [reference for _, _, reference in reg_pairs], args.repeats))

    slower = [row["figure"] for row in rows if row["speedup"] < 1.0]
    report_time = rows[-2]["ours_s"] + rows[-1]["ours_s"]
    payload = {"samples": args.samples, "classes": N_CLASSES, "repeats": args.repeats, "rows": rows,
               "both_reports_s": report_time, "figures_slower_than_reference": slower}
    json_path, md_path = write_results("metrics_speed", payload, markdown(rows, args.samples, args.repeats))
    print(f"both reports: {report_time:.3f} s; slower than reference: {slower or 'none'}")
    print(f"wrote {json_path} and {md_path}")


if __name__ == "__main__":
    main()
