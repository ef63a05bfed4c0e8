"""Commands that only list, describe or refuse never import TensorFlow or Keras, and
``featcache backbones`` and ``featcache --help`` answer in under a second.

Each check runs in a fresh interpreter (``sys.executable -c``), since this process may
already hold TensorFlow. Times are taken inside that interpreter, from importing the
command line to the command's end (the interpreter's own start-up is not counted); the
best of up to 3 fresh runs counts, so a busy machine does not fail the test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import featcache
import store_operations as ops

HEAVY = ("tensorflow", "keras")
BUDGET_SECONDS = 1.0

# Runs the typer app on each argv of a JSON list; prints exit codes and the heavy modules loaded.
RUN_COMMANDS = """
import json, sys, time
began = time.perf_counter()
from typer.testing import CliRunner
from featcache.cli import app
codes = [CliRunner().invoke(app, argv).exit_code for argv in json.loads(sys.argv[1])]
print(json.dumps({"codes": codes, "seconds": time.perf_counter() - began,
                  "heavy": [name for name in %r if name in sys.modules]}))
""" % (HEAVY,)

# Reads the registry as the extraction code does before it needs a model.
READ_REGISTRY = """
import json, sys
import featcache.backbones
from featcache.backbones.registry import resolve_weights, weights_fingerprint
spec = featcache.backbones.get_spec("mobilenet_v2")
names = featcache.backbones.list_backbones()
fingerprints = {name: weights_fingerprint(featcache.backbones.get_spec(name), "pretrained") for name in names}
print(json.dumps({"names": len(names), "resolved": resolve_weights(spec, "pretrained"),
                  "fingerprinted": sum(f is not None for f in fingerprints.values()),
                  "heavy": [name for name in %r if name in sys.modules]}))
""" % (HEAVY,)


def run_python(code: str, *args: str) -> dict:
    """The JSON that ``code`` prints, run by a fresh interpreter on this checkout's featcache."""
    environment = {**os.environ, "PYTHONPATH": str(Path(featcache.__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_commands(*argvs: list[str]) -> dict:
    return run_python(RUN_COMMANDS, json.dumps(argvs))


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory) -> Path:
    """A cache with a group, two views and a split, written without TensorFlow."""
    folder = tmp_path_factory.mktemp("startup")
    ops.prepare("split", folder)
    return folder / ops.CACHE


def test_listing_help_info_and_argument_errors_import_neither_tensorflow_nor_keras(small_cache):
    ran = run_commands(["backbones"], ["backbones", "--offline", "efficientnet*"], ["--help"], ["extract", "--help"],
                       ["info", str(small_cache)], ["info", "--json", str(small_cache)],
                       ["extract", "--data", str(small_cache.parent), "--engine", "no_such_engine"])
    assert ran["codes"] == [0, 0, 0, 0, 0, 0, 2]
    assert ran["heavy"] == []


def test_the_registry_resolves_and_fingerprints_weights_without_keras():
    read = run_python(READ_REGISTRY)
    assert read["heavy"] == []
    assert read["names"] >= 40 and read["fingerprinted"] == read["names"]  # every built-in knows its files
    assert read["resolved"] == ["pretrained", "imagenet"]


def best_seconds(*argv: str, tries: int = 3) -> float:
    """The shortest in-process time of ``featcache ARGV`` over up to ``tries`` fresh interpreters."""
    best = float("inf")
    for _ in range(tries):
        ran = run_commands(list(argv))
        assert ran["codes"] == [0] and ran["heavy"] == []
        best = min(best, ran["seconds"])
        if best < BUDGET_SECONDS:
            break
    return best


@pytest.mark.parametrize("argv", [["backbones"], ["--help"]], ids=" ".join)
def test_listing_and_help_answer_within_a_second(argv):
    assert best_seconds(*argv) < BUDGET_SECONDS
