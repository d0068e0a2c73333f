"""Correction methods: what becomes of the RotNet's answer before the classifier sees an image.

Every method compared on rotated images, and every mode of
:class:`~risc_tf.RISCPipeline`, is one :class:`Correction`, registered once in
:data:`CORRECTIONS` with its name (the key in results) and its label (the
name in reports). A correction is a function of the RotNet's probabilities
``p_rot`` ``(N, R)`` over its angle set and of the classifier's outputs:

* ``classifier``: the upright classifier on the image as it is (no correction);
* ``tta``: the classifier's mean over every counter-rotation of the angle set
  (test-time augmentation; the RotNet is not consulted);
* ``risc_hard`` (the paper): the counter-rotation by the most probable angle;
* ``risc_soft``: every counter-rotation weighted by the RotNet's probability,
  ``p(y|x) = sum_r p(r|x) p(y|R_r^-1 x)``;
* ``risc_angle``: the counter-rotation by the RotNet's continuous estimate of the
  angle (:func:`risc_tf.heads.estimate_angle`), quarter turns exact and one
  bilinear resample for the rest.

Each applies to the RotNet heads of :mod:`risc_tf.heads` it names: TTA and soft
weigh every bin, which is what a small angle set is for but would cost a
circular head one classifier pass per fine bin (and its probabilities are a
smoothed density, whose weighted mean over every bin only blurs the hard
answer), so they apply to the bins head only; the continuous angle needs a
circular head (a bins head is not trained to place an angle between its bins).

The three that counter-rotate by the angle set are *weights over the set*:
``weights(p_rot)`` ``(N, R)``, and the answer is :func:`combine` of those
weights with the classifier's probabilities on each counter-rotation
``(N, R, C)``. The pipeline traces this in its graph; the evaluation applies
the same function to one shared pass over every counter-rotation. A method
whose weights pick one angle per image (``picks_one``) lets the pipeline
classify only that counter-rotation. A correction by a continuous angle
(``angle``) counter-rotates each image by its own estimated angle instead.

TensorFlow is imported when a correction is applied, not when this module is
imported: the command line and the aggregate read names and labels without it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

__all__ = [
    "CORRECTIONS",
    "DEPLOYED",
    "MODES",
    "Correction",
    "combine",
    "correction",
    "for_head",
    "for_mode",
]


@dataclasses.dataclass(frozen=True)
class Correction:
    """One correction method.

    Attributes
    ----------
    name : str
        Its key in results and reports, e.g. ``"risc_hard"``.
    label : str
        Its name for people, e.g. ``"RISC, hard (paper)"``.
    mode : str or None
        Its :class:`~risc_tf.RISCPipeline` mode (``"hard"``...), None when the
        pipeline does not offer it (the classifier alone).
    weights : callable or None
        ``p_rot (N, R) -> (N, R)`` weights over the RotNet's angle set (a
        TensorFlow function); None for a method that does not counter-rotate by
        the set.
    picks_one : bool
        The weights are one-hot: only one counter-rotation per image is needed.
    uses_rotnet : bool
        Whether the method reads the RotNet (RISC) or not (a baseline).
    angle : callable or None
        ``(p_rot (N, R), angles (R,), window) -> (N,)`` degrees to counter-rotate each
        image by, for a correction by a continuous angle.
    heads : tuple of str
        The RotNet heads (:data:`risc_tf.heads.HEADS`) the method applies to.
    short : str
        Its name in running text, e.g. ``"RISC hard"``.
    """

    name: str
    label: str
    mode: str | None = None
    weights: Callable | None = dataclasses.field(default=None, repr=False)
    picks_one: bool = False
    uses_rotnet: bool = True
    angle: Callable | None = dataclasses.field(default=None, repr=False)
    heads: tuple[str, ...] = ("bins", "circular")
    short: str = ""

    @property
    def classifies_every(self) -> bool:
        """Whether the method classifies every counter-rotation of the angle set (soft,
        TTA: one classifier pass per angle), not one image per input (hard, angle)."""
        return self.weights is not None and not self.picks_one


def _uniform(p_rot):
    import tensorflow as tf

    p_rot = tf.convert_to_tensor(p_rot)
    return tf.ones_like(p_rot) / tf.cast(tf.shape(p_rot)[1], p_rot.dtype)


def _most_likely(p_rot):
    import tensorflow as tf

    p_rot = tf.convert_to_tensor(p_rot)
    return tf.one_hot(tf.argmax(p_rot, axis=1), tf.shape(p_rot)[1], dtype=p_rot.dtype)


def _as_given(p_rot):
    import tensorflow as tf

    return tf.convert_to_tensor(p_rot)


def _estimated(p_rot, angles, window):
    from risc_tf.heads import estimate_angle

    return estimate_angle(p_rot, angles, window=window)


#: Every correction, in report order.
CORRECTIONS: dict[str, Correction] = {c.name: c for c in (
    Correction("classifier", "Upright classifier (no correction)", uses_rotnet=False,
               short="the upright classifier"),
    Correction("tta", "Test-time augmentation, all rotations (baseline)", mode="tta",
               weights=_uniform, uses_rotnet=False, heads=("bins",), short="TTA"),
    Correction("risc_hard", "RISC, hard (paper)", mode="hard", weights=_most_likely,
               picks_one=True, short="RISC hard"),
    Correction("risc_soft", "RISC, soft", mode="soft", weights=_as_given, heads=("bins",),
               short="RISC soft"),
    Correction("risc_angle", "RISC, continuous angle", mode="angle", angle=_estimated,
               heads=("circular",), short="RISC angle"),
)}

#: The :class:`~risc_tf.RISCPipeline` modes, each a correction's ``mode``.
MODES: tuple[str, ...] = tuple(c.mode for c in CORRECTIONS.values() if c.mode is not None)


def correction(name: str) -> Correction:
    """The registered correction called ``name`` (a ValueError listing them otherwise)."""
    if name not in CORRECTIONS:
        raise ValueError(f"unknown correction {name!r}; choose one of {tuple(CORRECTIONS)}")
    return CORRECTIONS[name]


def for_mode(mode: str, head: str | None = None) -> Correction:
    """The correction behind a :class:`~risc_tf.RISCPipeline` mode (a ValueError otherwise).

    With ``head``, also check that the mode applies to a RotNet with that head.
    """
    for c in CORRECTIONS.values():
        if c.mode == mode:
            if head is not None and head not in c.heads:
                fits = [m.mode for m in CORRECTIONS.values() if m.mode and head in m.heads]
                raise ValueError(f"mode {mode!r} does not apply to a RotNet with a {head!r} "
                                 f"head (it applies to {', '.join(c.heads)} heads); with this "
                                 f"RotNet use mode {' or '.join(map(repr, fits))}")
            return c
    raise ValueError(f"mode must be one of {MODES}; got {mode!r}")


#: RotNet head -> the correction a RISC pipeline of that head uses (reports, saved runs,
#: verdicts): the paper's hard correction for bins, the continuous angle for a circular head.
DEPLOYED: dict[str, str] = {"bins": "risc_hard", "circular": "risc_angle"}


def for_head(head: str) -> list[Correction]:
    """Every correction that applies to a RotNet with ``head``, in report order."""
    return [c for c in CORRECTIONS.values() if head in c.heads]


def combine(method: Correction, p_rot, p_every):
    """Class probabilities ``(N, C)`` of a weights correction.

    Parameters
    ----------
    method : Correction
        One with ``weights``.
    p_rot : array_like or tf.Tensor, (N, R)
        The RotNet's probabilities over its angle set.
    p_every : array_like or tf.Tensor, (N, R, C)
        The classifier's probabilities on each counter-rotation of each image.

    Returns
    -------
    tf.Tensor
        ``sum_r weights[n, r] * p_every[n, r, :]``; for one-hot weights exactly the
        picked row.
    """
    import tensorflow as tf

    if method.weights is None:
        raise ValueError(f"{method.name} does not weigh the counter-rotations of the angle set")
    p_every = tf.convert_to_tensor(p_every)
    weights = tf.cast(method.weights(p_rot), p_every.dtype)
    return tf.einsum("nr,nrc->nc", weights, p_every)
