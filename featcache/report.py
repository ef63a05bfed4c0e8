"""Tables of results: the reference reports' two tables as markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence, Union

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


def format_cell(value) -> str:
    """A table cell as text: floats to 3 decimals, None as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def titled_tables(results: Sequence[dict]) -> list[tuple[str, list[dict]]]:
    """The two tables with their titles, as in the markdown and the HTML report."""
    return [("Classification (test part)", classification_rows(results)),
            ("Valence and arousal (test part)", regression_rows(results))]


def markdown_table(rows: Sequence[dict], title: Optional[str] = None) -> str:
    if not rows:
        return ""
    columns = list(rows[0])
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(columns) + " |")
    lines.append("|" + "|".join("---" if c in ("Backbone", "Head") else "---:" for c in columns) + "|")
    lines += ["| " + " | ".join(format_cell(row[c]) for c in columns) + " |" for row in rows]
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
    (classification_title, classification), (regression_title, regression) = titled_tables(results)
    written = {"markdown": folder / f"{stem}.md", "json": folder / f"{stem}.json"}
    split = "### Split\n\n" + "".join(f"- {note.strip()}\n" for note in notes) + "\n" if notes else ""
    written["markdown"].write_text(
        split + markdown_table(classification, classification_title) + "\n"
        + markdown_table(regression, regression_title)
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


@dataclass
class Written:
    """What :func:`write_all` wrote: the tables (as :func:`write_tables`), the figures, the HTML report."""

    tables: dict[str, Path]
    figures: list[Path]
    report: Path

    @property
    def paths(self) -> list[Path]:
        return [*self.tables.values(), *self.figures, self.report]


def write_all(
    results: Sequence[dict],
    folder: Union[str, Path],
    stem: str = "results",
    *,
    notes: Sequence[str] = (),
    cache: Union[str, Path, None] = None,
    figures: bool = True,
    title: Optional[str] = None,
    intro: Sequence[str] = (),
) -> Written:
    """Everything a run writes into ``folder``: the tables (:func:`write_tables`), the figures
    (:func:`featcache.plots.write_figures`; when ``figures`` and the ``cache`` the results came
    from are given) and ``report.html``, one self-contained page with the tables, the ``notes``
    (the split), the ``intro`` paragraphs and the figures (:mod:`featcache.html_report`)."""
    from .html_report import write_report
    from .plots import CAPTIONS, write_figures

    folder = Path(folder)
    tables = write_tables(results, folder, stem, notes=notes)
    drawn = write_figures(list(results), Path(cache), folder) if figures and cache is not None else []
    report = write_report(folder, title or f"featcache {stem}", titled_tables(results), notes,
                          [(path, CAPTIONS.get(path.name, "")) for path in drawn], intro=intro,
                          files=[path.name for path in tables.values()])
    return Written(tables, drawn, report)


def _plain(value):
    """JSON for numpy values."""
    return value.tolist() if hasattr(value, "tolist") else str(value)
