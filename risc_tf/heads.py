"""RotNet heads: how a RotNet's output stands for a rotation, is trained, and is read.

Both heads end in a softmax over a set of angles (the RotNet records them); they
differ in what they are trained on and how an angle is read from them:

* ``"bins"`` (the paper): a small angle set (e.g. the four quarter turns); each
  training image is turned by one of the angles (plus an optional jitter) and
  the target is that angle's index. The answer is the most probable angle; a
  finer estimate moves it toward its neighbouring bins by their probabilities
  (:func:`refine_angle`).
* ``"circular"``: fine bins evenly covering the circle (e.g. 72 of 5 degrees),
  trained on angles drawn uniformly over the circle with circular-Gaussian soft
  labels of width ``sigma`` (:func:`circular_labels`); the answer is the
  continuous estimate :func:`estimate_angle`, the probability-weighted offset
  of the bins around the most probable one (within :func:`head_window`). It is
  the head of the continuous-angle correction (``RISCPipeline(mode="angle")``).

How far an estimate may lie from the angle it is counted as (:func:`check_max_tilt`)
also depends on the head: a bins head counts it as its nearest set angle, a
circular head as its nearest quarter turn (the turns an exact copy can undo).

References
----------
.. [1] Gidaris, Singh, Komodakis. "Unsupervised representation learning by
   predicting image rotations." ICLR 2018 (the four-way RotNet).
.. [2] Diaz, Marathe. "Soft labels for ordinal regression." CVPR 2019 (soft
   labels over ordered bins, read out as a continuous value).
.. [3] Beyer, Hermans, Leibe. "Biternion nets: continuous head pose regression
   from discrete training labels." GCPR 2015 (angles on the circle).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from risc_tf.angles import (
    ANGLE_TOLERANCE,
    QUARTER_TURNS,
    angles_every,
    check_angles,
    match_angles,
    smallest_gap,
)
from risc_tf.validation import check_choice, check_number

__all__ = [
    "DEFAULT_MAX_TILT",
    "HEADS",
    "check_head",
    "check_max_tilt",
    "circular_labels",
    "default_max_tilt",
    "estimate_angle",
    "head_window",
    "read_angle",
    "refine_angle",
]

#: The RotNet heads risc_tf knows.
HEADS = ("bins", "circular")


def check_head(head: str, angles: Sequence[float], sigma: float | None = None
               ) -> tuple[str, float | None]:
    """A head, its angle set and soft-label width checked together; ``(head, sigma)``.

    ``sigma`` (degrees) belongs to the circular head only; it defaults to the bin
    width there.

    Raises
    ------
    ValueError
        An unknown head; a circular head whose angles are not evenly spaced over
        the whole circle; a ``sigma`` for the bins head, or one <= 0 or above 90.
    """
    head = check_choice("head", head, HEADS)
    angles = check_angles(angles)
    if head == "bins":
        if sigma is not None:
            raise ValueError("sigma (the soft-label width) belongs to the circular head; "
                             "the bins head trains on hard labels")
        return head, None
    gap = 360.0 / len(angles)
    if len(angles) < 8 or np.any(match_angles(angles, angles_every(gap)) < 0):
        raise ValueError(f"a circular head needs at least 8 angles evenly covering the circle "
                         f"(e.g. angles_every(5)); got {angles}")
    sigma = gap if sigma is None else check_number("sigma", sigma, 0.0, 90.0,
                                                   include_minimum=False)
    return head, float(sigma)


def head_window(head: str, angles: Sequence[float], sigma: float | None = None) -> float:
    """How far (degrees) from the most probable bin the estimate looks: the set's
    smallest gap for the bins head, ``max(gap, 2 sigma)`` for the circular head."""
    gap = smallest_gap(angles)
    return gap if head == "bins" else max(gap, 2.0 * float(sigma or gap))


def estimate_angle(proba, angles: Sequence[float], *, window: float, return_mass: bool = False):
    """The angle a RotNet's probabilities point at, finer than its bins (TensorFlow).

    The most probable angle, moved by the probability-weighted mean of the signed
    offsets of the bins within ``window`` degrees of it (bins further away, e.g. a
    confusion with the opposite angle, do not pull). A function of tensors: the
    fused pipeline traces it; :func:`refine_angle` is its numpy face.

    Parameters
    ----------
    proba : tf.Tensor or array_like, (N, R)
        Probabilities over ``angles``.
    angles : sequence of float
        The RotNet's angles (R).
    window : float
        See :func:`head_window`.
    return_mass : bool, default False
        Also return the probability within ``window`` of the most probable bin:
        the circular head's confidence in its estimate.

    Returns
    -------
    angle : tf.Tensor
        ``(N,)`` angles in [0, 360), of ``proba``'s float dtype.
    mass : tf.Tensor
        ``(N,)``, with ``return_mass``.
    """
    import tensorflow as tf

    p = tf.convert_to_tensor(proba)
    if not p.dtype.is_floating:
        p = tf.cast(p, tf.float32)
    table = tf.constant(angles, p.dtype)
    best = tf.gather(table, tf.argmax(p, axis=1))
    offset = tf.math.floormod(table[None, :] - best[:, None] + 180.0, 360.0) - 180.0
    weight = tf.where(tf.abs(offset) <= window + ANGLE_TOLERANCE, p, tf.zeros_like(p))
    total = tf.reduce_sum(weight, axis=1)
    shift = tf.math.divide_no_nan(tf.reduce_sum(weight * offset, axis=1), total)
    angle = tf.math.floormod(best + shift, 360.0)
    return (angle, total) if return_mass else angle


def read_angle(proba, angles: Sequence[float], *, head: str = "bins",
               sigma: float | None = None):
    """The rotation a head's probabilities name, and the confidence in it (TensorFlow).

    A bins head names its most probable angle, with that probability; a circular
    head its continuous estimate (:func:`estimate_angle`), with the probability
    within the estimate's window (:func:`head_window`).

    Returns
    -------
    angle, confidence : tf.Tensor
        ``(N,)`` each, of ``proba``'s float dtype.
    """
    import tensorflow as tf

    p = tf.convert_to_tensor(proba)
    if head == "circular":
        return estimate_angle(p, angles, window=head_window(head, angles, sigma),
                              return_mass=True)
    table = tf.constant(angles, p.dtype)
    return tf.gather(table, tf.argmax(p, axis=1)), tf.reduce_max(p, axis=1)


def refine_angle(proba, angles: Sequence[float], *, window: float | None = None) -> np.ndarray:
    """An angle estimate finer than the bins, from a RotNet's probabilities (numpy).

    A hard RotNet names a bin, so its angle is off by up to half a bin even when
    the bin is right. A RotNet trained with jitter (or a circular head) spreads
    its probability over the bins an in-between angle falls between; this moves
    the most probable angle toward its neighbours (by default the set's angles
    within its smallest gap) by the probability-weighted mean of their signed
    offsets (:func:`estimate_angle`, in float64).

    Parameters
    ----------
    proba : array_like, (N, R)
        The RotNet's probabilities over ``angles``.
    angles : sequence of float
        The RotNet's angle set (R angles, degrees).
    window : float, optional
        Default: the smallest gap of ``angles`` (:func:`head_window` of the bins head).

    Returns
    -------
    np.ndarray
        (N,) float64 angles in [0, 360).

    Examples
    --------
    >>> refine_angle([[0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]], (0, 90, 180, 270)).tolist()
    [45.0, 270.0]
    """
    table = check_angles(angles)
    p = np.asarray(proba, np.float64)
    if p.ndim != 2 or p.shape[1] != len(table):
        raise ValueError(f"proba must have shape (N, {len(table)}) for {len(table)} angles, "
                         f"got {p.shape}")
    window = smallest_gap(table) if window is None else check_number("window", window, 0.0)
    return estimate_angle(p, table, window=window).numpy()


def circular_labels(degrees, angles: Sequence[float], sigma: float):
    """Circular-Gaussian soft labels: ``(N, R)`` probabilities over ``angles`` (TensorFlow).

    Bin ``r`` of image ``i`` gets ``exp(-d(degrees[i], angles[r])**2 / (2 sigma**2))``,
    ``d`` the angular distance, normalised to sum to one: the target of a
    circular head for an image turned by ``degrees[i]``.
    """
    import tensorflow as tf

    a = tf.cast(tf.convert_to_tensor(degrees), tf.float32)
    table = tf.constant(angles, tf.float32)
    d = tf.math.floormod(a[:, None] - table[None, :] + 180.0, 360.0) - 180.0
    logits = -tf.square(d) / (2.0 * float(sigma) ** 2)
    return tf.nn.softmax(logits, axis=1)


#: Most degrees between the estimated rotation and the pipeline's predicted angle for a
#: file to count as turned by that angle (never more than a third of the set's smallest
#: gap: :func:`default_max_tilt`). The estimate of a file turned exactly by a set angle
#: moves toward a neighbour by ``gap * p_neighbour``: 10 degrees is a neighbour
#: probability of 1/9 for quarter turns.
DEFAULT_MAX_TILT = 10.0


def default_max_tilt(angles: Sequence[float], head: str = "bins") -> float:
    """:data:`DEFAULT_MAX_TILT`, or a third of the set's smallest gap if that is smaller.

    For a circular head (a continuous angle, :func:`continuous_orientations`) the set
    that decides is the quarter turns, whatever the RotNet's bins: 10 degrees.

    Examples
    --------
    >>> default_max_tilt(range(0, 360, 45)), default_max_tilt(range(0, 360, 5), "circular")
    (10.0, 10.0)
    >>> round(default_max_tilt(range(0, 360, 5)), 2)
    1.67
    """
    table = QUARTER_TURNS if head == "circular" else check_angles(angles)
    return min(DEFAULT_MAX_TILT, smallest_gap(table) / 3.0)


def check_max_tilt(max_tilt: float | None, angles: Sequence[float],
                   head: str = "bins") -> float:
    """``max_tilt`` checked for a head and angle set, or its default (:func:`default_max_tilt`).

    The range is (0, half the set's smallest gap] for a bins head (beyond it an
    estimate would be nearer another angle of the set) and (0, 45] for a circular
    head (half a quarter turn).

    Raises
    ------
    ValueError
        ``max_tilt`` outside that range or not a number (named).

    Examples
    --------
    >>> check_max_tilt(None, (0, 90, 180, 270)), check_max_tilt(20, range(0, 360, 5), "circular")
    (10.0, 20.0)
    """
    if max_tilt is None:
        return default_max_tilt(angles, head)
    table = QUARTER_TURNS if head == "circular" else check_angles(angles)
    return check_number("max_tilt", max_tilt, 0.0, smallest_gap(table) / 2.0,
                        include_minimum=False)
