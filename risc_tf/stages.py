"""The paper's stages 1 and 2 as two calls: build a model, train it, record what happened.

:func:`build_and_train_rotnet` (stage 1, the self-supervised pretext) and
:func:`build_and_train_classifier` (stage 2, the upright classifier, or the
rotation-augmented baseline) are what ``risc-tf train-rotnet`` /
``train-classifier``, :func:`risc_tf.reproduce` and ``risc-tf tune`` all call:
one place where a model is built (Keras seeded with the run's ``seed`` first, so
that its initial weights follow it), optionally inside a ``tf.distribute``
strategy's scope, trained with :func:`risc_tf.train_rotnet` /
:func:`risc_tf.train_classifier`, timed, and summarised by
:func:`risc_tf.training_options.history_record` (the ``training`` records of
``results.json``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import DEFAULT_ANGLES
from risc_tf.models import build_classifier, build_rotnet
from risc_tf.training import train_classifier, train_rotnet
from risc_tf.training_options import history_record

__all__ = ["build_and_train_classifier", "build_and_train_rotnet"]


def _scope(strategy: tf.distribute.Strategy | None):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def build_and_train_rotnet(
    x: np.ndarray,
    x_val: np.ndarray,
    *,
    angles: Sequence[float] = DEFAULT_ANGLES,
    head: str = "bins",
    sigma: float | None = None,
    input_size: int = 32,
    backbone: str = "resnet50",
    weights: str | None = None,
    strategy: tf.distribute.Strategy | None = None,
    **options,
) -> tuple[keras.Model, dict]:
    """Stage 1: a new RotNet trained on the rotation pretext task of unlabelled images.

    Parameters
    ----------
    x, x_val : np.ndarray
        Training and validation images (labels are never used).
    angles, head, sigma, input_size, backbone, weights
        See :func:`risc_tf.build_rotnet`.
    strategy : tf.distribute.Strategy, optional
        Build and train inside its scope.
    **options
        Keyword options of :func:`risc_tf.train_rotnet` (epochs, jitter, fill...).

    Returns
    -------
    rotnet : keras.Model
    record : dict
        :func:`~risc_tf.training_options.history_record` (history, best epoch, time,
        parameters).

    Examples
    --------
    >>> rotnet, record = build_and_train_rotnet(x, xv, backbone="small", epochs=1)
    ... # doctest: +SKIP
    """
    keras.utils.set_random_seed(options.get("seed", 0))  # initial weights follow the seed
    with _scope(strategy):
        rotnet = build_rotnet((input_size, input_size, 3), angles=angles, head=head,
                              sigma=sigma, backbone=backbone, weights=weights)
        start = time.perf_counter()
        history = train_rotnet(rotnet, x, x_val, **options)
    return rotnet, history_record(history, time.perf_counter() - start, rotnet)


def build_and_train_classifier(
    x: np.ndarray,
    y: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    *,
    num_classes: int,
    input_size: int = 32,
    backbone: str = "resnet50",
    weights: str | keras.Model | None = None,
    freeze_backbone: bool = False,
    strategy: tf.distribute.Strategy | None = None,
    **options,
) -> tuple[keras.Model, dict]:
    """Stage 2: a new classifier trained on labelled images (upright, or rotation-augmented).

    Parameters
    ----------
    x, y, x_val, y_val : np.ndarray
        Training and validation images and integer labels.
    num_classes, input_size, backbone, weights, freeze_backbone
        See :func:`risc_tf.build_classifier`; ``weights`` may be a trained RotNet
        (its backbone initialises the classifier's).
    strategy : tf.distribute.Strategy, optional
        Build and train inside its scope.
    **options
        Keyword options of :func:`risc_tf.train_classifier` (``augment_angles`` for the
        rotation-augmented baseline, ``tilt``, epochs, class weights...).

    Returns
    -------
    classifier : keras.Model
    record : dict
        :func:`~risc_tf.training_options.history_record`.
    """
    keras.utils.set_random_seed(options.get("seed", 0))  # initial weights follow the seed
    with _scope(strategy):
        classifier = build_classifier(num_classes, (input_size, input_size, 3),
                                      backbone=backbone, weights=weights,
                                      freeze_backbone=freeze_backbone)
        start = time.perf_counter()
        history = train_classifier(classifier, x, y, x_val, y_val, **options)
    return classifier, history_record(history, time.perf_counter() - start, classifier)
