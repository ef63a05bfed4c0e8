"""The distribution's shape: import direction between packages, and the console script."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import featcache
from featcache.cli import app

FORBIDDEN = {
    "metrics": ("featcache", "heads", "sklearn", "scipy", "tensorflow", "keras", "h5py"),
    "heads": ("featcache",),
}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_import_direction(package):
    code = (
        f"import sys, {package}\n"
        f"bad = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN[package]!r}))\n"
        "print(','.join(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{package} imports {result.stdout.strip()}"


def test_cli_version_and_help():
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.strip() == f"featcache {featcache.__version__}"
    assert featcache.__version__ == "0.1.0"
    help_text = runner.invoke(app, ["--help"])
    assert help_text.exit_code == 0 and "Usage: featcache" in help_text.output and "--version" in help_text.output


def test_console_script_is_installed():
    executable = Path(sys.executable).parent / "featcache"
    script = subprocess.run([str(executable), "--version"], capture_output=True, text=True)
    assert script.returncode == 0 and script.stdout.startswith("featcache ")


def test_import_featcache_does_not_start_tensorflow():
    code = "import sys, featcache; featcache.__version__; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_cli_lists_backbones_and_fails_in_one_line():
    runner = CliRunner()
    listing = runner.invoke(app, ["backbones", "efficientnet_lite*", "--offline"])
    assert listing.exit_code == 0
    lines = listing.output.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    assert "1280" in lines[1] and "lite" in lines[1]
    missing = runner.invoke(app, ["backbones", "nothing*"])
    assert missing.exit_code == 2
    assert missing.output.strip() == "featcache: error: no backbone matches 'nothing*'; try 'featcache backbones' for all"


def _imports(path: Path) -> set[str]:
    """Modules a source file imports (relative imports resolved against featcache)."""
    import ast

    package = ".".join(path.relative_to(Path(featcache.__file__).parent.parent).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            found.add(".".join(part for part in (base, node.module or "") if part))
    return found


def test_the_store_alone_knows_the_cache_format():
    """Only featcache/store opens HDF5 files; the store builds on errors and files alone."""
    root = Path(featcache.__file__).parent
    for path in root.rglob("*.py"):
        imported = _imports(path)
        if path.parent.name == "store":
            outside = {m for m in imported if m.startswith("featcache") and not m.startswith("featcache.store")}
            assert outside <= {"featcache.errors", "featcache.files"}, f"{path} imports {sorted(outside)}"
        else:
            assert "h5py" not in imported, f"{path} opens HDF5 itself; go through featcache.store"


def test_the_declared_scikit_learn_floor_is_the_one_the_heads_need():
    """The heads use validate_data and __sklearn_tags__ (scikit-learn 1.6): an older floor would
    let pip install a version they fail on."""
    import re
    import tomllib

    from sklearn.utils.validation import validate_data  # noqa: F401  (the API the floor is for)

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    floor = next(re.fullmatch(r"scikit-learn>=([\d.]+)", spec.split(";")[0].strip()).group(1)
                 for spec in project["dependencies"] if spec.startswith("scikit-learn"))
    assert tuple(int(part) for part in floor.split(".")[:2]) >= (1, 6)
    used = {path.name for path in (Path(__file__).parents[1] / "heads").glob("*.py")
            if "validate_data" in path.read_text() or "__sklearn_tags__" in path.read_text()}
    assert used, "no head uses the 1.6 APIs any more: the floor may be lowered"


@pytest.mark.skipif(not os.environ.get("SKLEARN_FLOOR"), reason="only in `make test-floor`, which sets SKLEARN_FLOOR")
def test_the_floor_run_imports_the_floor_version():
    """`make test-floor` runs the heads' tests on the floor of pyproject.toml, not the venv's newer scikit-learn."""
    import sklearn

    floor = [int(part) for part in os.environ["SKLEARN_FLOOR"].split(".")]
    installed = [int(part) for part in sklearn.__version__.split(".")[:len(floor)]]
    assert installed == floor, f"scikit-learn {sklearn.__version__} imported, the floor is {os.environ['SKLEARN_FLOOR']}"
