"""How far to trust a pipeline's answers: calibration and out-of-distribution scores in one report.

:func:`trust_report` measures, on a (rotated) test set, both models of a
:class:`risc_tf.RISCPipeline`:

* the RotNet: its probabilities over its angle set against the true angle
  (images rotated by an angle outside the set are left out and counted);
* the classifier: its probabilities on the images the pipeline corrected
  (counter-rotated by the most likely angle, as in hard mode) against the labels;

each before and after its temperature (:mod:`risc_tf.calibration`), with the
negative log-likelihood, the expected calibration error and the reliability
data; and, given a fitted :class:`~risc_tf.ood.MahalanobisDetector`, the
out-of-distribution score of the corrected test images against other image
sets (AUROC, and the share of each set the threshold flags).
:func:`plot_trust_report` draws the four reliability diagrams
(:func:`plot_reliability`).

The temperatures are passed in, fitted on validation data
(:func:`risc_tf.calibration.fit_temperature`); the pipeline's own outputs are
taken as uncalibrated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from risc_tf.angles import match_angles
from risc_tf.calibration import (
    apply_temperature,
    check_temperature,
    negative_log_likelihood,
    reliability_data,
)
from risc_tf.features import feature_model
from risc_tf.figures import save_figure
from risc_tf.inputs import run_in_batches
from risc_tf.ood import MahalanobisDetector, ood_auroc
from risc_tf.pipeline import RISCPipeline
from risc_tf.validation import check_int, check_labels

__all__ = ["plot_reliability", "plot_trust_report", "trust_report"]

_MODELS = {"rotnet": "RotNet", "classifier": "Classifier"}


def _calibration_block(proba: np.ndarray, labels: np.ndarray, temperature: float,
                       bins: int) -> dict:
    after = apply_temperature(proba, temperature)
    before_data = reliability_data(proba, labels, bins=bins)
    after_data = reliability_data(after, labels, bins=bins)
    return {
        "temperature": temperature,
        "n": int(len(labels)),
        "accuracy": before_data["accuracy_overall"],
        "nll_before": negative_log_likelihood(proba, labels),
        "nll_after": negative_log_likelihood(after, labels),
        "ece_before": before_data["ece"],
        "ece_after": after_data["ece"],
        "reliability_before": before_data,
        "reliability_after": after_data,
    }


class _Corrected:
    """The classifier's features and probabilities on the images a pipeline corrected."""

    def __init__(self, pipe: RISCPipeline):
        self.pipe, size = pipe, pipe.image_size
        model = feature_model(pipe.classifier)
        spec = tf.TensorSpec((None, size, size, 3), tf.float32)
        self.graph = tf.function(lambda x: tf.concat(model(x, training=False), axis=1),
                                 input_signature=[spec])
        self.width = int(model.outputs[0].shape[-1])

    def __call__(self, images) -> tuple[np.ndarray, np.ndarray]:
        corrected = np.atleast_1d(self.pipe.correct(images))
        if corrected.ndim == 3:  # one image
            corrected = corrected[None]
        out = run_in_batches(self.graph, corrected, self.pipe.batch_size)
        return out[:, : self.width], out[:, self.width:]


def trust_report(
    pipe: RISCPipeline,
    images,
    labels,
    true_angles,
    *,
    rotnet_temperature: float = 1.0,
    classifier_temperature: float = 1.0,
    detector: MahalanobisDetector | None = None,
    other_images: Mapping[str, object] | None = None,
    bins: int = 15,
) -> dict:
    """Calibration of both models and the out-of-distribution score, on one test set.

    Parameters
    ----------
    pipe : RISCPipeline
        The pipeline (its outputs uncalibrated).
    images : array_like
        Test images, e.g. the rotated test set of
        :func:`risc_tf.evaluation.evaluation_sets` (any input the pipeline takes).
    labels : array_like, (N,)
        Their classes.
    true_angles : array_like, (N,)
        The angle each image was rotated by (degrees).
    rotnet_temperature, classifier_temperature : float > 0, default 1
        Fitted on validation data (:func:`risc_tf.calibration.fit_temperature`).
    detector : MahalanobisDetector, optional
        Fitted and thresholded (:func:`risc_tf.ood.fit_ood_detector`); without
        it, the report has no ``"ood"`` entry.
    other_images : mapping of str to array_like, optional
        Named image sets unlike the training data (e.g. ``{"retinamnist": ...}``),
        any input the pipeline takes; each is corrected and scored.
    bins : int, default 15
        Confidence bins of the ECE (:func:`risc_tf.calibration.reliability_data`).

    Returns
    -------
    dict
        JSON-ready: ``{"bins", "rotnet": block, "classifier": block[, "ood"]}``.
        A block holds ``temperature``, ``n``, ``accuracy``, ``nll_before``,
        ``nll_after``, ``ece_before``, ``ece_after``, ``reliability_before``,
        ``reliability_after``; the RotNet's also ``n_outside_angle_set``.
        ``"ood"`` holds ``threshold``, ``percentile``, ``in_distribution``
        (``n``, ``flagged``: the share above the threshold, ``mean_score``) and
        ``other``: per set ``n``, ``flagged``, ``mean_score`` and ``auroc``
        against the test images (:func:`risc_tf.ood.ood_auroc`).

    Raises
    ------
    ValueError
        Temperatures not finite and > 0, labels or angles not one per image, a
        detector of another feature width than the classifier's, other images
        not a mapping, or a test set with no image in the RotNet's angle set.
    """
    rotnet_temperature = check_temperature("rotnet_temperature", rotnet_temperature)
    classifier_temperature = check_temperature("classifier_temperature", classifier_temperature)
    bins = check_int("bins", bins)
    if other_images is not None and not isinstance(other_images, Mapping):
        raise ValueError("other_images must map a name to images; got "
                         f"{type(other_images).__name__}")
    corrected = _Corrected(pipe)
    if detector is not None and detector.num_features != corrected.width:
        raise ValueError(f"detector expects {detector.num_features} features but the classifier "
                         f"gives {corrected.width}")
    _, p_rot = pipe.predict_rotation(images, return_proba=True)
    p_rot = np.atleast_2d(p_rot)
    y = check_labels(labels, n=len(p_rot))
    angles = np.asarray(true_angles, np.float64).reshape(-1)
    if len(angles) != len(y):
        raise ValueError(f"true_angles must hold one angle per image: {len(y)} images but "
                         f"{len(angles)} angles")
    index = match_angles(angles, pipe.angles)
    inside = index >= 0
    if not inside.any():
        raise ValueError(f"no image of the test set is rotated by an angle of the RotNet's set "
                         f"{pipe.angles}: its calibration cannot be measured")
    features, p_cls = corrected(images)
    report = {
        "bins": bins,
        "rotnet": {**_calibration_block(p_rot[inside], index[inside], rotnet_temperature, bins),
                   "n_outside_angle_set": int((~inside).sum())},
        "classifier": _calibration_block(p_cls, y, classifier_temperature, bins),
    }
    if detector is not None:
        report["ood"] = _ood_block(detector, features, corrected, other_images or {})
    return report


def _ood_block(detector: MahalanobisDetector, features: np.ndarray, corrected: _Corrected,
               other_images: Mapping) -> dict:
    def summary(scores: np.ndarray) -> dict:
        threshold = detector.threshold
        flagged = None if threshold is None else float(np.mean(scores > threshold))
        return {"n": int(len(scores)), "flagged": flagged, "mean_score": float(np.mean(scores))}

    inside = detector.score(features)
    other = {}
    for name, images in other_images.items():
        scores = detector.score(corrected(images)[0])
        other[str(name)] = {**summary(scores), "auroc": ood_auroc(inside, scores)}
    return {"method": "mahalanobis", "threshold": detector.threshold,
            "percentile": detector.percentile, "in_distribution": summary(inside),
            "other": other}


def plot_trust_report(report: Mapping, path: str | os.PathLike) -> Path:
    """The reliability diagrams of a :func:`trust_report`, both models, before and after.

    Parameters
    ----------
    report : mapping
        :func:`trust_report`'s output (or the same read back from JSON).
    path : str or PathLike
        A ``.png`` file.
    """
    curves = {}
    for key, label in _MODELS.items():
        block = report[key]
        curves[f"{label}, uncalibrated"] = block["reliability_before"]
        curves[f"{label}, T = {block['temperature']:.3g}"] = block["reliability_after"]
    return plot_reliability(curves, path, title="Reliability on the test set, before and after "
                                                "temperature scaling")


def plot_reliability(curves: Mapping[str, dict], path: str | os.PathLike, *,
                     title: str = "Reliability diagram") -> Path:
    """Draw reliability diagrams side by side and save them as a PNG.

    Each panel shows, per confidence bin, the accuracy (bars) against the
    diagonal of perfect calibration and the bin's mean confidence (dots); the
    gap between them is what the ECE averages. Below, the share of images per bin.

    Parameters
    ----------
    curves : mapping of str to dict
        Panel title -> :func:`reliability_data` output (e.g. ``{"RotNet, before":
        ..., "RotNet, after": ...}``); the ECE is added to each title.
    path : str or PathLike
        A ``.png`` file (written by :func:`risc_tf.figures.save_figure`).
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping of panel title -> reliability data")
    fig = Figure(figsize=(3.6 * len(curves), 5.2))
    axes = fig.subplots(2, len(curves), squeeze=False, height_ratios=(3, 1), sharex=True)
    for j, (name, data) in enumerate(curves.items()):
        edges = np.asarray(data["edges"])
        centres, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        acc = np.array([np.nan if v is None else v for v in data["accuracy"]])
        conf = np.array([np.nan if v is None else v for v in data["confidence"]])
        top, bottom = axes[0, j], axes[1, j]
        top.bar(centres, acc, width, color="#4c78a8", edgecolor="white", label="accuracy")
        top.plot(centres, conf, "o", color="#e45756", markersize=4, label="mean confidence")
        top.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
        top.set_title(f"{name}\nECE {data['ece']:.3f}", fontsize=9)
        top.set_xlim(0, 1)
        top.set_ylim(0, 1.02)
        top.grid(alpha=0.3)
        bottom.bar(centres, np.asarray(data["count"]) / max(data["n"], 1), width,
                   color="#9d9d9d", edgecolor="white")
        bottom.set_ylim(0, 1)
        bottom.set_xlabel("confidence")
        if j == 0:
            top.set_ylabel("accuracy")
            bottom.set_ylabel("share")
            top.legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    return save_figure(fig, path)
