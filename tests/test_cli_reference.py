"""docs/cli.md, the command-line reference, agrees with the command line.

The page is generated (docs/make_cli.py, typer's own generator); these tests fail when an
option or command changed without regenerating it, and say how to regenerate.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from featcache.cli import app

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "cli.md"
REGENERATE = "python docs/make_cli.py"
HELP_ENV = {"COLUMNS": "200", "TERMINAL_WIDTH": "200", "NO_COLOR": "1"}  # wide: no option name is wrapped


def _make_cli():
    spec = importlib.util.spec_from_file_location("make_cli", ROOT / "docs" / "make_cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands() -> dict:
    """Every command of the app by its call ('featcache', 'featcache extract', ...), groups walked.
    (typer 0.29 carries its own copy of click, hence no isinstance checks against click's classes.)"""
    found = {}

    def walk(command, call: str, parent) -> None:
        found[call] = command
        if hasattr(command, "list_commands"):
            context = typer.Context(command, info_name=call.split()[-1], parent=parent)
            for name in command.list_commands(context):
                walk(command.get_command(context, name), f"{call} {name}", context)

    walk(typer.main.get_command(app), "featcache", None)
    return found


COMMANDS = _commands()


def _section(call: str) -> str:
    """The part of docs/cli.md that documents one command: from its heading to the next heading."""
    text = REFERENCE.read_text()
    heading = re.search(rf"^#+ `{re.escape(call)}`$", text, re.MULTILINE)
    assert heading, f"docs/cli.md has no section for `{call}`: run `{REGENERATE}`"
    following = re.compile(r"^#+ ", re.MULTILINE).search(text, heading.end())
    return text[heading.end():following.start() if following else len(text)]


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def test_reference_is_up_to_date(tmp_path):
    fresh = tmp_path / "cli.md"
    fresh.write_text(_make_cli().render())
    current = REFERENCE.read_text() if REFERENCE.exists() else ""
    if fresh.read_text() != current:
        diff = "".join(list(difflib.unified_diff(current.splitlines(True), fresh.read_text().splitlines(True),
                                                 "docs/cli.md", "regenerated"))[:60])
        pytest.fail(f"docs/cli.md is out of date: run `{REGENERATE}` from the repository root\n{diff}")


@pytest.mark.parametrize("call", sorted(COMMANDS))
def test_reference_lists_every_option_of_the_help(call):
    """Every option and argument `featcache COMMAND --help` prints is in that command's section."""
    command = COMMANDS[call]
    result = CliRunner().invoke(app, [*call.split()[1:], "--help"], env=HELP_ENV, terminal_width=200)
    assert result.exit_code == 0, result.output
    section = _section(call)
    names = []
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            names += [*param.opts, *param.secondary_opts]
        elif param.param_type_name == "argument":
            names.append(param.name)
    names.append("--help")
    printed = [name for name in names if _mentions(result.output, name) or _mentions(result.output, name.upper())]
    assert printed == names, f"`{call} --help` does not print {sorted(set(names) - set(printed))}"
    # Anything that looks like an option in the help, including those named in help texts, is
    # documented; a group's list of commands is left out (the reference shortens those lines).
    own = re.split(r"^\W*Commands\b", result.output, flags=re.MULTILINE)[0]
    printed += re.findall(r"(?<![\w-])--?[a-z][a-z0-9-]*(?![\w-])", own)
    missing = sorted({name for name in printed if not _mentions(section, name)})
    assert not missing, f"docs/cli.md's section on `{call}` lacks {missing}: run `{REGENERATE}`"


def test_reference_documents_every_command_and_no_other():
    documented = re.findall(r"^#+ `(featcache[^`]*)`$", REFERENCE.read_text(), re.MULTILINE)
    assert sorted(documented) == sorted(COMMANDS), f"run `{REGENERATE}`"


def test_reference_holds_nothing_of_this_machine():
    """No absolute path of this machine (home folder, checkout) and no absolute default: a default
    that depends on the machine must be shown by a description (show_default="...")."""
    text = REFERENCE.read_text()
    for local in sorted({str(Path.home()), str(ROOT), os.getcwd(), "/tmp/", "/home/", "/root/", "/work/", "/Users/"}):
        assert local not in text, f"docs/cli.md mentions {local!r}: give that option a show_default= description"
    absolute = re.findall(r"\[default: (?:/|~|[A-Za-z]:\\)[^\]]*\]", text)
    assert not absolute, f"machine-dependent defaults in docs/cli.md: {absolute}"
