import keras
import numpy as np
import pytest

from risc_tf import (
    RotationOutput,
    build_classifier,
    build_rotnet,
    model_image_size,
    rotnet_angles,
)
from risc_tf.backbones import small_backbone
from risc_tf.models import normalization_weights


def test_small_rotnet_is_flat_with_three_fc_layers(tmp_path):
    model = build_rotnet(angles=range(0, 360, 45), backbone="small")
    assert model.output_shape == (None, 8)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)
             and layer.name != "input_normalization"]
    assert [d.units for d in dense] == [512, 256, 8]
    assert rotnet_angles(model) == tuple(45.0 * i for i in range(8))
    assert model_image_size(model) == 32
    path = tmp_path / "rotnet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert rotnet_angles(loaded) == rotnet_angles(model)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    assert np.array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_classifier_outputs_probabilities():
    model = build_classifier(5, input_shape=(16, 16, 3), backbone="small", dropout=0.2)
    x = np.random.default_rng(0).random((3, 16, 16, 3)).astype("float32")
    p = model.predict(x, verbose=0)
    assert p.shape == (3, 5) and np.allclose(p.sum(1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="records no rotation angles"):
        rotnet_angles(model)


def _normalization(model):
    layer = model.get_layer("input_normalization")
    assert type(layer) is keras.layers.Dense and not layer.trainable  # stock, frozen
    return [w.tolist() for w in layer.get_weights()]


def test_normalisation_follows_weights_and_is_a_frozen_stock_layer():
    unit = [w.tolist() for w in normalization_weights("unit")]
    assert _normalization(build_classifier(2, backbone="small")) == unit
    m = build_classifier(2, backbone="small", normalization="tf")
    assert _normalization(m) == [w.tolist() for w in normalization_weights("tf")]


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_normalisation_matches_keras_applications(mode):
    x = np.random.default_rng(0).random((2, 8, 8, 3)).astype(np.float32)
    w, b = normalization_weights(mode)
    ref = keras.applications.imagenet_utils.preprocess_input(x * 255.0, mode=mode)
    np.testing.assert_allclose(x @ w + b, ref, atol=1e-4)


def test_numpy_integers_are_ints():
    model = build_classifier(np.int64(2), (np.int64(16), 16, 3), backbone="small")
    assert model.output_shape == (None, 2) and model_image_size(model) == 16


def test_classifier_starts_from_a_rotnet_backbone():
    keras.utils.set_random_seed(0)
    rotnet = build_rotnet((16, 16, 3), backbone="small", hidden_units=(8, 8))
    clf = build_classifier(3, (16, 16, 3), backbone="small", weights=rotnet)
    for name in ("input_normalization", "block1_conv1", "block3_bn2"):
        for a, b in zip(clf.get_layer(name).get_weights(), rotnet.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    probe = build_classifier(3, (16, 16, 3), backbone="small", weights=rotnet,
                             freeze_backbone=True)
    trainable = {v.path.split("/")[0] for v in probe.trainable_variables}
    assert trainable == {"predictions"}  # a linear probe
    rotnet.get_layer("block1_conv1").kernel.assign(
        rotnet.get_layer("block1_conv1").kernel * 0.0)  # the copy is a copy
    assert np.abs(clf.get_layer("block1_conv1").get_weights()[0]).sum() > 0


@pytest.mark.parametrize("weights, message", [
    ("other size", "input 16x16, but the classifier has backbone 'small' and input 32x32"),
    ("not a rotnet", "must be a RotNet"),
])
def test_rotnet_initialisation_is_checked(weights, message):
    rotnet = build_rotnet((16, 16, 3), backbone="small", hidden_units=(8, 8))
    source = rotnet if weights == "other size" else build_classifier(2, (32, 32, 3),
                                                                     backbone="small")
    with pytest.raises(ValueError, match=message):
        build_classifier(3, (32, 32, 3), backbone="small", weights=source)
    with pytest.raises(ValueError, match="freeze_backbone=True needs pretrained weights"):
        build_classifier(3, backbone="small", freeze_backbone=True)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"backbone": "resnet18"}, "unknown backbone"),
        ({"input_shape": (32, 32, 1)}, r"\(S, S, 3\)"),
        ({"input_shape": (32, 28, 3)}, r"\(S, S, 3\)"),
        ({"input_shape": (16, 16, 3), "backbone": "resnet50"}, "at least 32x32"),
        ({"weights": "/nonexistent/w.h5"}, "not an existing file"),
        ({"weights": "imagenet", "backbone": "small"}, "no ImageNet weights"),
        ({"normalization": "bgr", "backbone": "small"}, "normalization must be"),
        ({"dropout": 1.0, "backbone": "small"}, "dropout"),
    ],
)
def test_classifier_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_classifier(2, **kwargs)


@pytest.mark.parametrize("n", [1, 0, 2.0, True])
def test_num_classes_is_validated(n):
    with pytest.raises(ValueError, match="num_classes"):
        build_classifier(n, backbone="small")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"angles": (0, 360)}, "same rotation"),
        ({"angles": tuple(range(0, 360, 2))}, "too fine for 32x32"),
        ({"hidden_units": (512,)}, "hidden_units"),
        ({"hidden_units": (512, 0)}, "hidden_units"),
    ],
)
def test_rotnet_arguments_are_validated(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_rotnet(backbone="small", **kwargs)


def test_rotation_output_config_round_trip():
    layer = RotationOutput((0, 90, 180), name="rotation")
    clone = RotationOutput.from_config(layer.get_config())
    assert clone.angles == (0.0, 90.0, 180.0) and clone.units == 3


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Skipping nested container")
def test_resnet50_classifier_loads_a_local_weights_file(tmp_path):
    """The paper's backbone, initialised from a weights file of the bare keras backbone."""
    keras.utils.set_random_seed(1)
    bare = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(32, 32, 3))
    path = tmp_path / "resnet50_notop.weights.h5"
    bare.save_weights(path)
    model = build_classifier(3, weights=path)
    assert "resnet50" in model.name and len(model.layers) > 170
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert _normalization(model) == [w.tolist() for w in normalization_weights("caffe")]
    for name in ("conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_bn"):
        got, want = model.get_layer(name).get_weights(), bare.get_layer(name).get_weights()
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    # a file of another architecture is a clear error
    other = tmp_path / "small.weights.h5"
    small_backbone(input_shape=(32, 32, 3)).save_weights(other)
    with pytest.raises(ValueError, match="could not load weights file"):
        build_rotnet(weights=other)
