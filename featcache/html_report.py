"""One self-contained HTML page of results: tables, notes and figures, readable on a phone.

:func:`write_report` writes ``report.html``: the CSS is inline, every figure is embedded as a
base64 PNG data URI, and nothing is fetched from the network (no scripts, fonts or links), so
the one file can be mailed, copied to a phone or opened offline. Tables scroll sideways on a
narrow screen with the first column kept in view; images shrink to the page width. Every text
that goes in (titles, backbone names, notes) is HTML-escaped.

:func:`featcache.report.write_all` calls it with the same rows as the markdown tables.
"""

from __future__ import annotations

import base64
import datetime
import re
from html import escape
from pathlib import Path
from typing import Mapping, Sequence, Union

from .report import format_cell

Figure = Union[Path, tuple[Path, str]]  # a PNG, or a PNG and its caption
LABEL_COLUMNS = ("Backbone", "Head")

CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
body { margin: 0 auto; max-width: 1120px; padding: 12px 14px 40px; background: #fff; color: #1f2328;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif; }
h1 { font-size: 1.45em; margin: .3em 0 .5em; line-height: 1.25; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 1.6em 0 .5em; padding-bottom: .2em; border-bottom: 1px solid #d0d7de;
  overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
.intro { margin: .4em 0; }
.notes { margin: .3em 0; padding-left: 1.2em; }
.notes ul { padding-left: 1.1em; }
.warn { display: block; margin: .2em 0; padding: .3em .6em; background: #fff4e5; border-left: 4px solid #d9480f;
  color: #5c2a0a; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; border: 1px solid #d0d7de; border-radius: 6px;
  max-width: 100%; }
table { border-collapse: separate; border-spacing: 0; min-width: 100%; font-size: .92em;
  font-variant-numeric: tabular-nums; }
th, td { padding: 6px 9px; border-bottom: 1px solid #e6e8eb; white-space: nowrap; text-align: left;
  background: #fff; }
thead th { background: #f3f5f7; font-weight: 600; vertical-align: bottom; }
tbody tr:nth-child(even) td { background: #f9fafb; }
tbody tr:last-child td { border-bottom: 0; }
th.num, td.num { text-align: right; }
th:first-child, td:first-child { position: sticky; left: 0; z-index: 1; border-right: 1px solid #d0d7de; }
td:first-child { white-space: normal; overflow-wrap: break-word; max-width: 40vw; }
.hint { display: none; font-size: .85em; color: #59636e; margin: .2em 0 .4em; }
figure { margin: 1em 0 1.4em; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #e6e8eb;
  border-radius: 4px; }
figcaption { font-size: .9em; color: #59636e; margin-top: .35em; overflow-wrap: anywhere; }
footer { margin-top: 2.5em; font-size: .85em; color: #59636e; overflow-wrap: anywhere; }
@media (max-width: 700px) {
  body { padding: 8px 10px 32px; font-size: 14px; }
  th, td { padding: 5px 7px; }
  .hint { display: block; }
}
"""


def _is_number(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def html_table(rows: Sequence[Mapping], label_columns: Sequence[str] = LABEL_COLUMNS) -> str:
    """``rows`` (dicts with the same keys, as :func:`featcache.report.classification_rows`) as a
    ``<table>`` in a sideways-scrolling box; numbers right-aligned and shown as in the markdown."""
    if not rows:
        return ""
    columns = list(rows[0])
    numeric = {c: c not in label_columns and all(_is_number(row.get(c)) for row in rows) for c in columns}

    def cell(tag: str, column: str, text: str) -> str:
        return f'<{tag} class="num">{text}</{tag}>' if numeric[column] else f"<{tag}>{text}</{tag}>"

    def text(value) -> str:  # combined backbones ("a+b+c") may wrap after each "+"
        return escape(format_cell(value)).replace("+", "+<wbr>")

    head = "".join(cell("th", c, escape(str(c))) for c in columns)
    body = "\n".join("<tr>" + "".join(cell("td", c, text(row.get(c))) for c in columns) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n'
            "</table></div>")


def notes_list(notes: Sequence[str]) -> str:
    """Lines such as :func:`featcache.splits.split_summary`'s as a list: indented lines nest
    under the line before them; lines that report a leak are marked."""
    items: list[tuple[str, list[str]]] = []
    for line in notes:
        if not line.strip():
            continue
        text = escape(line.strip())
        if "LEAK" in line:  # the leak check's warning stands out
            text = '<span class="warn">' + re.sub(r"\bLEAK\b:?", r"<strong>\g<0></strong>", text, count=1) + "</span>"
        if line[:1].isspace() and items:
            items[-1][1].append(text)
        else:
            items.append((text, []))
    if not items:
        return ""
    html = []
    for text, nested in items:
        inner = "<ul>" + "".join(f"<li>{n}</li>" for n in nested) + "</ul>" if nested else ""
        html.append(f"<li>{text}{inner}</li>")
    return '<ul class="notes">' + "".join(html) + "</ul>"


def _data_uri(path: Path) -> str:
    data = Path(path).read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"{path} is not a PNG")
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(figure: Figure) -> str:
    path, caption = (figure, "") if isinstance(figure, (str, Path)) else figure
    path = Path(path)
    caption = caption or path.stem.replace("_", " ").capitalize()
    return (f'<figure><img src="{_data_uri(path)}" alt="{escape(caption)}" loading="eager">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def render_report(
    title: str,
    tables: Sequence[tuple[str, Sequence[Mapping]]] = (),
    notes: Sequence[str] = (),
    figures: Sequence[Figure] = (),
    intro: Sequence[str] = (),
    files: Sequence[str] = (),
    notes_title: str = "Split",
) -> str:
    """The page as a string: ``title``, ``intro`` paragraphs, ``notes`` (the split's lines), each
    ``(table title, rows)`` that has rows, the ``figures`` (PNG paths, or (path, caption)), and a
    footer naming the ``files`` written beside it."""
    from . import __version__

    parts = [f"<h1>{escape(title)}</h1>"]
    parts += [f'<p class="intro">{escape(paragraph)}</p>' for paragraph in intro if paragraph]
    if notes_list(notes):
        parts += [f"<h2>{escape(notes_title)}</h2>", notes_list(notes)]
    for heading, rows in tables:
        if rows:
            parts += [f"<h2>{escape(heading)}</h2>",
                      '<p class="hint">Swipe the table sideways for more columns.</p>', html_table(rows)]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [_figure(figure) for figure in figures]
    made = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    footer = f"Written by featcache {escape(__version__)} on {made}."
    if files:
        footer += " The same tables: " + ", ".join(escape(name) for name in files) + "."
    parts.append(f"<footer>{footer}</footer>")
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


def write_report(folder: Union[str, Path], title: str, *parts, name: str = "report.html", **options) -> Path:
    """Write :func:`render_report`'s page (same arguments after ``title``) to ``folder/name``
    (``report.html``); returns its path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(render_report(title, *parts, **options), encoding="utf-8")
    return path
