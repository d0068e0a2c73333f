"""Over the whole circle: every method's accuracy, and the RotNet's angle error, at each angle.

:func:`angle_sweep` turns the whole (upright) split by each angle of a sweep
(0, 10, ..., 350 degrees by default) and records every method's accuracy and AUC,
how many angles each image is classified correctly at (what the paired tests over
the sweep compare, :mod:`risc_tf.verdicts`), and the RotNet's angle error (mean,
median, 95th percentile, worst angle). :func:`residual_tilt` measures on
validation images the residual a RotNet leaves after its correction: the tilt a
classifier should be trained for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import keras
import numpy as np

from risc_tf.evaluation import ProbaFn, evaluation_sets, model_proba
from risc_tf.metrics import accuracy, angle_errors, auc, rotation_metrics, sweep_summary
from risc_tf.models import model_image_size, rotnet_angles, rotnet_head
from risc_tf.rotation import rotate
from risc_tf.validation import check_number

__all__ = ["MAX_TILT", "angle_sweep", "residual_tilt"]

def angle_sweep(
    methods: Mapping[str, ProbaFn],
    images,
    labels,
    angles: Sequence[float] = tuple(range(0, 360, 10)),
    *,
    fill: str = "constant",
    rotnet: keras.Model | None = None,
    verbose: int = 1,
) -> dict:
    """Accuracy and AUC of every method with the whole set rotated by each angle.

    Parameters
    ----------
    methods : mapping of name -> method
    images : np.ndarray
        Upright model-input images ``(N, S, S, 3)`` in [0, 1].
    labels : array_like, (N,)
    angles : sequence of float, default 0, 10, ..., 350
    fill : str, default "constant"
    rotnet : keras.Model, optional
        Also measure the RotNet's angular error at each angle (the angle its head
        reads, :func:`risc_tf.metrics.angle_errors`).
    verbose : int, default 1
        Show a progress bar.

    Returns
    -------
    dict
        ``{"angles", "acc": {method: [...]}, "auc": {method: [...]},
        "correct_counts": {method: [...]}, "summary": {method: sweep_summary}}``
        (``correct_counts``: at how many of the angles each image is classified
        correctly, what the image-level test over the sweep compares), and with ``rotnet``
        ``"rotnet_mae_deg": [...]`` per angle and ``"rotnet_mae_deg_mean"`` over the
        sweep, ``"rotnet_median_deg"`` and ``"rotnet_p95_deg"`` over every image at
        every angle, ``"rotnet_worst_mae_deg"`` at ``"rotnet_worst_angle"``, and
        ``"rotnet_refined_mae_deg"`` / ``"rotnet_refined_mae_deg_mean"``
        (:func:`~risc_tf.heads.refine_angle`'s estimate).
    """
    angles = [float(a) for a in angles]
    out: dict = {"angles": angles, "acc": {m: [] for m in methods}, "auc": {m: [] for m in methods}}
    counts = {m: np.zeros(len(labels), np.int64) for m in methods}
    rot_proba = None if rotnet is None else model_proba(rotnet)
    errors = []
    if rotnet is not None:
        out["rotnet_mae_deg"], out["rotnet_refined_mae_deg"] = [], []
        head, sigma = rotnet_head(rotnet)
    bar = keras.utils.Progbar(len(angles), unit_name="angle") if verbose else None
    x0 = np.asarray(images, np.float32)
    for a in angles:
        x = rotate(x0, a, fill).numpy()
        for name, fn in methods.items():
            p = fn(x)
            counts[name] += p.argmax(axis=1) == np.asarray(labels)
            out["acc"][name].append(accuracy(labels, p.argmax(axis=1)))
            out["auc"][name].append(auc(labels, p))
        if rot_proba is not None:
            p_rot, true = rot_proba(x), np.full(len(x), a)
            errors.append(angle_errors(true, p_rot, rotnet_angles(rotnet), head=head,
                                       sigma=sigma))
            out["rotnet_mae_deg"].append(float(np.mean(errors[-1])))
            out["rotnet_refined_mae_deg"].append(
                rotation_metrics(true, p_rot, rotnet_angles(rotnet))["refined_mae_deg"])
        if bar is not None:
            bar.add(1)
    out["correct_counts"] = {m: c.tolist() for m, c in counts.items()}
    out["summary"] = sweep_summary(out)
    if rotnet is not None:
        pooled, worst = np.concatenate(errors), int(np.argmax(out["rotnet_mae_deg"]))
        out.update(rotnet_mae_deg_mean=float(np.mean(out["rotnet_mae_deg"])),
                   rotnet_median_deg=float(np.median(pooled)),
                   rotnet_p95_deg=float(np.percentile(pooled, 95)),
                   rotnet_worst_mae_deg=out["rotnet_mae_deg"][worst],
                   rotnet_worst_angle=angles[worst],
                   rotnet_refined_mae_deg_mean=float(np.mean(out["rotnet_refined_mae_deg"])))
    return out


#: The largest classifier tilt: beyond it a rotation is nearer another quarter turn.
MAX_TILT = 45.0


def residual_tilt(rotnet: keras.Model, images, *, fill: str = "constant", seed: int = 0,
                  percentile: float = 95.0) -> dict:
    """The classifier training tilt a RotNet asks for: the residual it leaves.

    Each image (validation data: the choice must not see the test split) is turned
    by a seeded uniform random angle; the RotNet's answer
    (:func:`risc_tf.metrics.angle_errors`) misses the true angle by some degrees;
    the given percentile of those errors is the tilt the classifier should absorb
    after the counter-rotation (at most :data:`MAX_TILT`).

    Returns
    -------
    dict
        ``{"tilt_deg", "percentile", "mae_deg", "median_deg", "p95_deg", "capped", "n"}``.
    """
    check_number("percentile", percentile, 0.0, 100.0)
    angles, (head, sigma) = rotnet_angles(rotnet), rotnet_head(rotnet)
    x = np.asarray(images)
    rotated, _, true = evaluation_sets(x, np.zeros(len(x), np.int64), angles,
                                       image_size=model_image_size(rotnet), seed=seed,
                                       protocol="uniform", fill=fill)["rotated"]
    errors = angle_errors(true, model_proba(rotnet)(rotated), angles, head=head, sigma=sigma)
    wanted = float(np.percentile(errors, percentile))
    return {"tilt_deg": min(wanted, MAX_TILT), "percentile": float(percentile),
            "mae_deg": float(np.mean(errors)), "median_deg": float(np.median(errors)),
            "p95_deg": float(np.percentile(errors, 95)), "capped": wanted > MAX_TILT,
            "n": int(len(errors))}


