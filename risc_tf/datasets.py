"""tf.data input pipelines for classification, the rotation pretext task and rotated tests.

All pipelines take raw image arrays (any form :func:`risc_tf.check_images`
accepts), batch them, and map :func:`risc_tf.preprocessing.to_model_input`,
:mod:`risc_tf.augment` and :func:`risc_tf.rotation.rotate` over whole batches,
with prefetching. Given a seed they are reproducible: the same seed gives the
same batches, epoch after epoch, while each epoch still draws fresh shuffles,
rotations and augmentations (every rotation and tilt is a stateless draw from a
per-batch seed; the parallel maps keep their order, and the seeded Keras layers
of an augmentation run in a sequential map). ``fill`` (see
:mod:`risc_tf.rotation`) is applied to every image, rotated or not.

Under a ``tf.distribute`` strategy, ``batch_size`` is the global batch (split
across replicas), and in-memory data is sharded by element across workers
(``AutoShardPolicy.DATA``), so that each worker sees a distinct part of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from risc_tf.angles import DEFAULT_ANGLES, PROTOCOLS, check_angles, check_fill, check_tilt
from risc_tf.augment import make_augmenter
from risc_tf.heads import check_head, circular_labels
from risc_tf.preprocessing import check_images, to_model_input
from risc_tf.rotation import apply_fill, rotate, rotate_all
from risc_tf.validation import check_choice, check_int, check_labels, check_seed

__all__ = [
    "PROTOCOLS",
    "circular_validation_dataset",
    "classification_dataset",
    "draw_test_angles",
    "rotated_test_arrays",
    "rotated_test_dataset",
    "rotation_dataset",
]

AUTOTUNE = tf.data.AUTOTUNE


def _check_batch(images, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    x, _ = check_images(images)
    return x, None if labels is None else check_labels(labels, n=len(x))


def _batch_seeds(seed: int | None) -> tf.data.Dataset:
    """An endless stream of per-batch stateless seeds, fresh each epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)


def _seed(batch_seed: tf.Tensor, stream: int) -> tf.Tensor:
    return tf.stack([batch_seed, tf.constant(stream, tf.int64)])


def _draw_index(batch_seed: tf.Tensor, n: tf.Tensor, count: int) -> tf.Tensor:
    return tf.random.stateless_uniform(
        tf.reshape(n, [1]), seed=_seed(batch_seed, 0), minval=0, maxval=count, dtype=tf.int32
    )


def _draw_tilt(batch_seed: tf.Tensor, n: tf.Tensor, tilt: float) -> tf.Tensor:
    return tf.random.stateless_uniform(
        tf.reshape(n, [1]), seed=_seed(batch_seed, 1), minval=-tilt, maxval=tilt
    )


def _finish(ds: tf.data.Dataset) -> tf.data.Dataset:
    options = tf.data.Options()
    options.deterministic = True  # parallel maps keep the order (TensorFlow's default, stated)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)


def _source(arrays: tuple, shuffle: bool, seed: int | None, batch_size: int, drop: bool):
    ds = tf.data.Dataset.from_tensor_slices(arrays)
    if shuffle:
        ds = ds.shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop)


def _check_common(batch_size, image_size, seed):
    if seed is not None:
        check_seed(seed)
    return check_int("batch_size", batch_size), check_int("image_size", image_size, 8)


def classification_dataset(
    images,
    labels,
    *,
    batch_size: int = 64,
    image_size: int = 32,
    shuffle: bool = False,
    augment_angles: Sequence[float] | None = None,
    tilt: float = 0.0,
    augment=None,
    fill: str = "constant",
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` for training or evaluating a classifier.

    Parameters
    ----------
    images, labels : array_like
        Raw images (see :func:`risc_tf.check_images`) and integer labels ``(N,)``
        (``(N, 1)`` and one-hot rows are accepted too).
    batch_size, image_size : int
        Batch size (global, under a distribution strategy) and model input side.
    shuffle : bool, default False
        Reshuffle every epoch.
    augment_angles : sequence of float, optional
        Rotate each image by an angle drawn uniformly from this set (the
        rotation-augmented baseline); off by default (upright training, as the paper).
    tilt : float, default 0
        Also rotate each image by a uniform random angle in ``[-tilt, tilt]``
        degrees: robustness to the residual a RotNet with a finite angle set
        leaves (see :func:`risc_tf.train_classifier`).
    augment : None, "light", callable or keras layer
        Label-preserving, non-rotation augmentation (see :mod:`risc_tf.augment`).
    fill : {"constant", "reflect", "circle"}, default "constant"
        See :mod:`risc_tf.rotation`.
    seed : int, optional
        Makes shuffling and every random draw reproducible.

    Returns
    -------
    tf.data.Dataset
        ``(float32 (B, S, S, 3) in [0, 1], int64 (B,))`` batches.
    """
    x, y = _check_batch(images, labels)
    batch_size, image_size = _check_common(batch_size, image_size, seed)
    fill, tilt = check_fill(fill), check_tilt(tilt)
    augmenter = make_augmenter(augment, seed)
    table = None if augment_angles is None else tf.constant(
        check_angles(augment_angles, "augment_angles"), tf.float32)
    ds = _source((x, y), shuffle, seed, batch_size, drop_remainder).map(
        lambda a, b: (to_model_input(a, image_size), b), num_parallel_calls=AUTOTUNE)
    if augmenter is not None:  # sequential: seeded layers draw in a reproducible order
        ds = ds.map(lambda a, b: (augmenter(a), b))
    ds = tf.data.Dataset.zip(ds, _batch_seeds(seed))

    def prepare(batch, batch_seed):
        a, labels_ = batch
        n = tf.shape(a)[0]
        angle = tf.zeros([n])
        if table is not None:
            angle += tf.gather(table, _draw_index(batch_seed, n, len(table)))
        if tilt:
            angle += _draw_tilt(batch_seed, n, tilt)
        if table is not None or tilt:
            a = rotate(a, angle, fill)
        return apply_fill(a, fill), labels_

    return _finish(ds.map(prepare, num_parallel_calls=AUTOTUNE))


def rotation_dataset(
    images,
    angles: Sequence[float] = DEFAULT_ANGLES,
    *,
    batch_size: int = 64,
    image_size: int = 32,
    shuffle: bool = True,
    all_rotations: bool = False,
    jitter: float = 0.0,
    sigma: float | None = None,
    fill: str = "constant",
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """The self-supervised pretext task: ``(rotated images, rotation index)`` batches.

    Labels are never used. By default each image gets a fresh random rotation
    from ``angles`` every epoch; with ``all_rotations=True`` every image appears
    once per angle in its batch (as the official RotNet trains), so a batch holds
    ``batch_size * len(angles)`` examples.

    Parameters
    ----------
    images : array_like
        Unlabelled raw images.
    angles : sequence of float, default (0, 90, 180, 270)
        The RotNet's angle set; the target is the index into it.
    jitter : float, default 0
        Add a uniform random angle in ``[-jitter, jitter]`` degrees to each
        rotation (the target stays the set's angle), so that a RotNet with a
        finite angle set learns to assign any angle to its nearest one; at most
        half the smallest gap between two angles of the set.
    batch_size, image_size, shuffle, fill, seed, drop_remainder
        As in :func:`classification_dataset`.
    all_rotations : bool, default False
        Every rotation of each image in the same batch.
    sigma : float, optional
        The circular head's target (:mod:`risc_tf.heads`): each image is turned by an
        angle drawn uniformly over the circle and the target is the circular-Gaussian
        soft label of width ``sigma`` degrees over ``angles``
        (:func:`risc_tf.heads.circular_labels`) instead of an index. Not with
        ``all_rotations`` or ``jitter``.

    Returns
    -------
    tf.data.Dataset
        ``(float32 (B, S, S, 3), int32 (B,))`` batches (with ``sigma``: float32
        ``(B, len(angles))`` soft labels).
    """
    x, _ = _check_batch(images)
    angles = check_angles(angles)
    table = tf.constant(angles, tf.float32)
    num = len(angles)
    batch_size, image_size = _check_common(batch_size, image_size, seed)
    fill, jitter = check_fill(fill), check_tilt(jitter, angles, "jitter")
    if sigma is not None:
        sigma = check_head("circular", angles, sigma)[1]
        if all_rotations or jitter:
            raise ValueError("sigma (uniform angles with soft labels) cannot be combined with "
                             "all_rotations or jitter")
    ds = tf.data.Dataset.zip(_source((x,), shuffle, seed, batch_size, drop_remainder),
                             _batch_seeds(seed))

    def prepare(batch, batch_seed):
        a = to_model_input(batch[0], image_size)
        n = tf.shape(a)[0]
        if sigma is not None:
            angle = tf.random.stateless_uniform(tf.reshape(n, [1]), seed=_seed(batch_seed, 0),
                                                minval=0.0, maxval=360.0)
            return apply_fill(rotate(a, angle, fill), fill), circular_labels(angle, angles,
                                                                             sigma)
        if all_rotations:
            k = tf.repeat(tf.range(num, dtype=tf.int32), n)
            a = rotate_all(a, table, fill) if not jitter else rotate(
                tf.tile(a, [num, 1, 1, 1]),
                tf.gather(table, k) + _draw_tilt(batch_seed, n * num, jitter), fill)
        else:
            k = _draw_index(batch_seed, n, num)
            angle = tf.gather(table, k)
            if jitter:
                angle += _draw_tilt(batch_seed, n, jitter)
            a = rotate(a, angle, fill)
        return apply_fill(a, fill), k

    return _finish(ds.map(prepare, num_parallel_calls=AUTOTUNE))


def circular_validation_dataset(
    images,
    angles: Sequence[float],
    sigma: float,
    *,
    copies: int = 4,
    batch_size: int = 64,
    image_size: int = 32,
    fill: str = "constant",
) -> tf.data.Dataset:
    """The circular head's validation set: each image at ``copies`` fixed angles, soft labels.

    Copy ``j`` of image ``i`` is turned by ``phase_i + j * 360 / copies`` degrees, the
    phases spread by the golden angle, so every epoch is scored on the same
    rotations, evenly over the circle (:func:`rotation_dataset` with ``sigma`` draws
    fresh ones).

    Returns
    -------
    tf.data.Dataset
        ``(float32 (B, S, S, 3), float32 (B, len(angles)))`` batches, in order.
    """
    x, _ = _check_batch(images)
    angles = check_angles(angles)
    sigma = check_head("circular", angles, sigma)[1]
    copies, fill = check_int("copies", copies), check_fill(fill)
    batch_size, image_size = _check_common(batch_size, image_size, None)
    phase = np.mod(np.arange(len(x)) * 137.50776405, 360.0)
    degrees = np.mod(phase[:, None] + np.arange(copies)[None, :] * 360.0 / copies,
                     360.0).reshape(-1).astype(np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.repeat(x, copies, axis=0), degrees))

    def prepare(batch, angle):
        a = apply_fill(to_model_input(batch, image_size), fill)
        return apply_fill(rotate(a, angle, fill), fill), circular_labels(angle, angles, sigma)

    return _finish(ds.batch(batch_size).map(prepare, num_parallel_calls=AUTOTUNE))


def draw_test_angles(
    n: int, angles: Sequence[float] = DEFAULT_ANGLES, protocol: str = "set", seed: int = 0
) -> np.ndarray:
    """The angle each of ``n`` test images is rotated by: float32 ``(n,)`` degrees.

    ``protocol="set"`` (the paper's) draws each from ``angles``;
    ``"uniform"`` draws each uniformly in [0, 360). Deterministic given ``seed``
    (``numpy.random.default_rng``).
    """
    check_choice("protocol", protocol, PROTOCOLS)
    rng = np.random.default_rng(check_seed(seed))
    if protocol == "uniform":
        return rng.uniform(0.0, 360.0, size=n).astype(np.float32)
    table = np.asarray(check_angles(angles), np.float32)
    return table[rng.integers(0, len(table), size=n)]


def rotated_test_dataset(
    images,
    labels,
    angles: Sequence[float] = DEFAULT_ANGLES,
    *,
    protocol: str = "set",
    seed: int = 0,
    batch_size: int = 256,
    image_size: int = 32,
    fill: str = "constant",
) -> tf.data.Dataset:
    """A deterministic randomly rotated test set, for evaluation only.

    Image ``i`` is rotated by the ``i``-th angle of :func:`draw_test_angles`;
    the same seed always gives the same set.

    Parameters
    ----------
    images, labels : array_like
    angles : sequence of float, default (0, 90, 180, 270)
        The angles drawn from (``protocol="set"``).
    protocol : {"set", "uniform"}, default "set"
        See :data:`PROTOCOLS`.
    seed : int, default 0
    batch_size : int, default 256
    image_size : int, default 32
        The model's input side (take it from the model:
        :func:`risc_tf.model_image_size`).
    fill : str, default "constant"
        See :mod:`risc_tf.rotation`.

    Returns
    -------
    tf.data.Dataset
        ``(images float32 (B, S, S, 3), labels int64 (B,), angle float32 (B,))``
        batches; the true angle is for scoring only and is never shown to a model.
    """
    x, y = _check_batch(images, labels)
    batch_size, image_size = _check_common(batch_size, image_size, seed)
    fill = check_fill(fill)
    chosen = draw_test_angles(len(x), angles, protocol, seed)
    ds = _source((x, y, chosen), False, None, batch_size, False)

    def apply(a, b, angle):
        return rotate(to_model_input(a, image_size), angle, fill), b, angle

    return _finish(ds.map(apply, num_parallel_calls=AUTOTUNE))


def rotated_test_arrays(
    images,
    labels,
    angles: Sequence[float] = DEFAULT_ANGLES,
    *,
    image_size: int,
    protocol: str = "set",
    seed: int = 0,
    fill: str = "constant",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rotated_test_dataset` gathered into numpy ``(images, labels, angles)``.

    ``image_size`` is required: the model's input side (``risc_tf.model_image_size(model)``).
    """
    if isinstance(image_size, (bool, np.bool_)) or image_size is None:
        raise ValueError("image_size must be the model's input side (an int)")
    parts = list(rotated_test_dataset(images, labels, angles, protocol=protocol, seed=seed,
                                      image_size=image_size, fill=fill))
    return tuple(np.concatenate([p[i].numpy() for p in parts]) for i in range(3))

