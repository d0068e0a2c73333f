"""risc_tf.archive: a risc_tf .keras file built once, as Keras's loader and a clone build it."""

import json
import zipfile

import keras
import numpy as np
import pytest

import risc_tf.saving as saving
from risc_tf import build_classifier, build_rotnet, rotnet_angles
from risc_tf.archive import batchnorm_config_pairs, load_archive, weight_groups
from risc_tf.fast import batchnorm_pairs
from risc_tf.models import rotnet_head
from tests.test_folding import images, randomize_batchnorm


def _both(path, monkeypatch, **options):
    """The model loaded by risc_tf.archive, and by Keras's loader and a clone."""
    built = saving.load_model(path, **options)
    with monkeypatch.context() as m:
        m.setattr(saving, "load_archive", lambda *a, **k: None)
        cloned = saving.load_model(path, **options)
    return built, cloned


def _config(model) -> str:
    return json.dumps(model.get_config(), sort_keys=True)  # tuples and lists alike


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("kind", ["rotnet", "classifier"])
def test_the_archive_builds_the_model_the_clone_builds(tmp_path, monkeypatch, kind, fold):
    keras.utils.set_random_seed(1)
    model = randomize_batchnorm(
        build_rotnet(backbone="small", angles=tuple(range(0, 360, 30)), head="circular",
                     sigma=10.0) if kind == "rotnet" else build_classifier(3, backbone="small"))
    path = saving.save_model(model, tmp_path / f"{kind}.keras")
    built, cloned = _both(path, monkeypatch, fold_batchnorm=fold)
    assert [type(la) for la in built.layers] == [type(la) for la in cloned.layers]
    assert [la.name for la in built.layers] == [la.name for la in cloned.layers]
    assert _config(built) == _config(cloned)  # initializers included: not left at zeros
    for a, b in zip(built.get_weights(), cloned.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = images()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(built(x)),
                                  keras.ops.convert_to_numpy(cloned(x)))
    if kind == "rotnet":
        assert rotnet_angles(built) == rotnet_angles(model)
        assert rotnet_head(built) == ("circular", 10.0)
    conv = built.get_layer("block1_conv1")
    assert type(conv.kernel_initializer) is type(model.get_layer("block1_conv1").kernel_initializer)


@pytest.mark.slow
def test_a_resnet50_file_is_built_as_the_clone_builds_it(tmp_path, monkeypatch):
    # 177 layers numbered in the weights file: a slip would put a kernel in the wrong layer
    model = randomize_batchnorm(build_classifier(2, backbone="resnet50"))
    path = saving.save_model(model, tmp_path / "resnet50.keras")
    built, cloned = _both(path, monkeypatch, fold_batchnorm=True)
    assert _config(built) == _config(cloned)
    for a, b in zip(built.get_weights(), cloned.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = images()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(built(x)),
                               keras.ops.convert_to_numpy(model(x, training=False)),
                               rtol=1e-4, atol=1e-5)


def _stored(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("config.json"))["config"]


@pytest.mark.parametrize("backbone", ["small", pytest.param("resnet50", marks=pytest.mark.slow)])
def test_pairs_read_from_the_config_are_the_built_model_pairs(tmp_path, backbone):
    model = build_classifier(2, backbone=backbone)
    path = saving.save_model(model, tmp_path / "m.keras")
    plain = keras.models.load_model(path, compile=False)
    pairs = batchnorm_config_pairs(_stored(path))
    assert pairs == batchnorm_pairs(plain) and len(pairs) == (53 if backbone == "resnet50" else 6)


def test_weight_groups_are_numbered_as_keras_saves_them(tmp_path):
    import h5py

    model = build_classifier(2, backbone="small")
    path = saving.save_model(model, tmp_path / "m.keras")
    groups = weight_groups(_stored(path))
    assert groups["block1_conv1"] == "layers/conv2d/vars"
    assert groups["block1_conv2"] == "layers/conv2d_1/vars"
    with zipfile.ZipFile(path) as archive:
        archive.extract("model.weights.h5", tmp_path)
    with h5py.File(tmp_path / "model.weights.h5") as store:
        for layer in keras.models.load_model(path, compile=False).layers:
            if layer.weights:
                stored = store[groups[layer.name]]
                for i, weight in enumerate(layer.weights):
                    np.testing.assert_array_equal(stored[str(i)], weight.numpy())


def test_a_file_the_archive_cannot_read_exactly_goes_to_keras(tmp_path, monkeypatch):
    import risc_tf.archive as archive

    model = build_classifier(2, backbone="small")
    path = saving.save_model(model, tmp_path / "m.keras")
    meta = saving.read_metadata(path)
    real = archive.weight_groups
    # weights looked for where they are not: None, not a model with zeros in it
    monkeypatch.setattr(archive, "weight_groups",
                        lambda config: {k: "layers/nowhere/vars" for k in real(config)})
    assert load_archive(path, meta) is None
    loaded = saving.load_model(path)  # Keras's loader and a clone
    x = images()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-6)
    # the weights of a layer in another layer's place (same count, another shape): None
    monkeypatch.setattr(archive, "weight_groups", lambda config: {
        **real(config), "block1_conv1": real(config)["block2_conv1"]})
    assert load_archive(path, meta) is None


@pytest.mark.parametrize("config", [b"{not json", b"[1, 2]"])
def test_a_broken_file_still_gets_keras_s_error(tmp_path, config):
    model = build_classifier(2, backbone="small")
    path = saving.save_model(model, tmp_path / "m.keras")
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, config if name == "config.json" else data)
    with pytest.raises(ValueError, match="could not load the model in .*broken.keras"):
        saving.load_model(broken)
