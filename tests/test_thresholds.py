"""Review thresholds chosen on validation data for a stated target (risc_tf.thresholds)."""

import doctest
import json
import math

import numpy as np
import pytest

from risc_tf import thresholds
from risc_tf.metrics import coverage_curve
from risc_tf.thresholds import ReviewThreshold, choose_threshold


def _validation(n=400, seed=0):
    """Confidences whose correctness becomes likelier as they grow (not monotone)."""
    rng = np.random.default_rng(seed)
    confidence = np.round(rng.uniform(0.5, 1.0, n), 3)  # rounded: ties
    correct = rng.random(n) < confidence
    return correct, confidence


def test_docstring_examples_run():
    assert doctest.testmod(thresholds).failed == 0


@pytest.mark.parametrize("target", [0.8, 0.85, 0.9, 0.95])
def test_min_accuracy_gives_the_largest_coverage_that_keeps_the_accuracy(target):
    correct, confidence = _validation()
    choice = choose_threshold(correct, confidence, min_accuracy=target)
    assert choice.met and choice.target == "min_accuracy" and choice.target_value == target
    answered = confidence >= choice.threshold
    assert correct[answered].mean() >= target
    assert choice.accuracy == pytest.approx(correct[answered].mean())
    assert choice.coverage == pytest.approx(answered.mean())
    # every lower threshold (answering more) misses the target
    for t in np.unique(confidence[confidence < choice.threshold]):
        assert correct[confidence >= t].mean() < target


@pytest.mark.parametrize("coverage", [0.1, 0.5, 0.77, 0.9])
def test_coverage_gives_the_highest_threshold_answering_enough(coverage):
    correct, confidence = _validation()
    choice = choose_threshold(correct, confidence, coverage=coverage)
    assert choice.met and choice.coverage >= coverage
    assert np.mean(confidence >= choice.threshold) == choice.coverage
    higher = np.unique(confidence[confidence > choice.threshold])
    if higher.size:  # the next threshold up answers too few
        assert np.mean(confidence >= higher[0]) < coverage


def test_recorded_numbers_are_the_coverage_curve_at_the_threshold():
    correct, confidence = _validation(seed=3)
    choice = choose_threshold(correct, confidence, min_accuracy=0.85)
    curve = coverage_curve(correct, confidence, [choice.threshold])
    assert (choice.accuracy, choice.coverage) == (curve["accuracy"][0], curve["coverage"][0])
    assert choice.n == len(correct)


def test_everything_answerable_gives_zero():
    confidence = [0.6, 0.7, 0.9]
    assert choose_threshold([True, True, True], confidence, min_accuracy=0.99).threshold == 0.0
    assert choose_threshold([True, False, True], confidence, coverage=1.0).threshold == 0.0


def test_ties_are_answered_together():
    # the two images at 0.8 are answered or left together: coverage 3/4 is reached only
    # with both, so coverage=0.5 gives 0.8 with coverage 0.75
    choice = choose_threshold([True, True, False, True], [0.9, 0.8, 0.8, 0.1], coverage=0.5)
    assert choice.threshold == 0.8 and choice.coverage == 0.75


def test_an_unreachable_accuracy_warns_and_says_so():
    with pytest.warns(UserWarning, match="no threshold reaches min_accuracy=0.9"):
        choice = choose_threshold([False, True, False], [0.9, 0.8, 0.7], min_accuracy=0.9)
    assert not choice.met and choice.threshold == 0.9 and choice.accuracy == 0.0
    assert "NOT reached" in choice.describe()


def test_round_trip_through_json_and_description():
    correct, confidence = _validation()
    choice = choose_threshold(correct, confidence, min_accuracy=0.9,
                              description="upright classifier's validation accuracy")
    again = ReviewThreshold.from_dict(json.loads(json.dumps(choice.to_dict())))
    assert again == choice
    text = choice.describe()
    assert "upright classifier's validation accuracy" in text and f"{choice.n} validation" in text


@pytest.mark.parametrize("key, value, message", [
    ("threshold", 1.5, r"threshold must be a finite number in \[0, 1\]; got 1.5"),
    ("threshold", -0.1, r"threshold must be a finite number in \[0, 1\]"),
    ("threshold", math.nan, r"threshold must be a finite number in \[0, 1\]"),
    ("threshold", "0.5", r"threshold must be a finite number"),
    ("target", "recall", "target must be one of"),
    ("coverage", 2.0, "coverage must be"),
    ("met", "yes", "met must be True or False"),
])
def test_stored_thresholds_are_checked(key, value, message):
    good = choose_threshold([True, False], [0.9, 0.6], coverage=0.5).to_dict()
    with pytest.raises(ValueError, match=message):
        ReviewThreshold.from_dict({**good, key: value})
    del good["n"]
    with pytest.raises(ValueError, match="misses n"):
        ReviewThreshold.from_dict(good)


def test_bad_arguments_are_clear_errors():
    correct, confidence = [True, False], [0.9, 0.6]
    with pytest.raises(ValueError, match="exactly one target"):
        choose_threshold(correct, confidence)
    with pytest.raises(ValueError, match="exactly one target"):
        choose_threshold(correct, confidence, min_accuracy=0.9, coverage=0.5)
    with pytest.raises(ValueError, match=r"min_accuracy must be a finite number in \[0, 1\]"):
        choose_threshold(correct, confidence, min_accuracy=1.2)
    with pytest.raises(ValueError, match=r"coverage must be a finite number in \(0, 1\]"):
        choose_threshold(correct, confidence, coverage=0.0)
    with pytest.raises(ValueError, match="equal, non-empty"):
        choose_threshold([True], confidence, coverage=0.5)
    with pytest.raises(ValueError, match="equal, non-empty"):
        choose_threshold([], [], coverage=0.5)
    with pytest.raises(ValueError, match=r"confidence must hold finite values in \[0, 1\]"):
        choose_threshold(correct, [0.9, 1.2], coverage=0.5)
    with pytest.raises(ValueError, match="correct must be booleans"):
        choose_threshold([0.5, 1.0], confidence, coverage=0.5)


def test_coverage_curve_refuses_thresholds_outside_0_1():
    with pytest.raises(ValueError, match=r"thresholds\[1\] must be a finite number in \[0, 1\]"):
        coverage_curve([True, False], [0.9, 0.6], [0.5, 1.5])
