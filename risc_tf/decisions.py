"""What happens to each file of a user's folder: its status, the reasons, its rotation, its copy.

The one home of the decisions that :func:`risc_tf.scans.predict_files`, the
review page (:mod:`risc_tf.review`) and ``risc-tf predict`` share:

* **Reasons** (:class:`Reason`): each is a code and one line of text. A row's
  status follows from its reasons: ``"unreadable"`` when the file could not be
  read, ``"review"`` when any reason asks for a person, else ``"ok"``. A new
  check (e.g. an out-of-distribution score) is one more function returning
  reasons and one more code in :data:`REVIEW_CODES`.
* **Orientation** (:class:`Orientation`, :func:`orientations`): the pipeline's
  predicted angle (one of its angle set), a finer estimate from the RotNet's
  probabilities (:func:`risc_tf.heads.refine_angle`), whether that estimate
  lies *between* the set's angles (more than ``max_tilt`` degrees from the
  predicted one: the pipeline cannot undo it exactly), whether the file is
  rotated at all (:func:`is_rotated`, decided here and nowhere else) and the
  exact quarter turns that undo it.
* **Copies** (:func:`copy_plan`): an upright copy is **exact** (a lossless
  quarter turn of the original) when the rotation is a quarter turn, on the
  pipeline's angle set and confident (no ``low_rotation_confidence`` reason).
  Any other rotation gets no copy and the reason ``off_angle_set`` (always a
  reason for review: the classifier saw an image the pipeline could not turn
  upright) or ``not_quarter_turn`` (a reason for review unless ``straighten``),
  and, with ``straighten=True``, a **straightened** copy: resampled
  (interpolated, on an expanded canvas, see :mod:`risc_tf.straighten`).

Only numpy and :mod:`risc_tf.angles` are imported (no TensorFlow).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from risc_tf.angles import (
    ANGLE_TOLERANCE,
    QUARTER_TURNS,
    angle_difference,
    check_angles,
    match_angles,
)
from risc_tf.heads import (  # the tilt tolerance is decided here, defined with the heads
    DEFAULT_MAX_TILT,
    check_max_tilt,
    default_max_tilt,
    refine_angle,
)

__all__ = [
    "DEFAULT_MAX_TILT",
    "REVIEW_CODES",
    "STATUSES",
    "CopyPlan",
    "Orientation",
    "Reason",
    "check_max_tilt",
    "confidence_reasons",
    "continuous_orientations",
    "copy_plan",
    "default_max_tilt",
    "is_rotated",
    "orientation_reasons",
    "orientations",
    "quarter_turns_to_undo",
    "status_of",
]

#: A row's status, in the order of the summaries.
STATUSES = ("ok", "review", "unreadable")

#: Codes of the reasons that send a file to a person (status ``"review"``).
REVIEW_CODES = frozenset({
    "low_rotation_confidence",  # the RotNet's probability is below the threshold
    "low_class_probability",  # the class probability is below the threshold
    "off_angle_set",  # the estimated rotation lies between the pipeline's angles
    "not_quarter_turn",  # a rotation no exact upright copy undoes (without straighten)
    "unlike_training",  # the out-of-distribution score is above the detector's threshold
    "pipeline_review",  # the pipeline's review flag, without a reason this module knows
})
#: Codes of reasons that inform without changing the status.
NOTE_CODES = frozenset({"unreadable", "no_copy"})

@dataclasses.dataclass(frozen=True)
class Reason:
    """Why a file is not simply ``ok``: a stable code and one line for people.

    Attributes
    ----------
    code : str
        One of :data:`REVIEW_CODES` (the file goes to review) or
        :data:`NOTE_CODES` (``"unreadable"``, ``"no_copy"``).
    text : str
        One line, e.g. ``"rotation confidence 0.612 < 0.9"``.
    """

    code: str
    text: str

    @property
    def review(self) -> bool:
        """True when this reason asks for a person."""
        return self.code in REVIEW_CODES


def status_of(reasons: Iterable[Reason]) -> str:
    """``"unreadable"``, ``"review"`` or ``"ok"`` from a file's reasons."""
    codes = {r.code for r in reasons}
    if "unreadable" in codes:
        return "unreadable"
    return "review" if codes & REVIEW_CODES else "ok"


def confidence_reasons(rotation_confidence: float, class_probability: float, *,
                       min_rotation_confidence: float = 0.0,
                       min_class_probability: float = 0.0, ood_score: float | None = None,
                       ood_threshold: float | None = None) -> list[Reason]:
    """The review rule of :meth:`risc_tf.RISCPipeline.predict_details`, with its reasons.

    An image goes to review when the RotNet's confidence in its predicted rotation
    is below ``min_rotation_confidence``, the predicted class's probability is
    below ``min_class_probability``, or its out-of-distribution score is above the
    detector's ``ood_threshold`` (unlike the training images).

    Examples
    --------
    >>> [r.text for r in confidence_reasons(0.61, 0.97, min_rotation_confidence=0.9)]
    ['rotation confidence 0.610 < 0.9']
    """
    reasons = []
    if rotation_confidence < min_rotation_confidence:
        reasons.append(Reason("low_rotation_confidence",
                              f"rotation confidence {rotation_confidence:.3f} < "
                              f"{min_rotation_confidence:g}"))
    if class_probability < min_class_probability:
        reasons.append(Reason("low_class_probability",
                              f"class probability {class_probability:.3f} < "
                              f"{min_class_probability:g}"))
    if ood_score is not None and ood_threshold is not None and ood_score > ood_threshold:
        reasons.append(Reason("unlike_training",
                              f"unlike the training images (score {ood_score:.4g} > "
                              f"{ood_threshold:.4g})"))
    return reasons


def is_rotated(angle: float | None) -> bool:
    """Whether a file turned by ``angle`` degrees is rotated (not upright); False for None."""
    return angle is not None and abs(float(angle_difference(angle, 0.0))) > ANGLE_TOLERANCE


def quarter_turns_to_undo(rotation: float) -> int | None:
    """Counter-clockwise quarter turns that undo a rotation (0-3), or None when the
    rotation is not a multiple of 90 degrees (no lossless correction exists).

    Examples
    --------
    >>> quarter_turns_to_undo(90.0), quarter_turns_to_undo(-90), quarter_turns_to_undo(45)
    (3, 1, None)
    """
    k = int(match_angles(rotation, (0.0, 90.0, 180.0, 270.0)))
    return None if k < 0 else (4 - k) % 4


@dataclasses.dataclass(frozen=True)
class Orientation:
    """How one file is turned, as the pipeline sees it.

    Attributes
    ----------
    rotation : float
        The pipeline's predicted rotation (one of its angles), degrees
        counter-clockwise as displayed; the pipeline counter-rotated by it.
    estimate : float
        A finer estimate in [0, 360) from the RotNet's probabilities
        (:func:`risc_tf.heads.refine_angle`); ``rotation`` when they are unknown.
    off_set : bool
        The estimate is more than ``max_tilt`` degrees from ``rotation``: the
        file is turned by an angle between the pipeline's angles.
    neighbours : tuple of float
        The two set angles the estimate lies between (when ``off_set``).
    """

    rotation: float
    estimate: float
    off_set: bool = False
    neighbours: tuple[float, ...] = ()

    @property
    def angle(self) -> float:
        """The best estimate of the file's rotation: ``estimate`` when off the set,
        else ``rotation``."""
        return self.estimate if self.off_set else self.rotation

    @property
    def rotated(self) -> bool:
        """Whether the file is rotated (:func:`is_rotated` of :attr:`angle`)."""
        return is_rotated(self.angle)

    @property
    def quarter_turns(self) -> int | None:
        """Exact counter-clockwise quarter turns that undo the rotation, or None (off the
        set, or not a multiple of 90 degrees)."""
        return None if self.off_set else quarter_turns_to_undo(self.rotation)


def orientations(rotation, *, angles: Sequence[float], proba=None,
                 max_tilt: float | None = None) -> list[Orientation]:
    """One :class:`Orientation` per image from a pipeline's outputs.

    Parameters
    ----------
    rotation : array_like, (N,)
        Predicted rotations (angles of ``angles``).
    angles : sequence of float
        The pipeline's angle set.
    proba : array_like, (N, len(angles)), optional
        The RotNet's probabilities; without them no image is found off the set.
    max_tilt : float, optional
        Degrees between the refined estimate and the predicted angle beyond
        which an image is off the set; in (0, half the set's smallest gap].
        Default: :func:`default_max_tilt`.

    Raises
    ------
    ValueError
        Bad ``angles``, ``max_tilt`` out of range, ``proba`` of the wrong shape.

    Examples
    --------
    >>> o = orientations([90.0, 90.0], angles=(0, 90, 180, 270),
    ...                  proba=[[0, 1, 0, 0], [0, 0.5, 0.5, 0]])
    >>> [(x.rotation, x.off_set, round(x.angle), x.quarter_turns) for x in o]
    [(90.0, False, 90, 3), (90.0, True, 135, None)]
    """
    table = check_angles(angles)
    max_tilt = check_max_tilt(max_tilt, table)
    rotation = np.atleast_1d(np.asarray(rotation, np.float64))
    if proba is None:
        return [Orientation(float(r), float(np.mod(r, 360.0))) for r in rotation]
    estimate = refine_angle(proba, table)
    if len(estimate) != len(rotation):
        raise ValueError(f"proba has {len(estimate)} rows for {len(rotation)} rotations")
    out = []
    for r, e in zip(rotation, estimate):
        off = bool(abs(float(angle_difference(e, r))) > max_tilt + ANGLE_TOLERANCE)
        out.append(Orientation(float(r), float(e), off, _neighbours(e, table) if off else ()))
    return out


def continuous_orientations(estimate, *, max_tilt: float | None = None
                            ) -> list[Orientation]:
    """One :class:`Orientation` per image from a continuous angle (a circular RotNet head).

    The pipeline corrected each image by its own estimated angle; an exact upright
    copy exists only for a quarter turn. An estimate within ``max_tilt`` degrees of
    a quarter turn counts as that quarter turn; any other is off the quarter turns
    (review with the estimated tilt, or a straightened copy).

    Examples
    --------
    >>> [(o.rotation, o.off_set, o.quarter_turns) for o in continuous_orientations([91.5, 40.0])]
    [(90.0, False, 3), (0.0, True, None)]
    """
    max_tilt = check_max_tilt(max_tilt, QUARTER_TURNS, "circular")
    out = []
    for e in np.atleast_1d(np.asarray(estimate, np.float64)) % 360.0:
        nearest = float(np.round(e / 90.0) * 90.0 % 360.0)
        off = bool(abs(float(angle_difference(e, nearest))) > max_tilt + ANGLE_TOLERANCE)
        out.append(Orientation(nearest, float(e), off,
                               _neighbours(e, QUARTER_TURNS) if off else ()))
    return out


def _neighbours(estimate: float, table: Sequence[float]) -> tuple[float, float]:
    """The set angles just below and above ``estimate`` around the circle."""
    offsets = angle_difference(np.asarray(table, np.float64), estimate)
    below = float(np.asarray(table)[np.where(offsets <= 0, offsets, -np.inf).argmax()])
    above = float(np.asarray(table)[np.where(offsets > 0, offsets, np.inf).argmin()])
    return below % 360.0, above % 360.0


def orientation_reasons(orientation: Orientation, *, straighten: bool = False) -> list[Reason]:
    """Reasons for review that come from the file's rotation (none for an exact quarter turn).

    Examples
    --------
    >>> [r.text for r in orientation_reasons(Orientation(45.0, 45.0))]
    ['turned 45 degrees: not a quarter turn, so no exact upright copy']
    """
    if orientation.off_set:
        low, high = orientation.neighbours or (orientation.rotation, orientation.rotation)
        return [Reason("off_angle_set",
                       f"turned about {orientation.estimate:.0f} degrees, between the "
                       f"pipeline's angles {low:g} and {high:g}: it cannot undo this exactly")]
    if orientation.rotated and orientation.quarter_turns is None and not straighten:
        return [Reason("not_quarter_turn",
                       f"turned {orientation.rotation:g} degrees: not a quarter turn, so no "
                       "exact upright copy")]
    return []


@dataclasses.dataclass(frozen=True)
class CopyPlan:
    """The upright copy a file gets.

    Attributes
    ----------
    kind : {"exact", "straightened"}
        ``"exact"``: a lossless quarter turn of the original; ``"straightened"``:
        resampled by ``angle`` (interpolated, expanded canvas).
    quarter_turns : int or None
        Counter-clockwise quarter turns to apply (exact copies).
    angle : float
        Degrees counter-clockwise to apply (the opposite of the file's rotation).
    """

    kind: str
    quarter_turns: int | None
    angle: float


def copy_plan(orientation: Orientation, reasons: Iterable[Reason], *,
              straighten: bool = False) -> CopyPlan | None:
    """Which upright copy a file gets, if any (the policy of the module docstring).

    Examples
    --------
    >>> copy_plan(Orientation(90.0, 90.0), [])
    CopyPlan(kind='exact', quarter_turns=3, angle=-90.0)
    >>> copy_plan(Orientation(45.0, 45.0), []) is None
    True
    """
    codes = {r.code for r in reasons}
    if not orientation.rotated or codes & {"low_rotation_confidence", "unreadable"}:
        return None
    angle = -float(angle_difference(orientation.angle, 0.0)) + 0.0
    if orientation.quarter_turns is not None:
        return CopyPlan("exact", orientation.quarter_turns, angle)
    if straighten:
        return CopyPlan("straightened", None, angle)
    return None
