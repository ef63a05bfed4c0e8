"""Settings and module fixtures shared by the shard and Ray tests (tests/scale): import them
into a test module (a conftest there would shadow the heads tests' ``from conftest import``)."""

import pytest

import featcache
from imagegen import make_affectnet_tree

FACE = "fer_minixception"  # 64 px and 58k parameters: fast enough for every test
# One image per batch: a shard boundary changes which images share a batch, and the model's
# last float bit depends on that (about 1e-8); alone, every image gives the same bits.
OPTIONS = {"weights": None, "batch_size": 1, "engine": "tensorflow"}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_affectnet_tree(tmp_path_factory.mktemp("data") / "faces", n=20, seed=11)


@pytest.fixture(scope="module")
def whole(faces, tmp_path_factory):
    """The plain, unsharded extraction the sharded ones must equal."""
    out = tmp_path_factory.mktemp("whole") / "faces.h5"
    featcache.extract(faces.root, FACE, out, **OPTIONS)
    return out
