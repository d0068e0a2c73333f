"""tf.data input pipelines for classification, the rotation pretext task and rotated tests.

All pipelines take raw image arrays (any form :func:`risc_tf.check_images`
accepts), batch them, and map :func:`risc_tf.preprocessing.to_model_input` and
:func:`risc_tf.rotation.rotate` over whole batches, with prefetching. Given a
seed they are reproducible: the same seed gives the same batches, epoch after
epoch, while each epoch still draws fresh shuffles and rotations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from risc_tf.preprocessing import check_images, to_model_input
from risc_tf.rotation import DEFAULT_ANGLES, check_angles, rotate, rotate_all

__all__ = [
    "classification_dataset",
    "rotated_test_arrays",
    "rotated_test_dataset",
    "rotation_dataset",
]

AUTOTUNE = tf.data.AUTOTUNE


def _check_batch(images, labels=None) -> tuple[np.ndarray, np.ndarray | None]:
    x, _ = check_images(images)
    if labels is None:
        return x, None
    y = np.asarray(labels)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(
            f"labels must be (N,) with N = {len(x)} images; got shape {np.shape(labels)}. "
            "Multi-label targets are not supported."
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices; got dtype {y.dtype}")
    return x, y.astype(np.int64)


def _check_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def _batch_seeds(seed: int | None) -> tf.data.Dataset:
    """An endless stream of per-batch stateless seeds, fresh each epoch."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)


def _draw(batch_seed: tf.Tensor, n: tf.Tensor, num_angles: int) -> tf.Tensor:
    seed = tf.stack([batch_seed, tf.constant(0, tf.int64)])
    return tf.random.stateless_uniform(
        tf.reshape(n, [1]), seed=seed, minval=0, maxval=num_angles, dtype=tf.int32
    )


def _source(arrays: tuple, shuffle: bool, seed: int | None, batch_size: int, drop: bool):
    ds = tf.data.Dataset.from_tensor_slices(arrays)
    if shuffle:
        ds = ds.shuffle(len(arrays[0]), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size, drop_remainder=drop)


def classification_dataset(
    images,
    labels,
    batch_size: int = 64,
    image_size: int = 32,
    shuffle: bool = False,
    augment_angles: Sequence[float] | None = None,
    seed: int | None = None,
    drop_remainder: bool = False,
) -> tf.data.Dataset:
    """Batches of ``(images, labels)`` for training or evaluating a classifier.

    Parameters
    ----------
    images, labels : array_like
        Raw images (uint8 or [0, 1] floats) and integer labels ``(N,)``.
    batch_size, image_size : int
        Batch size and model input side.
    shuffle : bool, default False
        Reshuffle every epoch.
    augment_angles : sequence of float, optional
        Rotate each image by an angle drawn uniformly from this set (the
        rotation-augmented baseline); off by default (upright training, as the paper).
    seed : int, optional
        Makes shuffling and augmentation reproducible.

    Returns
    -------
    tf.data.Dataset
        ``(float32 (B, S, S, 3) in [0, 1], int64 (B,))`` batches.
    """
    x, y = _check_batch(images, labels)
    batch_size = _check_int("batch_size", batch_size)
    image_size = _check_int("image_size", image_size, 8)
    ds = _source((x, y), shuffle, seed, batch_size, drop_remainder)
    if augment_angles is None:
        ds = ds.map(lambda a, b: (to_model_input(a, image_size), b), num_parallel_calls=AUTOTUNE)
        return ds.prefetch(AUTOTUNE)
    table = tf.constant(check_angles(augment_angles), tf.float32)

    def augment(batch, seed_):
        (a, b) = batch
        k = _draw(seed_, tf.shape(a)[0], len(table))
        return rotate(to_model_input(a, image_size), tf.gather(table, k)), b

    ds = tf.data.Dataset.zip(ds, _batch_seeds(seed))
    return ds.map(augment, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def rotation_dataset(
    images,
    angles: Sequence[float] = DEFAULT_ANGLES,
    batch_size: int = 64,
    image_size: int = 32,
    shuffle: bool = True,
    all_rotations: bool = False,
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
    batch_size, image_size, shuffle, seed, drop_remainder
        As in :func:`classification_dataset`.
    all_rotations : bool, default False
        Every rotation of each image in the same batch.

    Returns
    -------
    tf.data.Dataset
        ``(float32 (B, S, S, 3), int32 (B,))`` batches.
    """
    x, _ = _check_batch(images)
    table = tf.constant(check_angles(angles), tf.float32)
    num = len(table)
    batch_size = _check_int("batch_size", batch_size)
    image_size = _check_int("image_size", image_size, 8)
    ds = _source((x,), shuffle, seed, batch_size, drop_remainder)

    if all_rotations:

        def every(a):
            k = tf.repeat(tf.range(num, dtype=tf.int32), tf.shape(a)[0])
            return rotate_all(to_model_input(a, image_size), table), k

        return ds.map(every, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def one(batch, seed_):
        a = to_model_input(batch[0], image_size)
        k = _draw(seed_, tf.shape(a)[0], num)
        return rotate(a, tf.gather(table, k)), k

    ds = tf.data.Dataset.zip(ds, _batch_seeds(seed))
    return ds.map(one, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def rotated_test_dataset(
    images,
    labels,
    angles: Sequence[float] = DEFAULT_ANGLES,
    seed: int = 0,
    batch_size: int = 256,
    image_size: int = 32,
) -> tf.data.Dataset:
    """A deterministic randomly rotated test set, for evaluation only.

    Image ``i`` is rotated by ``angles[j_i]`` with ``j`` drawn once from
    ``numpy.random.default_rng(seed)``; the same seed always gives the same set.

    Returns
    -------
    tf.data.Dataset
        ``(images float32 (B, S, S, 3), labels int64 (B,), angle float32 (B,))``
        batches; the true angle is for scoring only and is never shown to a model.
    """
    x, y = _check_batch(images, labels)
    table = np.asarray(check_angles(angles), np.float32)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int; got {seed!r}")
    image_size = _check_int("image_size", image_size, 8)
    chosen = table[np.random.default_rng(int(seed)).integers(0, len(table), size=len(x))]
    ds = _source((x, y, chosen), False, None, _check_int("batch_size", batch_size), False)

    def apply(a, b, angle):
        return rotate(to_model_input(a, image_size), angle), b, angle

    return ds.map(apply, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def rotated_test_arrays(
    images, labels, angles: Sequence[float] = DEFAULT_ANGLES, seed: int = 0, image_size: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`rotated_test_dataset` gathered into numpy ``(images, labels, angles)``."""
    parts = list(rotated_test_dataset(images, labels, angles, seed, 256, image_size))
    return tuple(np.concatenate([p[i].numpy() for p in parts]) for i in range(3))
