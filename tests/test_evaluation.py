"""Metrics (MedMNIST conventions) and evaluation protocols of risc_tf.evaluation."""

import math

import keras
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from risc_tf import build_classifier, build_rotnet, rotate
from risc_tf.evaluation import (
    accuracy,
    angle_sweep,
    auc,
    build_methods,
    classification_metrics,
    confusion,
    evaluate_models,
    evaluation_sets,
    per_angle_accuracy,
    rotation_accuracy,
    time_inference,
    tta_proba,
)


def _proba(rng, n, c):
    p = rng.random((n, c))
    return p / p.sum(axis=1, keepdims=True)


def test_accuracy_and_confusion():
    y = np.array([0, 1, 2, 2])
    pred = np.array([0, 2, 2, 2])
    assert accuracy(y, pred) == 0.75
    cm = confusion(y, pred, 4)  # class 3 absent but still a row and a column
    assert cm.shape == (4, 4)
    assert cm[2, 2] == 2 and cm[1, 2] == 1 and cm.sum() == 4


def test_auc_binary_uses_positive_column():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    p = _proba(rng, 50, 2)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p[:, 1]))


def test_auc_multiclass_is_macro_one_vs_rest():
    rng = np.random.default_rng(1)
    y = np.arange(60) % 5
    p = _proba(rng, 60, 5)
    per_class = [roc_auc_score(y == c, p[:, c]) for c in range(5)]
    assert auc(y, p) == pytest.approx(np.mean(per_class))
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p, multi_class="ovr", average="macro"))


def test_auc_skips_absent_classes_and_is_nan_for_one_class():
    rng = np.random.default_rng(2)
    y = np.array([0, 1, 0, 1, 0, 1])
    p = _proba(rng, 6, 4)
    expected = np.mean([roc_auc_score(y == c, p[:, c]) for c in (0, 1)])
    assert auc(y, p) == pytest.approx(expected)
    assert math.isnan(auc(np.zeros(5, int), _proba(rng, 5, 2)))


def test_metric_errors_are_clear():
    with pytest.raises(ValueError, match="proba must be"):
        auc([0, 1], np.ones((3, 2)))
    with pytest.raises(ValueError, match="integer class indices"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        per_angle_accuracy([True], [0.0, 90.0])


def test_per_angle_and_rotation_accuracy():
    ok = np.array([1, 0, 1, 1], bool)
    angles = np.array([90.0, 90.0, 0.0, 270.0])
    assert per_angle_accuracy(ok, angles) == {"0": 1.0, "90": 0.5, "270": 1.0}
    assert rotation_accuracy([0.0, 90.0, 270.0], [360.0, 90.0, -90.0]) == 1.0
    assert rotation_accuracy([0.0, 90.0], [90.0, 90.0]) == 0.5


def test_classification_metrics_keys():
    rng = np.random.default_rng(3)
    y = np.arange(20) % 3
    m = classification_metrics(y, _proba(rng, 20, 3), true_angles=np.repeat([0.0, 90.0], 10))
    assert set(m) == {"acc", "auc", "n", "confusion_matrix", "per_angle_acc"}
    assert 0 <= m["acc"] <= 1 and 0 <= m["auc"] <= 1 and m["n"] == 20
    assert np.sum(m["confusion_matrix"]) == 20 and set(m["per_angle_acc"]) == {"0", "90"}


@pytest.fixture(scope="module")
def models():
    keras.utils.set_random_seed(0)
    rotnet = build_rotnet(backbone="small")
    clf = build_classifier(3, backbone="small")
    aug = build_classifier(3, backbone="small")
    return rotnet, clf, aug


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (12, 28, 28), dtype=np.uint8)
    return x, np.arange(12) % 3


def test_tta_is_invariant_to_quarter_turns(models, images):
    _, clf, _ = models
    x = evaluation_sets(*images, angles=(0, 90, 180, 270))["upright"][0]
    tta = tta_proba(clf, (0, 90, 180, 270), batch_size=5)
    p0 = tta(x)
    p90 = tta(rotate(x, 90).numpy())
    np.testing.assert_allclose(p0, p90, atol=1e-5)
    np.testing.assert_allclose(p0.sum(axis=1), 1.0, atol=1e-5)


def test_methods_sets_and_evaluation(models, images):
    rotnet, clf, aug = models
    angles = (0.0, 90.0, 180.0, 270.0)
    methods = build_methods(rotnet, clf, angles, aug, batch_size=8)
    assert list(methods) == ["classifier", "rotation_augmented", "tta", "risc_hard", "risc_soft"]
    sets = evaluation_sets(*images, angles=angles, seed=1)
    x, y, a = sets["rotated"]
    assert x.shape == (12, 32, 32, 3) and set(a) <= set(angles)
    assert 0.0 <= x.min() and x.max() <= 1.0
    result = evaluate_models(methods, rotnet, sets, angles)
    assert set(result) == {"upright", "rotated", "rotnet"}
    for split in ("upright", "rotated"):
        assert set(result[split]) == set(methods)
    assert 0 <= result["rotnet"]["rotated_test_acc"] <= 1
    assert np.asarray(result["rotnet"]["confusion_matrix"]).shape == (4, 4)
    for fn in methods.values():
        np.testing.assert_allclose(fn(x).sum(axis=1), 1.0, atol=1e-5)


def test_angle_sweep_and_timing(models, images):
    rotnet, clf, _ = models
    methods = build_methods(rotnet, clf, (0, 90, 180, 270))
    x = evaluation_sets(*images, angles=(0, 90))["upright"][0]
    sweep = angle_sweep(methods, x, images[1], angles=(0, 45, 180), verbose=0)
    assert sweep["angles"] == [0.0, 45.0, 180.0]
    for name in methods:
        assert len(sweep["acc"][name]) == 3 and all(0 <= v <= 1 for v in sweep["acc"][name])
    assert sweep["acc"]["classifier"][0] == pytest.approx(
        accuracy(images[1], methods["classifier"](x).argmax(1)))
    t = time_inference(methods["risc_hard"], x, single=3)
    assert t["n_single"] == 3 and t["n_batched"] == 12
    assert t["batched_ms_per_sample"] > 0 and t["single_ms_per_sample"] > 0
