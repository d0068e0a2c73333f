"""Rotation of image batches: the one implementation everything else calls.

Angles are in degrees, counter-clockwise as displayed (the convention of
``tf.image.rot90``), about the image centre. A rotation is split into the
nearest quarter turn, done exactly with ``tf.image.rot90``, and a residual in
[-45, 45) degrees done with ``keras.ops.image.affine_transform`` (bilinear
interpolation). Multiples of 90 degrees are therefore exact and lossless, and
``rotate(rotate(x, a), -a) == x`` for them.

What fills the pixels that an interpolated rotation brings in from outside the
image is the ``fill`` (:data:`risc_tf.angles.FILLS`):

* ``"constant"`` (the paper): black, so a square image turned by 45 degrees gets
  black corners, which never occur upright: a cue a RotNet can learn instead of
  anatomy, and a shift that an upright-trained classifier never saw;
* ``"reflect"``: the image reflected about its edge, no black corners;
* ``"circle"``: every image, upright included, is masked to the circle inscribed
  in the square (:func:`field_of_view`), before and after any rotation; the
  corners are black whatever the angle, so they carry no cue at all.

A fill is a property of the whole experiment: the tf.data pipelines, the
training helpers, evaluation and :class:`~risc_tf.RISCPipeline` all take the
same ``fill`` and apply it through this module (:func:`apply_fill` for upright
images, :func:`rotate` for rotated ones).

The angle-set helpers (:func:`~risc_tf.angles.check_angles`,
:func:`~risc_tf.angles.angles_every`, :func:`~risc_tf.angles.match_angles`, ...)
live in :mod:`risc_tf.angles`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import check_fill, is_quarter_turn_set

__all__ = [
    "apply_fill",
    "counter_rotate",
    "field_of_view",
    "quarter_turns",
    "rotate",
    "rotate_all",
]

def field_of_view(images) -> tf.Tensor:
    """Mask a batch to the circle inscribed in its square images (outside: 0).

    A pixel is kept when its centre lies within ``S / 2`` of the image centre.
    """
    x = tf.convert_to_tensor(images)
    size = x.shape[1]
    if size is None:
        size = tf.shape(x)[1]
    centre = (tf.cast(size, tf.float32) - 1.0) / 2.0
    r = tf.range(tf.cast(size, tf.float32)) - centre
    radius = tf.cast(size, tf.float32) / 2.0
    inside = tf.square(r)[:, None] + tf.square(r)[None, :] <= tf.square(radius)
    return x * tf.cast(inside, x.dtype)[None, :, :, None]


def apply_fill(images, fill: str = "constant") -> tf.Tensor:
    """What ``fill`` does to an upright batch: the circular mask for ``"circle"``, else nothing."""
    return field_of_view(images) if check_fill(fill) == "circle" else tf.convert_to_tensor(images)


def quarter_turns(images, k) -> tf.Tensor:
    """Rotate each image ``images[i]`` by ``k[i]`` counter-clockwise quarter turns, exactly.

    Only reversals, transposes and a gather: the path that needs no interpolation
    (and that TensorFlow Lite and ONNX run with builtin ops). Written out rather than
    with ``tf.image.rot90``, whose shape check becomes a guarded ``Assert`` in a graph
    with a free batch size, and so a control-flow branch (and a grappler "loop
    optimization" warning in every process that runs an exported pipeline).
    """
    x = tf.convert_to_tensor(images)
    k = tf.math.floormod(tf.cast(k, tf.int32), 4)
    turns = [x]
    for _ in range(3):  # one quarter turn counter-clockwise, as tf.image.rot90(k=1)
        turns.append(tf.transpose(tf.reverse(turns[-1], [2]), [0, 2, 1, 3]))
    stacked = tf.stack(turns, axis=1)  # (N, 4, H, W, C)
    return tf.gather(stacked, k, axis=1, batch_dims=1)


def _residual_rotation(x: tf.Tensor, degrees: tf.Tensor, fill_mode: str) -> tf.Tensor:
    """Interpolated rotation by small per-image angles (bilinear)."""
    theta = degrees * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    h = tf.cast(tf.shape(x)[1], tf.float32)
    w = tf.cast(tf.shape(x)[2], tf.float32)
    cx, cy = (w - 1.0) / 2.0, (h - 1.0) / 2.0
    zeros = tf.zeros_like(theta)
    # Maps each output pixel (x, y) to the input pixel it samples from.
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, zeros, zeros],
        axis=1,
    )
    return keras.ops.image.affine_transform(
        x, transform, interpolation="bilinear", fill_mode=fill_mode, fill_value=0.0
    )


def _angle_tensor(angles, n: int | None) -> tf.Tensor:
    """Angles as float32 ``(N,)`` or a scalar; numbers are checked, then reduced mod 360
    in float64."""
    if isinstance(angles, (tf.Tensor, tf.Variable)):
        return tf.cast(angles, tf.float32)
    try:
        a = np.asarray(angles, np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"angles must be a number or one number per image; got {angles!r}"
        ) from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"angles must be finite degrees; got {angles!r}")
    if a.ndim > 1 or (a.ndim == 1 and n is not None and len(a) != n):
        raise ValueError(
            f"angles must be one angle or one per image ({n} images); got shape {a.shape}"
        )
    # in float64 first: 1e9 degrees in float32 would lose the residual entirely
    return tf.constant(np.mod(a, 360.0), tf.float32)


def _check_batch(x: tf.Tensor) -> None:
    if x.shape.rank != 4:
        raise ValueError(f"rotate expects a (N, H, W, C) batch; got shape {x.shape}")
    if x.shape[1] is not None and x.shape[2] is not None and x.shape[1] != x.shape[2]:
        raise ValueError(f"rotate needs square images; got shape {x.shape}")
    if not (x.dtype.is_floating or x.dtype.is_integer):
        raise ValueError(f"rotate needs numeric images; got dtype {x.dtype.name}")


def rotate(images, angles, fill: str = "constant") -> tf.Tensor:
    """Rotate each image of a batch by its own angle.

    Parameters
    ----------
    images : tf.Tensor or np.ndarray
        ``(N, S, S, C)`` square images: float, or integer for quarter turns only.
    angles : float or array_like
        Degrees counter-clockwise: one angle for the whole batch or one per image.
    fill : {"constant", "reflect", "circle"}, default "constant"
        What fills the pixels an interpolated rotation brings in (see the module
        docs); ``"circle"`` also masks the output to the inscribed circle.

    Returns
    -------
    tf.Tensor
        Rotated images, same shape and dtype. Exact for multiples of 90 degrees;
        other angles are bilinearly interpolated and stay within the input's range.

    Raises
    ------
    ValueError
        Not a square rank-4 batch, angles that are not finite numbers or not one
        per image, an unknown fill, or integer images with a non-quarter angle.

    Examples
    --------
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    >>> bool(np.all(rotate(rotate(x, 90), -90).numpy() == x))
    True
    """
    fill = check_fill(fill)
    x = tf.convert_to_tensor(images)
    _check_batch(x)
    a = _angle_tensor(angles, x.shape[0])
    a = tf.broadcast_to(a, tf.shape(x)[:1]) if a.shape.rank == 0 else a
    turns = tf.round(a / 90.0)
    k = tf.math.floormod(tf.cast(turns, tf.int32), 4)
    residual = a - 90.0 * turns
    out = quarter_turns(x, k)
    if x.dtype.is_integer:
        if not isinstance(angles, (tf.Tensor, tf.Variable)):
            if not is_quarter_turn_set(np.atleast_1d(np.asarray(angles, np.float64))):
                raise ValueError(
                    f"{x.dtype.name} images can only be rotated by multiples of 90 degrees; "
                    "convert them to float in [0, 1] first (e.g. images / 255)"
                )
        else:
            tf.debugging.assert_equal(
                residual, tf.zeros_like(residual),
                message="integer images can only be rotated by multiples of 90 degrees",
            )
        return field_of_view(out) if fill == "circle" else out
    if fill == "circle":
        out = field_of_view(out)
    mode = "reflect" if fill == "reflect" else "constant"

    def interpolated():
        y = tf.cast(out, tf.float32)
        # Bilinear weights and the 0 fill make a convex combination: clip float
        # round-off back into the input's range (so [0, 1] images stay in [0, 1]).
        lo, hi = tf.minimum(tf.reduce_min(y), 0.0), tf.maximum(tf.reduce_max(y), 0.0)
        y = tf.clip_by_value(_residual_rotation(y, residual, mode), lo, hi)
        return tf.cast(field_of_view(y) if fill == "circle" else y, x.dtype)

    return tf.cond(tf.reduce_any(tf.not_equal(residual, 0.0)), interpolated, lambda: out)


def rotate_all(images, angles, fill: str = "constant") -> tf.Tensor:
    """Every image at every angle of a set, in one batch.

    Returns ``(R * N, H, W, C)`` ordered angle-major: all N images rotated by
    ``angles[0]``, then all by ``angles[1]``, and so on (reshape to ``(R, N, ...)``).
    """
    x = tf.convert_to_tensor(images)
    _check_batch(x)
    table = _angle_tensor(angles, None)
    every = tf.tile(x, tf.concat([[tf.shape(table)[0]], tf.ones([3], tf.int32)], 0))
    return rotate(every, tf.repeat(table, tf.shape(x)[0]), fill)


def counter_rotate(images, angles, fill: str = "constant") -> tf.Tensor:
    """Undo :func:`rotate`: rotate each image by minus its angle."""
    if isinstance(angles, (tf.Tensor, tf.Variable)):
        return rotate(images, -tf.cast(angles, tf.float32), fill)
    try:
        a = np.asarray(angles, np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"angles must be a number or one number per image; got {angles!r}") \
            from None
    return rotate(images, np.mod(-a, 360.0), fill)
