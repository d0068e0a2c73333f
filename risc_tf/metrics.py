"""Metrics: the one implementation of each that every report calls.

Classification metrics follow MedMNIST's conventions (``medmnist.evaluator``):
ACC is plain accuracy of the arg-max class; AUC is ``roc_auc_score`` on the
positive-class probability for binary tasks and the macro mean of the
one-vs-rest AUCs for multi-class tasks, both from scikit-learn. Rotation
metrics compare angles with :func:`risc_tf.angles.match_angles` and
:func:`~risc_tf.angles.angle_difference`; nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score
from sklearn.preprocessing import label_binarize

from risc_tf.angles import (
    ANGLE_TOLERANCE,
    QUARTER_TURNS,
    angle_difference,
    match_angles,
)
from risc_tf.heads import read_angle, refine_angle
from risc_tf.validation import check_labels, check_probability

__all__ = [
    "accuracy",
    "angle_errors",
    "auc",
    "classification_metrics",
    "confusion",
    "coverage_curve",
    "per_angle_accuracy",
    "rotation_metrics",
    "sweep_summary",
]


def _proba(proba, n: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or len(p) != n or p.shape[1] < 2:
        raise ValueError(f"proba must be (N={n}, C>=2) class probabilities; got {p.shape}")
    return p


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions (MedMNIST ACC)."""
    y = check_labels(y_true, name="y_true")
    return float(accuracy_score(y, check_labels(y_pred, n=len(y), name="y_pred")))


def auc(y_true, proba) -> float:
    """MedMNIST AUC: binary AUC of the last column, or macro one-vs-rest AUC.

    The one-vs-rest AUCs are averaged over the classes that have both positive
    and negative examples in ``y_true`` (on MedMNIST's full test sets that is
    every class, i.e. exactly MedMNIST's ``getAUC``).

    Returns
    -------
    float
        In [0, 1]; ``nan`` when ``y_true`` holds a single class.
    """
    y = check_labels(y_true, name="y_true")
    p = _proba(proba, len(y))
    if len(np.unique(y)) < 2:
        return float("nan")
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1]))
    onehot = label_binarize(y, classes=np.arange(p.shape[1]))
    keep = (onehot.sum(axis=0) > 0) & (onehot.sum(axis=0) < len(y))
    return float(roc_auc_score(onehot[:, keep], p[:, keep], average="macro"))


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``(C, C)`` confusion matrix; rows are true classes, columns predictions."""
    y = check_labels(y_true, name="y_true")
    return confusion_matrix(y, check_labels(y_pred, n=len(y), name="y_pred"),
                            labels=np.arange(int(num_classes)))


def _angle_groups(true_angles, bins: Sequence[float] | None) -> np.ndarray:
    """The group of each angle: itself (mod 360, to a thousandth of a degree) or the
    nearest of ``bins``."""
    a = np.mod(np.asarray(true_angles, np.float64).reshape(-1), 360.0)
    if bins is None:
        return np.mod(np.round(a, 3), 360.0)
    table = np.mod(np.asarray(bins, np.float64), 360.0)
    return table[np.abs(angle_difference(a[:, None], table)).argmin(axis=1)]


def per_angle_accuracy(correct, true_angles, bins: Sequence[float] | None = None) -> dict:
    """Accuracy grouped by the true rotation angle.

    Parameters
    ----------
    correct : array_like of bool, (N,)
        Whether each prediction was right.
    true_angles : array_like, (N,)
        The angle (degrees) each image was rotated by.
    bins : sequence of float, optional
        Group each angle with the nearest of these (for angles drawn uniformly
        over the circle); by default each distinct angle is its own group.

    Returns
    -------
    dict
        ``{"90": 0.93, ...}`` keyed by ``f"{angle:g}"`` in increasing angle order.
    """
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    groups = _angle_groups(true_angles, bins)
    if len(ok) != len(groups):
        raise ValueError(f"correct and true_angles differ in length: {len(ok)} vs {len(groups)}")
    return {f"{v:g}": float(ok[groups == v].mean()) for v in np.unique(groups)}


def angle_errors(true_angles, proba, angles: Sequence[float], *, head: str = "bins",
                 sigma: float | None = None) -> np.ndarray:
    """Absolute angular error (degrees, around the circle) of the angle a RotNet's head
    reads from each row of ``proba`` (:func:`risc_tf.heads.read_angle`): the most
    probable angle of a bins head, the continuous estimate of a circular head."""
    read = read_angle(np.asarray(proba, np.float64), np.asarray(angles, np.float64),
                      head=head, sigma=sigma)[0].numpy()
    return np.abs(angle_difference(np.asarray(true_angles, np.float64).reshape(-1), read))


def rotation_metrics(true_angles, proba, angles: Sequence[float],
                     bins: Sequence[float] | None = None, *, head: str = "bins",
                     sigma: float | None = None) -> dict:
    """How well a RotNet's probabilities ``(N, R)`` over ``angles`` find the true rotations.

    ``bins`` groups the per-angle report as in :func:`per_angle_accuracy` (for
    angles drawn uniformly over the circle: the RotNet's own angles, each group
    scored as "predicted its nearest angle"). ``head`` and ``sigma`` say how the
    RotNet's answer is read (:func:`angle_errors`).

    Returns
    -------
    dict
        ``acc``: accuracy of the most probable angle on the images whose true angle
        is in ``angles`` (None if none is), with ``n_in_set``; ``nearest_acc``: the
        most probable angle is (one of) the set's nearest to the true angle (for any
        angle); ``mae_deg``, ``median_deg``, ``p95_deg``: mean, median and 95th
        percentile of the absolute angular error of the head's answer (degrees,
        around the circle); ``refined_mae_deg``: the mean error of
        :func:`~risc_tf.heads.refine_angle`'s estimate from the probabilities (finer
        than the bins); ``per_angle_acc``: by true angle, angles outside the set
        marked ``"not in the RotNet's angle set"``; ``confusion_matrix`` over the
        set (images in the set only).
    """
    table = np.asarray(angles, np.float64)
    p = _proba(proba, len(np.atleast_1d(true_angles)))
    if p.shape[1] != len(table):
        raise ValueError(f"proba has {p.shape[1]} columns but the angle set {len(table)} angles")
    t = np.asarray(true_angles, np.float64).reshape(-1)
    pred = p.argmax(axis=1)
    true_idx = match_angles(t, table)
    inside = true_idx >= 0
    distance = np.abs(angle_difference(t[:, None], table))  # (N, R)
    pred_distance = np.take_along_axis(distance, pred[:, None], axis=1)[:, 0]
    nearest = pred_distance <= distance.min(axis=1) + ANGLE_TOLERANCE  # ties: either counts
    groups = _angle_groups(t, bins)
    per_angle = {}
    for v in np.unique(groups):
        index = match_angles(v, table)
        per_angle[f"{v:g}"] = (float(np.mean(pred[groups == v] == index)) if index >= 0
                               else "not in the RotNet's angle set")
    return {
        "acc": float(np.mean(pred[inside] == true_idx[inside])) if inside.any() else None,
        "n_in_set": int(inside.sum()),
        "nearest_acc": float(np.mean(nearest)),
        **_error_stats(angle_errors(t, p, table, head=head, sigma=sigma)),
        "refined_mae_deg": float(np.mean(np.abs(angle_difference(t, refine_angle(p, table))))),
        "per_angle_acc": per_angle,
        "confusion_matrix": (confusion_matrix(true_idx[inside], pred[inside],
                                              labels=np.arange(len(table))) if inside.any()
                             else np.zeros((len(table), len(table)), int)).tolist(),
    }


def _error_stats(errors: np.ndarray) -> dict:
    return {"mae_deg": float(np.mean(errors)), "median_deg": float(np.median(errors)),
            "p95_deg": float(np.percentile(errors, 95))}


def classification_metrics(y_true, proba, true_angles=None, angle_bins=None,
                           predictions: bool = False) -> dict:
    """ACC, AUC, confusion matrix (and per-angle ACC) of class probabilities.

    With ``predictions`` the predicted class of every image is kept too (for
    paired tests between methods, :mod:`risc_tf.statistics`).

    Returns
    -------
    dict
        ``{"acc", "auc", "n", "confusion_matrix"[, "per_angle_acc"][, "predicted"]}``,
        JSON-ready.
    """
    y = check_labels(y_true, name="y_true")
    p = _proba(proba, len(y))
    pred = p.argmax(axis=1)
    out = {
        "acc": accuracy(y, pred),
        "auc": auc(y, p),
        "n": int(len(y)),
        "confusion_matrix": confusion(y, pred, p.shape[1]).tolist(),
    }
    if true_angles is not None:
        out["per_angle_acc"] = per_angle_accuracy(pred == y, true_angles, angle_bins)
    if predictions:
        out["predicted"] = pred.tolist()
    return out


def coverage_curve(correct, confidence, thresholds: Sequence[float] | None = None) -> dict:
    """Selective classification: accuracy of the answered images against coverage.

    An image is answered when its confidence is at least the threshold, and left
    to a person otherwise.

    Parameters
    ----------
    correct : array_like of bool, (N,)
    confidence : array_like of float, (N,)
    thresholds : sequence of float in [0, 1], optional
        Default: 0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99.

    Returns
    -------
    dict
        ``{"thresholds", "coverage", "accuracy"}`` lists (accuracy None where
        nothing is answered), and ``"area"``: the area under the risk-coverage
        curve's accuracy (mean accuracy over all coverages, from sorting by
        confidence).

    Raises
    ------
    ValueError
        ``correct`` and ``confidence`` of different lengths or empty; a
        threshold outside [0, 1] (named by its index).
    """
    ok = np.asarray(correct, bool).reshape(-1)
    conf = np.asarray(confidence, np.float64).reshape(-1)
    if len(ok) != len(conf) or len(ok) == 0:
        raise ValueError(f"correct and confidence must be equal, non-empty; got {len(ok)}, "
                         f"{len(conf)}")
    thresholds = [0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] if thresholds is None \
        else [check_probability(f"thresholds[{i}]", t) for i, t in enumerate(thresholds)]
    coverage, acc = [], []
    for t in thresholds:
        answered = conf >= t
        coverage.append(float(answered.mean()))
        acc.append(float(ok[answered].mean()) if answered.any() else None)
    ranked = ok[np.argsort(-conf, kind="stable")]
    area = float(np.mean(np.cumsum(ranked) / np.arange(1, len(ranked) + 1)))
    return {"thresholds": thresholds, "coverage": coverage, "accuracy": acc, "area": area}


def sweep_summary(sweep: dict) -> dict:
    """Headline numbers of an accuracy-versus-angle sweep, per method.

    Parameters
    ----------
    sweep : dict
        ``{"angles": [...], "acc": {method: [...]}}`` (see
        :func:`risc_tf.sweep.angle_sweep`).

    Returns
    -------
    dict
        method -> ``{"mean", "quarter_turn_mean", "off_grid_mean", "worst_acc",
        "worst_angle"}`` (means over the swept angles; quarter turns are the
        multiples of 90 degrees among them, off-grid the others; None when the
        sweep holds none of that kind).
    """
    angles = np.asarray(sweep["angles"], np.float64)
    quarter = match_angles(angles, QUARTER_TURNS) >= 0
    out = {}
    for method, values in sweep["acc"].items():
        acc = np.asarray(values, np.float64)
        worst = int(np.argmin(acc))
        out[method] = {
            "mean": float(acc.mean()),
            "quarter_turn_mean": float(acc[quarter].mean()) if quarter.any() else None,
            "off_grid_mean": float(acc[~quarter].mean()) if (~quarter).any() else None,
            "worst_acc": float(acc[worst]),
            "worst_angle": float(angles[worst]),
        }
    return out
