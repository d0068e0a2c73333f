"""RISCPipeline: rotation prediction -> counter-rotation -> classification, fused.

For each batch, one traced TensorFlow graph runs
``to_model_input -> RotNet -> counter-rotate -> classifier``: no numpy round trip
between stages, one trace per input signature (dtype and image shape; the batch
dimension is free), and memory bounded by ``batch_size`` whatever the number of
images.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from risc_tf.models import model_image_size, rotnet_angles, save_for_inference
from risc_tf.preprocessing import check_images, to_model_input
from risc_tf.rotation import check_angles, counter_rotate, rotate_all

__all__ = ["MODES", "RISCPipeline", "run_in_batches"]

MODES = ("hard", "soft")
_CONFIG = "risc_pipeline.json"
_ROTNET = "rotnet.keras"
_CLASSIFIER = "classifier.keras"
_FORMAT = 1


def run_in_batches(
    graph: Callable[[tf.Tensor], tf.Tensor], x: np.ndarray, batch_size: int
) -> np.ndarray:
    """``graph`` applied to ``x`` in slices of ``batch_size``, the outputs concatenated.

    Bounds memory whatever ``len(x)``; every slice goes through the same traced
    graph (its batch dimension is free), so there is no retracing.
    """
    return np.concatenate(
        [graph(tf.convert_to_tensor(x[i : i + batch_size])).numpy()
         for i in range(0, len(x), batch_size)]
    )


class RISCPipeline:
    """Rotation-invariant classification with a RotNet and an upright classifier.

    Parameters
    ----------
    rotnet : keras.Model
        Predicts which of ``angles`` an image was rotated by.
    classifier : keras.Model
        Trained on upright images; same input size as the RotNet.
    angles : sequence of float, optional
        The RotNet's angle set (degrees); read from the RotNet when omitted.
    mode : {"hard", "soft"}, default "hard"
        ``"hard"`` (the paper): counter-rotate by the most likely angle, then
        classify. ``"soft"``: ``p(y|x) = sum_r p(r|x) p(y|R_r^-1 x)``, classifying
        every counter-rotation in one batched pass.
    batch_size : int, default 256
        Images per graph call.

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
        mode: str = "hard",
        batch_size: int = 256,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}; got {mode!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        angles = rotnet_angles(rotnet) if angles is None else check_angles(angles)
        if int(rotnet.output_shape[-1]) != len(angles):
            raise ValueError(
                f"the RotNet has {rotnet.output_shape[-1]} outputs but {len(angles)} angles "
                f"were given: {angles}"
            )
        size = model_image_size(rotnet)
        if model_image_size(classifier) != size:
            raise ValueError(
                f"RotNet and classifier inputs differ: {size} vs {model_image_size(classifier)}"
            )
        self.rotnet, self.classifier = rotnet, classifier
        self.angles, self.mode, self.batch_size = angles, mode, batch_size
        self.image_size = size
        self._table = tf.constant(angles, tf.float32)
        self._graphs: dict[tuple, tf.types.experimental.GenericFunction] = {}

    # -- graph ------------------------------------------------------------------
    def _stages(self, raw: tf.Tensor, output: str):
        x = to_model_input(raw, self.image_size)
        p_rot = self.rotnet(x, training=False)
        if output == "rotation":
            return p_rot
        best = tf.gather(self._table, tf.argmax(p_rot, axis=1))
        if output == "correct":
            return counter_rotate(x, best)
        if self.mode == "hard":
            return self.classifier(counter_rotate(x, best), training=False)
        p_y = self.classifier(rotate_all(x, -self._table), training=False)
        p_y = tf.reshape(p_y, [len(self.angles), tf.shape(x)[0], -1])  # (R, N, C)
        return tf.einsum("nr,rnc->nc", p_rot, p_y)

    def _run(self, images, output: str) -> tuple[np.ndarray, bool]:
        x, single = check_images(images)
        key = (output, x.dtype.str, x.shape[1:])
        if key not in self._graphs:
            spec = tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype))
            # no tensor-dependent Python control flow in _stages: nothing for AutoGraph to do
            self._graphs[key] = tf.function(
                functools.partial(self._stages, output=output),
                input_signature=[spec],
                autograph=False,
            )
        return run_in_batches(self._graphs[key], x, self.batch_size), single

    # -- public API -------------------------------------------------------------
    def predict_rotation(self, images, return_proba: bool = False):
        """Predicted rotation of each image, in degrees (never given the true one).

        Returns
        -------
        angles : np.ndarray
            float32 ``(N,)`` (a scalar for a single image).
        proba : np.ndarray
            ``(N, len(angles))`` RotNet probabilities, when ``return_proba``.
        """
        proba, single = self._run(images, "rotation")
        angles = np.asarray(self.angles, np.float32)[proba.argmax(axis=1)]
        if single:
            angles, proba = angles[0], proba[0]
        return (angles, proba) if return_proba else angles

    def correct(self, images) -> np.ndarray:
        """Counter-rotate each image by its predicted angle.

        Returns float32 ``(N, S, S, 3)`` in [0, 1] at the model input size (one
        ``(S, S, 3)`` image for a single input). Uses the most likely angle in
        both modes.
        """
        out, single = self._run(images, "correct")
        return out[0] if single else out

    def predict_proba(self, images) -> np.ndarray:
        """Class probabilities ``(N, C)`` after rotation correction (``(C,)`` for one image)."""
        out, single = self._run(images, "proba")
        return out[0] if single else out

    def predict(self, images) -> np.ndarray:
        """Class indices ``(N,)`` after rotation correction (an int for one image)."""
        proba = self.predict_proba(images)
        return proba.argmax(axis=-1)

    def score(self, images, labels) -> float:
        """Accuracy of :meth:`predict` against integer labels."""
        labels = np.asarray(labels).reshape(-1)
        return float(np.mean(self.predict(images) == labels))

    # -- persistence ------------------------------------------------------------
    def get_config(self) -> dict:
        return {
            "format": _FORMAT,
            "angles": list(self.angles),
            "mode": self.mode,
            "batch_size": self.batch_size,
        }

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Save both models (Keras format) and the config into folder ``path``.

        Written to a temporary folder first and moved into place at the end, so
        an interrupted save never leaves a half-written pipeline.
        """
        path = Path(path)
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        if path.exists() and not (path / _CONFIG).is_file() and any(path.iterdir()):
            raise FileExistsError(f"{path} is a non-empty folder that is not a saved pipeline")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
        try:
            save_for_inference(self.rotnet, tmp / _ROTNET)
            save_for_inference(self.classifier, tmp / _CLASSIFIER)
            (tmp / _CONFIG).write_text(json.dumps(self.get_config(), indent=2))
            if path.exists():
                shutil.rmtree(path)
            os.replace(tmp, path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> RISCPipeline:
        """Load a pipeline written by :meth:`save`."""
        path = Path(path)
        if not path.is_dir():
            raise FileNotFoundError(f"no saved RISCPipeline at {path}: folder does not exist")
        missing = [n for n in (_CONFIG, _ROTNET, _CLASSIFIER) if not (path / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{path} is not a complete saved RISCPipeline: missing {', '.join(missing)}"
            )
        try:
            config = json.loads((path / _CONFIG).read_text())
            if config.get("format") != _FORMAT:
                raise ValueError(f"unsupported format {config.get('format')!r}")
            rotnet = keras.models.load_model(path / _ROTNET, compile=False)
            classifier = keras.models.load_model(path / _CLASSIFIER, compile=False)
        except (ValueError, OSError, KeyError) as err:
            raise ValueError(f"could not load the RISCPipeline at {path}: {err}") from err
        return cls(rotnet, classifier, config["angles"], config["mode"], config["batch_size"])

    def __repr__(self) -> str:
        return (
            f"RISCPipeline(rotnet={self.rotnet.name!r}, classifier={self.classifier.name!r}, "
            f"angles={self.angles}, mode={self.mode!r}, batch_size={self.batch_size})"
        )
