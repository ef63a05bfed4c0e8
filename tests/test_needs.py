"""The ``needs`` marker of tests/conftest.py: a skip on a developer's machine, a failure in `make test`."""

from pathlib import Path

pytest_plugins = ["pytester"]

TESTS = """
import pytest

@pytest.mark.needs(False, "the weights are not unpacked in /nowhere: make human-models")
def test_missing():
    pass

@pytest.mark.needs(True, "never said")
def test_present():
    pass
"""


def test_a_missing_need_skips_and_under_make_test_fails(pytester, monkeypatch):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(TESTS)
    monkeypatch.delenv("FEATCACHE_REQUIRE_SETUP", raising=False)
    skipped = pytester.runpytest("-rs", "-p", "no:cacheprovider")
    skipped.assert_outcomes(passed=1, skipped=1)
    skipped.stdout.fnmatch_lines(["*SKIPPED*the weights are not unpacked in /nowhere: make human-models*"])

    monkeypatch.setenv("FEATCACHE_REQUIRE_SETUP", "1")
    failed = pytester.runpytest("-p", "no:cacheprovider")
    failed.assert_outcomes(passed=1, errors=1)
    assert failed.ret != 0
    failed.stdout.fnmatch_lines(["*the weights are not unpacked in /nowhere: make human-models "
                                 "(FEATCACHE_REQUIRE_SETUP=1, as in `make test`*"])
