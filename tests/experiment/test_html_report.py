"""report.html: one self-contained page of the tables, the split and the figures, readable on a phone.

The unit tests read the HTML; the last test renders it in headless Chromium (Debian's
``chromium`` package) at a phone's width, and looks at the DOM, the layout and a screenshot.
"""

import base64
import html
import json
import os
import re
import shutil
import signal
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageStat

import metrics
from featcache import plots
from featcache.html_report import write_report
from featcache.report import classification_rows, format_cell, regression_rows, titled_tables, write_all

NASTY = "<b>x</b>"  # a backbone name that must show as text, not as markup
NOTES = ["split 'default': train 70, validation 15, test 15; by image (no record groups)",
         "  LEAK: 2 test images have a near-copy in the training part <script>alert(1)</script>"]
PHONE = (412, 915)
INSTALL = "install Debian's chromium package: make browser (or sudo apt-get install -y chromium)"


@pytest.fixture(scope="module")
def results():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 60)
    scores = rng.dirichlet(np.ones(3), size=60)
    va = rng.uniform(-1, 1, size=(60, 2))
    made = []
    for backbone in ("efficientnet_lite0", NASTY):
        made.append({"backbone": backbone, "head": "logistic", "task": "classify", "fit_seconds": 0.5,
                     "report": metrics.classification_report(y, scores, class_names=["a", "b", "c"])})
        made.append({"backbone": backbone, "head": "ridge", "task": "regress", "fit_seconds": 0.25,
                     "report": metrics.regression_report(va, va * 0.5 + rng.normal(0, 0.1, va.shape))})
    return made


@pytest.fixture(scope="module")
def report(results, tmp_path_factory):
    """report.html with two figures, and the PNGs in it."""
    folder = tmp_path_factory.mktemp("report")
    figures = [plots.confusion_matrix(np.array([[5, 1, 0], [2, 4, 1], [0, 1, 6]]), ["a", "b", "c"],
                                      folder / "confusion_matrix.png", f"{NASTY} + logistic"),
               plots.va_scatter(np.zeros((5, 2)) + 0.1, np.zeros((5, 2)), folder / "valence_arousal.png")]
    path = write_report(folder, f"featcache compare: {NASTY}", titled_tables(results), NOTES,
                        [(figures[0], plots.CAPTIONS["confusion_matrix.png"]), figures[1]],
                        intro=["Heads fitted on the training parts & scored once."], files=["t.md", "t.json"])
    return path, figures


def test_the_page_holds_the_tables_notes_and_figures_and_nothing_from_the_network(results, report):
    path, figures = report
    page = path.read_text(encoding="utf-8")
    assert path.name == "report.html" and page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    for title, rows in titled_tables(results):
        assert f"<h2>{html.escape(title)}</h2>" in page
        for column in rows[0]:
            assert re.search(rf"<th( class=\"num\")?>{re.escape(html.escape(column))}</th>", page), column
        for row in rows:
            for column in ("Accuracy", "Krippendorff's alpha", "CCC V", "RMSE A", "Fit (s)"):
                if column in row:
                    assert f'<td class="num">{format_cell(row[column])}</td>' in page
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(data) for data in embedded] == [figure.read_bytes() for figure in figures]
    assert html.escape(plots.CAPTIONS["confusion_matrix.png"]) in page
    assert "<figcaption>Valence arousal</figcaption>" in page  # a figure without a caption: its file name
    # self-contained: no external (or any) link, script, stylesheet, font or CSS url()
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", page, re.IGNORECASE)
    assert not re.search(r"https?://|<script|<link|@import|url\(|<iframe", page, re.IGNORECASE)
    references = re.findall(r"\b(?:src|href)\s*=\s*[\"']?([^\"' >]*)", page, re.IGNORECASE)
    assert len(references) == 2 and all(ref.startswith("data:image/png;base64,") for ref in references)


def test_every_text_is_escaped(report):
    page = report[0].read_text(encoding="utf-8")
    assert NASTY not in page and "<script>alert" not in page
    assert page.count("&lt;b&gt;x&lt;/b&gt;") == 4  # <title>, <h1>, a row in each table
    assert '<span class="warn"><strong>LEAK:</strong> 2 test images' in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "training parts &amp; scored once" in page and "t.md, t.json" in page


def test_write_all_writes_the_tables_and_the_report_beside_them(results, tmp_path):
    written = write_all(results, tmp_path, "t", notes=NOTES, title="the title", figures=False)
    assert written.report == tmp_path / "report.html" and written.figures == []
    assert written.paths == [*written.tables.values(), written.report]
    assert set(written.tables) == {"markdown", "json", "classification", "regression"}
    page = written.report.read_text(encoding="utf-8")
    assert "<title>the title</title>" in page and "t_classification.csv" in page
    assert page.count("<table>") == 2 and "<img" not in page
    assert "| efficientnet_lite0 | logistic |" in written.tables["markdown"].read_text()


def _chromium(*arguments: str, home, timeout: float = 90) -> str:
    """Headless Chromium's standard output; killed (with its helper processes) if it hangs."""
    command = [shutil.which("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
               "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars",
               "--mute-audio", f"--user-data-dir={home / 'profile'}", "--virtual-time-budget=5000", *arguments]
    home.mkdir(parents=True, exist_ok=True)
    environment = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home), "XDG_CACHE_HOME": str(home)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"chromium did not finish in {timeout} s: {' '.join(command)}")
    assert process.returncode == 0, err[-3000:]
    return out


# The page in a phone-wide frame (headless Chromium's own window is at least 500 pixels wide), measured
# once laid out with its images decoded; the DOM dump of this wrapper carries the numbers.
MEASURE = """<!DOCTYPE html><html><body style="margin:0">
<iframe id="phone" style="border:0;width:{width}px;height:{height}px" srcdoc="{page}"></iframe>
<script>addEventListener("load", () => {{ const frame = document.getElementById("phone").contentWindow,
  page = frame.document; document.body.dataset.layout = JSON.stringify({{
  page: page.documentElement.scrollWidth, view: frame.innerWidth,
  boxes: [...page.querySelectorAll(".scroll")].map(d => [d.scrollWidth, d.clientWidth]),
  images: [...page.images].map(i => [i.naturalWidth, i.getBoundingClientRect().width])}}); }});</script>
</body></html>"""


@pytest.mark.skipif(shutil.which("chromium") is None, reason=f"no chromium to render report.html: {INSTALL}")
def test_chromium_shows_the_report_on_a_phone(results, report, tmp_path):
    path, _ = report
    screenshot = tmp_path / "phone.png"
    _chromium(f"--window-size={PHONE[0]},{PHONE[1]}", f"--screenshot={screenshot}", path.as_uri(),
              home=tmp_path / "shot")
    with Image.open(screenshot) as image:
        assert image.size == PHONE
        rgb = image.convert("RGB")
        colours = len(rgb.getcolors(maxcolors=1 << 20))
        spread = ImageStat.Stat(rgb.convert("L")).stddev[0]
        dark = sum(rgb.convert("L").point(lambda v: 255 if v < 100 else 0).histogram()[255:])
    assert colours > 200 and spread > 20 and dark > 2000, (colours, spread, dark)  # a blank page: 1 colour, 0, 0

    dom = _chromium(f"--window-size={PHONE[0]},{PHONE[1]}", "--dump-dom", path.as_uri(), home=tmp_path / "dom")
    assert dom.count("<table>") == 2
    for title, rows in titled_tables(results):
        for column in ("Backbone", "Head", *[c for c in ("Accuracy", "CCC V", "Fit (s)") if c in rows[0]]):
            assert re.search(rf"<th( class=\"num\")?>{re.escape(html.escape(column))}</th>", dom), column
    for row in classification_rows(results) + regression_rows(results):
        key = "Accuracy" if "Accuracy" in row else "CCC A"
        assert f'<td class="num">{format_cell(row[key])}</td>' in dom
    assert "<b>" not in dom and "&lt;b&gt;x&lt;/b&gt;" in dom  # shown as text, not bold markup

    measure = tmp_path / "measure.html"
    measure.write_text(MEASURE.format(width=PHONE[0], height=PHONE[1], page=html.escape(path.read_text("utf-8"))),
                       encoding="utf-8")
    wrapper = _chromium("--window-size=800,1000", "--dump-dom", measure.as_uri(), home=tmp_path / "measure")
    layout = json.loads(html.unescape(re.search(r'data-layout="([^"]*)"', wrapper).group(1)))
    assert layout["view"] == PHONE[0] and layout["page"] <= PHONE[0]  # the page itself never scrolls sideways
    assert all(shown <= PHONE[0] for _, shown in layout["boxes"])
    assert any(wide > shown for wide, shown in layout["boxes"])  # the wide table scrolls in its own box
    assert len(layout["images"]) == 2
    assert all(natural > 0 and 0 < shown <= PHONE[0] for natural, shown in layout["images"])  # decoded, fitted
