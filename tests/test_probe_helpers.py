"""Helpers of the probes whose numbers are published (probes/*.py): checked on made data."""

import json

import numpy as np
import pytest

from probes.ece_floor import floor, rebuilt
from risc_tf.calibration import ece_consistency, reliability_data


def _proba(n=300, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    z = 2.0 * rng.normal(size=(n, classes))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return p, rng.integers(0, classes, n)


def test_ece_floor_rebuilds_the_stored_ece_and_a_floor_close_to_the_exact_one(tmp_path):
    proba, labels = _proba()
    block = reliability_data(proba, labels)
    p, y = rebuilt(block)
    assert len(y) == len(labels) and np.all(p.argmax(axis=1) == 0)
    assert reliability_data(p, y)["ece"] == pytest.approx(block["ece"])
    assert reliability_data(p, y)["count"] == block["count"]
    exact = ece_consistency(proba, labels)
    approx = ece_consistency(p, y)
    assert approx["null_mean"] == pytest.approx(exact["null_mean"], rel=0.05)
    # a results.json with a trust report in it; one without is refused by name
    test = {"bins": 15, **{m: {"n": len(labels), "ece_before": block["ece"],
                               "ece_after": block["ece"], "reliability_after": block}
                           for m in ("rotnet", "classifier")}}
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"config": {"dataset": "made", "seed": 0},
                                "trust": {"test": test}}))
    row = floor(path, draws=200)
    assert row["rotnet"]["ece"] == pytest.approx(block["ece"]) and not row["rotnet"]["exact"]
    path.write_text(json.dumps({"config": {"dataset": "made", "seed": 0}}))
    with pytest.raises(SystemExit, match="no trust report"):
        floor(path)


def test_ood_layers_probe_greys_colour_sets_and_refuses_a_folder_that_is_no_run(tmp_path):
    from probes.ood_layers import grey, main

    rgb = np.random.default_rng(0).integers(0, 256, (3, 5, 5, 3), dtype=np.uint8)
    made = grey(rgb)
    assert made.shape == (3, 5, 5) and made.dtype == np.uint8
    np.testing.assert_array_equal(made, np.round(rgb.mean(axis=-1)).astype(np.uint8))
    assert grey(made) is made  # grey images stay as they are
    with pytest.raises(SystemExit, match="not a finished reproduce seed folder"):
        main([str(tmp_path)])


def test_placement_values_average_to_the_auroc():
    from probes.ood_layers import placements
    from risc_tf.ood import ood_auroc

    rng = np.random.default_rng(0)
    inside, other = rng.normal(size=50), rng.normal(0.8, size=30)
    other[:3] = inside[:3]  # ties count half
    placed = placements(inside, other)
    assert placed.shape == (30,) and np.all((placed >= 0) & (placed <= 1))
    assert placed.mean() == pytest.approx(ood_auroc(inside, other))


def test_the_best_temperature_is_no_worse_than_any_other_on_the_same_images():
    from probes.ece_oracle import best_temperature
    from risc_tf.calibration import apply_temperature, expected_calibration_error

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    logits = rng.normal(size=(300, 2)) + 3.0 * np.eye(2)[labels]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.where(rng.random(300) < 0.3, 1 - labels, labels)  # 30 % wrong: over-confident
    t, ece = best_temperature(proba, labels)
    assert t > 1  # it softens
    assert ece == pytest.approx(expected_calibration_error(apply_temperature(proba, t), labels))
    for other in (0.5, 1.0, 2.0, 5.0):
        assert ece <= expected_calibration_error(apply_temperature(proba, other), labels) + 1e-12


def test_refit_trust_refuses_a_folder_that_is_no_run(tmp_path):
    from probes.refit_trust import main

    with pytest.raises(SystemExit, match="not a finished reproduce seed folder"):
        main([str(tmp_path), "--output", str(tmp_path / "pipeline")])
    assert not (tmp_path / "pipeline").exists()
