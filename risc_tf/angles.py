"""Angle sets and angle matching: the one place where two angles are compared.

Angles are degrees, counter-clockwise as displayed. Two angles are the same
rotation when they differ by a multiple of 360 degrees, up to
:data:`ANGLE_TOLERANCE` (float32 arithmetic and JSON round trips change the
last digits of an angle; nothing finer than a thousandth of a degree is
meaningful for images). :func:`match_angles` is the matcher every module calls:
angle-set validation, evaluation, reports and explanations.

Pure numpy (no TensorFlow), so the command line can parse angle options
without loading TensorFlow; :mod:`risc_tf.rotation` re-exports these names.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from risc_tf.validation import check_number

__all__ = [
    "ANGLE_TOLERANCE",
    "DEFAULT_ANGLES",
    "QUARTER_TURNS",
    "angle_difference",
    "angles_every",
    "check_angles",
    "is_quarter_turn_set",
    "match_angles",
]

#: Two angles closer than this (degrees, modulo 360) are the same rotation.
ANGLE_TOLERANCE = 1e-3

#: The paper's RotNet angle set.
DEFAULT_ANGLES: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)
QUARTER_TURNS = DEFAULT_ANGLES


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
    message = f"step must be a number of degrees that divides 360 into >= 2 angles; got {step!r}"
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
