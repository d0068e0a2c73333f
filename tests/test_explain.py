"""risc_tf.explain: shapes, ranges, layer choice and errors, overlay, figures, CLI."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from risc_tf import RISCPipeline, build_classifier, build_rotnet
from risc_tf.cli import main
from risc_tf.explain import (
    CAM,
    METHODS,
    classifier_heatmaps,
    classifier_rotation_figure,
    default_layer,
    layer_figure,
    layer_heatmaps,
    overlay,
    resolve_layer,
    risc_figure,
    rotnet_heatmaps,
    rotnet_rotation_figure,
    stage_layers,
)
from risc_tf.explain.cam import logit_model, model_input, predict_proba
from risc_tf.explain.methods import engine
from risc_tf.figures import save_figure
from risc_tf.inputs import run_in_batches
from tests.conftest import DATA_ROOT, requires_data


def _max_n(method):
    return 8 if method == "scorecam" else None


@pytest.fixture(scope="module")
def clf():
    keras.utils.set_random_seed(1)  # a CAM of an untrained model can be all 0 for some seeds
    return build_classifier(3, backbone="small")


@pytest.fixture(scope="module")
def rotnet():
    return build_rotnet(backbone="small")


@pytest.fixture(scope="module")
def resnet():
    return build_classifier(2)  # ResNet50 at 32x32, untrained: layer choice only


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, size=(4, 28, 28), dtype=np.uint8)


# -- shapes and ranges ----------------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_heatmaps_shape_and_range(clf, images, method):
    maps = classifier_heatmaps(clf, images, method=method, max_n=_max_n(method))
    assert maps.shape == (4, 28, 28) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert np.allclose(maps.max(axis=(1, 2)), 1.0)  # min-max scaled, not constant here


@pytest.mark.parametrize(
    "form, expected",
    [
        (lambda x: x[0], (28, 28)),  # one grayscale image
        (lambda x: x[..., None].astype(np.float32) / 255, (4, 28, 28)),
        (lambda x: x[:2, :20, :], (2, 20, 28)),  # non-square batch
        (lambda x: np.stack([x[:3]] * 3, axis=-1), (3, 28, 28)),  # RGB uint8
    ],
)
def test_heatmaps_any_input_form_at_input_resolution(clf, images, form, expected):
    maps = classifier_heatmaps(clf, form(images))
    assert maps.shape == expected
    assert 0.0 <= maps.min() and maps.max() <= 1.0


def test_invalid_images_are_rejected(clf):
    with pytest.raises(ValueError, match="float images must lie in"):
        classifier_heatmaps(clf, np.full((2, 28, 28), 2.0, np.float32))


def test_given_class_changes_the_map_and_is_validated(clf, images):
    a = classifier_heatmaps(clf, images, class_index=0)
    b = classifier_heatmaps(clf, images, class_index=[1, 1, 1, 1])
    assert not np.allclose(a, b)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 3\)"):
        classifier_heatmaps(clf, images, class_index=3)
    with pytest.raises(ValueError, match="one per image"):
        classifier_heatmaps(clf, images, class_index=[0, 1])


def test_predicted_class_is_the_default(clf, images):
    predicted = predict_proba(clf, images).argmax(axis=1)
    assert predicted.shape == (4,)
    cam = CAM(clf)
    assert np.allclose(cam(images), cam(images, predicted))


def test_rotnet_heatmaps_predicted_and_given_angle(rotnet, images):
    maps = rotnet_heatmaps(rotnet, images)
    assert maps.shape == (4, 28, 28) and 0.0 <= maps.min() and maps.max() <= 1.0
    at_90 = rotnet_heatmaps(rotnet, images, angle=90)
    per_image = rotnet_heatmaps(rotnet, images, angle=[90, -270, 450, 90.0])
    assert np.allclose(at_90, per_image)
    assert not np.allclose(at_90, rotnet_heatmaps(rotnet, images, angle=180))
    with pytest.raises(ValueError, match=r"angle \[45.0\] not in the RotNet's angle set"):
        rotnet_heatmaps(rotnet, images, angle=45)


def test_logit_view_shares_weights_and_drops_softmax(clf, images):
    x = np.random.default_rng(1).random((3, 32, 32, 3)).astype(np.float32)
    logits = logit_model(clf)([x]).numpy()  # tf-keras-vis calls it with a list
    softmax = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, clf(x).numpy(), rtol=1e-5, atol=1e-6)


def test_cam_batches_through_the_one_batching_loop(clf, images):
    # 4 images in batches of 3 (a full and a partial batch) give the maps of one batch
    targets = np.array([0, 1, 2, 1])
    np.testing.assert_allclose(CAM(clf, batch_size=3)(images, targets),
                               CAM(clf, batch_size=32)(images, targets), atol=1e-5)


def test_run_in_batches_slices_a_tuple_of_arrays_together():
    x, t = np.arange(10.0), np.arange(10) * 100
    seen = []

    def graph(a, b):
        seen.append(len(a))
        return a + tf.cast(b, a.dtype)

    np.testing.assert_array_equal(run_in_batches(graph, (x, t), 4), x + t)
    assert seen == [4, 4, 2]
    np.testing.assert_array_equal(run_in_batches(lambda a: 2 * a, x, 3), 2 * x)  # one array
    with pytest.raises(ValueError, match=r"one length; got lengths \[10, 9\]"):
        run_in_batches(graph, (x, t[:9]), 4)
    with pytest.raises(ValueError, match=r"got lengths \[\]"):
        run_in_batches(graph, (), 4)


# -- layer choice -----------------------------------------------------------------------
def test_default_and_stage_layers_resnet50(resnet):
    assert [layer.name for layer in stage_layers(resnet)] == [
        "conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
        "conv5_block3_out",
    ]
    assert default_layer(resnet).name == "conv3_block4_out"
    assert tuple(default_layer(resnet).output.shape[1:3]) == (4, 4)
    assert default_layer(resnet, min_side=2).name == "conv4_block6_out"


def test_default_layer_small(clf):
    assert default_layer(clf).name == "block3_relu2"
    assert CAM(clf).layer.name == "block3_relu2"


def test_named_block_output_is_not_swapped_for_a_conv(clf, images):
    # tf-keras-vis' seek_penultimate_conv_layer would turn block3_relu2 into block3_conv2.
    relu = CAM(clf, layer="block3_relu2")
    conv = CAM(clf, layer="block3_conv2")
    assert relu.layer.name == "block3_relu2"
    assert not np.allclose(relu(images, 0), conv(images, 0))


def test_one_by_one_layer_warns_and_is_constant(resnet, images):
    with pytest.warns(UserWarning, match="1x1 output"):
        cam = CAM(resnet, layer="conv5_block3_out")
    assert np.all(cam(images[:2]) == 0.0)


@pytest.mark.parametrize(
    "name, message",
    [
        ("block9_conv1", "has no layer named 'block9_conv1'"),
        ("avg_pool", "'avg_pool' .* is not a convolutional feature layer"),
        ("predictions", "'predictions' .* is not a convolutional feature layer"),
        ("input_normalization", "before the first convolution"),
        ("image", "before the first convolution"),
    ],
)
def test_bad_layer_is_a_clear_error(clf, images, name, message):
    with pytest.raises(ValueError, match=message):
        classifier_heatmaps(clf, images, layer=name)


def test_layer_from_another_model_is_rejected(clf, rotnet):
    with pytest.raises(ValueError, match="not a layer of model"):
        resolve_layer(clf, rotnet.get_layer("block3_relu2"))
    with pytest.raises(ValueError, match="layer must be a layer name"):
        resolve_layer(clf, 3)


def test_resnet_padding_layer_is_rejected(resnet):
    with pytest.raises(ValueError, match="a padding layer"):
        resolve_layer(resnet, "pool1_pad")


def test_method_table_names_the_tf_keras_vis_class_of_each_method():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.scorecam import Scorecam

    assert [engine(m) for m in METHODS] == [Gradcam, GradcamPlusPlus, Scorecam]
    with pytest.raises(ValueError, match="method must be one of"):
        engine("lime")


def test_method_and_option_errors(clf):
    with pytest.raises(ValueError, match="method must be one of"):
        CAM(clf, method="lime")
    with pytest.raises(ValueError, match="max_n is a Score-CAM option"):
        CAM(clf, method="gradcam", max_n=4)
    with pytest.raises(ValueError, match="max_n must be an int >= 1"):
        CAM(clf, method="scorecam", max_n=0)
    assert CAM(clf, method="scorecam", max_n=10_000).max_n == 128  # capped at the channel count
    assert CAM(clf, method="scorecam", max_n=np.int64(4), batch_size=np.int64(8)).max_n == 4
    with pytest.raises(ValueError, match="fill must be one of"):
        CAM(clf, fill="wrap")


def test_circle_fill_masks_what_the_cam_sees(clf, images):
    plain = classifier_heatmaps(clf, images, class_index=0)
    masked = classifier_heatmaps(clf, images, class_index=0, fill="circle")
    assert not np.allclose(plain, masked)  # the CAM saw the masked images


def test_cam_never_modifies_the_callers_model():
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D()])  # no softmax head
    predict = model.predict
    CAM(model, method="scorecam", layer=model.layers[0].name)
    assert model.predict == predict


def test_layer_heatmaps_same_targets_every_layer(clf, images):
    names = [layer.name for layer in stage_layers(clf)]
    maps = layer_heatmaps(clf, images, names, targets=1)
    assert list(maps) == names
    assert all(m.shape == (4, 28, 28) for m in maps.values())


def _corner_model() -> keras.Model:
    """Class 0 when the mean intensity is above 0.15, else class 1 (a 1x1 conv, then the mean)."""
    inputs = keras.Input((32, 32, 3), name="image")
    conv = keras.layers.Conv2D(2, 1, name="conv")
    dense = keras.layers.Dense(2, activation="softmax", name="out")
    outputs = dense(keras.layers.GlobalAveragePooling2D()(conv(inputs)))
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((1, 1, 3, 2), np.float32)
    kernel[..., 0] = 1 / 3  # channel 0: the intensity; channel 1: the constant 0.15
    conv.set_weights([kernel, np.array([0.0, 0.15], np.float32)])
    dense.set_weights([20 * np.eye(2, dtype=np.float32), np.zeros(2, np.float32)])
    return model


def test_layer_heatmaps_predict_the_targets_on_what_the_model_sees():
    # white corners outside the field of view: class 0 as given, class 1 once "circle"
    # masks them, so the default targets must be predicted on the masked images
    model = _corner_model()
    x = np.full((2, 32, 32), 25, np.uint8)
    rows, cols = np.mgrid[:32, :32]
    x[:, (rows - 15.5) ** 2 + (cols - 15.5) ** 2 > 16**2] = 255
    assert predict_proba(model, x).argmax(1).tolist() == [0, 0]
    maps = layer_heatmaps(model, x, ["conv"], fill="circle")["conv"]
    expected = CAM(model, layer="conv", fill="circle")(x)
    assert expected.max() == 0.0  # class 1's map is constant here
    np.testing.assert_array_equal(maps, expected)


# -- overlay ---------------------------------------------------------------------------
def test_overlay_blends_and_validates(images):
    maps = np.linspace(0, 1, 4 * 28 * 28, dtype=np.float32).reshape(4, 28, 28)
    out = overlay(images, maps)
    assert out.shape == (4, 28, 28, 3) and out.dtype == np.uint8
    assert np.array_equal(overlay(images, maps, alpha=0.0)[..., 0], images)
    assert overlay(images[0], maps[0]).shape == (28, 28, 3)
    assert overlay(images, maps[:, ::4, ::4]).shape == (4, 28, 28, 3)  # coarse maps resized
    with pytest.raises(ValueError, match="N = 4 images"):
        overlay(images, maps[:2])
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        overlay(images, maps * 2)
    with pytest.raises(ValueError, match="unknown matplotlib colormap"):
        overlay(images, maps, cmap="nope")


# -- figures ------------------------------------------------------------------------------
def _png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < 300_000


def test_figures_are_written(clf, rotnet, images, tmp_path):
    clf2 = build_classifier(2, backbone="small")
    fig = classifier_rotation_figure(clf2, images[:2], class_names={"0": "a", "1": "b"},
                                     path=tmp_path / "fig4.png")
    assert len(fig.axes) == 2 * 2 * 4
    _png(tmp_path / "fig4.png")
    fig = rotnet_rotation_figure(rotnet, images[0], method="gradcam++", path=tmp_path / "f5.png")
    assert len(fig.axes) == 2 * 4
    assert fig.axes[4].get_title().startswith("pred ")
    _png(tmp_path / "f5.png")
    pipe = RISCPipeline(rotnet, clf2)
    fig = risc_figure(pipe, images[:3], rotate_by=[90, 180, 270], labels=[0, 1, 0],
                      method="scorecam", max_n=4, path=tmp_path / "risc.png")
    assert len(fig.axes) == 3 * 5
    _png(tmp_path / "risc.png")
    fig = layer_figure(clf, images[:2], path=tmp_path / "layers.png")
    assert len(fig.axes) == 2 * (1 + 3)
    _png(tmp_path / "layers.png")
    with pytest.raises(ValueError, match="saved as PNG"):
        save_figure(fig, tmp_path / "x.jpg")


@pytest.mark.parametrize(
    "func, data",
    [
        (CAM, ["model"]),
        (classifier_heatmaps, ["classifier", "images"]),
        (rotnet_heatmaps, ["rotnet", "images"]),
        (layer_heatmaps, ["model", "images", "layers"]),
        (model_input, ["model", "images"]),
        (predict_proba, ["model", "images"]),
        (classifier_rotation_figure, ["classifier", "images"]),
        (rotnet_rotation_figure, ["rotnet", "images"]),
        (risc_figure, ["pipeline", "images"]),
        (layer_figure, ["model", "images"]),
        (overlay, ["images", "heatmaps"]),
        (default_layer, ["model"]),
        (save_figure, ["fig", "path"]),
    ],
)
def test_options_are_keyword_only_after_the_data(func, data):
    params = list(inspect.signature(func).parameters.values())
    assert [p.name for p in params if p.kind is not p.KEYWORD_ONLY] == data
    assert any(p.kind is p.KEYWORD_ONLY for p in params)


def test_option_values_are_checked(clf, resnet, tmp_path):
    with pytest.raises(ValueError, match="min_side must be an int >= 1"):
        default_layer(resnet, min_side=0)
    fig = layer_figure(clf, np.zeros((1, 28, 28), np.uint8))
    with pytest.raises(ValueError, match="dpi must be an int >= 1"):
        save_figure(fig, tmp_path / "x.png", dpi=0)
    assert not (tmp_path / "x.png").exists()


# -- command line -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def saved_pipeline(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe") / "pipeline"
    RISCPipeline(build_rotnet(backbone="small"), build_classifier(2, backbone="small")).save(path)
    return path


@pytest.mark.slow
def test_cli_explain_npz(saved_pipeline, images, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", pics=images)
    out = tmp_path / "out"
    code = main(["explain", "--pipeline", str(saved_pipeline), "--npz", str(tmp_path / "x.npz"),
                 "--key", "pics", "--indices", "1", "3", "--figures", "fig4", "risc",
                 "--output", str(out)])
    assert code == 0
    with np.load(out / "heatmaps.npz") as npz:
        assert npz["classifier"].shape == npz["rotnet"].shape == (2, 28, 28)
        assert np.array_equal(npz["images"][..., 0], images[[1, 3]])
    assert sorted(p.name for p in out.glob("*.png")) == [
        "explain_fig4_classifier.png", "explain_risc.png"]
    assert "heatmaps.npz" in capsys.readouterr().out


@pytest.mark.slow
def test_cli_explain_errors(saved_pipeline, images, tmp_path, capsys):
    np.savez(tmp_path / "x.npz", images=images)
    base = ["explain", "--pipeline", str(saved_pipeline), "--output", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as err:
        main([*base, "--npz", str(tmp_path / "x.npz"), "--key", "nope"])
    assert err.value.code == 2 and "has no array 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--npz", str(tmp_path / "x.npz"), "--layer", "avg_pool"])
    assert "not a convolutional feature layer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*base, "--npz", str(tmp_path / "x.npz"), "--indices", "9"])
    assert "indices must lie in [0, 4)" in capsys.readouterr().err


@pytest.mark.realdata
@requires_data
def test_cli_explain_medmnist_split(saved_pipeline, tmp_path):
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["explain", "--pipeline", str(saved_pipeline), "--dataset", "pneumoniamnist",
                     "--split", "test", "--data-root", str(DATA_ROOT), "--count", "2", "--figures",
                     "layers", "--method", "gradcam++", "--output", str(out)])
    assert code == 0 and (out / "explain_layers.png").is_file()
    with np.load(out / "heatmaps.npz") as npz:
        assert npz["classifier"].shape == (2, 28, 28)


@pytest.mark.slow
def test_cli_explain_separate_models_and_no_silent_overwrite(saved_pipeline, images, tmp_path,
                                                             capsys):
    np.savez(tmp_path / "x.npz", images=images)
    out = tmp_path / "sep"
    argv = ["explain", "--rotnet", str(saved_pipeline / "rotnet.keras"), "--classifier",
            str(saved_pipeline / "classifier.keras"), "--npz", str(tmp_path / "x.npz"),
            "--count", "2", "--figures", "fig5", "--output", str(out)]
    assert main(argv) == 0 and (out / "explain_fig5_rotnet.png").is_file()
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2 and "exists; pass --overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    with pytest.raises(SystemExit):
        main(["explain", "--pipeline", str(saved_pipeline), "--output", str(out)])
    assert "--dataset FLAG or --npz FILE" in capsys.readouterr().err
