"""RISCPipeline: rotation prediction -> counter-rotation -> classification, fused.

For each batch, one traced TensorFlow graph runs
``to_model_input -> fill -> RotNet -> counter-rotate -> classifier``: no numpy
round trip between stages, one trace per input signature (dtype and image
shape; the batch dimension is free), and memory bounded by ``batch_size``
whatever the number of images. Images of different sizes (a list of scans)
are resized one by one to the model input first, then go through the same
graph; a ``tf.data.Dataset`` is streamed batch by batch (see
:mod:`risc_tf.inputs`).

Saving (:meth:`RISCPipeline.save`) writes a folder with both models as plain
Keras files (:func:`risc_tf.save_model`), ``risc_pipeline.json`` (angles, mode,
fill, class names, thresholds, metadata) and a ``MODEL_CARD.md``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import check_angles, check_fill, is_quarter_turn_set, match_angles
from risc_tf.corrections import MODES, combine, for_mode
from risc_tf.export import export_pipeline
from risc_tf.heads import check_head, head_window, read_angle
from risc_tf.inputs import Predictions, model_batches, run_in_batches
from risc_tf.models import is_rotnet, model_image_size, rotnet_angles, rotnet_head
from risc_tf.pipeline_files import read_pipeline_folder, save_pipeline_folder
from risc_tf.preprocessing import to_model_input
from risc_tf.resample import MAX_TABLE_SIDE, gather_rotate, resample_rotate, rotation_tables
from risc_tf.rotation import apply_fill, counter_rotate, quarter_turns
from risc_tf.validation import check_choice, check_int, check_labels, check_probability

__all__ = ["RISCPipeline"]


class RISCPipeline:
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
        probability of its predicted rotation, or the probability of the
        predicted class, is below these.
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
        metadata: dict | None = None,
    ):
        check_choice("mode", mode, MODES)
        self.batch_size = check_int("batch_size", batch_size)
        self.fill = check_fill(fill)
        self.angles = self._check_angles(rotnet, angles)
        self.head, self.sigma = self._check_head(rotnet, head, sigma)
        self.mode = for_mode(mode, self.head).mode
        self._window = head_window(self.head, self.angles, self.sigma)
        size = model_image_size(rotnet)
        if model_image_size(classifier) != size:
            raise ValueError(
                f"RotNet and classifier inputs differ: {size} vs {model_image_size(classifier)}"
            )
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
        self.metadata = dict(metadata or {})
        self.rotnet, self.classifier, self.image_size = rotnet, classifier, size
        # quarter-turn sets are undone by exact reversals and transposes; other sets by
        # precomputed bilinear gathers (built on first use; inputs up to 64x64), else by
        # interpolation
        self._turns = (tf.constant([round(a / 90.0) % 4 for a in self.angles], tf.int32)
                       if is_quarter_turn_set(self.angles) else None)
        self._tables: tuple[tf.Tensor, tf.Tensor] | None = None
        self._tables_fill = self.fill
        self._graphs: dict[tuple, Callable] = {}

    def _check_head(self, rotnet: keras.Model, head, sigma) -> tuple[str, float | None]:
        if is_rotnet(rotnet):
            own = rotnet_head(rotnet)
            if head is not None and (head, sigma) != own:
                raise ValueError(f"head={head!r}, sigma={sigma!r} disagree with the RotNet's own "
                                 f"{own}; omit them (they are for models that do not record "
                                 "them)")
            return own
        return check_head("bins" if head is None else head, self.angles, sigma)

    @staticmethod
    def _check_angles(rotnet: keras.Model, angles) -> tuple[float, ...]:
        outputs = int(rotnet.output_shape[-1])
        if is_rotnet(rotnet):
            own = rotnet_angles(rotnet)
            if angles is not None:
                given = check_angles(angles)
                order = match_angles(given, own)
                if len(given) != len(own) or np.any(order != np.arange(len(own))):
                    raise ValueError(
                        f"angles {given} disagree with the angles the RotNet records {own}; "
                        "omit angles= (it is only for models that do not record them)"
                    )
            return own
        if angles is None:
            raise ValueError(
                f"model {rotnet.name!r} records no angles: pass angles= (its output order), "
                "or load it with risc_tf.load_model"
            )
        angles = check_angles(angles)
        if len(angles) != outputs:
            raise ValueError(
                f"the RotNet has {outputs} outputs but {len(angles)} angles were given: {angles}"
            )
        return angles

    # -- graph ------------------------------------------------------------------
    def _counter_tables(self) -> tuple[tf.Tensor, tf.Tensor]:
        if self._tables is None or self._tables_fill != self.fill:
            with tf.init_scope():  # eager, even when first asked for while tracing
                indices, weights = rotation_tables([-a for a in self.angles], self.image_size,
                                                   self.fill)
                self._tables = (tf.constant(indices), tf.constant(weights))
                self._tables_fill = self.fill
        return self._tables

    def _counter_rotate(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """Undo angle ``angles[index[i]]`` of each image ``x[i]``."""
        if self._turns is not None:
            return quarter_turns(x, -tf.gather(self._turns, index))
        if self.image_size > MAX_TABLE_SIDE:  # tables would cost S**4: interpolate instead
            table = tf.constant(self.angles, tf.float32)
            return counter_rotate(x, tf.gather(table, index), self.fill)
        indices, weights = self._counter_tables()
        return gather_rotate(x, tf.gather(indices, index), tf.gather(weights, index))

    def read_rotation(self, p_rot: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The rotation the RotNet's probabilities name, and the confidence in it (tensors).

        :func:`risc_tf.heads.read_angle` of the RotNet's head.
        """
        return read_angle(p_rot, self.angles, head=self.head, sigma=self.sigma)

    def classify_corrected(self, x: tf.Tensor, p_rot: tf.Tensor) -> tf.Tensor:
        """Class probabilities of model-input images given the RotNet's probabilities.

        The mode's correction (:mod:`risc_tf.corrections`): hard mode classifies
        only the counter-rotation it picks, soft and tta modes every
        counter-rotation, weighted (:func:`~risc_tf.corrections.combine`), angle
        mode the counter-rotation by the continuous estimate (one resample,
        :func:`risc_tf.resample.resample_rotate`). A TensorFlow function of
        tensors (what :meth:`predict_proba` and :mod:`risc_tf.export` trace).
        """
        method = for_mode(self.mode)
        if method.angle is not None:
            theta = method.angle(p_rot, self.angles, self._window)
            return self.classifier(resample_rotate(x, -theta, self.fill), training=False)
        if method.picks_one:
            pick = tf.argmax(method.weights(p_rot), axis=1)
            return self.classifier(self._counter_rotate(x, pick), training=False)
        return combine(method, p_rot, self._classify_every(x))

    def _classify_every(self, x: tf.Tensor) -> tf.Tensor:
        """Class probabilities ``(N, R, C)`` of every counter-rotation of ``x``."""
        r, n = len(self.angles), tf.shape(x)[0]
        every = self._counter_rotate(tf.tile(x, [r, 1, 1, 1]),
                                     tf.repeat(tf.range(r, dtype=tf.int64), n))
        p_y = tf.reshape(self.classifier(every, training=False), [r, n, -1])
        return tf.transpose(p_y, [1, 0, 2])

    def forward(self, raw: tf.Tensor, output: str = "proba") -> tf.Tensor:
        """The fused chain as a TensorFlow function of one batch (what the pipeline traces).

        ``raw`` is a validated rank-4 batch (see :func:`risc_tf.check_images`);
        ``output`` is ``"rotation"`` (the RotNet's probabilities, then the angle and
        confidence of :meth:`read_rotation`), ``"correct"`` (the model-input images
        counter-rotated by that angle), ``"proba"`` (class probabilities),
        ``"details"`` (class probabilities, then what ``"rotation"`` gives,
        concatenated along axis 1) or ``"every"`` (the RotNet's probabilities, then
        the classifier's on each counter-rotation of the angle set, flattened).
        """
        x = apply_fill(to_model_input(raw, self.image_size), self.fill)
        if output == "proba" and not for_mode(self.mode).uses_rotnet:
            return self.classify_corrected(x, tf.zeros([tf.shape(x)[0], len(self.angles)]))
        p_rot = self.rotnet(x, training=False)
        if output == "every":
            p_y = self._classify_every(x)  # (N, R, C)
            return tf.concat([p_rot, tf.reshape(p_y, [tf.shape(x)[0], -1])], axis=1)
        angle, confidence = self.read_rotation(p_rot)
        rotation = tf.concat([p_rot, angle[:, None], confidence[:, None]], axis=1)
        if output == "rotation":
            return rotation
        if output == "correct":
            return resample_rotate(x, -angle, self.fill) if self.head == "circular" else \
                self._counter_rotate(x, tf.argmax(p_rot, axis=1))
        proba = self.classify_corrected(x, p_rot)
        return proba if output == "proba" else tf.concat([proba, rotation], axis=1)

    def _graph(self, output: str, x: np.ndarray) -> Callable:
        key = (output, self.mode, self.fill, x.dtype.str, x.shape[1:])
        if key not in self._graphs:
            spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
            # no tensor-dependent Python control flow in forward: nothing for AutoGraph to do
            self._graphs[key] = tf.function(
                functools.partial(self.forward, output=output),
                input_signature=[spec], autograph=False,
            )
        return self._graphs[key]

    def _chunk(self, output: str) -> int:
        every = not for_mode(self.mode).picks_one and output in ("proba", "details")
        if output == "every" or every:
            return max(1, 4 * self.batch_size // len(self.angles))
        return self.batch_size

    def _run(self, images, output: str) -> tuple[np.ndarray, bool]:
        parts, singles = [], []
        for x, single in model_batches(images, self.image_size, self.batch_size):
            parts.append(run_in_batches(self._graph(output, x), x, self._chunk(output)))
            singles.append(single)
        if not parts:
            raise ValueError("images is an empty dataset: nothing to predict")
        return np.concatenate(parts), singles == [True]

    # -- public API -------------------------------------------------------------
    def trace_count(self) -> int:
        """How many times the pipeline has traced a graph (one per input signature).

        Stays constant across batch sizes and repeated calls; a diagnostic for
        retracing (dtype and image shape make the signature).
        """
        return sum(int(g.experimental_get_tracing_count()) for g in self._graphs.values())

    def predict_rotation(self, images, return_proba: bool = False):
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
        predicted rotation (:meth:`read_rotation`) is below ``min_rotation_confidence``
        or the predicted class's probability is below ``min_class_probability``.

        Returns
        -------
        Predictions
            Arrays of length N (N = 1 for a single image).
        """
        out, _ = self._run(images, "details")
        proba, angle, rot_p = out[:, : len(self.classes_)], out[:, -2], out[:, -1]
        index, class_p = proba.argmax(axis=1), proba.max(axis=1)
        review = (rot_p < self.min_rotation_confidence) | (class_p < self.min_class_probability)
        return Predictions(index, self.classes_[index], class_p, angle, rot_p, review)

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
            "input_size": self.image_size,
            "metadata": self.metadata,
        }

    @classmethod
    def from_config(cls, config: dict, rotnet: keras.Model,
                    classifier: keras.Model) -> RISCPipeline:
        """A pipeline of two models with the settings :meth:`get_config` returned."""
        settings = {k: v for k, v in config.items() if k not in ("angles", "input_size")}
        return cls(rotnet, classifier, config["angles"], **settings)

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
        return save_pipeline_folder(path, rotnet=self.rotnet, classifier=self.classifier,
                                    config=self.get_config(), overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike) -> RISCPipeline:
        """Load a pipeline saved by :meth:`save` (any risc_tf version), or the one inside a
        ``risc-tf reproduce`` run folder.

        Raises
        ------
        FileNotFoundError
            No pipeline there (the message says where one was looked for).
        ValueError
            A config that is not JSON, of an unknown format or missing keys (named).
        """
        rotnet, classifier, config = read_pipeline_folder(path)
        return cls.from_config(config, rotnet, classifier)

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
