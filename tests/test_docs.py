"""The documentation: README.md and docs/*.md link only to what exists, their tables of measured
figures are those docs/tables.py writes from benchmarks/results/*.json, and the README stays short.

docs/cli.md is generated and tested on its own (tests/test_cli_reference.py); here it is only a
link target.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED_ELSEWHERE = {"cli.md"}
PAGES = [ROOT / "README.md", *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in GENERATED_ELSEWHERE)]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^(```|~~~)")


def tables_module():
    spec = importlib.util.spec_from_file_location("docs_tables", ROOT / "docs" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(re.sub(r"`[^`]*`", "", line))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but hyphens and underscores dropped,
    spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, numbered like GitHub's for repeated headings."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        match = None if fenced else re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if match:
            base = slug(match.group(1))
            found.add(base if base not in counts else f"{base}-{counts[base]}")
            counts[base] = counts.get(base, 0) + 1
    return found


def links(path: Path) -> list[str]:
    return [target for line in prose_lines(path.read_text()) for target in LINK.findall(line)]


def test_the_pages_exist():
    names = {path.name for path in PAGES}
    assert {"README.md", "index.md"} <= names
    assert len(PAGES) > 5, "the docs/ pages are missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:, ...
            continue
        file_part, _, anchor = target.partition("#")
        linked = (page.parent / file_part).resolve() if file_part else page
        if not linked.exists():
            broken.append(f"{target}: no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked}")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n  " + "\n  ".join(broken)


def test_the_docs_link_every_page_from_the_index():
    index = {Path(target.partition("#")[0]).name for target in links(ROOT / "docs" / "index.md")}
    pages = {path.name for path in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= index, f"pages missing from docs/index.md: {sorted(pages - index)}"


def test_the_tables_are_current_with_the_results():
    assert tables_module().main(["--check"]) == 0, "run: python docs/tables.py"


def test_every_registered_table_is_used_once():
    tables = tables_module()
    used = [match.group(2) for path in tables.documents() for match in tables.REGION.finditer(path.read_text())]
    assert sorted(used) == sorted(tables.TABLES), "each table of docs/tables.py appears exactly once"


def test_check_names_a_stale_table_and_rewriting_fixes_it(tmp_path):
    tables = tables_module()
    text = "intro\n<!-- table: startup -->\n| typed by hand |\n<!-- /table -->\nend\n"
    rendered, changed = tables.render(text, tables.RESULTS)
    assert changed == ["startup"]
    assert rendered.startswith("intro\n<!-- table: startup -->\nFrom `benchmarks/results/startup.json`")
    assert rendered.endswith("<!-- /table -->\nend\n")
    assert tables.render(rendered, tables.RESULTS) == (rendered, [])
    with pytest.raises(KeyError, match="unknown table 'nothing'"):
        tables.render("<!-- table: nothing -->\n<!-- /table -->\n", tables.RESULTS)


def test_the_extraction_table_takes_the_openvino_loop_when_measured(tmp_path):
    """extract_speed.json rows may carry the OpenVINO float32 loop and bf16's speed-up over it."""
    tables = tables_module()
    results = tmp_path / "results"
    shutil.copytree(tables.RESULTS, results)
    data = json.loads((results / "extract_speed.json").read_text())
    for row in data["rows"]:
        row["featcache_openvino_loop_img_s"] = 123.4
        row["bf16_loop_speedup_over_openvino"] = 1.5
    (results / "extract_speed.json").write_text(json.dumps(data))
    table = tables.TABLES["extract_speed"](results)
    assert "bf16 / OpenVINO float32 loop" in table and "bf16 / auto's float32 loop" in table
    body = [line for line in table.splitlines() if line.startswith(f"| {data['rows'][0]['backbone']} |")]
    assert body and "| 123.4 |" in body[0] and "| 1.50x |" in body[0]


def command_lines() -> list[tuple[str, str]]:
    """(page, command line) for every `featcache ...` line of the shell blocks, continuations joined;
    a synopsis with [optional] parts or a|b choices is left out."""
    found = []
    for page in PAGES:
        block, fenced, pending = None, False, ""
        for line in page.read_text().splitlines():
            if FENCE.match(line.strip()):
                fenced, block = not fenced, line.strip().strip("`~") if not fenced else None
                continue
            if not fenced or block not in ("bash", "sh", ""):
                continue
            pending += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
            if line.rstrip().endswith("\\"):
                continue
            if pending.startswith("featcache ") and not re.search(r"\[-|\w+\|\w", pending):
                found.append((str(page.relative_to(ROOT)), pending))
            pending = ""
    return found


@pytest.mark.parametrize("page, line", command_lines(), ids=lambda value: value[:70])
def test_documented_commands_parse(page, line):
    """Each command line of the docs names a real command and real options with valid values
    (parsed by the command line itself, not run)."""
    import typer.main

    from featcache.cli import app

    args = shlex.split(line, comments=True)[1:]
    group = typer.main.get_command(app)
    context = typer.Context(group, info_name="featcache")
    command = group.get_command(context, args[0])
    assert command is not None, f"{page}: no command {args[0]!r} in: {line}"
    command.make_context(args[0], args[1:], parent=context)  # raises on an unknown option or a bad value


def test_the_readme_gives_the_two_commands():
    """`make demo` and `make test` head the README, and the Makefile has both targets."""
    readme, makefile = (ROOT / "README.md").read_text(), (ROOT / "Makefile").read_text()
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", readme, re.S))
    for target in ("demo", "test"):
        assert re.search(rf"^make {target}\b", blocks, re.M), f"README.md: no `make {target}` command"
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile: no {target} target"


def test_the_readme_is_short():
    lines = (ROOT / "README.md").read_text().count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move detail to docs/"
