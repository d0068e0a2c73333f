"""The fused chain of a RISC pipeline, as one traced TensorFlow function per input signature.

For each batch, ``to_model_input -> fill -> RotNet -> counter-rotation ->
classifier`` runs in one graph (:meth:`FusedChain.forward`): no numpy round
trip between stages, one trace per input signature (dtype and image shape; the
batch dimension is free), memory bounded by ``batch_size``. What the models are
trusted with travels in the same graph: the temperatures that calibrate both
models' probabilities (:mod:`risc_tf.calibration`) and the score of images
unlike the training data (:mod:`risc_tf.ood_layers`) on the classifier's features of
the corrected image. :class:`risc_tf.RISCPipeline` is this chain with the
estimator API, files and exports; :mod:`risc_tf.export` traces the same
:meth:`~FusedChain.forward`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import check_angles, check_fill, match_angles
from risc_tf.calibration import apply_temperature, check_temperature
from risc_tf.corrections import MODES, combine, for_mode
from risc_tf.features import feature_model
from risc_tf.heads import check_head, head_window, read_angle
from risc_tf.inputs import model_batches, run_in_batches
from risc_tf.models import is_rotnet, model_image_size, rotnet_angles, rotnet_head
from risc_tf.ood import MahalanobisDetector
from risc_tf.ood_layers import LayerwiseDetector
from risc_tf.preprocessing import to_model_input
from risc_tf.resample import CounterRotation, resample_rotate
from risc_tf.rotation import apply_fill
from risc_tf.validation import check_choice, check_int

__all__ = ["DETAILS", "FusedChain"]

#: The columns that follow the class probabilities and the RotNet's in the "details"
#: output: the angle read, the confidence in it, the out-of-distribution score (0 when the
#: pipeline has no detector).
DETAILS = ("angle", "rotation_confidence", "ood_score")


class FusedChain:
    """RotNet, counter-rotation and classifier as one TensorFlow function of a batch.

    Parameters
    ----------
    rotnet, classifier, angles, head, sigma, mode, batch_size, fill
        See :class:`risc_tf.RISCPipeline`.
    rotnet_temperature, classifier_temperature : float, default 1
        Temperature scaling of each model's probabilities (:mod:`risc_tf.calibration`;
        1 leaves them as they are).
    ood : LayerwiseDetector or MahalanobisDetector, optional
        Scores how unlike the training images each corrected image is
        (:mod:`risc_tf.ood_layers`; a MahalanobisDetector reads the penultimate
        features alone, :meth:`LayerwiseDetector.of`).
    """

    def __init__(self, rotnet: keras.Model, classifier: keras.Model,
                 angles: Sequence[float] | None = None, *, head: str | None = None,
                 sigma: float | None = None, mode: str = "hard", batch_size: int = 256,
                 fill: str = "constant", rotnet_temperature: float = 1.0,
                 classifier_temperature: float = 1.0,
                 ood: LayerwiseDetector | MahalanobisDetector | None = None):
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
        self.rotnet_temperature = check_temperature("rotnet_temperature", rotnet_temperature)
        self.classifier_temperature = check_temperature("classifier_temperature",
                                                        classifier_temperature)
        if ood is not None and not isinstance(ood, LayerwiseDetector):
            ood = LayerwiseDetector.of(ood)  # refuses anything else, naming both types
        self.ood = ood
        self.rotnet, self.classifier, self.image_size = rotnet, classifier, size
        self._features = None if ood is None else feature_model(classifier, ood.layers)
        if ood is not None:
            widths = tuple(int(t.shape[-1]) for t in self._features.outputs[:-1])
            if widths != ood.num_features:
                raise ValueError(f"the ood detector expects {ood.num_features} features of "
                                 f"layers {ood.layers}; the classifier gives {widths}")
        self._counter: CounterRotation | None = None  # built on first use (see resample)
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

    # -- the models, calibrated ---------------------------------------------------
    @staticmethod
    def _at_temperature(p: tf.Tensor, temperature: float) -> tf.Tensor:
        """Probabilities ``p`` at ``temperature`` (left exactly as they are at 1)."""
        return p if temperature == 1.0 else apply_temperature(p, temperature)

    def _rotation_proba(self, x: tf.Tensor) -> tf.Tensor:
        return self._at_temperature(self.rotnet(x, training=False), self.rotnet_temperature)

    def _classify(self, x: tf.Tensor) -> tf.Tensor:
        return self._at_temperature(self.classifier(x, training=False),
                                    self.classifier_temperature)

    def _counter_rotate(self, x: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
        """Undo angle ``angles[index[i]]`` of each image ``x[i]``."""
        if self._counter is None or self._counter.fill != self.fill:
            self._counter = CounterRotation(self.angles, self.image_size, self.fill)
        return self._counter(x, index)

    def read_rotation(self, p_rot: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """The rotation the RotNet's probabilities name, and the confidence in it (tensors).

        :func:`risc_tf.heads.read_angle` of the RotNet's head.
        """
        return read_angle(p_rot, self.angles, head=self.head, sigma=self.sigma)

    def _picked(self, x: tf.Tensor, p_rot: tf.Tensor) -> tf.Tensor | None:
        """The one counter-rotation of ``x`` the mode classifies (hard and angle modes), or
        None when it weighs every counter-rotation (soft, tta)."""
        method = for_mode(self.mode)
        if method.angle is not None:
            return resample_rotate(x, -method.angle(p_rot, self.angles, self._window), self.fill)
        if method.picks_one:
            return self._counter_rotate(x, tf.argmax(method.weights(p_rot), axis=1))
        return None

    def classify_corrected(self, x: tf.Tensor, p_rot: tf.Tensor) -> tf.Tensor:
        """Class probabilities of model-input images given the RotNet's probabilities.

        The mode's correction (:mod:`risc_tf.corrections`): hard mode classifies
        only the counter-rotation it picks, soft and tta modes every
        counter-rotation, weighted (:func:`~risc_tf.corrections.combine`), angle
        mode the counter-rotation by the continuous estimate (one resample,
        :func:`risc_tf.resample.resample_rotate`). A TensorFlow function of
        tensors (what :meth:`predict_proba` and :mod:`risc_tf.export` trace).
        """
        picked = self._picked(x, p_rot)
        if picked is not None:
            return self._classify(picked)
        return combine(for_mode(self.mode), p_rot, self._classify_every(x))

    def _classify_and_score(self, x: tf.Tensor, p_rot: tf.Tensor,
                            corrected: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Class probabilities and the out-of-distribution score (0 without a detector).

        When the mode classifies one counter-rotation, the score reads the
        features of that same image from the same classifier pass (one backbone
        pass, not two); otherwise it reads those of ``corrected`` (the image
        counter-rotated by the angle the RotNet names).
        """
        if self.ood is None:
            proba = self.classify_corrected(x, p_rot)
            return proba, tf.zeros_like(proba[:, 0])
        picked = self._picked(x, p_rot)
        if picked is not None:
            *features, proba = self._features(picked, training=False)
            proba = self._at_temperature(proba, self.classifier_temperature)
        else:
            proba = self.classify_corrected(x, p_rot)
            features = self._features(corrected, training=False)[:-1]
        return proba, tf.cast(self.ood.score(features), proba.dtype)

    def _classify_every(self, x: tf.Tensor) -> tf.Tensor:
        """Class probabilities ``(N, R, C)`` of every counter-rotation of ``x``."""
        r, n = len(self.angles), tf.shape(x)[0]
        every = self._counter_rotate(tf.tile(x, [r, 1, 1, 1]),
                                     tf.repeat(tf.range(r, dtype=tf.int64), n))
        p_y = tf.reshape(self._classify(every), [r, n, -1])
        return tf.transpose(p_y, [1, 0, 2])

    def forward(self, raw: tf.Tensor, output: str = "proba") -> tf.Tensor:
        """The fused chain as a TensorFlow function of one batch (what the pipeline traces).

        ``raw`` is a validated rank-4 batch (see :func:`risc_tf.check_images`);
        ``output`` is ``"rotation"`` (the RotNet's probabilities, then the angle and
        confidence of :meth:`read_rotation`), ``"correct"`` (the model-input images
        counter-rotated by that angle), ``"proba"`` (class probabilities),
        ``"details"`` (class probabilities, then what ``"rotation"`` gives, then the
        out-of-distribution score of the corrected image: :data:`DETAILS`) or
        ``"every"`` (the RotNet's probabilities, then the classifier's on each
        counter-rotation of the angle set, flattened).
        """
        x = apply_fill(to_model_input(raw, self.image_size), self.fill)
        if output == "proba" and not for_mode(self.mode).uses_rotnet:
            return self.classify_corrected(x, tf.zeros([tf.shape(x)[0], len(self.angles)]))
        p_rot = self._rotation_proba(x)
        if output == "every":
            p_y = self._classify_every(x)  # (N, R, C)
            return tf.concat([p_rot, tf.reshape(p_y, [tf.shape(x)[0], -1])], axis=1)
        angle, confidence = self.read_rotation(p_rot)
        rotation = tf.concat([p_rot, angle[:, None], confidence[:, None]], axis=1)
        if output == "rotation":
            return rotation
        corrected = resample_rotate(x, -angle, self.fill) if self.head == "circular" else \
            self._counter_rotate(x, tf.argmax(p_rot, axis=1))
        if output == "correct":
            return corrected
        if output == "proba":
            return self.classify_corrected(x, p_rot)
        proba, score = self._classify_and_score(x, p_rot, corrected)
        return tf.concat([proba, rotation, score[:, None]], axis=1)

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
        every = for_mode(self.mode).classifies_every and output in ("proba", "details")
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

    def trace_count(self) -> int:
        """How many times the pipeline has traced a graph (one per input signature).

        Stays constant across batch sizes and repeated calls; a diagnostic for
        retracing (dtype and image shape make the signature).
        """
        return sum(int(g.experimental_get_tracing_count()) for g in self._graphs.values())
