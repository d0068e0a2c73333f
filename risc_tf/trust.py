"""How far to trust a pipeline's answers: calibration, review thresholds and images unlike the
training data, fitted on validation (:func:`fit_trust`) and measured on test (:func:`trust_report`).

:func:`fit_trust` gives a pipeline, on validation data only, the temperatures
of both models (:func:`risc_tf.calibration.fit_review_temperature`), review thresholds
chosen for stated targets (:func:`risc_tf.thresholds.choose_threshold`) and an
out-of-distribution detector fitted on the training images and thresholded on
the validation images (:func:`risc_tf.ood_layers.fit_ood_detector`).

:func:`trust_report` measures, on a (rotated) test set, both models of a
:class:`risc_tf.RISCPipeline`:

* the RotNet: its probabilities over its angle set against the true angle
  (images rotated by an angle outside the set are left out and counted);
* the classifier: its probabilities on the images the pipeline corrected
  (counter-rotated by the most likely angle, as in hard mode) against the labels;

each before and after its temperature (:mod:`risc_tf.calibration`), with the
negative log-likelihood, the expected calibration error and the reliability
data; and, given a fitted :class:`~risc_tf.ood_layers.LayerwiseDetector`, the
out-of-distribution score of the corrected test images against other image
sets (AUROC, and the share of each set the threshold flags).
:func:`plot_trust_report` draws the four reliability diagrams
(:func:`plot_reliability`).

The temperatures and the detector are the pipeline's own; the probabilities
"before" are its models' raw outputs.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from risc_tf.angles import match_angles
from risc_tf.calibration import (
    apply_temperature,
    ece_consistency,
    negative_log_likelihood,
    reliability_data,
)
from risc_tf.features import PENULTIMATE, feature_model, split_outputs
from risc_tf.figures import save_figure
from risc_tf.heads import head_window
from risc_tf.inputs import run_in_batches
from risc_tf.ood import ood_auroc
from risc_tf.ood_layers import LayerwiseDetector
from risc_tf.pipeline import RISCPipeline
from risc_tf.validation import check_int, check_labels

__all__ = ["fit_trust", "plot_reliability", "plot_trust_report", "trust_report"]

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
        # what a perfectly calibrated model would show on these N images
        "ece_after_consistency": ece_consistency(after, labels, bins=bins),
        "reliability_before": before_data,
        "reliability_after": after_data,
    }


class _Corrected:
    """The classifier's features (of ``layers``) and probabilities on the images a pipeline
    corrected."""

    def __init__(self, pipe: RISCPipeline, layers=(PENULTIMATE,)):
        self.pipe, size = pipe, pipe.image_size
        self.model = feature_model(pipe.classifier, layers)
        spec = tf.TensorSpec((None, size, size, 3), tf.float32)
        self.graph = tf.function(lambda x: tf.concat(self.model(x, training=False), axis=1),
                                 input_signature=[spec])

    def __call__(self, images) -> tuple[list[np.ndarray], np.ndarray]:
        corrected = np.atleast_1d(self.pipe.correct(images))
        if corrected.ndim == 3:  # one image
            corrected = corrected[None]
        out = run_in_batches(self.graph, corrected, self.pipe.batch_size)
        *features, proba = split_outputs(out, self.model)
        return features, proba


def _raw(pipe: RISCPipeline) -> RISCPipeline:
    """The same pipeline without temperatures, thresholds or detector."""
    return RISCPipeline(pipe.rotnet, pipe.classifier, pipe.angles, head=pipe.head,
                        sigma=pipe.sigma, mode=pipe.mode, batch_size=pipe.batch_size,
                        fill=pipe.fill, class_names=pipe.classes_.tolist())


def _angle_labels(pipe: RISCPipeline, true_angles) -> np.ndarray:
    """Index of each true angle in the RotNet's set (-1 outside it)."""
    return match_angles(np.asarray(true_angles, np.float64).reshape(-1), pipe.angles)


def fit_trust(pipe: RISCPipeline, val_images, val_labels, train_images, train_labels, *,
              seed: int = 0, rotation_coverage: float = 0.95, ood_percentile: float = 95.0,
              ood_layers: str | Sequence[str] = "stages") -> tuple[RISCPipeline, dict]:
    """Temperatures, review thresholds and a detector of unlike images, on validation only.

    Parameters
    ----------
    pipe : RISCPipeline
        Its models (their raw outputs are what is calibrated).
    val_images, val_labels : array_like
        Upright validation images and labels; each is also turned by a seeded random
        angle of the RotNet's set (the rotations the pipeline undoes).
    train_images, train_labels : array_like
        The classifier's training images (the detector's class means and covariance).
    seed : int, default 0
        Seeds the validation rotations.
    rotation_coverage : float, default 0.95
        Target of the rotation threshold: answer this share of the rotated validation
        images (a rotation the pipeline cannot undo, e.g. off its angle set, scores
        below them and goes to a person).
    ood_percentile : float, default 95
        The detector's threshold: this percentile of the validation images' scores.
    ood_layers : "stages", "penultimate" or sequence of str, default "stages"
        The classifier's layers the detector reads
        (:func:`risc_tf.ood_layers.ood_layers`).

    Returns
    -------
    pipeline : RISCPipeline
        A copy with ``rotnet_temperature``, ``classifier_temperature``,
        ``min_rotation_confidence``, ``min_class_probability`` and ``ood`` set.
    record : dict
        JSON-ready: the temperatures (``temperature_notes``: a model whose validation
        predictions were all right keeps ``T = 1``, see
        :func:`~risc_tf.calibration.fit_review_temperature`), both thresholds
        (:meth:`~risc_tf.thresholds.ReviewThreshold.to_dict`, each with its target
        and what it reached on validation) and the detector's threshold.

    Notes
    -----
    The class threshold's target is the upright classifier's validation accuracy:
    the answered images (rotated, corrected) should be as accurate as upright ones.
    """
    from risc_tf.calibration import fit_review_temperature
    from risc_tf.evaluation import evaluation_sets
    from risc_tf.ood_layers import fit_ood_detector
    from risc_tf.ood_layers import ood_layers as detector_layers
    from risc_tf.thresholds import choose_threshold

    layers = detector_layers(pipe.classifier, ood_layers)  # a bad name fails before any work
    raw = _raw(pipe)
    y = check_labels(val_labels)
    sets = evaluation_sets(val_images, y, pipe.angles, image_size=pipe.image_size, seed=seed,
                           fill=pipe.fill)
    x_up, _ = sets["upright"]
    x_rot, _, angles = sets["rotated"]
    _, p_rot = raw.predict_rotation(x_rot, return_proba=True)
    t_rot, rot_note = fit_review_temperature(p_rot, _angle_labels(pipe, angles))
    _, p_cls = _Corrected(raw)(x_rot)
    t_cls, cls_note = fit_review_temperature(p_cls, y)
    upright_acc = float(np.mean(raw.classifier.predict(x_up, verbose=0).argmax(axis=1) == y))
    calibrated = RISCPipeline(pipe.rotnet, pipe.classifier, pipe.angles, head=pipe.head,
                              sigma=pipe.sigma, mode=pipe.mode, batch_size=pipe.batch_size,
                              fill=pipe.fill, class_names=pipe.classes_.tolist(),
                              rotnet_temperature=t_rot, classifier_temperature=t_cls,
                              max_tilt=pipe.max_tilt)
    details = calibrated.predict_details(x_rot)
    tolerance = head_window(pipe.head, pipe.angles, pipe.sigma) / 2.0  # within its bin
    rotation = choose_threshold(
        np.abs(((details.rotation - angles) + 180.0) % 360.0 - 180.0) <= tolerance,
        details.rotation_confidence, coverage=rotation_coverage,
        description="share of validation images turned by the RotNet's angles answered")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # not met is recorded in the threshold
        classes = choose_threshold(
            details.class_index == y, details.class_probability, min_accuracy=upright_acc,
            description="the upright classifier's validation accuracy")
    x_train = evaluation_sets(train_images, check_labels(train_labels), pipe.angles,
                              image_size=pipe.image_size, fill=pipe.fill)["upright"][0]
    detector = fit_ood_detector(pipe.classifier, x_train, check_labels(train_labels), x_up,
                                layers=layers, percentile=ood_percentile)
    record = {"rotnet_temperature": t_rot, "classifier_temperature": t_cls,
              "temperature_notes": {k: v for k, v in (("rotnet", rot_note),
                                                      ("classifier", cls_note)) if v},
              "rotation_threshold": rotation.to_dict(), "class_threshold": classes.to_dict(),
              "ood_threshold": detector.threshold, "ood_percentile": detector.percentile,
              "ood_layers": list(detector.layers),
              "validation_images": int(len(y))}
    fitted = RISCPipeline.from_config(
        {**calibrated.get_config(), "min_rotation_confidence": rotation.threshold,
         "min_class_probability": classes.threshold,
         "metadata": {**pipe.metadata, "trust": record}},
        pipe.rotnet, pipe.classifier, ood=detector)
    return fitted, record


def trust_report(
    pipe: RISCPipeline,
    images,
    labels,
    true_angles,
    *,
    other_images: Mapping[str, object] | None = None,
    bins: int = 15,
) -> dict:
    """Calibration of both models and the out-of-distribution score, on one test set.

    Parameters
    ----------
    pipe : RISCPipeline
        The pipeline: its temperatures are the "after", its models' raw outputs the
        "before"; its detector (``pipe.ood``), if any, scores the images.
    images : array_like
        Test images, e.g. the rotated test set of
        :func:`risc_tf.evaluation.evaluation_sets` (any input the pipeline takes).
    labels : array_like, (N,)
        Their classes.
    true_angles : array_like, (N,)
        The angle each image was rotated by (degrees).
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
        ``nll_after``, ``ece_before``, ``ece_after``, ``ece_after_consistency``
        (the ECE a perfectly calibrated model would show on these images:
        :func:`risc_tf.calibration.ece_consistency`), ``reliability_before``,
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
    rotnet_temperature, classifier_temperature = pipe.rotnet_temperature, \
        pipe.classifier_temperature
    detector = pipe.ood
    bins = check_int("bins", bins)
    raw = _raw(pipe)
    if other_images is not None and not isinstance(other_images, Mapping):
        raise ValueError("other_images must map a name to images; got "
                         f"{type(other_images).__name__}")
    corrected = _Corrected(raw, (PENULTIMATE,) if detector is None else detector.layers)
    _, p_rot = raw.predict_rotation(images, return_proba=True)
    p_rot = np.atleast_2d(p_rot)
    y = check_labels(labels, n=len(p_rot))
    angles = np.asarray(true_angles, np.float64).reshape(-1)
    if len(angles) != len(y):
        raise ValueError(f"true_angles must hold one angle per image: {len(y)} images but "
                         f"{len(angles)} angles")
    index = _angle_labels(pipe, angles)
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


def _ood_block(detector: LayerwiseDetector, features: list, corrected: _Corrected,
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
    return {"method": "mahalanobis", "layers": list(detector.layers),
            "threshold": detector.threshold,
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
