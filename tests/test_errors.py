"""One error base class: every error featcache raises for a user's mistake is a FeatcacheError, which
the command line prints as one line (exit 2); anything else is a bug and keeps its traceback."""

import importlib
import inspect
import pkgutil

import pytest
from typer.testing import CliRunner

import featcache
import featcache.experiment
from featcache.cli import app
from featcache.errors import FeatcacheError, UsageError


def featcache_modules():
    for module in pkgutil.walk_packages(featcache.__path__, "featcache."):
        if module.name.endswith(("ray_engine", "__main__")):
            continue  # Ray is optional; its errors are EngineErrors defined elsewhere
        yield importlib.import_module(module.name)


def test_every_error_class_featcache_defines_is_a_featcache_error():
    defined = {obj for module in featcache_modules() for _, obj in inspect.getmembers(module, inspect.isclass)
               if issubclass(obj, BaseException) and not issubclass(obj, Warning)  # warnings are not errors
               and obj.__module__.startswith("featcache")}
    assert len(defined) >= 10
    assert [cls.__name__ for cls in defined if not issubclass(cls, FeatcacheError)] == []
    assert issubclass(UsageError, ValueError)  # `except ValueError` keeps working for library callers


def test_a_user_error_is_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--cache", str(tmp_path / "none.h5"), "--backbones", "x"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("featcache: error: ") and "none.h5: no such cache file" in lines[0]


def test_an_unknown_head_is_a_user_error_naming_the_choices(tmp_path):
    with pytest.raises(UsageError, match="unknown head 'dense'; choose one of keras_dense, logistic"):
        featcache.experiment.compare(tmp_path / "none.h5", ["x"], ["dense"])


def test_a_programming_error_keeps_its_traceback(monkeypatch, tmp_path):
    def broken(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")  # a bug, not a user's mistake

    monkeypatch.setattr(featcache.experiment, "compare", broken)
    result = CliRunner().invoke(app, ["compare", "--cache", str(tmp_path / "c.h5"), "--backbones", "x"])
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
    assert "featcache: error:" not in result.output
