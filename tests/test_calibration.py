"""Temperature scaling, calibration error and reliability diagrams (risc_tf.calibration)."""

import doctest
import math
import warnings

import numpy as np
import pytest
import tensorflow as tf

from risc_tf import calibration
from risc_tf.calibration import (
    apply_temperature,
    ece_consistency,
    expected_calibration_error,
    fit_review_temperature,
    fit_temperature,
    negative_log_likelihood,
    reliability_data,
)
from risc_tf.trust import plot_reliability


def _overconfident(n=2000, classes=3, true_temperature=2.5, seed=0):
    """Probabilities softmax(z) whose labels are drawn from softmax(z / 2.5): over-confident."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.normal(size=(n, classes))
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    truth = np.exp(z / true_temperature)
    truth /= truth.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(classes, p=row) for row in truth])
    return proba, labels


def test_docstring_examples_run():
    assert doctest.testmod(calibration).failed == 0


def test_fit_finds_the_known_optimum_of_a_binary_case():
    # every row 90 % sure of class 1, right 3 times in 4: softmax(log p / T) gives 0.75 at
    # T = logit(0.9) / logit(0.75) = log 9 / log 3 = 2
    proba = np.tile([[0.1, 0.9]], (40, 1))
    labels = np.array([1, 1, 1, 0] * 10)
    assert fit_temperature(proba, labels) == pytest.approx(2.0, abs=1e-5)
    assert apply_temperature(proba, 2.0)[0] == pytest.approx([0.25, 0.75], abs=1e-6)


def test_fit_finds_the_known_optimum_of_a_three_class_case():
    # rows (0.8, 0.1, 0.1), class 0 right half the time: 8 ** (1 / T) = 2 at T = 3
    proba = np.tile([[0.8, 0.1, 0.1]], (8, 1))
    labels = [0, 0, 0, 0, 1, 1, 2, 2]
    assert fit_temperature(proba, labels) == pytest.approx(3.0, abs=1e-5)
    # and the fitted temperature is where the NLL is lowest
    nll = [negative_log_likelihood(proba, labels, t) for t in (2.9, 3.0, 3.1)]
    assert nll[1] < nll[0] and nll[1] < nll[2]


def test_temperature_one_is_the_identity_and_argmax_never_changes():
    proba, _ = _overconfident(200)
    assert np.allclose(apply_temperature(proba, 1.0), proba, atol=1e-6)
    for t in (0.3, 2.0, 7.0):
        scaled = apply_temperature(proba, t)
        assert np.allclose(scaled.sum(axis=1), 1.0, atol=1e-5)
        assert (scaled.argmax(axis=1) == proba.argmax(axis=1)).all()
    assert apply_temperature(np.array([0.9, 0.1]), 2.0).shape == (2,)  # one image


def test_same_function_in_numpy_eager_and_a_traced_graph():
    proba, _ = _overconfident(50)
    expected = apply_temperature(proba.astype(np.float32), 1.7)
    assert isinstance(expected, np.ndarray) and expected.dtype == np.float32
    eager = apply_temperature(tf.constant(proba, tf.float32), 1.7)
    assert isinstance(eager, tf.Tensor)
    graph = tf.function(lambda p: apply_temperature(p, 1.7),
                        input_signature=[tf.TensorSpec((None, 3), tf.float32)])
    np.testing.assert_allclose(eager.numpy(), expected, atol=1e-7)
    np.testing.assert_allclose(graph(tf.constant(proba, tf.float32)).numpy(), expected,
                               atol=1e-7)


def test_zero_probabilities_stay_finite():
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert np.isfinite(apply_temperature(proba, 0.5)).all()
    assert np.isfinite(apply_temperature(proba, 5.0)).all()


def test_fitting_lowers_nll_and_ece_of_an_overconfident_model():
    proba, labels = _overconfident()
    temperature = fit_temperature(proba[:1000], labels[:1000])  # "validation"
    assert 1.8 < temperature < 3.5  # the labels were drawn at T = 2.5
    test_p, test_y = proba[1000:], labels[1000:]
    scaled = apply_temperature(test_p, temperature)
    assert negative_log_likelihood(scaled, test_y) < negative_log_likelihood(test_p, test_y) - 0.1
    before = expected_calibration_error(test_p, test_y)
    after = expected_calibration_error(scaled, test_y)
    assert before > 0.1 and after < 0.05
    assert negative_log_likelihood(test_p, test_y, temperature) == pytest.approx(
        negative_log_likelihood(scaled, test_y), abs=1e-5)


def test_a_fit_on_a_bound_warns():
    proba = np.tile([[0.2, 0.8]], (10, 1))  # always right: sharper is always better
    with pytest.warns(UserWarning, match="lies on a bound"):
        t = fit_temperature(proba, np.ones(10, int), bounds=(0.5, 4.0))
    assert t == pytest.approx(0.5, rel=1e-5)


def test_ece_and_reliability_data_on_a_hand_computed_case():
    confidence = np.array([0.95, 0.85, 0.65, 0.62, 0.55])
    proba = np.stack([confidence, 1 - confidence], axis=1)
    labels = [0, 1, 0, 0, 1]  # right, wrong, right, right, wrong
    data = reliability_data(proba, labels, bins=5)
    assert data["count"] == [0, 0, 1, 2, 2]
    assert data["confidence"][:2] == [None, None]
    assert data["confidence"][2:] == pytest.approx([0.55, 0.635, 0.9])
    assert data["accuracy"][2:] == [0.0, 1.0, 0.5]
    # ECE = 1/5 * 0.55 + 2/5 * 0.365 + 2/5 * 0.4
    assert data["ece"] == pytest.approx(0.416)
    assert data["mce"] == pytest.approx(0.55)
    assert data["accuracy_overall"] == pytest.approx(0.6)
    assert expected_calibration_error(proba, labels, bins=5) == pytest.approx(0.416)


def test_ece_consistency_tells_sampling_noise_from_miscalibration():
    rng = np.random.default_rng(1)
    confidence = rng.uniform(0.5, 1.0, 400)
    proba = np.stack([confidence, 1 - confidence], axis=1)
    # calibrated by construction: each answer right with the probability it states
    calibrated = np.where(rng.random(400) < confidence, 0, 1)
    out = ece_consistency(proba, calibrated, draws=1000)
    assert out["ece"] == pytest.approx(expected_calibration_error(proba, calibrated))
    # 400 images: a perfectly calibrated model still shows an ECE of a few points
    assert 0.02 < out["null_mean"] < out["null_p95"] < 0.08
    assert out["p_value"] > 0.05 and out["draws"] == 1000
    # over-confident by 0.15 everywhere: far outside what sampling gives
    shifted = np.where(rng.random(400) < confidence - 0.15, 0, 1)
    worse = ece_consistency(proba, shifted, draws=1000)
    assert worse["ece"] > worse["null_p95"] and worse["p_value"] < 0.01
    # the floor falls as the test set grows (about 1 / sqrt(N))
    big = np.repeat(proba, 25, axis=0)
    assert ece_consistency(big, np.repeat(calibrated, 25), draws=200)["null_mean"] < \
        out["null_mean"] / 3
    assert ece_consistency(proba, calibrated, draws=100, seed=3) == \
        ece_consistency(proba, calibrated, draws=100, seed=3)
    with pytest.raises(ValueError, match="draws"):
        ece_consistency(proba, calibrated, draws=0)


def test_ece_bins_are_closed_on_the_right_and_zero_for_a_calibrated_bin():
    # 0.6 and 0.8 are upper edges: they belong to the bins (0.4, 0.6] and (0.6, 0.8]
    proba = np.array([[0.6, 0.4], [0.8, 0.2]])
    assert reliability_data(proba, [0, 0], bins=5)["count"] == [0, 0, 1, 1, 0]
    calibrated = np.tile([[0.75, 0.25]], (4, 1))
    assert expected_calibration_error(calibrated, [0, 0, 0, 1], bins=10) == pytest.approx(0.0)


def test_reliability_diagram_is_written(tmp_path):
    proba, labels = _overconfident(300)
    curves = {"before": reliability_data(proba, labels),
              "after": reliability_data(apply_temperature(proba, 2.5), labels)}
    path = plot_reliability(curves, tmp_path / "figs" / "reliability.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="PNG"):
        plot_reliability(curves, tmp_path / "reliability.pdf")
    with pytest.raises(ValueError, match="curves"):
        plot_reliability({}, tmp_path / "empty.png")


@pytest.mark.parametrize("temperature", [0, -1.0, math.nan, math.inf, "2", True, None])
def test_bad_temperatures_are_clear_errors(temperature):
    proba = np.array([[0.7, 0.3]])
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        apply_temperature(proba, temperature)
    with pytest.raises(ValueError, match="temperature must be a finite number > 0"):
        negative_log_likelihood(proba, [0], temperature)


def test_bad_probabilities_labels_and_options_are_clear_errors():
    good = np.array([[0.7, 0.3], [0.2, 0.8]])
    with pytest.raises(ValueError, match="rows must sum to 1"):
        fit_temperature(np.array([[0.9, 0.8], [0.1, 0.3]]), [0, 1])
    with pytest.raises(ValueError, match="rows must sum to 1"):
        apply_temperature(np.array([[0.5, 0.2]]), 2.0)
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        reliability_data(np.array([[np.nan, 1.0], [0.5, 0.5]]), [0, 1])
    with pytest.raises(ValueError, match=r"\(N, C>=2\)"):
        reliability_data(np.array([0.7, 0.3]), [0])
    with pytest.raises(ValueError, match="one label per image"):
        fit_temperature(good, [0, 1, 1])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\)"):
        fit_temperature(good, [0, 2])
    with pytest.raises(ValueError, match="bins"):
        reliability_data(good, [0, 1], bins=0)
    with pytest.raises(ValueError, match="lower < upper"):
        fit_temperature(good, [0, 1], bounds=(5.0, 1.0))
    with pytest.raises(ValueError, match="bounds must be a finite number > 0"):
        fit_temperature(good, [0, 1], bounds=(0.0, 1.0))
    with pytest.raises(ValueError, match=r"proba must be \(\.\.\., C>=2\)"):
        apply_temperature(tf.constant([[1.0], [1.0]]), 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_temperature(*_overconfident(200))  # a well-posed fit does not warn


def test_review_temperature_keeps_t_1_when_every_validation_prediction_is_right():
    # all right: the NLL falls as T -> 0, which would make every confidence 1
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.3, 0.3, 0.4]])
    with pytest.warns(UserWarning, match="lies on a bound"):
        assert fit_temperature(proba, [0, 1, 2]) < 0.06
    t, note = fit_review_temperature(proba, [0, 1, 2])
    assert t == 1.0 and "every validation prediction right (3 images)" in note
    # one wrong prediction: the ordinary fit, no note
    proba, labels = _overconfident()
    assert fit_review_temperature(proba, labels) == (fit_temperature(proba, labels), None)
    with pytest.raises(ValueError):
        fit_review_temperature(proba, labels[:-1])
