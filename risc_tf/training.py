"""Training helpers for the RotNet (stage 1) and the classifier (stage 2).

Both wrap ``model.compile`` + ``model.fit`` on the tf.data pipelines of
:mod:`risc_tf.datasets`, following Keras conventions:

* ``optimizer``: None (Adam on TensorFlow's fused kernel,
  :class:`risc_tf.fast.FusedAdam`, the default of every published run), a
  Keras optimizer name (``"adam"``, ``"adamw"``, ``"sgd"``, ...) or instance;
* ``learning_rate``: a positive number or any
  ``keras.optimizers.schedules.LearningRateSchedule``; ``lr_schedule="cosine"``
  turns a number into a cosine decay over the whole training;
* the classifier also takes ``class_weight`` (a dict or ``"balanced"``),
  ``label_smoothing``, ``augment`` (:mod:`risc_tf.augment`) and ``tilt``;
* ``callbacks`` run beside the built-in ones: BatchNorm re-estimation at the end
  of every epoch (:mod:`risc_tf.recalibration`, the ResNet50-from-scratch trap),
  then early stopping on validation accuracy that restores the best weights;
* ``deterministic=True`` makes a run repeatable bit for bit on the same machine
  and versions (:mod:`risc_tf.determinism`).

The options both helpers take are defined once, in :class:`FitOptions`.

Under ``with strategy.scope():`` of a ``tf.distribute`` strategy, build the
model and call these helpers inside the scope: ``batch_size`` is then the global
batch (see docs/training.md).

Every argument is checked before anything is compiled or trained.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.angles import check_tilt
from risc_tf.augment import make_augmenter
from risc_tf.datasets import (
    circular_validation_dataset,
    classification_dataset,
    rotation_dataset,
)
from risc_tf.determinism import check_deterministic, op_determinism
from risc_tf.distribute import check_strategy, is_multi_worker, prepare_multi_worker_fit
from risc_tf.models import model_image_size, rotnet_angles, rotnet_head
from risc_tf.preprocessing import check_images
from risc_tf.recalibration import BatchNormRecalibration
from risc_tf.training_options import (
    LR_SCHEDULES,
    FitOptions,
    history_record,
    resolve_class_weight,
    resolve_optimizer,
)
from risc_tf.validation import check_fraction, check_labels

__all__ = [  # the options' helpers are re-exported from risc_tf.training_options
    "LR_SCHEDULES",
    "FitOptions",
    "history_record",
    "resolve_class_weight",
    "resolve_optimizer",
    "train_classifier",
    "train_rotnet",
]


def _steps(n: int, batch_size: int) -> int:
    return max(1, math.ceil(n / batch_size))


def _images(images, name: str = "images") -> np.ndarray:
    return check_images(images, name)[0]


def _options(arguments: dict) -> FitOptions:
    """The shared options among a training helper's arguments (``locals()``), checked once."""
    return FitOptions(**{f.name: arguments[f.name] for f in dataclasses.fields(FitOptions)})


def _check_model_options(model: keras.Model, options: FitOptions, augment=None) -> None:
    """What the shared options alone cannot check: the model's strategy, augment's seeds."""
    check_strategy(model.distribute_strategy)
    check_deterministic(options.deterministic, augment=augment)


def _fit(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    recalibration: tf.data.Dataset | None,
    options: FitOptions,
    *,
    optimizer: Callable[[], keras.optimizers.Optimizer],
    loss: keras.losses.Loss,
    metric: keras.metrics.Metric,
    monitor: tuple[str, str] = ("val_accuracy", "max"),
    class_weight: dict | None,
) -> keras.callbacks.History:
    with model.distribute_strategy.scope():  # the optimizer's variables: the model's strategy
        model.compile(optimizer=optimizer(), loss=loss, metrics=[metric],
                      jit_compile=options.jit_compile)
    if is_multi_worker(model.distribute_strategy):
        prepare_multi_worker_fit(model)
    cbs: list[keras.callbacks.Callback] = []
    if recalibration is not None:
        cbs.append(BatchNormRecalibration(recalibration, options.recalibration_batches))
    if val is not None and options.patience:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor[0], mode=monitor[1], patience=options.patience,
                restore_best_weights=True, verbose=min(options.verbose, 1),
            )
        )
    cbs.extend(options.callbacks or ())
    return model.fit(
        train, validation_data=val, epochs=options.epochs, callbacks=cbs,
        verbose=options.verbose, class_weight=class_weight,
        shuffle=False,  # the tf.data pipelines shuffle themselves
    )


def train_rotnet(
    rotnet: keras.Model,
    images,
    val_images=None,
    *,
    epochs: int = FitOptions.epochs,
    batch_size: int = FitOptions.batch_size,
    optimizer=FitOptions.optimizer,
    learning_rate=FitOptions.learning_rate,
    lr_schedule: str = FitOptions.lr_schedule,
    all_rotations: bool = False,
    jitter: float = 0.0,
    fill: str = FitOptions.fill,
    patience: int | None = FitOptions.patience,
    seed: int = FitOptions.seed,
    deterministic: bool = FitOptions.deterministic,
    recalibrate_bn: bool = FitOptions.recalibrate_bn,
    recalibration_batches: int = FitOptions.recalibration_batches,
    jit_compile: bool = FitOptions.jit_compile,
    verbose: int = FitOptions.verbose,
    callbacks: Sequence[keras.callbacks.Callback] | None = FitOptions.callbacks,
) -> keras.callbacks.History:
    """Stage 1: train a RotNet on the rotation pretext task (no labels used).

    Parameters
    ----------
    rotnet : keras.Model
        From :func:`risc_tf.build_rotnet`; its angles and input size are read from it.
    images : array_like
        Unlabelled training images (see :func:`risc_tf.check_images`).
    val_images : array_like, optional
        Validation images, each shown in every rotation (deterministic); used for early
        stopping and best-weight selection only.
    epochs : int, default 10
    batch_size : int, default 64
        Global batch size (split across replicas under a distribution strategy).
    optimizer, learning_rate, lr_schedule
        See :func:`resolve_optimizer` (default: Adam at 1e-3, constant).
    all_rotations : bool, default False
        Put every rotation of each image in its batch (see
        :func:`risc_tf.rotation_dataset`).
    jitter : float, default 0
        Training rotations deviate from the set's angles by up to this many degrees
        (at most half the smallest gap; see :func:`risc_tf.rotation_dataset`).
    fill : {"constant", "reflect", "circle"}, default "constant"
        See :mod:`risc_tf.rotation`; use the same fill for training, evaluation
        and the pipeline.
    patience : int or None, default 5
        Early-stopping patience in epochs (None or 0: train all epochs, keep the last).
    seed : int in [0, 2**32 - 1], default 0
        Seeds shuffling, rotation draws and Keras (``keras.utils.set_random_seed``,
        which also seeds Python's and numpy's global generators, as Keras does).
    deterministic : bool, default False
        Train the same weights, bit for bit, each time this call runs on the same
        machine with the same versions: TensorFlow's op determinism while training
        (see :mod:`risc_tf.determinism` for what it covers, costs and refuses).
        Build the model after ``keras.utils.set_random_seed(seed)``: its initial
        weights are drawn then.
    recalibrate_bn : bool, default True
        Re-estimate BatchNorm statistics each epoch (see :mod:`risc_tf.recalibration`).
    recalibration_batches : int, default 50
    jit_compile : bool, default False
        XLA-compile the training step.
    verbose : int, default 1
        Keras verbosity (1 = progress bars).
    callbacks : list of keras callbacks, optional
        Extra callbacks, run after the built-in ones.

    Returns
    -------
    keras.callbacks.History

    Raises
    ------
    ValueError
        Any bad option (named in the message), before training starts; with
        ``deterministic=True``, a setting that cannot be made deterministic.

    Examples
    --------
    >>> rotnet = build_rotnet(backbone="small")  # doctest: +SKIP
    >>> train_rotnet(rotnet, x_train, x_val, epochs=5, lr_schedule="cosine")  # doctest: +SKIP
    """
    options = _options(locals())
    angles = rotnet_angles(rotnet)
    head, sigma = rotnet_head(rotnet)
    size = model_image_size(rotnet)
    _check_model_options(rotnet, options)
    jitter = check_tilt(jitter, angles, "jitter")
    if head == "circular" and (jitter or all_rotations):
        raise ValueError("jitter and all_rotations apply to the bins head; a circular head "
                         "trains on angles drawn uniformly over the circle")
    images = _images(images)
    val_images = None if val_images is None else _images(val_images, "val_images")
    optimizer = options.optimizer_factory(options.epochs * _steps(len(images),
                                                                   options.batch_size))

    def pipeline(x, shuffle, s, every=all_rotations, jit=jitter):
        return rotation_dataset(x, angles, batch_size=options.batch_size, image_size=size,
                                shuffle=shuffle, all_rotations=every, jitter=jit,
                                fill=options.fill, sigma=sigma, seed=s)

    with op_determinism(options.deterministic):
        keras.utils.set_random_seed(options.seed)  # before the pipelines: tf.data seeds follow
        train = pipeline(images, True, options.seed)
        recal = pipeline(images, True, options.seed + 2) if recalibrate_bn else None
        if head == "circular":  # soft labels; validation at fixed angles, chosen by its loss
            val = None if val_images is None else circular_validation_dataset(
                val_images, angles, sigma, image_size=size, fill=options.fill,
                batch_size=options.batch_size)
            loss, monitor = keras.losses.CategoricalCrossentropy(), ("val_loss", "min")
            metric = keras.metrics.CategoricalAccuracy(name="accuracy")  # the nearest bin
        else:
            val = None if val_images is None else pipeline(val_images, False, None, True, 0.0)
            loss, monitor = keras.losses.SparseCategoricalCrossentropy(), ("val_accuracy", "max")
            metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        return _fit(rotnet, train, val, recal, options, optimizer=optimizer, loss=loss,
                    metric=metric, monitor=monitor, class_weight=None)


def train_classifier(
    classifier: keras.Model,
    images,
    labels,
    val_images=None,
    val_labels=None,
    *,
    epochs: int = FitOptions.epochs,
    batch_size: int = FitOptions.batch_size,
    optimizer=FitOptions.optimizer,
    learning_rate=FitOptions.learning_rate,
    lr_schedule: str = FitOptions.lr_schedule,
    class_weight: dict | str | None = None,
    label_smoothing: float = 0.0,
    augment=None,
    augment_angles: Sequence[float] | None = None,
    tilt: float = 0.0,
    fill: str = FitOptions.fill,
    patience: int | None = FitOptions.patience,
    seed: int = FitOptions.seed,
    deterministic: bool = FitOptions.deterministic,
    recalibrate_bn: bool = FitOptions.recalibrate_bn,
    recalibration_batches: int = FitOptions.recalibration_batches,
    jit_compile: bool = FitOptions.jit_compile,
    verbose: int = FitOptions.verbose,
    callbacks: Sequence[keras.callbacks.Callback] | None = FitOptions.callbacks,
) -> keras.callbacks.History:
    """Stage 2: train a classifier on upright images with their labels.

    Parameters
    ----------
    classifier : keras.Model
        From :func:`risc_tf.build_classifier` (optionally initialised from a
        trained RotNet: ``build_classifier(..., weights=rotnet)``).
    images, labels : array_like
        Training images and integer labels ``(N,)`` (``(N, 1)`` and one-hot accepted).
    val_images, val_labels : array_like, optional
        Validation split (early stopping and best-weight selection).
    optimizer, learning_rate, lr_schedule
        See :func:`resolve_optimizer` (default: Adam at 1e-3, constant).
    class_weight : None, "balanced" or dict, default None
        Loss weight per class (see :func:`resolve_class_weight`);
        PneumoniaMNIST's training set is 74 % one class.
    label_smoothing : float in [0, 1), default 0
        Cross-entropy against ``(1 - eps) * one_hot + eps / C``.
    augment : None, "light", callable or keras layer, default None
        Label-preserving, non-rotation augmentation (see :mod:`risc_tf.augment`).
        With ``deterministic=True``, every random layer of a Keras layer given
        here needs a ``seed``.
    augment_angles : sequence of float, optional
        Random rotation from this angle set (the rotation-augmented baseline).
        None (default) trains on upright images, as the paper.
    tilt : float, default 0
        Random tilt in ``[-tilt, tilt]`` degrees. For a RotNet whose angle set is
        not the quarter turns, train with ``tilt=risc_tf.angles.default_tilt(angles)``
        (half the set's gap, the largest residual the RotNet leaves): what
        ``risc-tf reproduce`` does.
    fill : {"constant", "reflect", "circle"}, default "constant"
    epochs, batch_size, patience, seed, deterministic, recalibrate_bn,
    recalibration_batches, jit_compile, verbose, callbacks
        As in :func:`train_rotnet` (one definition: :class:`FitOptions`).

    Returns
    -------
    keras.callbacks.History

    Raises
    ------
    ValueError
        Any bad option (named in the message), before training starts; with
        ``deterministic=True``, a setting that cannot be made deterministic.
    """
    options = _options(locals())
    size = model_image_size(classifier)
    num_classes = int(classifier.output_shape[-1])
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")
    images = _images(images)
    n = len(images)
    y = check_labels(labels, n=n, num_classes=num_classes)
    yv = None
    if val_images is not None:
        val_images = _images(val_images, "val_images")
        yv = check_labels(val_labels, n=len(val_images), num_classes=num_classes,
                          name="val_labels")
    smoothing = check_fraction("label_smoothing", label_smoothing)
    weights = resolve_class_weight(class_weight, y, num_classes)
    tilt = check_tilt(tilt)
    make_augmenter(augment)  # validates before anything is built
    _check_model_options(classifier, options, augment)
    optimizer = options.optimizer_factory(options.epochs * _steps(n, options.batch_size))

    def pipeline(x, yy, shuffle, s, train_time):
        ds = classification_dataset(
            x, yy, batch_size=options.batch_size, image_size=size, shuffle=shuffle,
            augment_angles=augment_angles if train_time else None,
            tilt=tilt if train_time else 0.0, augment=augment if train_time else None,
            fill=options.fill, seed=s)
        if smoothing:
            ds = ds.map(lambda a, b: (a, tf.one_hot(b, num_classes)))
        return ds

    if smoothing:
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        metric = keras.metrics.CategoricalAccuracy(name="accuracy")
    else:
        loss = keras.losses.SparseCategoricalCrossentropy()
        metric = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    with op_determinism(options.deterministic):
        keras.utils.set_random_seed(options.seed)  # before the pipelines: tf.data seeds follow
        train = pipeline(images, y, True, options.seed, True)
        val = None if val_images is None else pipeline(val_images, yv, False, None, False)
        recal = pipeline(images, y, True, options.seed + 2, True) if recalibrate_bn else None
        return _fit(
            classifier, train, val, recal, options, optimizer=optimizer, loss=loss,
            metric=metric, class_weight=weights,
        )
