"""Rotation by gathers: the counter-rotations of the fused pipeline, in TensorFlow Lite builtins.

:func:`risc_tf.rotate` interpolates with ``keras.ops.image.affine_transform``, an
op that TensorFlow Lite only runs through its Flex delegate. The pipeline's
counter-rotations are written here instead as gathers of at most four pixels
per output pixel, their bilinear weights, products and sums, so that the traced
graph, the SavedModel and the LiteRT export run the same arithmetic:

* :func:`rotation_tables` / :func:`gather_rotate`: a fixed angle set's
  rotations, read off :func:`~risc_tf.rotate` itself once (the RotNet's bins);
* :func:`resample_rotate`: each image by its own angle, known only at run time
  (the continuous estimate of a circular RotNet head): the nearest quarter turn
  exactly (:func:`~risc_tf.rotation.quarter_turns`), the residual in [-45, 45]
  degrees by one bilinear resample whose taps are computed in the graph, with
  the fills of :mod:`risc_tf.rotation` (``constant``, ``reflect`` as TensorFlow's
  image transform reflects, ``circle``). It computes what :func:`~risc_tf.rotate`
  computes, up to float rounding (tested).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from risc_tf.angles import check_fill, is_quarter_turn_set
from risc_tf.rotation import counter_rotate, field_of_view, quarter_turns, rotate

__all__ = [
    "MAX_TABLE_SIDE",
    "CounterRotation",
    "gather_rotate",
    "resample_rotate",
    "rotation_tables",
]

#: Largest image side :func:`rotation_tables` builds tables for (their construction
#: rotates one one-pixel image per pixel, S**4 work).
MAX_TABLE_SIDE = 64


def rotation_tables(angles, size: int, fill: str = "constant") -> tuple[np.ndarray, np.ndarray]:
    """Each rotation of a fixed angle set as a gather: the taps :func:`rotate` interpolates.

    A rotation by a fixed angle is a linear map of the pixels in which every output
    pixel is a bilinear mix of at most four input pixels. This reads those taps off
    :func:`rotate` itself (rotating every one-pixel image, in chunks), so
    :func:`gather_rotate` with the tables computes what :func:`rotate` computes, up
    to float rounding, with gathers, products and sums only (e.g. TensorFlow Lite
    builtin ops).

    Returns
    -------
    indices : np.ndarray
        int32 ``(R, S*S, 4)``: the flat input pixels of each output pixel.
    weights : np.ndarray
        float32 ``(R, S*S, 4)``: their weights (0 for unused taps).

    Raises
    ------
    ValueError
        ``size`` above :data:`MAX_TABLE_SIDE`, or a map that mixes more than four pixels.
    """
    if size > MAX_TABLE_SIDE:
        raise ValueError(f"rotation tables are built for images of at most {MAX_TABLE_SIDE}x"
                         f"{MAX_TABLE_SIDE} pixels; got {size}x{size}")
    pixels, chunk = size * size, 256
    indices = np.zeros((len(angles), pixels, 4), np.int32)
    weights = np.zeros((len(angles), pixels, 4), np.float32)
    for r, angle in enumerate(angles):
        outputs, inputs, values = [], [], []
        for start in range(0, pixels, chunk):
            stop = min(start + chunk, pixels)
            basis = np.zeros((stop - start, pixels), np.float32)
            basis[np.arange(stop - start), np.arange(start, stop)] = 1.0
            moved = rotate(basis.reshape(-1, size, size, 1), float(angle), fill).numpy()
            j, p = np.nonzero(moved.reshape(stop - start, pixels))  # input j reaches output p
            outputs.append(p)
            inputs.append(j + start)
            values.append(moved.reshape(stop - start, pixels)[j, p])
        p, j, w = (np.concatenate(v) for v in (outputs, inputs, values))
        order = np.lexsort((-np.abs(w), p))
        p, j, w = p[order], j[order], w[order]
        rank = np.arange(len(p)) - np.searchsorted(p, p)  # position within its output pixel
        if rank.size and rank.max() >= 4:
            raise ValueError(f"rotation by {angle:g} deg mixes more than 4 pixels")
        indices[r, p, rank], weights[r, p, rank] = j, w
    return indices, weights


def gather_rotate(images, indices, weights) -> tf.Tensor:
    """Apply per-image rotation tables (see :func:`rotation_tables`) to ``(N, S, S, C)`` images.

    ``indices`` / ``weights`` are ``(N, S*S, 4)`` (one table per image) or
    ``(S*S, 4)`` (the same for every image).
    """
    x = tf.convert_to_tensor(images)
    n, size, channels = tf.shape(x)[0], x.shape[1], x.shape[-1]
    flat = tf.reshape(x, [n, size * size, channels])
    indices, weights = tf.convert_to_tensor(indices), tf.convert_to_tensor(weights, x.dtype)
    if indices.shape.rank == 2:
        taps = tf.gather(flat, indices, axis=1)  # (N, P, 4, C)
        mixed = tf.reduce_sum(taps * weights[None, :, :, None], axis=2)
    else:
        taps = tf.gather(flat, indices, axis=1, batch_dims=1)
        mixed = tf.reduce_sum(taps * weights[..., None], axis=2)
    return tf.reshape(mixed, [n, size, size, channels])


def _reflect(c: tf.Tensor, n: int) -> tf.Tensor:
    """A coordinate outside [0, n - 1] reflected back, as TensorFlow's image transform does."""
    period = 2.0 * n
    low = tf.where(c < -period, period * tf.floor(-c / period) + c, c)
    low = tf.where(low < -n, low + period, -low - 1.0)
    high = c - period * tf.floor(c / period)
    high = tf.where(high >= n, period - high - 1.0, high)
    return tf.clip_by_value(tf.where(c < 0, low, tf.where(c > n - 1, high, c)), 0.0, n - 1.0)


def _taps(degrees: tf.Tensor, size: int, reflect: bool) -> tuple[tf.Tensor, tf.Tensor]:
    """Flat input pixels ``(N, S*S, 4)`` and bilinear weights of a rotation by each angle."""
    theta = tf.cast(degrees, tf.float32)[:, None] * (math.pi / 180.0)
    cos, sin = tf.cos(theta), tf.sin(theta)
    centre = (size - 1.0) / 2.0
    grid = np.arange(size, dtype=np.float32) - centre
    gx = tf.constant(np.tile(grid, size)[None, :])  # output column, row-major pixels
    gy = tf.constant(np.repeat(grid, size)[None, :])  # output row
    xs = cos * gx - sin * gy + centre  # the input point each output pixel samples
    ys = sin * gx + cos * gy + centre
    if reflect:
        xs, ys = _reflect(xs, size), _reflect(ys, size)
    x0, y0 = tf.floor(xs), tf.floor(ys)
    fx, fy = xs - x0, ys - y0
    indices, weights = [], []
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            x, y = x0 + dx, y0 + dy
            inside = (x >= 0) & (x <= size - 1) & (y >= 0) & (y <= size - 1)
            weights.append(tf.where(inside, wx * wy, 0.0))  # outside: the 0 fill
            flat = tf.clip_by_value(y, 0, size - 1) * size + tf.clip_by_value(x, 0, size - 1)
            indices.append(tf.cast(flat, tf.int32))
    return tf.stack(indices, axis=-1), tf.stack(weights, axis=-1)


def resample_rotate(images, degrees, fill: str = "constant") -> tf.Tensor:
    """Rotate each image by its own angle with gathers only: what :func:`~risc_tf.rotate` does.

    Parameters
    ----------
    images : tf.Tensor
        Float ``(N, S, S, C)`` square images.
    degrees : tf.Tensor
        ``(N,)`` angles, counter-clockwise, known at run time.
    fill : {"constant", "reflect", "circle"}, default "constant"

    Returns
    -------
    tf.Tensor
        The rotated images: quarter turns exact, one bilinear resample for the rest.
    """
    fill = check_fill(fill)
    x = tf.convert_to_tensor(images)
    a = tf.math.floormod(tf.cast(degrees, tf.float32), 360.0)
    turns = tf.round(a / 90.0)
    out = quarter_turns(x, tf.cast(turns, tf.int32))
    if fill == "circle":
        out = field_of_view(out)
    indices, weights = _taps(a - 90.0 * turns, int(x.shape[1]), reflect=fill == "reflect")
    lo = tf.minimum(tf.reduce_min(out), 0.0)  # as rotate: stay within the input's range
    hi = tf.maximum(tf.reduce_max(out), 0.0)
    out = tf.clip_by_value(gather_rotate(out, indices, weights), lo, hi)
    return field_of_view(out) if fill == "circle" else out


class CounterRotation:
    """Undo the rotations of a fixed angle set, by index, in a traced graph.

    Quarter-turn sets with exact reversals and transposes; other sets with
    precomputed bilinear gathers (:func:`rotation_tables`, built eagerly on first
    use, for inputs up to :data:`MAX_TABLE_SIDE`), else by interpolation
    (:func:`risc_tf.rotation.counter_rotate`).

    Parameters
    ----------
    angles : sequence of float
        The angle set (a RotNet's).
    size : int
        The image side.
    fill : str
        See :mod:`risc_tf.rotation`.
    """

    def __init__(self, angles, size: int, fill: str = "constant"):
        self.angles, self.size, self.fill = tuple(angles), int(size), check_fill(fill)
        with tf.init_scope():  # eager constants, even when first made while tracing
            self._turns = (tf.constant([round(a / 90.0) % 4 for a in self.angles], tf.int32)
                           if is_quarter_turn_set(self.angles) else None)
        self._tables: tuple[tf.Tensor, tf.Tensor] | None = None

    def _counter_tables(self) -> tuple[tf.Tensor, tf.Tensor]:
        if self._tables is None:
            with tf.init_scope():  # eager, even when first asked for while tracing
                indices, weights = rotation_tables([-a for a in self.angles], self.size,
                                                   self.fill)
                self._tables = (tf.constant(indices), tf.constant(weights))
        return self._tables

    def __call__(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """Undo angle ``angles[index[i]]`` of each image ``x[i]``."""
        if self._turns is not None:
            return quarter_turns(x, -tf.gather(self._turns, index))
        if self.size > MAX_TABLE_SIDE:  # tables would cost S**4: interpolate instead
            return counter_rotate(x, tf.gather(tf.constant(self.angles, tf.float32), index),
                                  self.fill)
        indices, weights = self._counter_tables()
        return gather_rotate(x, tf.gather(indices, index), tf.gather(weights, index))
