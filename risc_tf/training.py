"""Training helpers for the RotNet (stage 1) and the classifier (stage 2).

Both wrap ``model.fit`` on the tf.data pipelines with: Adam (Keras's update rule
on TensorFlow's fused kernel, :class:`risc_tf.optimizers.FusedAdam`), sparse
cross-entropy, early stopping on validation accuracy that keeps the best
weights, Keras progress bars, seeds, optional XLA, and **BatchNorm
re-estimation**.

Why the last one: trained from scratch for a few epochs at 32x32, ResNet50's
inference-mode BatchNorm statistics (an exponential moving average with
momentum 0.99) lag far behind the weights, so validation accuracy sits at the
majority-class rate while training accuracy is high. At the end of every epoch,
before validation, :class:`BatchNormRecalibration` replaces each BatchNorm
layer's moving mean and variance with a plain average of its batch statistics
over a few training batches (as ``torch.optim.swa_utils.update_bn`` does).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from risc_tf.datasets import classification_dataset, rotation_dataset
from risc_tf.models import model_image_size, rotnet_angles
from risc_tf.optimizers import FusedAdam

__all__ = [
    "BatchNormRecalibration",
    "recalibrate_batchnorm",
    "train_classifier",
    "train_rotnet",
]


class _BatchNormStatistics:
    """Average per-channel input statistics of every BatchNorm layer of a model.

    Built once per model (one probe model, one traced function), then called on
    a dataset each time the statistics are re-estimated.
    """

    def __init__(self, model: keras.Model):
        self.layers = [
            layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
        ]
        if self.layers:
            probe = keras.Model(model.inputs, [bn.input for bn in self.layers])
            self._moments = tf.function(
                lambda x: self._batch_moments(probe, x), reduce_retracing=True
            )

    def _batch_moments(self, probe: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
        stats = []
        for bn, out in zip(self.layers, tf.nest.flatten(probe(x, training=True))):
            axes = [i for i in range(len(out.shape)) if i != bn.axis % len(out.shape)]
            stats += list(tf.nn.moments(tf.cast(out, tf.float32), axes))
        return stats

    def __call__(self, dataset: tf.data.Dataset, num_batches: int) -> int:
        if not self.layers:
            return 0
        totals, count = None, 0
        for batch in dataset.take(num_batches):
            stats = self._moments(batch[0] if isinstance(batch, tuple) else batch)
            totals = stats if totals is None else [t + s for t, s in zip(totals, stats)]
            count += 1
        if count == 0:
            raise ValueError("recalibrate_batchnorm got an empty dataset")
        for i, bn in enumerate(self.layers):
            bn.moving_mean.assign(totals[2 * i] / count)
            bn.moving_variance.assign(totals[2 * i + 1] / count)
        return len(self.layers)


def recalibrate_batchnorm(
    model: keras.Model, dataset: tf.data.Dataset, num_batches: int = 50
) -> int:
    """Set every BatchNorm layer's moving statistics to the average batch statistics.

    The model runs in training mode on up to ``num_batches`` batches of
    ``dataset`` (whose elements are ``(images, ...)``); for each BatchNorm layer
    the per-channel mean and (biased) variance of its input are averaged over the
    batches and written to ``moving_mean`` / ``moving_variance``.

    Returns
    -------
    int
        Number of BatchNorm layers updated.
    """
    return _BatchNormStatistics(model)(dataset, num_batches)


class BatchNormRecalibration(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics after the last training step of each epoch.

    Runs after the epoch's last batch, i.e. before Keras evaluates the
    validation data, so validation metrics, early stopping and best-weight
    selection all see the re-estimated statistics. Put it first in the callback list.

    Parameters
    ----------
    dataset : tf.data.Dataset
        Training-distribution batches (fresh iteration every epoch).
    num_batches : int, default 50
        Batches averaged per re-estimation.
    """

    def __init__(self, dataset: tf.data.Dataset, num_batches: int = 50):
        super().__init__()
        self.dataset = dataset
        self.num_batches = num_batches

        self._statistics: _BatchNormStatistics | None = None

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        self._statistics = None

    def _recalibrate(self) -> None:
        if self._statistics is None:  # one probe and one trace for the whole fit
            self._statistics = _BatchNormStatistics(self.model)
        self._statistics(self.dataset, self.num_batches)

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps")
        if steps and batch + 1 == steps:
            self._recalibrate()

    def on_epoch_end(self, epoch, logs=None):
        if not self.params.get("steps"):
            warnings.warn(
                "steps per epoch unknown: BatchNorm re-estimated after validation", stacklevel=2
            )
            self._recalibrate()


def _check_positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"{name} must be a positive number; got {value!r}")


def _fit(
    model: keras.Model,
    train: tf.data.Dataset,
    val: tf.data.Dataset | None,
    recalibration: tf.data.Dataset | None,
    *,
    epochs: int,
    learning_rate: float,
    patience: int | None,
    seed: int,
    recalibration_batches: int,
    jit_compile: bool,
    verbose: int,
    callbacks: Sequence[keras.callbacks.Callback] | None,
) -> keras.callbacks.History:
    _check_positive(epochs=epochs, learning_rate=learning_rate)
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=FusedAdam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    cbs: list[keras.callbacks.Callback] = []
    if recalibration is not None:
        cbs.append(BatchNormRecalibration(recalibration, recalibration_batches))
    if val is not None and patience:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy", mode="max", patience=patience,
                restore_best_weights=True, verbose=min(verbose, 1),
            )
        )
    cbs.extend(callbacks or ())
    return model.fit(
        train, validation_data=val, epochs=int(epochs), callbacks=cbs, verbose=verbose,
        shuffle=False,  # the tf.data pipelines shuffle themselves
    )


def train_rotnet(
    rotnet: keras.Model,
    images,
    val_images=None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    all_rotations: bool = False,
    patience: int | None = 5,
    seed: int = 0,
    recalibrate_bn: bool = True,
    recalibration_batches: int = 50,
    jit_compile: bool = False,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Stage 1: train a RotNet on the rotation pretext task (no labels used).

    Parameters
    ----------
    rotnet : keras.Model
        From :func:`risc_tf.build_rotnet`; its angles and input size are read from it.
    images : array_like
        Unlabelled training images (raw uint8 or [0, 1] floats).
    val_images : array_like, optional
        Validation images, each shown in every rotation (deterministic); used for early
        stopping and best-weight selection only.
    epochs, batch_size, learning_rate : training budget and Adam step size.
    all_rotations : bool, default False
        Put every rotation of each image in its batch (see
        :func:`risc_tf.rotation_dataset`).
    patience : int or None, default 5
        Early-stopping patience in epochs (None: train all epochs, keep the last).
    seed : int, default 0
        Seeds Keras, shuffling and rotation draws.
    recalibrate_bn : bool, default True
        Re-estimate BatchNorm statistics each epoch (see module docs).
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
    """
    angles = rotnet_angles(rotnet)
    size = model_image_size(rotnet)

    def pipeline(x, shuffle, s, every=all_rotations):
        return rotation_dataset(
            x, angles, batch_size, size, shuffle=shuffle, all_rotations=every, seed=s
        )

    train = pipeline(images, True, seed)
    val = None if val_images is None else pipeline(val_images, False, None, True)
    recal = pipeline(images, True, seed + 2) if recalibrate_bn else None
    return _fit(
        rotnet, train, val, recal, epochs=epochs, learning_rate=learning_rate,
        patience=patience, seed=seed, recalibration_batches=recalibration_batches,
        jit_compile=jit_compile, verbose=verbose, callbacks=callbacks,
    )


def train_classifier(
    classifier: keras.Model,
    images,
    labels,
    val_images=None,
    val_labels=None,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    augment_angles: Sequence[float] | None = None,
    patience: int | None = 5,
    seed: int = 0,
    recalibrate_bn: bool = True,
    recalibration_batches: int = 50,
    jit_compile: bool = False,
    verbose: int = 1,
    callbacks: Sequence[keras.callbacks.Callback] | None = None,
) -> keras.callbacks.History:
    """Stage 2: train a classifier on upright images with their labels.

    Parameters
    ----------
    classifier : keras.Model
        From :func:`risc_tf.build_classifier`.
    images, labels : array_like
        Training images and integer labels ``(N,)``.
    val_images, val_labels : array_like, optional
        Validation split (early stopping and best-weight selection).
    augment_angles : sequence of float, optional
        Random rotation augmentation from this angle set (the rotation-augmented
        baseline). None (default) trains on upright images, as the paper.
    epochs, batch_size, learning_rate, patience, seed, recalibrate_bn,
    recalibration_batches, jit_compile, verbose, callbacks
        As in :func:`train_rotnet`.

    Returns
    -------
    keras.callbacks.History
    """
    size = model_image_size(classifier)
    num_classes = int(classifier.output_shape[-1])
    y = np.asarray(labels)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for a {num_classes}-class model; "
            f"got values in [{y.min()}, {y.max()}]"
        )
    if (val_images is None) != (val_labels is None):
        raise ValueError("give both val_images and val_labels, or neither")

    def pipeline(x, yy, shuffle, s, angles=augment_angles):
        return classification_dataset(
            x, yy, batch_size, size, shuffle=shuffle, augment_angles=angles, seed=s
        )

    train = pipeline(images, labels, True, seed)
    val = None if val_images is None else pipeline(val_images, val_labels, False, None, None)
    recal = pipeline(images, labels, True, seed + 2) if recalibrate_bn else None
    return _fit(
        classifier, train, val, recal, epochs=epochs, learning_rate=learning_rate,
        patience=patience, seed=seed, recalibration_batches=recalibration_batches,
        jit_compile=jit_compile, verbose=verbose, callbacks=callbacks,
    )
