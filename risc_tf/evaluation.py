"""Metrics and evaluation protocols: the one implementation every report calls.

Metrics follow MedMNIST's conventions (``medmnist.evaluator``): ACC is plain
accuracy of the arg-max class; AUC is ``roc_auc_score`` on the positive-class
probability for binary tasks and the mean of the one-vs-rest AUCs over classes
for multi-class tasks. Both are computed with scikit-learn.

Methods compared on rotated images all map a batch of model-input images
(float32 ``(N, S, S, 3)`` in [0, 1]) to class probabilities ``(N, C)``:

* ``classifier``: the upright classifier applied as is (the paper's stage 3/4);
* ``rotation_augmented``: a classifier trained with random rotations from the
  angle set (baseline);
* ``tta``: the upright classifier averaged over every counter-rotation in the
  angle set (test-time augmentation baseline);
* ``risc_hard`` / ``risc_soft``: :class:`risc_tf.RISCPipeline` in its two modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import accuracy_score, confusion_matrix, roc_auc_score

from risc_tf.datasets import rotated_test_arrays
from risc_tf.pipeline import RISCPipeline, run_in_batches
from risc_tf.preprocessing import preprocess_images
from risc_tf.rotation import check_angles, rotate, rotate_all

__all__ = [
    "METHOD_LABELS",
    "ProbaFn",
    "accuracy",
    "angle_sweep",
    "auc",
    "build_methods",
    "classification_metrics",
    "confusion",
    "evaluate_methods",
    "evaluate_models",
    "model_proba",
    "per_angle_accuracy",
    "rotation_accuracy",
    "rotnet_metrics",
    "evaluation_sets",
    "time_inference",
    "tta_proba",
]

#: A method: model-input images (N, S, S, 3) in [0, 1] -> class probabilities (N, C).
ProbaFn = Callable[[np.ndarray], np.ndarray]

#: Human-readable names of the methods, in report order.
METHOD_LABELS: dict[str, str] = {
    "classifier": "Upright classifier (no correction)",
    "rotation_augmented": "Rotation-augmented classifier (baseline)",
    "tta": "Test-time augmentation, all rotations (baseline)",
    "risc_hard": "RISC, hard (paper)",
    "risc_soft": "RISC, soft",
}


# -- metrics -------------------------------------------------------------------
def _labels(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y_true must be integer class indices (N,); got {y.dtype} {y.shape}")
    return y


def _proba(proba, n: int) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or len(p) != n or p.shape[1] < 2:
        raise ValueError(f"proba must be (N={n}, C>=2) class probabilities; got {p.shape}")
    return p


def accuracy(y_true, y_pred) -> float:
    """Fraction of correct predictions (MedMNIST ACC)."""
    y = _labels(y_true)
    return float(accuracy_score(y, np.asarray(y_pred).reshape(-1)))


def auc(y_true, proba) -> float:
    """MedMNIST AUC: binary AUC of the last column, or macro one-vs-rest AUC.

    For more than two classes each class's one-vs-rest AUC is computed and the
    mean is taken over the classes present in ``y_true`` (a class with no
    positive or no negative example has no AUC; MedMNIST's full test sets hold
    every class, so there this is exactly MedMNIST's ``getAUC``).

    Returns
    -------
    float
        In [0, 1]; ``nan`` when ``y_true`` holds a single class.
    """
    y = _labels(y_true)
    p = _proba(proba, len(y))
    if p.shape[1] == 2:
        return float(roc_auc_score(y, p[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    scores = [
        roc_auc_score(y == c, p[:, c]) for c in range(p.shape[1]) if 0 < np.sum(y == c) < len(y)
    ]
    return float(np.mean(scores)) if scores else float("nan")


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """``(C, C)`` confusion matrix; rows are true classes, columns predictions."""
    return confusion_matrix(_labels(y_true), np.asarray(y_pred).reshape(-1),
                            labels=np.arange(int(num_classes)))


def per_angle_accuracy(correct, true_angles) -> dict[str, float]:
    """Accuracy grouped by the true rotation angle.

    Parameters
    ----------
    correct : array_like of bool, (N,)
        Whether each prediction was right.
    true_angles : array_like, (N,)
        The angle (degrees) each test image was rotated by.

    Returns
    -------
    dict
        ``{"90": 0.93, ...}`` keyed by ``f"{angle:g}"`` in increasing angle order.
    """
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    a = np.asarray(true_angles, dtype=np.float64).reshape(-1)
    if len(ok) != len(a):
        raise ValueError(f"correct and true_angles differ in length: {len(ok)} vs {len(a)}")
    return {f"{v:g}": float(ok[a == v].mean()) for v in np.unique(a)}


def rotation_accuracy(true_angles, predicted_angles) -> float:
    """Fraction of images whose predicted rotation equals the true one (mod 360)."""
    t = np.mod(np.asarray(true_angles, np.float64), 360.0)
    p = np.mod(np.asarray(predicted_angles, np.float64), 360.0)
    if t.shape != p.shape:
        raise ValueError(f"true and predicted angles differ in shape: {t.shape} vs {p.shape}")
    return float(np.mean(np.isclose(t, p, atol=1e-3)))


def classification_metrics(y_true, proba, true_angles=None) -> dict:
    """ACC, AUC, confusion matrix (and per-angle ACC) of class probabilities.

    Returns
    -------
    dict
        ``{"acc", "auc", "n", "confusion_matrix"[, "per_angle_acc"]}``, JSON-ready.
    """
    y = _labels(y_true)
    p = _proba(proba, len(y))
    pred = p.argmax(axis=1)
    out = {
        "acc": accuracy(y, pred),
        "auc": auc(y, p),
        "n": int(len(y)),
        "confusion_matrix": confusion(y, pred, p.shape[1]).tolist(),
    }
    if true_angles is not None:
        out["per_angle_acc"] = per_angle_accuracy(pred == y, true_angles)
    return out


# -- methods -------------------------------------------------------------------
def _batched(fn: Callable[[tf.Tensor], tf.Tensor], images, batch_size: int) -> np.ndarray:
    x = np.asarray(images, np.float32)
    if x.ndim != 4:
        raise ValueError(f"images must be model input (N, S, S, 3); got shape {x.shape}")
    return run_in_batches(fn, x, batch_size)


def _graph(fn: Callable[[tf.Tensor], tf.Tensor], size: int):
    return tf.function(fn, input_signature=[tf.TensorSpec((None, size, size, 3), tf.float32)])


def model_proba(model: keras.Model, batch_size: int = 256) -> ProbaFn:
    """A method that applies ``model`` as is (one traced graph, batches of ``batch_size``)."""
    graph = _graph(lambda x: model(x, training=False), int(model.inputs[0].shape[1]))
    return lambda images: _batched(graph, images, batch_size)


def tta_proba(model: keras.Model, angles: Sequence[float], batch_size: int = 256) -> ProbaFn:
    """Test-time augmentation: average ``model`` over every counter-rotation in ``angles``."""
    table = tf.constant(check_angles(angles), tf.float32)
    r = len(table)

    def average(x):
        p = model(rotate_all(x, -table), training=False)
        return tf.reduce_mean(tf.reshape(p, [r, tf.shape(x)[0], -1]), axis=0)

    graph = _graph(average, int(model.inputs[0].shape[1]))
    return lambda images: _batched(graph, images, batch_size)


def build_methods(
    rotnet: keras.Model,
    classifier: keras.Model,
    angles: Sequence[float],
    rotation_augmented: keras.Model | None = None,
    batch_size: int = 256,
) -> dict[str, ProbaFn]:
    """Every method of :data:`METHOD_LABELS` that the given models allow.

    RISC goes through :class:`risc_tf.RISCPipeline` (the one implementation of the
    chain).
    """
    methods: dict[str, ProbaFn] = {"classifier": model_proba(classifier, batch_size)}
    if rotation_augmented is not None:
        methods["rotation_augmented"] = model_proba(rotation_augmented, batch_size)
    methods["tta"] = tta_proba(classifier, angles, batch_size)
    for mode in ("hard", "soft"):
        pipe = RISCPipeline(rotnet, classifier, angles, mode=mode, batch_size=batch_size)
        methods[f"risc_{mode}"] = pipe.predict_proba
    return methods


def evaluate_methods(
    methods: Mapping[str, ProbaFn], images, labels, true_angles=None
) -> dict[str, dict]:
    """:func:`classification_metrics` of every method on one test set."""
    return {
        name: classification_metrics(labels, fn(images), true_angles)
        for name, fn in methods.items()
    }


def evaluation_sets(images, labels, angles: Sequence[float], seed: int = 0,
              input_size: int = 32) -> dict[str, tuple[np.ndarray, ...]]:
    """The upright and the seeded randomly rotated test sets, as model input.

    Returns
    -------
    dict
        ``{"upright": (images, labels), "rotated": (images, labels, true_angles)}``;
        images are float32 ``(N, S, S, 3)`` in [0, 1].
    """
    upright = preprocess_images(images, input_size)
    x, y, a = rotated_test_arrays(images, labels, angles, seed, input_size)
    return {"upright": (upright, np.asarray(labels)), "rotated": (x, y, a)}


def rotnet_metrics(rotnet: keras.Model, sets: Mapping[str, tuple],
                   angles: Sequence[float]) -> dict:
    """RotNet accuracy on the rotated test set (overall, per angle, confusion) and upright."""
    angles = check_angles(angles)
    pipe = RISCPipeline(rotnet, rotnet, angles)  # only its rotation head is used
    index = {round(a % 360.0, 3): i for i, a in enumerate(angles)}
    rotated, _, true_angles = sets["rotated"]
    predicted = pipe.predict_rotation(rotated)
    true_idx = np.array([index[round(float(a) % 360.0, 3)] for a in true_angles])
    pred_idx = np.array([index[round(float(a) % 360.0, 3)] for a in predicted])
    upright = pipe.predict_rotation(sets["upright"][0])
    return {
        "rotated_test_acc": rotation_accuracy(true_angles, predicted),
        "per_angle_acc": per_angle_accuracy(true_idx == pred_idx, true_angles),
        "confusion_matrix": confusion(true_idx, pred_idx, len(angles)).tolist(),
        "upright_test_acc": rotation_accuracy(np.zeros(len(upright)), upright),
    }


def evaluate_models(methods: Mapping[str, ProbaFn], rotnet: keras.Model,
                    sets: Mapping[str, tuple], angles: Sequence[float]) -> dict:
    """Stages 3-5: every method on the upright and the rotated test set, and the RotNet.

    Returns
    -------
    dict
        ``{"upright": {method: metrics}, "rotated": {method: metrics + per-angle},
        "rotnet": rotnet_metrics}``.
    """
    return {
        "upright": evaluate_methods(methods, *sets["upright"]),
        "rotated": evaluate_methods(methods, *sets["rotated"]),
        "rotnet": rotnet_metrics(rotnet, sets, angles),
    }


def angle_sweep(
    methods: Mapping[str, ProbaFn],
    images,
    labels,
    angles: Sequence[float] = tuple(range(0, 360, 10)),
    verbose: int = 1,
) -> dict:
    """Accuracy and AUC of every method with the whole test set rotated by each angle.

    Parameters
    ----------
    methods : mapping of name -> method
    images : np.ndarray
        Upright model-input images ``(N, S, S, 3)`` in [0, 1].
    labels : array_like, (N,)
    angles : sequence of float, default 0, 10, ..., 350
    verbose : int, default 1
        Show a progress bar.

    Returns
    -------
    dict
        ``{"angles": [...], "acc": {method: [...]}, "auc": {method: [...]}}``.
    """
    angles = [float(a) for a in angles]
    y = _labels(labels)
    out: dict = {"angles": angles, "acc": {m: [] for m in methods}, "auc": {m: [] for m in methods}}
    bar = keras.utils.Progbar(len(angles), unit_name="angle") if verbose else None
    for a in angles:
        x = rotate(np.asarray(images, np.float32), a).numpy()
        for name, fn in methods.items():
            p = fn(x)
            out["acc"][name].append(accuracy(y, p.argmax(axis=1)))
            out["auc"][name].append(auc(y, p))
        if bar is not None:
            bar.add(1)
    return out


def time_inference(fn: ProbaFn, images, single: int = 50, repeats: int = 1) -> dict:
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
