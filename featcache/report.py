"""Tables of results: the reference reports' two tables as markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional, Sequence

from metrics import CLASSIFICATION_COLUMNS, REGRESSION_COLUMNS, table_row

TARGETS = ("valence", "arousal")


def classification_rows(results: Sequence[dict]) -> list[dict]:
    """One row per (backbone, head): the classification table's columns and the fit time."""
    return [
        {"Backbone": r["backbone"], "Head": r["head"], **table_row(r["report"], CLASSIFICATION_COLUMNS),
         "Fit (s)": r["fit_seconds"]}
        for r in results if r["task"] == "classify"
    ]


def regression_rows(results: Sequence[dict]) -> list[dict]:
    """One row per (backbone, head): RMSE, CORR, SAGR, CCC for valence and arousal, and the fit time."""
    rows = []
    for r in results:
        if r["task"] != "regress":
            continue
        row = {"Backbone": r["backbone"], "Head": r["head"]}
        for target in TARGETS:
            for title, value in table_row(r["report"], REGRESSION_COLUMNS, target).items():
                row[f"{title} {target[0].upper()}"] = value
        row["Fit (s)"] = r["fit_seconds"]
        rows.append(row)
    return rows


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown_table(rows: Sequence[dict], title: Optional[str] = None) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" if c in ("Backbone", "Head") else "---:" for c in columns) + "|")
    lines += ["| " + " | ".join(_cell(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def csv_table(rows: Sequence[dict]) -> str:
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_tables(results: Sequence[dict], folder: Path, stem: str = "results",
                 notes: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``<stem>.md``, ``<stem>_classification.csv``, ``<stem>_regression.csv`` and ``<stem>.json``;
    ``notes`` (what the split is, its leakage check) head the markdown and go in the JSON."""
    folder.mkdir(parents=True, exist_ok=True)
    classification, regression = classification_rows(results), regression_rows(results)
    written = {"markdown": folder / f"{stem}.md", "json": folder / f"{stem}.json"}
    split = "### Split\n\n" + "".join(f"- {note.strip()}\n" for note in notes) + "\n" if notes else ""
    written["markdown"].write_text(
        split + markdown_table(classification, "Classification (test part)") + "\n"
        + markdown_table(regression, "Valence and arousal (test part)")
    )
    for name, rows in (("classification", classification), ("regression", regression)):
        if rows:
            written[name] = folder / f"{stem}_{name}.csv"
            written[name].write_text(csv_table(rows))
    bulky = ("predictions", "scores", "truth", "test_index", "estimator", "config")
    plain = [{k: v for k, v in r.items() if k not in bulky} for r in results]
    written["json"].write_text(json.dumps({"split": [note.strip() for note in notes], "classification": classification,
                                           "regression": regression, "runs": plain}, indent=2, default=_plain) + "\n")
    return written


def _plain(value):
    """JSON for numpy values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
