"""RISCPipeline: rotation prediction -> counter-rotation -> classification, fused.

The estimator API (scikit-learn's ``predict`` / ``predict_proba`` / ``score``)
on the fused chain of :mod:`risc_tf.fused`: one traced TensorFlow graph per
input signature runs ``to_model_input -> fill -> RotNet -> counter-rotate ->
classifier``, memory bounded by ``batch_size`` whatever the number of images.
Images of different sizes (a list of scans) are resized one by one to the
model input first, then go through the same graph; a ``tf.data.Dataset`` is
streamed batch by batch (see :mod:`risc_tf.inputs`).

Saving (:meth:`RISCPipeline.save`) writes a folder with both models as plain
Keras files (:func:`risc_tf.save_model`), ``risc_pipeline.json`` (angles, head,
mode, fill, class names, temperatures, review thresholds, tilt tolerance,
metadata), the out-of-distribution detector's arrays (``ood.npz``) when it has
one, and a ``MODEL_CARD.md``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import keras
import numpy as np

from risc_tf.export import export_pipeline
from risc_tf.fused import DETAILS, FusedChain
from risc_tf.heads import check_max_tilt
from risc_tf.inputs import Predictions
from risc_tf.ood import MahalanobisDetector
from risc_tf.ood_layers import LayerwiseDetector
from risc_tf.pipeline_files import read_pipeline_folder, save_pipeline_folder
from risc_tf.validation import check_labels, check_probability

__all__ = ["RISCPipeline"]


class RISCPipeline(FusedChain):
    """Rotation-invariant classification with a RotNet and an upright classifier.

    Parameters
    ----------
    rotnet : keras.Model
        Predicts which of its angles an image was rotated by.
    classifier : keras.Model
        Trained on upright images; same input size as the RotNet.
    angles : sequence of float, optional
        Only for a RotNet that does not record its angles (e.g. loaded with plain
        ``keras.models.load_model``); a RotNet built or loaded by risc_tf
        records them, and other angles are an error.
    head, sigma : optional
        Likewise: the head of a RotNet that does not record it (default the
        paper's ``"bins"``; see :mod:`risc_tf.heads`).
    mode : {"hard", "soft", "tta", "angle"}, default "hard"
        The correction (:mod:`risc_tf.corrections`). ``"hard"`` (the paper):
        counter-rotate by the most likely angle, then classify. ``"soft"``:
        ``p(y|x) = sum_r p(r|x) p(y|R_r^-1 x)``, classifying every counter-rotation
        in batched passes. ``"tta"``: the mean over every counter-rotation, the
        RotNet unused (the test-time augmentation baseline). ``"angle"`` (a
        circular head): counter-rotate by the RotNet's continuous estimate, the
        quarter turn exactly and the rest by one bilinear resample. Soft and tta
        apply to the bins head only, angle to the circular head only.
    batch_size : int, default 256
        Images per graph call (soft and tta modes classify ``len(angles)``
        counter-rotations of each image, so they pass ``4 * batch_size / len(angles)``
        images per call).
    fill : {"constant", "reflect", "circle"}, default "constant"
        The fill the models were trained with (see :mod:`risc_tf.rotation`).
    class_names : sequence of str, optional
        Names of the classifier's outputs (default "0", "1", ...).
    min_rotation_confidence, min_class_probability : float in [0, 1], default 0
        :meth:`predict_details` marks an image for review when the RotNet's
        confidence in its predicted rotation, or the probability of the predicted
        class, is below these (``risc-tf reproduce`` chooses both on validation
        data, :func:`risc_tf.trust.fit_trust`).
    rotnet_temperature, classifier_temperature : float > 0, default 1
        Temperature scaling of each model's probabilities, fitted on validation
        data (:mod:`risc_tf.calibration`); applied in every prediction and export.
    max_tilt : float, optional
        Degrees an image's estimated rotation may lie from the angle it is counted
        as (a set angle for a bins head, a quarter turn for a circular head) before
        ``risc-tf predict`` and :func:`risc_tf.predict_files` send it to review as
        turned by an angle the pipeline cannot undo exactly
        (:mod:`risc_tf.decisions`). Default :func:`risc_tf.heads.default_max_tilt`;
        ``risc-tf reproduce`` stores a circular head's measured error on validation
        (its 95th percentile) when that is smaller.
    ood : risc_tf.ood_layers.LayerwiseDetector, optional
        Flags images unlike the training images (score above its threshold, on the
        classifier's features of the corrected image; :func:`risc_tf.trust.fit_trust` fits
        one); :meth:`predict_details` marks them for review. A
        :class:`risc_tf.ood.MahalanobisDetector` is taken as a one-layer detector on
        the penultimate features.
    metadata : dict, optional
        What to record with the pipeline (dataset, training settings, test
        metrics...); saved in ``risc_pipeline.json`` and the model card.

    Attributes
    ----------
    angles : tuple of float
        The RotNet's angle set.
    classes_ : np.ndarray of str
        Class names, in output order. :meth:`predict` returns indices into it.
    image_size : int
        The models' input side.

    See Also
    --------
    risc_tf.fold_batchnorm : inference copies of the two models with BatchNorm
        folded into the convolutions; a pipeline on them predicts the same, faster.

    Examples
    --------
    >>> pipe = RISCPipeline(rotnet, classifier, mode="soft")  # doctest: +SKIP
    >>> pipe.predict(rotated_images)  # doctest: +SKIP
    array([1, 0, ...])
    """

    def __init__(
        self,
        rotnet: keras.Model,
        classifier: keras.Model,
        angles: Sequence[float] | None = None,
        *,
        head: str | None = None,
        sigma: float | None = None,
        mode: str = "hard",
        batch_size: int = 256,
        fill: str = "constant",
        class_names: Sequence[str] | None = None,
        min_rotation_confidence: float = 0.0,
        min_class_probability: float = 0.0,
        rotnet_temperature: float = 1.0,
        classifier_temperature: float = 1.0,
        max_tilt: float | None = None,
        ood: LayerwiseDetector | MahalanobisDetector | None = None,
        metadata: dict | None = None,
    ):
        super().__init__(rotnet, classifier, angles, head=head, sigma=sigma, mode=mode,
                         batch_size=batch_size, fill=fill,
                         rotnet_temperature=rotnet_temperature,
                         classifier_temperature=classifier_temperature, ood=ood)
        num_classes = int(classifier.output_shape[-1])
        if class_names is None:
            class_names = [str(i) for i in range(num_classes)]
        if isinstance(class_names, str) or len(class_names) != num_classes:
            raise ValueError(
                f"class_names must name the classifier's {num_classes} outputs; got {class_names!r}"
            )
        self.classes_ = np.array([str(c) for c in class_names])
        self.min_rotation_confidence = check_probability(
            "min_rotation_confidence", min_rotation_confidence)
        self.min_class_probability = check_probability(
            "min_class_probability", min_class_probability)
        self.max_tilt = check_max_tilt(max_tilt, self.angles, self.head)
        self.metadata = dict(metadata or {})

    # -- public API -------------------------------------------------------------
    def predict_rotation(self, images, *, return_proba: bool = False):
        """Predicted rotation of each image, in degrees (never given the true one).

        Parameters
        ----------
        images : array_like, list of arrays, tf.Tensor or tf.data.Dataset
            See the module docs and :func:`risc_tf.check_images`.
        return_proba : bool, default False

        Returns
        -------
        angles : np.ndarray
            float32 ``(N,)`` (a scalar for a single image): the most probable angle of
            a bins head, the continuous estimate of a circular head.
        proba : np.ndarray
            ``(N, len(angles))`` RotNet probabilities, when ``return_proba``.
        """
        out, single = self._run(images, "rotation")
        proba, angles = out[:, :-2], out[:, -2]
        if single:
            angles, proba = angles[0], proba[0]
        return (angles, proba) if return_proba else angles

    def correct(self, images) -> np.ndarray:
        """Counter-rotate each image by its predicted angle.

        Returns float32 ``(N, S, S, 3)`` in [0, 1] at the model input size (one
        ``(S, S, 3)`` image for a single input). Uses the angle of
        :meth:`predict_rotation` in every mode.
        """
        out, single = self._run(images, "correct")
        return out[0] if single else out

    def predict_proba(self, images) -> np.ndarray:
        """Class probabilities ``(N, C)`` after rotation correction (``(C,)`` for one image)."""
        out, single = self._run(images, "proba")
        return out[0] if single else out

    def predict_every_rotation(self, images) -> tuple[np.ndarray, np.ndarray]:
        """The RotNet's probabilities ``(N, R)`` and the classifier's ``(N, R, C)`` on
        each of the R counter-rotations, whatever the mode.

        What every mode is made of (:func:`risc_tf.corrections.combine`): hard mode is
        the row of the most likely angle, soft mode the rows weighted by the RotNet,
        and test-time augmentation their plain mean. An evaluation that needs all
        three gets them from one classifier pass per counter-rotation (see
        :func:`risc_tf.evaluation.build_methods`).
        """
        out, single = self._run(images, "every")
        r = len(self.angles)
        p_rot, p_y = out[:, :r], out[:, r:].reshape(len(out), r, -1)
        return (p_rot[0], p_y[0]) if single else (p_rot, p_y)

    def predict(self, images) -> np.ndarray:
        """Class indices ``(N,)`` into :attr:`classes_` after rotation correction (an int for
        one image)."""
        return self.predict_proba(images).argmax(axis=-1)

    def predict_details(self, images) -> Predictions:
        """Class, rotation, both confidences and a review flag per image, in one pass.

        An image is marked for ``review`` when the RotNet's confidence in its
        predicted rotation (:meth:`read_rotation`) is below ``min_rotation_confidence``,
        the predicted class's probability is below ``min_class_probability``, or the
        out-of-distribution detector (``ood``) finds it unlike the training images.

        Returns
        -------
        Predictions
            Arrays of length N (N = 1 for a single image).
        """
        out, _ = self._run(images, "details")
        c = len(self.classes_)
        proba, p_rot = out[:, :c], out[:, c:c + len(self.angles)]
        angle, rot_p, score = out[:, -len(DETAILS):].T
        index, class_p = proba.argmax(axis=1), proba.max(axis=1)
        unlike = np.zeros(len(out), bool) if self.ood is None else score > self.ood.threshold
        review = (rot_p < self.min_rotation_confidence) | \
            (class_p < self.min_class_probability) | unlike
        return Predictions(index, self.classes_[index], class_p, angle, rot_p, review,
                           None if self.ood is None else score, unlike, p_rot)

    def score(self, images, labels) -> float:
        """Accuracy of :meth:`predict` against integer labels (one per image)."""
        predicted = np.atleast_1d(self.predict(images))
        labels = [labels] if np.isscalar(labels) else labels  # one image, one label
        return float(np.mean(predicted == check_labels(labels, n=len(predicted))))

    # -- persistence ------------------------------------------------------------
    def get_config(self) -> dict:
        """Everything but the models: what :meth:`save` writes to ``risc_pipeline.json``."""
        return {
            "angles": list(self.angles),
            "head": self.head,
            "sigma": self.sigma,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "fill": self.fill,
            "class_names": self.classes_.tolist(),
            "min_rotation_confidence": self.min_rotation_confidence,
            "min_class_probability": self.min_class_probability,
            "rotnet_temperature": self.rotnet_temperature,
            "classifier_temperature": self.classifier_temperature,
            "max_tilt": self.max_tilt,
            "ood_threshold": None if self.ood is None else self.ood.threshold,
            "input_size": self.image_size,
            "metadata": self.metadata,
        }

    @classmethod
    def from_config(cls, config: dict, rotnet: keras.Model, classifier: keras.Model, *,
                    ood: LayerwiseDetector | MahalanobisDetector | None = None
                    ) -> RISCPipeline:
        """A pipeline of two models (and its detector) with the settings :meth:`get_config`
        returned."""
        settings = {k: v for k, v in config.items()
                    if k not in ("angles", "input_size", "ood_threshold")}
        return cls(rotnet, classifier, config["angles"], ood=ood, **settings)

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Save the pipeline into folder ``path``; return it.

        Both models as plain Keras files, ``risc_pipeline.json`` and
        ``MODEL_CARD.md``; written to a temporary folder and swapped in, so a
        failure leaves the old pipeline or the new one, never neither (see
        :mod:`risc_tf.pipeline_files`).

        Raises
        ------
        FileExistsError
            ``path`` exists and ``overwrite`` is off, or it is not a saved pipeline.
        NotADirectoryError
            A part of ``path`` is a file (named).
        """
        arrays = {} if self.ood is None else {"ood": self.ood.to_arrays()}
        return save_pipeline_folder(path, rotnet=self.rotnet, classifier=self.classifier,
                                    config=self.get_config(), arrays=arrays,
                                    overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike, *, fold_batchnorm: bool = False) -> RISCPipeline:
        """Load a pipeline saved by :meth:`save` (any risc_tf version), or the one inside a
        ``risc-tf reproduce`` run folder.

        Parameters
        ----------
        path : path
            The pipeline's folder, or a run folder.
        fold_batchnorm : bool, default False
            Load the two models as inference copies, BatchNormalization folded into
            the convolutions (:func:`risc_tf.fold_batchnorm`, at no extra load time):
            the same answers within float32 rounding, in less time (what
            ``risc-tf predict`` does). Leave it off to go on training the models.

        Raises
        ------
        FileNotFoundError
            No pipeline there (the message says where one was looked for).
        ValueError
            A config that is not JSON, of an unknown format or missing keys (named).
        """
        rotnet, classifier, config, arrays = read_pipeline_folder(
            path, fold_batchnorm=fold_batchnorm)
        ood = LayerwiseDetector.from_arrays(arrays["ood"]) if "ood" in arrays else None
        return cls.from_config(config, rotnet, classifier, ood=ood)

    def export(self, path: str | os.PathLike, *, format: str = "tf_saved_model",
               **options) -> Path:
        """Export the whole fused pipeline for serving; see :func:`risc_tf.export.export_pipeline`.

        Examples
        --------
        >>> pipe.export("serving/risc/1")  # doctest: +SKIP
        >>> pipe.export("risc.tflite", format="litert")  # doctest: +SKIP
        """
        return export_pipeline(self, path, format=format, **options)

    def __repr__(self) -> str:
        return (
            f"RISCPipeline(rotnet={self.rotnet.name!r}, classifier={self.classifier.name!r}, "
            f"angles={self.angles}, mode={self.mode!r}, fill={self.fill!r}, "
            f"batch_size={self.batch_size}, classes_={self.classes_.tolist()})"
        )
