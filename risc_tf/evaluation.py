"""Evaluation protocols: the methods compared, the test sets, the sweep over angles.

Methods compared on rotated images all map a batch of model-input images
(float32 ``(N, S, S, 3)`` in [0, 1], already filled) to class probabilities ``(N, C)``:
every correction of :mod:`risc_tf.corrections` (the classifier alone, TTA,
RISC hard and soft) and the baseline models of :data:`BASELINE_MODELS` (a
classifier trained with random rotations from the angle set).

Angles always come from the RotNet (:func:`risc_tf.rotnet_angles`). The metrics
themselves are in :mod:`risc_tf.metrics`.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import check_fill
from risc_tf.corrections import CORRECTIONS, Correction, combine, for_head
from risc_tf.datasets import rotated_test_arrays
from risc_tf.inputs import run_in_batches
from risc_tf.metrics import (
    classification_metrics,
    coverage_curve,
    rotation_metrics,
)
from risc_tf.models import model_image_size, rotnet_angles, rotnet_head
from risc_tf.pipeline import RISCPipeline
from risc_tf.preprocessing import preprocess_images
from risc_tf.rotation import apply_fill
from risc_tf.validation import check_labels

__all__ = [
    "BASELINE_MODELS",
    "METHOD_LABELS",
    "ProbaFn",
    "build_methods",
    "evaluate_methods",
    "evaluate_models",
    "evaluation_sets",
    "model_proba",
    "rotnet_evaluation",
    "selective_evaluation",
    "time_inference",
    "upright_metrics",
]

#: A method: model-input images (N, S, S, 3) in [0, 1] -> class probabilities (N, C).
ProbaFn = Callable[[np.ndarray], np.ndarray]

#: Baselines that are models of their own (trained differently), not corrections.
BASELINE_MODELS: dict[str, str] = {
    "rotation_augmented": "Rotation-augmented classifier (baseline)",
}

#: Human-readable names of every method, in report order.
METHOD_LABELS: dict[str, str] = {
    "classifier": CORRECTIONS["classifier"].label,
    **BASELINE_MODELS,
    **{name: c.label for name, c in CORRECTIONS.items() if name != "classifier"},
}


def _model_input(images, size: int) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise ValueError(
            f"images must be model input (N, {size}, {size}, 3) in [0, 1]; got shape {x.shape}"
        )
    return x


def _graph(fn: Callable[[tf.Tensor], tf.Tensor], size: int):
    return tf.function(fn, input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])


def model_proba(model: keras.Model, *, batch_size: int = 256) -> ProbaFn:
    """A method that applies ``model`` as is (one traced graph, batches of ``batch_size``)."""
    size = model_image_size(model)
    graph = _graph(lambda x: model(x, training=False), size)
    return lambda images: run_in_batches(graph, _model_input(images, size), batch_size)


class _SharedRotations:
    """One RotNet pass and one classifier pass per counter-rotation, kept for the last input.

    Every correction that weighs the counter-rotations of the angle set (RISC hard,
    RISC soft, TTA) is made of the classifier's probabilities on them
    (:meth:`RISCPipeline.predict_every_rotation`); an evaluation calls the methods on
    the same array one after the other, so the pass is made once. The input is
    recognised by its bytes, not its identity.
    """

    def __init__(self, pipe: RISCPipeline):
        self.pipe, self._key, self._value = pipe, None, None

    def __call__(self, images) -> tuple[np.ndarray, np.ndarray]:
        x = np.ascontiguousarray(images)
        key = (x.shape, x.dtype.str, hashlib.blake2b(x.view(np.uint8), digest_size=16).digest())
        if key != self._key:
            self._key, self._value = key, self.pipe.predict_every_rotation(x)
        return self._value


def _from_shared(shared: _SharedRotations, method: Correction) -> ProbaFn:
    def proba(images) -> np.ndarray:
        return combine(method, *shared(images)).numpy()

    return proba


def build_methods(
    rotnet: keras.Model,
    classifier: keras.Model,
    rotation_augmented: keras.Model | None = None,
    *,
    batch_size: int = 256,
    fill: str = "constant",
    shared: bool = False,
) -> dict[str, ProbaFn]:
    """Every method of :data:`METHOD_LABELS` that the given models allow, in report order.

    The corrections are those that apply to the RotNet's head
    (:func:`risc_tf.corrections.for_head`).

    The angle set is the RotNet's; every correction but the classifier alone goes
    through :class:`risc_tf.RISCPipeline` (the one implementation of the chain).

    Parameters
    ----------
    shared : bool, default False
        Compute every correction that weighs the angle set's counter-rotations
        (TTA, RISC hard, RISC soft) from one shared pass per input
        (:meth:`RISCPipeline.predict_every_rotation`): the same predictions for a
        third of the classifier passes when all are evaluated on the same images
        (many angles). Off, each method runs its own graph, as deployed (what
        timing must measure).
    """
    models = {"classifier": classifier, "rotation_augmented": rotation_augmented}
    corrections = for_head(rotnet_head(rotnet)[0])
    # the shared pass classifies every counter-rotation of the set: worth it when some
    # correction needs them all
    shared = shared and any(c.classifies_every for c in corrections)
    every = _SharedRotations(RISCPipeline(rotnet, classifier, batch_size=batch_size,
                                          fill=fill)) if shared else None
    methods: dict[str, ProbaFn] = {}
    for name in METHOD_LABELS:
        method = CORRECTIONS.get(name)
        if method is None or method.mode is None:  # a model applied as it is
            if models.get(name) is not None:
                methods[name] = model_proba(models[name], batch_size=batch_size)
        elif method not in corrections:  # not for this RotNet's head
            continue
        elif every is not None and method.weights is not None:
            methods[name] = _from_shared(every, method)
        else:
            methods[name] = RISCPipeline(rotnet, classifier, mode=method.mode,
                                         batch_size=batch_size, fill=fill).predict_proba
    return methods


def evaluation_sets(
    images,
    labels,
    angles: Sequence[float],
    *,
    image_size: int,
    seed: int = 0,
    protocol: str = "set",
    fill: str = "constant",
) -> dict[str, tuple[np.ndarray, ...]]:
    """The upright and the seeded randomly rotated test sets, as model input.

    Parameters
    ----------
    images, labels : array_like
    angles : sequence of float
        The angles the rotated set draws from (``protocol="set"``).
    image_size : int
        The models' input side.
    seed, protocol, fill
        See :func:`risc_tf.rotated_test_dataset`.

    Returns
    -------
    dict
        ``{"upright": (images, labels), "rotated": (images, labels, true_angles)}``;
        images are float32 ``(N, S, S, 3)`` in [0, 1], filled.
    """
    fill = check_fill(fill)
    upright = apply_fill(preprocess_images(images, image_size), fill).numpy()
    x, y, a = rotated_test_arrays(images, labels, angles, image_size=image_size, seed=seed,
                                  protocol=protocol, fill=fill)
    return {"upright": (upright, y), "rotated": (x, y, a)}


def upright_metrics(model: keras.Model, images, labels, *, fill: str = "constant",
                    batch_size: int = 256) -> dict:
    """:func:`risc_tf.metrics.classification_metrics` of a classifier on upright images.

    ``images`` are raw (any size and dtype :func:`risc_tf.preprocess_images` takes);
    they are brought to the model's input and filled as in training.
    """
    x = apply_fill(preprocess_images(images, model_image_size(model)), check_fill(fill)).numpy()
    return classification_metrics(labels, model_proba(model, batch_size=batch_size)(x))


def evaluate_methods(methods: Mapping[str, ProbaFn], images, labels, true_angles=None, *,
                     angle_bins: Sequence[float] | None = None,
                     predictions: bool = False) -> dict[str, dict]:
    """:func:`risc_tf.metrics.classification_metrics` of every method on one test set."""
    return {
        name: classification_metrics(labels, fn(images), true_angles, angle_bins, predictions)
        for name, fn in methods.items()
    }


def rotnet_evaluation(rotnet: keras.Model, sets: Mapping[str, tuple], *,
                      batch_size: int = 256, bins: Sequence[float] | None = None) -> dict:
    """The RotNet on the rotated set (:func:`~risc_tf.metrics.rotation_metrics`) and upright.

    ``upright_acc`` is the fraction of upright images it calls upright (0 degrees),
    when 0 is in its angle set.
    """
    angles, (head, sigma) = rotnet_angles(rotnet), rotnet_head(rotnet)
    proba = model_proba(rotnet, batch_size=batch_size)
    rotated, _, true_angles = sets["rotated"]
    out = rotation_metrics(true_angles, proba(rotated), angles, bins, head=head, sigma=sigma)
    upright = sets["upright"][0]
    out["upright_acc"] = rotation_metrics(np.zeros(len(upright)), proba(upright), angles)["acc"]
    return out


def evaluate_models(methods: Mapping[str, ProbaFn], rotnet: keras.Model,
                    sets: Mapping[str, tuple], *, protocol: str = "set") -> dict:
    """Stages 3-5: every method on the upright and the rotated test set, and the RotNet.

    Returns
    -------
    dict
        ``{"upright": {method: metrics}, "rotated": {method: metrics + per-angle},
        "rotnet": rotnet_evaluation}``; every method's metrics keep its per-image
        predictions (``"predicted"``). With ``protocol="uniform"`` per-angle
        accuracy groups each image with the nearest angle of the RotNet's set.
    """
    bins = rotnet_angles(rotnet) if protocol == "uniform" else None
    return {
        "upright": evaluate_methods(methods, *sets["upright"], predictions=True),
        "rotated": evaluate_methods(methods, *sets["rotated"], angle_bins=bins,
                                    predictions=True),
        "rotnet": rotnet_evaluation(rotnet, sets, bins=bins),
    }


def selective_evaluation(pipe: RISCPipeline, images, labels, *,
                         thresholds: Sequence[float] | None = None) -> dict:
    """Accuracy against coverage when low-confidence images go to a person.

    Two confidences of the pipeline's :meth:`~risc_tf.RISCPipeline.predict_details`
    are tried: the RotNet's probability of its predicted rotation and the
    predicted class's probability.

    Returns
    -------
    dict
        ``{"rotation_confidence": coverage_curve, "class_probability": coverage_curve}``.
    """
    details = pipe.predict_details(images)
    correct = details.class_index == check_labels(labels, n=len(details))
    return {
        "rotation_confidence": coverage_curve(correct, details.rotation_confidence, thresholds),
        "class_probability": coverage_curve(correct, details.class_probability, thresholds),
    }


def time_inference(fn: ProbaFn, images, *, single: int = 50, repeats: int = 1) -> dict:
    """Inference time per sample, batched and one image at a time.

    Each path is warmed up once (graph tracing) before it is timed.

    Returns
    -------
    dict
        ``{"batched_ms_per_sample", "single_ms_per_sample", "n_batched", "n_single"}``.
    """
    x = np.asarray(images, np.float32)
    single = max(1, min(int(single), len(x)))
    fn(x[:2])
    fn(x[:1])
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    batched = (time.perf_counter() - start) / (repeats * len(x))
    start = time.perf_counter()
    for i in range(single):
        fn(x[i : i + 1])
    one = (time.perf_counter() - start) / single
    return {
        "batched_ms_per_sample": 1000.0 * batched,
        "single_ms_per_sample": 1000.0 * one,
        "n_batched": int(len(x)),
        "n_single": single,
    }
