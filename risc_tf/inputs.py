"""What a pipeline accepts, as batches of same-sized images; and the one batching loop.

:func:`model_batches` turns any input :class:`~risc_tf.RISCPipeline` takes
into validated rank-4 numpy batches of same-sized images:

* an array, a list of same-sized images or a ``tf.Tensor`` (any form
  :func:`risc_tf.check_images` accepts): as it is;
* a list of images of different sizes or dtypes (a folder of PNG and DICOM
  files): each image resized to the model input on its own, then batched;
* a ``tf.data.Dataset`` of images or of batches: streamed, single images
  gathered into batches of ``batch_size``, in input order, in bounded memory.

:func:`run_in_batches` applies a traced graph to an array in slices of a
batch size: the one batching loop of the library (pipeline, evaluation,
explanations). :class:`Predictions` holds the per-image results of
:meth:`risc_tf.RISCPipeline.predict_details`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

import numpy as np
import tensorflow as tf

from risc_tf.preprocessing import check_images, to_model_input
from risc_tf.validation import check_int

__all__ = ["Predictions", "model_batches", "run_in_batches"]


def run_in_batches(
    graph: Callable[..., tf.Tensor], x: np.ndarray | tuple[np.ndarray, ...], batch_size: int
) -> np.ndarray:
    """``graph`` applied to ``x`` in slices of ``batch_size``, the outputs concatenated.

    Bounds memory whatever ``len(x)``; every slice goes through the same traced
    graph (its batch dimension is free), so there is no retracing. The one
    batching loop of the library (pipeline, evaluation, explanations).

    ``x`` may be a tuple of arrays of one length (e.g. images and the output unit
    explained for each): they are sliced together and ``graph`` gets one slice of
    each, ``graph(*slices)``.

    Raises
    ------
    ValueError
        ``x`` is an empty tuple or its arrays differ in length, or ``batch_size``
        is not an int >= 1.
    """
    batch_size = check_int("batch_size", batch_size)
    arrays = x if isinstance(x, tuple) else (x,)
    lengths = [len(a) for a in arrays]
    if len(set(lengths)) != 1:
        raise ValueError(f"x must be an array or a tuple of arrays of one length; got "
                         f"lengths {lengths}")
    return np.concatenate(
        [np.asarray(graph(*(tf.convert_to_tensor(a[i : i + batch_size]) for a in arrays)))
         for i in range(0, lengths[0], batch_size)]
    )


@dataclasses.dataclass
class Predictions:
    """Per-image results of :meth:`RISCPipeline.predict_details` (arrays of length N).

    Attributes
    ----------
    class_index : np.ndarray of int
    class_name : np.ndarray of str
        ``classes_[class_index]``.
    class_probability : np.ndarray of float
        Probability of the predicted class.
    rotation : np.ndarray of float
        Predicted rotation of the input, degrees (the pipeline undid it).
    rotation_confidence : np.ndarray of float
        The RotNet's confidence in that rotation.
    review : np.ndarray of bool
        True where a confidence is below the pipeline's thresholds, or the image is
        unlike the training images: it should be checked by a person instead of
        answered.
    ood_score : np.ndarray of float or None
        How unlike the training images each image is (:mod:`risc_tf.ood`); None for a
        pipeline without a detector.
    unlike_training : np.ndarray of bool
        ``ood_score`` above the detector's threshold (all False without one).
    rotation_proba : np.ndarray or None
        ``(N, R)`` the RotNet's (calibrated) probabilities over its angles.
    """

    class_index: np.ndarray
    class_name: np.ndarray
    class_probability: np.ndarray
    rotation: np.ndarray
    rotation_confidence: np.ndarray
    review: np.ndarray
    ood_score: np.ndarray | None = None
    unlike_training: np.ndarray | None = None
    rotation_proba: np.ndarray | None = None

    def __post_init__(self):
        if self.unlike_training is None:
            self.unlike_training = np.zeros(len(self.class_index), bool)

    def __len__(self) -> int:
        return len(self.class_index)

    def to_records(self) -> list[dict]:
        """One JSON-ready dict per image."""
        scores = [None] * len(self) if self.ood_score is None else self.ood_score
        return [
            {"class_index": int(i), "class_name": str(n), "class_probability": float(p),
             "rotation": float(r), "rotation_confidence": float(c), "review": bool(v),
             "ood_score": None if o is None else float(o), "unlike_training": bool(u)}
            for i, n, p, r, c, v, o, u in zip(self.class_index, self.class_name,
                                              self.class_probability, self.rotation,
                                              self.rotation_confidence, self.review, scores,
                                              self.unlike_training)
        ]


def _is_batch_like(value) -> bool:
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        np.ndim(v) >= 2 for v in value)


def _resized(image, name: str, size: int) -> np.ndarray:
    x, single = check_images(image, name)
    if not single:
        raise ValueError(
            f"{name} is a batch of {len(x)} images; a list of differently sized images, "
            "or a dataset of single images, must hold one image per element"
        )
    return to_model_input(x, size).numpy()[0]


def _stream(dataset: tf.data.Dataset, size: int,
            batch_size: int) -> Iterable[tuple[np.ndarray, bool]]:
    """Batches of a dataset of images or of batches, in order, in bounded memory."""
    pending: list[np.ndarray] = []
    for i, element in enumerate(dataset):
        if isinstance(element, (tuple, list, dict)):
            raise ValueError(
                "a tf.data.Dataset given to RISCPipeline must yield images (or batches "
                f"of images) only; element {i} is a {type(element).__name__}"
            )
        x, single = check_images(element, f"dataset element {i}", warn_layout=False)
        if not single:
            if pending:  # keep the input order: the single images read before it first
                yield np.stack(pending), False
                pending = []
            yield x, False
            continue
        pending.append(_resized(element, f"dataset element {i}", size))
        if len(pending) == batch_size:
            yield np.stack(pending), False
            pending = []
    if pending:
        yield np.stack(pending), False


def model_batches(images, size: int, batch_size: int) -> Iterable[tuple[np.ndarray, bool]]:
    """Validated rank-4 batches of same-sized images, and whether the input was one image.

    Parameters
    ----------
    images : array_like, list of arrays, tf.Tensor or tf.data.Dataset
        See the module docs.
    size : int
        The model input side (images of different sizes are resized to it).
    batch_size : int
        Single images of a stream are gathered into batches of this size.
    """
    if isinstance(images, tf.data.Dataset):
        yield from _stream(images, size, batch_size)
    elif _is_batch_like(images) and len(
            {(np.shape(v), np.asarray(v).dtype.str) for v in images}) > 1:
        # different sizes or dtypes (a folder of PNG and DICOM files): resize each to the
        # model input, then batch
        yield np.stack([_resized(v, f"images[{i}]", size) for i, v in enumerate(images)]), False
    elif _is_batch_like(images):  # a list of same-sized images: a batch, whatever its size
        yield check_images(images, warn_layout=False)
    else:
        yield check_images(images)
