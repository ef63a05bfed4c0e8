"""Write docs/cli.md, the reference of every ``featcache`` command, with typer's own generator.

    python docs/make_cli.py            # regenerate docs/cli.md (from any folder)
    python docs/make_cli.py --check    # exit 1, changing nothing, if docs/cli.md is out of date

The page is the output of ``python -m typer --app app featcache.cli utils docs --name featcache``,
run from the repository root so that it documents this checkout's featcache/cli.py, under a
header saying how it is made. typer's generator reads the click parameters, not a terminal, so
the page does not depend on the width of the terminal it is run from; COLUMNS is pinned anyway.
tests/test_cli_reference.py fails when the page and the command line disagree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "cli.md"
COMMAND = "python docs/make_cli.py"
GENERATOR = [sys.executable, "-m", "typer", "--app", "app", "featcache.cli", "utils", "docs", "--name", "featcache"]
HEADER = (f"<!-- Generated from featcache/cli.py by typer's docs generator: do not edit by hand.\n"
          f"     Regenerate: `{COMMAND}` (with --check: only say whether it is out of date). -->\n\n")


def render() -> str:
    """The text docs/cli.md should hold for the command line as it is now."""
    env = dict(os.environ, COLUMNS="80", TERMINAL_WIDTH="80", TF_CPP_MIN_LOG_LEVEL="2")
    generated = subprocess.run(GENERATOR, cwd=ROOT, env=env, capture_output=True, text=True)
    if generated.returncode != 0:
        raise RuntimeError(f"{' '.join(GENERATOR[1:])} failed:\n{generated.stderr}")
    return HEADER + generated.stdout.strip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = REFERENCE.read_text() if REFERENCE.exists() else ""
        if current != text:
            print(f"{REFERENCE.relative_to(ROOT)} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    REFERENCE.write_text(text)
    print(f"wrote {REFERENCE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
