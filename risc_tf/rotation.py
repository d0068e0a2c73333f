"""Rotation of image batches: the one implementation everything else calls.

Angles are in degrees, counter-clockwise as displayed (the convention of
``tf.image.rot90``), about the image centre. A rotation is split into the
nearest quarter turn, done exactly with ``tf.image.rot90``, and a residual in
[-45, 45) degrees done with ``keras.ops.image.affine_transform`` (bilinear
interpolation; pixels that come from outside the image are filled with 0, i.e.
black). Multiples of 90 degrees are therefore exact and lossless, and
``rotate(rotate(x, a), -a) == x`` for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "DEFAULT_ANGLES",
    "angles_every",
    "check_angles",
    "counter_rotate",
    "rotate",
    "rotate_all",
]

#: The paper's RotNet angle set.
DEFAULT_ANGLES: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0)


def check_angles(angles: Sequence[float]) -> tuple[float, ...]:
    """Validate an angle set and return it as a tuple of floats.

    Parameters
    ----------
    angles : sequence of float
        Rotation angles in degrees. At least two, finite, distinct modulo 360.

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
        raise ValueError(f"angles must be a sequence of degrees; got {angles!r}")
    try:
        out = tuple(float(a) for a in angles)
    except (TypeError, ValueError):
        raise ValueError(f"angles must be numbers (degrees); got {angles!r}") from None
    if len(out) < 2:
        raise ValueError(f"angles needs at least two rotations; got {out}")
    if not all(math.isfinite(a) for a in out):
        raise ValueError(f"angles must be finite; got {out}")
    seen: dict[float, float] = {}
    for a in out:
        key = round(a % 360.0, 6) % 360.0
        if key in seen:
            raise ValueError(
                f"angles {seen[key]:g} and {a:g} are the same rotation (mod 360); got {out}"
            )
        seen[key] = a
    return out


def angles_every(step: float) -> tuple[float, ...]:
    """All multiples of ``step`` degrees in [0, 360), e.g. ``angles_every(45)``.

    Raises
    ------
    ValueError
        If ``step`` does not divide 360 into at least two angles.
    """
    n = 360.0 / float(step) if step else 0.0
    if step <= 0 or abs(n - round(n)) > 1e-9 or round(n) < 2:
        raise ValueError(f"step must divide 360 into >= 2 angles; got {step!r}")
    return tuple(float(step) * i for i in range(int(round(n))))


def _quarter_turns(x: tf.Tensor, k: tf.Tensor) -> tf.Tensor:
    """Rotate each image ``x[i]`` by ``k[i]`` quarter turns (exact)."""
    turns = [x]
    for _ in range(3):
        turns.append(tf.image.rot90(turns[-1]))
    stacked = tf.stack(turns, axis=1)  # (N, 4, H, W, C)
    return tf.gather(stacked, k, axis=1, batch_dims=1)


def _residual_rotation(x: tf.Tensor, degrees: tf.Tensor) -> tf.Tensor:
    """Interpolated rotation by small per-image angles (bilinear, fill 0)."""
    theta = degrees * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    h = tf.cast(tf.shape(x)[1], tf.float32)
    w = tf.cast(tf.shape(x)[2], tf.float32)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    zeros = tf.zeros_like(theta)
    # Maps each output pixel (x, y) to the input pixel it samples from.
    transform = tf.stack(
        [
            cos,
            -sin,
            cx - cos * cx + sin * cy,
            sin,
            cos,
            cy - sin * cx - cos * cy,
            zeros,
            zeros,
        ],
        axis=1,
    )
    return keras.ops.image.affine_transform(
        x, transform, interpolation="bilinear", fill_mode="constant", fill_value=0.0
    )


def rotate(images, angles) -> tf.Tensor:
    """Rotate each image of a batch by its own angle.

    Parameters
    ----------
    images : tf.Tensor or np.ndarray
        ``(N, S, S, C)`` square images (float, or uint8 for quarter turns only).
    angles : float or array_like
        Degrees counter-clockwise: one angle for the whole batch or one per image.

    Returns
    -------
    tf.Tensor
        Rotated images, same shape and dtype. Exact for multiples of 90 degrees;
        other angles are bilinearly interpolated with a black (0) fill.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> bool(np.all(rotate(rotate(x, 90), -90).numpy() == x))
    True
    """
    x = tf.convert_to_tensor(images)
    if x.shape.rank != 4:
        raise ValueError(f"rotate expects a (N, H, W, C) batch; got shape {x.shape}")
    if x.shape[1] is not None and x.shape[1] != x.shape[2]:
        raise ValueError(f"rotate needs square images; got shape {x.shape}")
    a = tf.cast(tf.convert_to_tensor(angles), tf.float32)
    a = tf.broadcast_to(a, tf.shape(x)[:1]) if a.shape.rank == 0 else a
    k = tf.math.floormod(tf.cast(tf.round(a / 90.0), tf.int32), 4)
    residual = a - 90.0 * tf.round(a / 90.0)
    out = _quarter_turns(x, k)
    if x.dtype.is_integer:
        tf.debugging.assert_equal(
            residual, tf.zeros_like(residual),
            message="integer images can only be rotated by multiples of 90 degrees",
        )
        return out

    def interpolated():
        y = tf.cast(out, tf.float32)
        # Bilinear weights and the 0 fill make a convex combination: clip float
        # round-off back into the input's range (so [0, 1] images stay in [0, 1]).
        lo, hi = tf.minimum(tf.reduce_min(y), 0.0), tf.maximum(tf.reduce_max(y), 0.0)
        return tf.cast(tf.clip_by_value(_residual_rotation(y, residual), lo, hi), x.dtype)

    return tf.cond(tf.reduce_any(tf.not_equal(residual, 0.0)), interpolated, lambda: out)


def rotate_all(images, angles) -> tf.Tensor:
    """Every image at every angle of a set, in one batch.

    Returns ``(R * N, H, W, C)`` ordered angle-major: all N images rotated by
    ``angles[0]``, then all by ``angles[1]``, and so on (reshape to ``(R, N, ...)``).
    """
    x = tf.convert_to_tensor(images)
    table = tf.cast(tf.convert_to_tensor(angles), tf.float32)
    every = tf.tile(x, tf.concat([[tf.shape(table)[0]], tf.ones([3], tf.int32)], 0))
    return rotate(every, tf.repeat(table, tf.shape(x)[0]))


def counter_rotate(images, angles) -> tf.Tensor:
    """Undo :func:`rotate`: rotate each image by minus its angle."""
    return rotate(images, -tf.cast(tf.convert_to_tensor(angles), tf.float32))
