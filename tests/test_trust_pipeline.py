"""A pipeline that carries what it is trusted with: temperatures, review thresholds and a
detector of images unlike its training data, fitted on validation (fit_trust), applied in
every prediction, saved, loaded and exported."""

import json

import keras
import numpy as np
import pytest

from risc_tf import RISCPipeline, build_classifier, build_rotnet, load_medmnist
from risc_tf.calibration import apply_temperature
from tests.conftest import requires_data


@pytest.fixture(scope="module")
def fitted(data_root):
    from risc_tf.trust import fit_trust

    keras.utils.set_random_seed(0)
    pipe = RISCPipeline(build_rotnet(backbone="small"), build_classifier(2, backbone="small"),
                        class_names=["normal", "pneumonia"])
    x, y = load_medmnist("pneumoniamnist", "train", root=data_root)
    xv, yv = load_medmnist("pneumoniamnist", "val", root=data_root)
    return pipe, *fit_trust(pipe, xv[:96], yv[:96], x[:300], y[:300], seed=1)


@requires_data
def test_fit_trust_sets_every_part_from_validation(fitted):
    pipe, trusted, record = fitted
    assert trusted.rotnet_temperature == record["rotnet_temperature"] > 0
    assert trusted.classifier_temperature == record["classifier_temperature"] > 0
    assert trusted.min_rotation_confidence == record["rotation_threshold"]["threshold"]
    assert trusted.min_class_probability == record["class_threshold"]["threshold"]
    assert record["rotation_threshold"]["target"] == "coverage"
    assert record["rotation_threshold"]["coverage"] >= 0.95
    assert record["class_threshold"]["target"] == "min_accuracy"
    assert trusted.ood is not None and trusted.ood.threshold == record["ood_threshold"]
    # the small backbone's stage output (16x16) and the penultimate features
    assert record["ood_layers"] == list(trusted.ood.layers) == ["block2_relu2", "penultimate"]
    assert trusted.metadata["trust"] == record and record["validation_images"] == 96
    json.dumps(record)
    assert pipe.ood is None and pipe.rotnet_temperature == 1.0  # the original is untouched


@requires_data
@pytest.mark.slow
def test_the_pipeline_applies_them_everywhere(fitted, data_root, tmp_path):
    import tensorflow as tf

    pipe, trusted, _ = fitted
    x, _ = load_medmnist("pneumoniamnist", "test", root=data_root)
    x = x[:20]
    np.testing.assert_allclose(trusted.predict_proba(x), apply_temperature(
        pipe.predict_proba(x), trusted.classifier_temperature), atol=1e-5)
    details = trusted.predict_details(x)
    expected_flag = details.ood_score > trusted.ood.threshold
    assert np.array_equal(details.unlike_training, expected_flag)
    review = (details.rotation_confidence < trusted.min_rotation_confidence) | \
        (details.class_probability < trusted.min_class_probability) | expected_flag
    assert np.array_equal(details.review, review)
    assert "ood_score" in details.to_records()[0]
    # saved and loaded: the same numbers
    loaded = RISCPipeline.load(trusted.save(tmp_path / "pipe"))
    assert (tmp_path / "pipe" / "ood.npz").is_file()
    again = loaded.predict_details(x)
    np.testing.assert_allclose(again.ood_score, details.ood_score, rtol=1e-5)
    np.testing.assert_allclose(again.class_probability, details.class_probability, atol=1e-6)
    assert loaded.min_class_probability == trusted.min_class_probability
    card = (tmp_path / "pipe" / "MODEL_CARD.md").read_text()
    assert "temperature" in card and "unlike the training" in card
    # exported: the same outputs, review decided in the graph
    served = tf.saved_model.load(str(trusted.export(tmp_path / "served")))
    out = served.signatures["serving_uint8"](images=tf.constant(x[..., None]))
    np.testing.assert_allclose(out["ood_score"].numpy(), details.ood_score, rtol=1e-4)
    assert np.array_equal(out["review"].numpy(), details.review)


@requires_data
def test_details_score_the_image_they_classify_from_one_classifier_pass(fitted, data_root):
    """Hard mode: predict_details takes its class probabilities and out-of-distribution
    score from one classifier pass over the counter-rotation it classifies; what that pass
    gives must equal predict_proba and the detector's score of that image's features
    (computed apart here)."""
    from risc_tf.features import layer_features

    _, trusted, _ = fitted
    x, _ = load_medmnist("pneumoniamnist", "test", root=data_root)
    x = np.stack([np.rot90(img, k % 4) for k, img in enumerate(x[:24])])
    details = trusted.predict_details(x)
    proba = trusted.predict_proba(x)
    assert np.array_equal(details.class_index, proba.argmax(axis=1))
    np.testing.assert_allclose(details.class_probability, proba.max(axis=1), atol=1e-6)
    features = layer_features(trusted.classifier, trusted.correct(x), trusted.ood.layers)
    np.testing.assert_allclose(details.ood_score, trusted.ood.score(features), rtol=1e-4,
                               atol=1e-3)


@requires_data
@pytest.mark.parametrize("key, value, message", [
    ("rotnet_temperature", 0.0, "rotnet_temperature must be a finite number > 0"),
    ("classifier_temperature", -2.0, "classifier_temperature must be a finite number > 0"),
    ("min_class_probability", 1.5, "min_class_probability must be"),
    ("min_rotation_confidence", -0.1, "min_rotation_confidence must be"),
])
def test_a_saved_pipeline_with_bad_trust_settings_is_refused(fitted, tmp_path, key, value,
                                                            message):
    _, trusted, _ = fitted
    folder = trusted.save(tmp_path / "pipe")
    config = json.loads((folder / "risc_pipeline.json").read_text())
    config[key] = value
    (folder / "risc_pipeline.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=message):
        RISCPipeline.load(folder)
