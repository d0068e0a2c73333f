"""The pipeline's detector on several layers (risc_tf.ood_layers) and the features it reads."""

import dataclasses
import doctest
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from risc_tf import RISCPipeline, build_classifier, build_rotnet
from risc_tf import ood_layers as ood_layers_module
from risc_tf.features import PENULTIMATE, feature_model, layer_features, stage_layers
from risc_tf.ood import fit_mahalanobis
from risc_tf.ood_layers import LayerwiseDetector, fit_ood_detector, ood_layers

SIZE = 32


@pytest.fixture(scope="module")
def classifier():
    keras.utils.set_random_seed(0)
    return build_classifier(2, (SIZE, SIZE, 3), backbone="small")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((60, SIZE, SIZE, 3), dtype=np.float32)


def _two_layers(seed=0, n=400):
    """Two feature sets of the same images, the second wider and on another scale."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    first = rng.normal(size=(n, 3)) + 3.0 * labels[:, None]
    second = 10.0 * rng.normal(size=(n, 8)) - 20.0 * labels[:, None]
    return [first, second], labels


def test_docstring_examples_run():
    assert doctest.testmod(ood_layers_module).failed == 0


def test_stage_layers_are_the_last_layer_of_each_resolution(classifier):
    assert stage_layers(classifier) == ("block2_relu2",)
    assert tuple(classifier.get_layer("block2_relu2").output.shape[1:3]) == (16, 16)
    resnet = build_classifier(2, (SIZE, SIZE, 3), backbone="resnet50")
    # the stem (16x16) and the stages at 8, 4, 2; conv5 (1x1) is what avg_pool pools
    assert stage_layers(resnet) == ("conv1_relu", "conv2_block3_out", "conv3_block4_out",
                                    "conv4_block6_out")


def test_feature_model_pools_each_layer_and_keeps_the_probabilities(classifier, images):
    x = images[:5]
    *features, proba = feature_model(classifier, ("block2_relu2", PENULTIMATE))(x)
    stage = keras.Model(classifier.input, classifier.get_layer("block2_relu2").output)(x)
    np.testing.assert_allclose(features[0], np.mean(stage, axis=(1, 2)), atol=1e-5)
    pooled = keras.Model(classifier.input, classifier.get_layer("avg_pool").output)(x)
    np.testing.assert_allclose(features[1], pooled, atol=1e-6)
    np.testing.assert_allclose(proba, classifier(x), atol=1e-6)
    got = layer_features(classifier, x, ("block2_relu2", PENULTIMATE), batch_size=2)
    assert [f.shape for f in got] == [(5, 64), (5, 128)]
    for a, b in zip(got, features):
        np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("layers, message", [
    (("no_such_layer",), "has no layer 'no_such_layer'"),
    (("predictions",), "layer 'predictions' of model .* has no square"),
    ((), "layers must be a non-empty sequence"),
    ("block2_relu2", "layers must be a non-empty sequence"),
])
def test_feature_model_names_a_layer_it_cannot_read(classifier, layers, message):
    with pytest.raises(ValueError, match=message):
        feature_model(classifier, layers)


def test_the_score_is_the_largest_layer_ratio_and_the_threshold_a_percentile():
    features, labels = _two_layers()
    fits = tuple(fit_mahalanobis(f, labels) for f in features)
    detector = LayerwiseDetector(("a", "b"), fits, (1.0, 1.0))
    val, _ = _two_layers(seed=1)
    scaled = detector.with_threshold(val, percentile=90)
    distances = np.stack([d.score(f) for d, f in zip(fits, val)])
    np.testing.assert_allclose(scaled.scales, np.percentile(distances, 90, axis=1), rtol=1e-6)
    expected = (distances / np.asarray(scaled.scales)[:, None]).max(axis=0)
    np.testing.assert_allclose(scaled.score(val), expected, rtol=1e-5)
    assert scaled.threshold == pytest.approx(np.percentile(expected, 90), rel=1e-6)
    assert np.mean(scaled.flag(val)) == pytest.approx(0.10, abs=0.01)
    # the same numbers from tensors (what the pipeline's traced graph gives it)
    as_tensors = scaled.score([tf.constant(f, tf.float32) for f in val])
    assert isinstance(as_tensors, tf.Tensor)
    np.testing.assert_allclose(as_tensors.numpy(), expected, rtol=1e-4)
    # an image far off in one layer only is flagged
    odd = [val[0][:3].copy(), val[1][:3].copy()]
    odd[1] += 500.0
    assert scaled.flag(odd).all()


def test_the_arrays_round_trip_and_a_one_layer_detector_keeps_its_score(tmp_path):
    features, labels = _two_layers()
    val, _ = _two_layers(seed=1)
    detector = LayerwiseDetector(("a", "b"), tuple(fit_mahalanobis(f, labels) for f in features),
                                 (1.0, 1.0)).with_threshold(val)
    np.savez(tmp_path / "ood.npz", **detector.to_arrays())
    with np.load(tmp_path / "ood.npz") as stored:
        again = LayerwiseDetector.from_arrays(stored)
    as_json = json.loads(json.dumps({k: v.tolist() for k, v in detector.to_arrays().items()}))
    for copy in (again, LayerwiseDetector.from_arrays(as_json)):
        assert copy.layers == ("a", "b") and copy.scales == pytest.approx(detector.scales)
        assert copy.threshold == pytest.approx(detector.threshold)
        np.testing.assert_allclose(copy.score(val), detector.score(val), rtol=1e-6)
    # a detector saved before layers (one MahalanobisDetector): the same score and threshold
    single = fit_mahalanobis(features[0], labels).with_threshold(val[0])
    wrapped = LayerwiseDetector.from_arrays(single.to_arrays())
    assert wrapped.layers == (PENULTIMATE,) and wrapped.scales == (1.0,)
    assert wrapped.threshold == single.threshold and wrapped.percentile == single.percentile
    np.testing.assert_allclose(wrapped.score([val[0]]), single.score(val[0]))


def test_bad_detectors_are_refused_by_name():
    features, labels = _two_layers()
    fits = tuple(fit_mahalanobis(f, labels) for f in features)
    with pytest.raises(ValueError, match="one detector and one scale per layer"):
        LayerwiseDetector(("a",), fits, (1.0, 1.0))
    with pytest.raises(ValueError, match="layers must not repeat"):
        LayerwiseDetector(("a", "a"), fits, (1.0, 1.0))
    with pytest.raises(ValueError, match="layers must be non-empty layer names"):
        LayerwiseDetector((), (), ())
    with pytest.raises(ValueError, match="scale must be a finite number > 0"):
        LayerwiseDetector(("a", "b"), fits, (1.0, 0.0))
    with pytest.raises(ValueError, match="detectors must be risc_tf.ood.MahalanobisDetector"):
        LayerwiseDetector(("a", "b"), (fits[0], "b"), (1.0, 1.0))
    detector = LayerwiseDetector(("a", "b"), fits, (1.0, 1.0))
    with pytest.raises(ValueError, match=r"features must hold one array per layer \('a', 'b'\)"):
        detector.score(features[:1])
    with pytest.raises(ValueError, match="the detector has no threshold"):
        detector.flag(features)
    state = detector.with_threshold(features).to_arrays()
    with pytest.raises(ValueError, match="detector state misses layer1_means"):
        LayerwiseDetector.from_arrays({k: v for k, v in state.items() if k != "layer1_means"})
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        LayerwiseDetector.from_arrays({**state, "threshold": np.float64(np.nan)})
    with pytest.raises(ValueError, match="ood must be a risc_tf.ood_layers.LayerwiseDetector"):
        LayerwiseDetector.of("not a detector")


def test_ood_layers_names_its_choices(classifier):
    assert ood_layers(classifier) == ("block2_relu2", PENULTIMATE)
    assert ood_layers(classifier, "penultimate") == (PENULTIMATE,)
    assert ood_layers(classifier, ["block1_relu2"]) == ("block1_relu2",)
    with pytest.raises(ValueError, match="layers must be 'stages', 'penultimate' or"):
        ood_layers(classifier, "everything")


def test_a_pipeline_scores_every_layer_in_one_pass_and_keeps_it_saved(classifier, images,
                                                                       tmp_path):
    """The fused chain's ood_score is the detector's score of the corrected images' features
    of every layer (computed apart here), before and after save and load; a detector of
    other widths or layers is refused when the pipeline is made."""
    labels = np.arange(40) % 2
    detector = fit_ood_detector(classifier, images[:40], labels, images[40:], batch_size=16)
    assert detector.layers == ("block2_relu2", PENULTIMATE)
    pipe = RISCPipeline(build_rotnet((SIZE, SIZE, 3), backbone="small"), classifier,
                        ood=detector)
    x = np.stack([np.rot90(img, k % 4) for k, img in enumerate(images[40:])])
    details = pipe.predict_details(x)
    expected = detector.score(layer_features(classifier, pipe.correct(x), detector.layers))
    np.testing.assert_allclose(details.ood_score, expected, rtol=1e-4, atol=1e-4)
    assert np.array_equal(details.unlike_training, details.ood_score > detector.threshold)
    loaded = RISCPipeline.load(pipe.save(tmp_path / "pipe"))
    assert loaded.ood.layers == detector.layers
    np.testing.assert_allclose(loaded.predict_details(x).ood_score, details.ood_score,
                               rtol=1e-5)
    narrow = fit_ood_detector(classifier, images[:40], labels, images[40:],
                              layers=["block1_relu2"])
    misnamed = dataclasses.replace(narrow, layers=("block2_relu2",))
    with pytest.raises(ValueError, match=r"expects \(32,\) features of layers "
                                         r"\('block2_relu2',\); the classifier gives \(64,\)"):
        RISCPipeline(pipe.rotnet, classifier, ood=misnamed)
    with pytest.raises(ValueError, match="has no layer 'no_such_layer'"):
        RISCPipeline(pipe.rotnet, classifier,
                     ood=dataclasses.replace(narrow, layers=("no_such_layer",)))


def test_a_pipeline_saved_with_a_one_layer_detector_loads_with_its_raw_score(classifier, images,
                                                                             tmp_path):
    """risc_tf 0.2.0 saved ood.npz as one MahalanobisDetector's arrays (no layers): such a
    folder loads as a detector on the penultimate features whose score is the raw distance."""
    from risc_tf.features import model_features

    features = model_features(classifier, images[:40])
    single = fit_mahalanobis(features, np.arange(40) % 2).with_threshold(
        model_features(classifier, images[40:]))
    pipe = RISCPipeline(build_rotnet((SIZE, SIZE, 3), backbone="small"), classifier)
    folder = pipe.save(tmp_path / "pipe")
    np.savez(folder / "ood.npz", **single.to_arrays())  # the 0.2.0 layout
    config = json.loads((folder / "risc_pipeline.json").read_text())
    (folder / "risc_pipeline.json").write_text(json.dumps(
        {**config, "arrays": ["ood"], "ood_threshold": single.threshold}))
    loaded = RISCPipeline.load(folder)
    assert loaded.ood.layers == (PENULTIMATE,) and loaded.ood.threshold == single.threshold
    x = images[40:]
    expected = single.score(model_features(classifier, loaded.correct(x)))
    np.testing.assert_allclose(loaded.predict_details(x).ood_score, expected, rtol=1e-4,
                               atol=1e-3)


def test_fit_trust_refuses_bad_layers_before_any_work(classifier):
    from risc_tf.trust import fit_trust

    pipe = RISCPipeline(build_rotnet((SIZE, SIZE, 3), backbone="small"), classifier)
    no_images = np.zeros((0, SIZE, SIZE, 3), np.float32)  # never reached
    with pytest.raises(ValueError, match="layers must be 'stages', 'penultimate' or"):
        fit_trust(pipe, no_images, [], no_images, [], ood_layers="everything")
