"""Angle sets, angle matching and fills: the vocabulary of rotations, in pure numpy.

:func:`match_angles` is the one place where two angles are compared.

Angles are degrees, counter-clockwise as displayed. Two angles are the same
rotation when they differ by a multiple of 360 degrees, up to
:data:`ANGLE_TOLERANCE` (float32 arithmetic and JSON round trips change the
last digits of an angle; nothing finer than a thousandth of a degree is
meaningful for images). :func:`match_angles` is the matcher every module calls:
angle-set validation, evaluation, reports and explanations.

:data:`FILLS` names what fills the pixels an interpolated rotation brings in
(see :mod:`risc_tf.rotation`).

Pure numpy (no TensorFlow), so the command line can parse angle options
without loading TensorFlow; :mod:`risc_tf.rotation` re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from risc_tf.validation import check_choice, check_number

__all__ = [
    "ANGLE_TOLERANCE",
    "DEFAULT_ANGLES",
    "FILLS",
    "PROTOCOLS",
    "QUARTER_TURNS",
    "angle_difference",
    "angles_every",
    "check_angles",
    "check_fill",
    "check_resolution",
    "check_tilt",
    "default_tilt",
    "smallest_gap",
    "is_quarter_turn_set",
    "match_angles",
]

#: Two angles closer than this (degrees, modulo 360) are the same rotation.
ANGLE_TOLERANCE = 1e-3

#: The paper's RotNet angle set.
DEFAULT_ANGLES: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
QUARTER_TURNS = DEFAULT_ANGLES

#: What fills the pixels an interpolated rotation brings in: black
#: (``"constant"``, the paper), the image reflected about its edge
#: (``"reflect"``), or a circular field of view applied to every image
#: (``"circle"``); see :mod:`risc_tf.rotation`.
FILLS = ("constant", "reflect", "circle")


#: How a rotated test set draws each image's angle: from an angle set (the
#: paper's protocol) or uniformly over the circle.
PROTOCOLS = ("set", "uniform")


def check_fill(fill: str) -> str:
    """``fill`` if it is one of :data:`FILLS`; a ValueError naming them otherwise."""
    return check_choice("fill", fill, FILLS)


def angle_difference(a, b) -> np.ndarray:
    """Signed difference ``a - b`` wrapped into [-180, 180) degrees (float64, broadcast)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return (d + 180.0) % 360.0 - 180.0


def match_angles(angles, table: Sequence[float]) -> np.ndarray:
    """Index of each angle in ``table`` (modulo 360), or -1 where it is not in the table.

    Parameters
    ----------
    angles : float or array_like
        Angles to look up (degrees).
    table : sequence of float
        An angle set, e.g. a RotNet's.

    Returns
    -------
    np.ndarray
        int64 of ``angles``' shape.

    Examples
    --------
    >>> match_angles([450.0, -90.0, 45.0], (0, 90, 180, 270)).tolist()
    [1, 3, -1]
    """
    a = np.asarray(angles, np.float64)
    t = np.asarray(table, np.float64).reshape(-1)
    if a.size == 0:
        return np.zeros(a.shape, np.int64)
    diff = np.abs(angle_difference(a[..., None], t))
    best = diff.argmin(axis=-1)
    return np.where(np.take_along_axis(diff, best[..., None], -1)[..., 0] <= ANGLE_TOLERANCE,
                    best, -1).astype(np.int64)


def check_angles(angles: Sequence[float], name: str = "angles") -> tuple[float, ...]:
    """Validate an angle set and return it as a tuple of floats.

    Parameters
    ----------
    angles : sequence of float
        Rotation angles in degrees. At least two, finite, distinct modulo 360.
    name : str, default "angles"
        The argument's name, for messages.

    Raises
    ------
    ValueError
        Not a sequence of numbers, fewer than two angles, non-finite values or
        two angles that are the same rotation.

    Examples
    --------
    >>> check_angles([0, 90, 180, 270])
    (0.0, 90.0, 180.0, 270.0)
    """
    if isinstance(angles, (str, bytes)) or not isinstance(angles, Sequence | np.ndarray):
        raise ValueError(f"{name} must be a sequence of degrees; got {angles!r}")
    try:
        out = tuple(float(a) for a in angles)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numbers (degrees); got {angles!r}") from None
    if len(out) < 2:
        raise ValueError(f"{name} needs at least two rotations; got {out}")
    if not all(math.isfinite(a) for a in out):
        raise ValueError(f"{name} must be finite; got {out}")
    for i, a in enumerate(out):
        j = int(match_angles(a, out[:i])) if i else -1
        if j >= 0:
            raise ValueError(
                f"{name}: {out[j]:g} and {a:g} are the same rotation (mod 360); got {out}"
            )
    return out


def angles_every(step: float) -> tuple[float, ...]:
    """All multiples of ``step`` degrees in [0, 360), e.g. ``angles_every(45)``.

    Raises
    ------
    ValueError
        If ``step`` is not a number that divides 360 into at least two angles.

    Examples
    --------
    >>> angles_every(90)
    (0.0, 90.0, 180.0, 270.0)
    """
    message = f"step must divide 360 into >= 2 angles (a number of degrees); got {step!r}"
    try:
        step = check_number("step", step, 0.0, 180.0, include_minimum=False)
    except ValueError:
        raise ValueError(message) from None
    n = 360.0 / step
    if abs(n - round(n)) > 1e-9:
        raise ValueError(message)
    return tuple(step * i for i in range(int(round(n))))


def is_quarter_turn_set(angles: Sequence[float]) -> bool:
    """Whether every angle of a set is a multiple of 90 degrees (exact, lossless rotations)."""
    return bool(np.all(match_angles(angles, QUARTER_TURNS) >= 0))


def smallest_gap(angles: Sequence[float]) -> float:
    """The smallest angle between two rotations of a set, around the circle (degrees).

    Examples
    --------
    >>> smallest_gap((0, 90, 180, 270))
    90.0
    """
    a = np.sort(np.mod(np.asarray(check_angles(angles), np.float64), 360.0))
    return float(np.min(np.diff(np.append(a, a[0] + 360.0))))


def default_tilt(angles: Sequence[float]) -> float:
    """The classifier's training tilt for a RotNet angle set: half its smallest gap.

    Zero for quarter-turn sets (the paper's protocol: test images are turned by
    exact quarter turns, which the RotNet undoes exactly); otherwise the largest
    residual the RotNet leaves when it picks the nearest angle.
    """
    return 0.0 if is_quarter_turn_set(angles) else smallest_gap(angles) / 2.0


def check_tilt(tilt: float, angles: Sequence[float] | None = None, name: str = "tilt") -> float:
    """A tilt or jitter range in degrees: in [0, 180), and for an angle set at most half its gap.

    Raises
    ------
    ValueError
        Negative, not finite, or (with ``angles``) larger than half the smallest
        gap between two angles, where a rotation would be closer to another angle
        of the set than to its own.
    """
    tilt = check_number(name, tilt, 0.0, 180.0, include_maximum=False)
    if angles is not None and tilt > 0:
        half = smallest_gap(angles) / 2.0
        if tilt > half + ANGLE_TOLERANCE:
            raise ValueError(
                f"{name} of {tilt:g} deg is larger than half the smallest gap between the angles "
                f"({half:g} deg): a rotation would then be nearer another angle of the set"
            )
    return tilt


def check_resolution(angles: Sequence[float], image_size: int) -> None:
    """Refuse an angle set too fine for the image size.

    Two rotations a gap ``g`` apart move a point on the image's inscribed circle
    by ``g * pi / 180 * S / 2`` pixels; below one pixel, they cannot be told apart.

    Raises
    ------
    ValueError
        The message names the finest gap the size allows.
    """
    gap = smallest_gap(angles)
    finest = 360.0 / (math.pi * image_size)
    if gap < finest - ANGLE_TOLERANCE:
        raise ValueError(
            f"angles {gap:g} deg apart are too fine for {image_size}x{image_size} inputs: "
            f"neighbouring rotations move the image's edge by less than one pixel (the finest "
            f"gap at this size is {finest:.2f} deg; use fewer angles or a larger input)"
        )

