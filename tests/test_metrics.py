"""Metrics (MedMNIST conventions) of risc_tf.metrics: one implementation each."""

import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from risc_tf.metrics import (
    accuracy,
    auc,
    classification_metrics,
    confusion,
    coverage_curve,
    per_angle_accuracy,
    rotation_metrics,
    sweep_summary,
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
    with pytest.raises(ValueError, match="whole numbers"):
        accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="one label per image"):
        accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="differ in length"):
        per_angle_accuracy([True], [0.0, 90.0])


def test_per_angle_accuracy_exact_and_binned():
    ok = np.array([1, 0, 1, 1], bool)
    angles = np.array([90.0, 90.0, 0.0, 270.0])
    assert per_angle_accuracy(ok, angles) == {"0": 1.0, "90": 0.5, "270": 1.0}
    binned = per_angle_accuracy(ok, [80.0, 100.0, 359.0, 275.0], bins=(0, 90, 180, 270))
    assert binned == {"0": 1.0, "90": 0.5, "270": 1.0}
    assert per_angle_accuracy([True, False], [359.9996, 0.0]) == {"0": 0.5}  # one group


def test_rotation_metrics_match_angles_modulo_360_and_report_outside_angles():
    table = (0.0, 90.0, 180.0, 270.0)
    proba = np.eye(4)[[0, 1, 3, 1, 0]]  # predicted 0, 90, 270, 90, 0
    true = [360.0, 90.0, -90.0, 45.0, 10.0]
    m = rotation_metrics(true, proba, table)
    assert m["acc"] == 1.0 and m["n_in_set"] == 3  # 45 and 10 are not in the set
    assert m["per_angle_acc"]["45"] == "not in the RotNet's angle set"
    assert m["per_angle_acc"]["0"] == 1.0
    assert m["nearest_acc"] == 1.0  # 45 is as near 90 as 0: either counts
    assert m["mae_deg"] == pytest.approx((0 + 0 + 0 + 45 + 10) / 5)
    assert np.asarray(m["confusion_matrix"]).sum() == 3
    with pytest.raises(ValueError, match="columns"):
        rotation_metrics([0.0], np.ones((1, 3)) / 3, table)


def test_refined_angle_interpolates_between_neighbouring_bins_and_ignores_far_ones():
    from risc_tf.heads import refine_angle

    table = tuple(range(0, 360, 30))  # 12 bins
    p = np.zeros((4, 12))
    p[0, [11, 0]] = 0.5  # halfway between 330 and 0: across the wrap
    p[1, 3], p[1, 4] = 0.75, 0.25  # a quarter of the way from 90 to 120
    p[2, 6], p[2, 0] = 0.6, 0.4  # the opposite bin is a confusion, not a neighbour
    p[3, 2] = 1.0
    assert refine_angle(p, table) == pytest.approx([345.0, 97.5, 180.0, 60.0])
    m = rotation_metrics([345.0, 100.0, 180.0, 70.0], p, table)
    assert m["mae_deg"] == pytest.approx((15 + 10 + 0 + 10) / 4)  # argmax: 330 or 0, 90, ...
    assert m["refined_mae_deg"] == pytest.approx((0 + 2.5 + 0 + 10) / 4)
    with pytest.raises(ValueError, match=r"shape \(N, 12\)"):
        refine_angle(np.ones((2, 4)) / 4, table)


def test_classification_metrics_keys_and_predictions():
    rng = np.random.default_rng(3)
    y = np.arange(20) % 3
    p = _proba(rng, 20, 3)
    m = classification_metrics(y, p, true_angles=np.repeat([0.0, 90.0], 10), predictions=True)
    assert set(m) == {"acc", "auc", "n", "confusion_matrix", "per_angle_acc", "predicted"}
    assert 0 <= m["acc"] <= 1 and 0 <= m["auc"] <= 1 and m["n"] == 20
    assert np.sum(m["confusion_matrix"]) == 20 and set(m["per_angle_acc"]) == {"0", "90"}
    assert m["predicted"] == p.argmax(1).tolist()


def test_coverage_curve():
    correct = np.array([1, 1, 0, 1, 0], bool)
    conf = np.array([0.99, 0.9, 0.55, 0.7, 0.95])
    c = coverage_curve(correct, conf, thresholds=[0.0, 0.6, 0.96, 1.0])
    assert c["coverage"] == [1.0, 0.8, 0.2, 0.0]
    assert c["accuracy"] == [0.6, 0.75, 1.0, None]
    # ranked by confidence: 1, 0, 1, 1, 0 -> running accuracies 1, 1/2, 2/3, 3/4, 3/5
    assert c["area"] == pytest.approx(np.mean([1, 0.5, 2 / 3, 0.75, 0.6]))
    with pytest.raises(ValueError, match="equal"):
        coverage_curve([True], [0.5, 0.6])


def test_sweep_summary():
    sweep = {"angles": [0.0, 45.0, 90.0, 135.0], "acc": {"m": [0.9, 0.5, 0.8, 0.7]}}
    s = sweep_summary(sweep)["m"]
    assert s["mean"] == pytest.approx(0.725)
    assert s["quarter_turn_mean"] == pytest.approx(0.85)
    assert s["off_grid_mean"] == pytest.approx(0.6)
    assert (s["worst_acc"], s["worst_angle"]) == (0.5, 45.0)
