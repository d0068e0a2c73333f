import keras
import numpy as np
import pytest

from risc_tf import (
    BACKBONES,
    InputNormalization,
    RotationOutput,
    build_classifier,
    build_rotnet,
    model_image_size,
    rotnet_angles,
)


def test_small_rotnet_is_flat_with_three_fc_layers(tmp_path):
    model = build_rotnet(angles=range(0, 360, 45), backbone="small")
    assert model.output_shape == (None, 8)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
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
    with pytest.raises(ValueError, match="not a RotNet"):
        rotnet_angles(model)


def test_normalisation_follows_weights():
    assert build_classifier(2, backbone="small").get_layer("input_normalization").mode == "unit"
    m = build_classifier(2, backbone="small", normalization="tf")
    assert m.get_layer("input_normalization").mode == "tf"


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
    assert isinstance(model.layers[1], InputNormalization) and model.layers[1].mode == "caffe"
    for name in ("conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_bn"):
        got, want = model.get_layer(name).get_weights(), bare.get_layer(name).get_weights()
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
    # a file of another architecture is a clear error
    other = tmp_path / "small.weights.h5"
    BACKBONES["small"][0](input_shape=(32, 32, 3)).save_weights(other)
    with pytest.raises(ValueError, match="could not load weights file"):
        build_rotnet(weights=other)
