"""risc_tf.decisions and risc_tf.scans: status, reasons, rotation and copy policy of each file."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import risc_tf.decisions as decisions
from risc_tf.decisions import (
    Orientation,
    Reason,
    confidence_reasons,
    copy_plan,
    default_max_tilt,
    orientation_reasons,
    orientations,
    status_of,
)
from risc_tf.io import ImageRecord
from risc_tf.scans import predict_records
from tests.predict_stub import StubPipeline, code_image

QUARTERS = (0, 90, 180, 270)
EIGHTHS = tuple(range(0, 360, 45))


def test_docstring_examples_hold():
    result = doctest.testmod(decisions)
    assert result.attempted >= 6 and result.failed == 0


def test_an_exact_confident_quarter_turn_gets_an_exact_copy_and_no_reason():
    [o] = orientations([270.0], angles=QUARTERS, proba=[[0.01, 0.0, 0.01, 0.98]])
    assert (o.rotated, o.off_set, o.quarter_turns) == (True, False, 1)
    assert orientation_reasons(o) == []
    plan = copy_plan(o, [])
    assert (plan.kind, plan.quarter_turns, plan.angle) == ("exact", 1, 90.0)
    assert copy_plan(o, confidence_reasons(0.5, 0.9, min_rotation_confidence=0.9)) is None


def test_off_the_angle_set_is_review_with_the_estimate_and_never_an_exact_copy():
    [o] = orientations([90.0], angles=QUARTERS, proba=[[0.0, 0.6, 0.4, 0.0]])
    assert o.off_set and round(o.estimate) == 126 and o.neighbours == (90.0, 180.0)
    [reason] = orientation_reasons(o)
    assert reason.code == "off_angle_set" and "about 126 degrees" in reason.text
    assert status_of([reason]) == "review"
    assert copy_plan(o, [reason]) is None
    plan = copy_plan(o, [reason], straighten=True)  # resampled by the estimate
    assert plan.kind == "straightened" and plan.angle == pytest.approx(-126.0)
    assert orientation_reasons(o, straighten=True)[0].code == "off_angle_set"  # still review


def test_a_set_angle_that_is_not_a_quarter_turn_is_review_unless_straightened():
    [o] = orientations([45.0], angles=EIGHTHS, proba=[[0, 1.0, 0, 0, 0, 0, 0, 0]])
    assert o.rotated and not o.off_set and o.quarter_turns is None
    assert [r.code for r in orientation_reasons(o)] == ["not_quarter_turn"]
    assert copy_plan(o, []) is None
    assert orientation_reasons(o, straighten=True) == []
    assert copy_plan(o, [], straighten=True).kind == "straightened"


def test_upright_and_the_tolerance():
    [upright, slight] = orientations([0.0, 0.0], angles=QUARTERS,
                                     proba=[[1, 0, 0, 0], [0.92, 0.08, 0, 0]])
    assert not upright.rotated and copy_plan(upright, []) is None
    assert not slight.off_set and round(slight.estimate, 1) == 7.2  # within 10 degrees
    assert default_max_tilt(QUARTERS) == 10 and default_max_tilt(range(0, 360, 15)) == 5
    assert orientations([0.0], angles=QUARTERS, proba=[[0.92, 0.08, 0, 0]],
                        max_tilt=5)[0].off_set
    for bad in (0, -1, 46, float("nan")):
        with pytest.raises(ValueError, match="max_tilt"):
            orientations([0.0], angles=QUARTERS, max_tilt=bad)
    with pytest.raises(ValueError, match="proba must have shape"):
        orientations([0.0], angles=QUARTERS, proba=[[1, 0, 0]])
    assert orientations([90.0], angles=QUARTERS)[0] == Orientation(90.0, 90.0)  # no proba


def test_status_from_reasons():
    assert status_of([]) == "ok"
    assert status_of([Reason("no_copy", "no upright copy: disk full")]) == "ok"  # a note
    assert status_of([Reason("low_class_probability", "x")]) == "review"
    assert status_of([Reason("unreadable", "x"), Reason("low_class_probability", "x")]) == \
        "unreadable"
    assert [r.code for r in confidence_reasons(0.5, 0.5, min_rotation_confidence=0.6,
                                               min_class_probability=0.6)] == \
        ["low_rotation_confidence", "low_class_probability"]


def _records(codes):
    return [ImageRecord(f"f{i}.png", code_image(c, seed=i)) for i, c in enumerate(codes)]


def test_scans_use_the_pipelines_review_flag_and_its_reasons_when_given():
    class Flagging(StubPipeline):  # a pipeline that flags for a reason this module may not know
        def predict_details(self, images):
            details = super().predict_details(images)
            details.review = np.ones(len(images), bool)
            return details

    [result] = predict_records(Flagging(), _records([0]))
    assert result.status == "review" and [r.code for r in result.reasons] == ["pipeline_review"]

    class Explaining(StubPipeline):  # one that gives its reasons: used as they are
        def predict_details(self, images):
            details = super().predict_details(images)
            details.review = np.ones(len(images), bool)
            details.reasons = [[Reason("unlike_training", "unlike the training images")]] * \
                len(images)
            return details

    assert "unlike_training" in decisions.REVIEW_CODES
    [result] = predict_records(Explaining(), _records([1]))
    assert result.status == "review" and result.row["reason"] == "unlike the training images"
    assert result.copy.kind == "exact"  # the rotation itself is sure: the copy stays


def test_scans_take_the_rotnet_probabilities_from_the_details_when_given():
    class Giving(StubPipeline):
        def predict_rotation(self, images, return_proba=False):
            raise AssertionError("a second RotNet pass")

        def predict_details(self, images):
            details = super().predict_details(images)
            _, details.rotation_proba = StubPipeline.predict_rotation(self, images,
                                                                      return_proba=True)
            return details

    [a, b] = predict_records(Giving(), _records([1, 4]))
    assert a.row["estimated_rotation"] == 90.0 and b.row["estimated_rotation"] == 45.0
    assert b.row["reason_codes"] == "off_angle_set"


def test_predict_records_checks_its_options_when_called():
    with pytest.raises(ValueError, match="batch_size"):
        predict_records(StubPipeline(), [], batch_size=0)
    with pytest.raises(ValueError, match="max_tilt"):
        predict_records(StubPipeline(), [], max_tilt=50)
    assert list(predict_records(StubPipeline(), [])) == []
    unreadable = ImageRecord("x.png", None, "not a PNG file")
    [row] = [r.row for r in predict_records(StubPipeline(), [unreadable])]
    assert (row["status"], row["reason"], row["rotated"]) == ("unreadable", "not a PNG file", None)


def test_a_batch_ends_at_its_window_or_when_its_pixels_reach_the_byte_limit(monkeypatch):
    import risc_tf.scans as scans

    class Sizes(StubPipeline):
        sizes: list

        def predict_details(self, images):
            self.sizes.append(len(images))
            return super().predict_details(images)

    def batches(records, batch_size):
        pipe = Sizes()
        pipe.sizes = []
        rows = [r.row for r in predict_records(pipe, records, batch_size=batch_size)]
        return pipe.sizes, rows

    records = _records([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])  # 480 bytes each
    records[5] = ImageRecord("bad.png", None, "not a PNG file")
    sizes, whole = batches(records, 4)
    assert sizes == [4, 3, 2]  # windows of 4 files, unreadable left out
    monkeypatch.setattr(scans, "BATCH_BYTES", 3 * 480)
    sizes, rows = batches(records, 4)
    # cut at 3 images; the next window still starts at file 4 and file 8, as in a shard
    assert sizes == [3, 1, 3, 2]
    assert rows == whole and [r["path"] for r in rows] == \
        [f"f{i}.png" for i in range(5)] + ["bad.png"] + [f"f{i}.png" for i in range(6, 10)]
    assert batches(records[4:], 4)[0] == [3, 2]  # a shard from file 4: the same batches


def test_batches_run_in_a_worker_one_batch_ahead_of_the_caller():
    import threading

    class Calls(StubPipeline):
        threads: list

        def predict_details(self, images):
            self.threads.append(threading.current_thread().name)
            if len(self.threads) == 2 and getattr(self, "fail", False):
                raise RuntimeError("the model failed on batch 2")
            return super().predict_details(images)

    pipe = Calls()
    pipe.threads = []
    read = []

    def records():
        for record in _records([0, 1, 2, 3] * 5):
            read.append(record.path)
            yield record

    stream = predict_records(pipe, records(), batch_size=2)
    first = next(stream)
    assert first.row["path"] == "f0.png"
    assert len(read) == 4  # the first batch's results come once the second is read
    stream.close()  # the caller stops after one file of ten batches
    assert 1 <= len(pipe.threads) <= 2 and len(read) == 4
    assert all(name.startswith("risc_tf-predict") for name in pipe.threads)
    pipe.threads, pipe.fail = [], True
    rows = []
    with pytest.raises(RuntimeError, match="failed on batch 2"):
        for result in predict_records(pipe, _records([0, 1, 2, 3] * 5), batch_size=2):
            rows.append(result.row["path"])
    assert rows == ["f0.png", "f1.png"]  # the first batch's results, then the error


def test_an_image_unlike_the_training_data_goes_to_review():
    from risc_tf.decisions import confidence_reasons, status_of

    reasons = confidence_reasons(0.99, 0.95, ood_score=80.0, ood_threshold=41.5)
    assert [r.code for r in reasons] == ["unlike_training"] and status_of(reasons) == "review"
    assert "unlike the training images" in reasons[0].text
    assert confidence_reasons(0.99, 0.95, ood_score=12.0, ood_threshold=41.5) == []


def test_a_continuous_angle_gets_an_exact_copy_only_near_a_quarter_turn():
    from risc_tf.decisions import continuous_orientations, copy_plan, orientation_reasons

    near, tilted, upright = continuous_orientations([268.0, 135.0, 359.0], max_tilt=5.0)
    assert (near.rotation, near.quarter_turns, near.off_set) == (270.0, 1, False)
    assert copy_plan(near, []).kind == "exact"
    assert tilted.off_set and tilted.quarter_turns is None and copy_plan(tilted, []) is None
    assert orientation_reasons(tilted)[0].code == "off_angle_set"
    assert copy_plan(tilted, [], straighten=True).kind == "straightened"
    assert not upright.rotated and copy_plan(upright, []) is None
    with pytest.raises(ValueError, match="max_tilt must be"):
        continuous_orientations([10.0], max_tilt=50.0)


class _CircularStub(StubPipeline):
    """A circular head's pipeline: 72 bins of 5 degrees, a continuous angle per image
    (code 0: 7 degrees, within a RotNet's error of upright; code 1: 30 degrees)."""

    angles = tuple(float(a) for a in range(0, 360, 5))
    head = "circular"

    def __init__(self, max_tilt=None, **options):
        super().__init__(**options)
        if max_tilt is not None:
            self.max_tilt = max_tilt

    def predict_details(self, images):
        details = super().predict_details(images)
        details.rotation = np.array([7.0 if c == 0 else 30.0 for c in self._codes(images)],
                                    np.float32)
        return details


def test_a_circular_head_counts_an_estimate_near_a_quarter_turn_by_the_quarter_turns_gap():
    """The tolerance of a continuous angle comes from the quarter turns (10 degrees), or
    the pipeline's own measured one, never from the width of its 5-degree bins (1.7)."""
    from risc_tf.decisions import check_max_tilt
    from risc_tf.scans import pipeline_max_tilt

    near, tilted = predict_records(_CircularStub(), _records([0, 1]))
    assert (near.status, near.row["rotated"]) == ("ok", False)  # 7 degrees: noise
    assert tilted.status == "review" and tilted.row["reason_codes"] == "off_angle_set"
    [strict] = predict_records(_CircularStub(max_tilt=5.0), _records([0]))  # the pipeline's
    assert strict.status == "review"
    [loose] = predict_records(_CircularStub(max_tilt=5.0), _records([0]), max_tilt=20.0)
    assert loose.status == "ok"  # the caller's beats the pipeline's; 20 > half a 5-deg bin
    assert pipeline_max_tilt(_CircularStub()) == 10.0
    assert check_max_tilt(None, _CircularStub.angles) == pytest.approx(5 / 3)  # as bins
    with pytest.raises(ValueError, match="max_tilt must be"):
        predict_records(_CircularStub(), [], max_tilt=46.0)
