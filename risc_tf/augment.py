"""Label-preserving augmentation of model-input batches, for training the classifier.

Rotation is not here: random rotations from the angle set (the
rotation-augmented baseline) and small random tilts are options of the tf.data
pipelines (:mod:`risc_tf.datasets`), done by :mod:`risc_tf.rotation`. This
module covers the rest:

* ``augment=None``: nothing (the paper's plain upright training);
* ``augment="light"``: the preset :data:`LIGHT`, small translations (up to 5 %
  of the side), zoom (up to 10 %), contrast (up to 20 %) and brightness (up to
  10 %), built from Keras preprocessing layers;
* a callable or ``keras.Sequential`` of preprocessing layers, applied to float
  batches in [0, 1] (``(B, S, S, 3)``) in training mode.

Presets are reproducible: their layers are seeded from the pipeline's seed and
the tf.data pipelines apply augmentation in a sequential step, so the same
seed gives the same augmented batches, epoch after epoch (each epoch draws
fresh parameters). Outputs are clipped to [0, 1]. Their random state is a
variable (a stateful op), so under TensorFlow's op determinism
(``deterministic=True`` of the training helpers) tf.data runs the pipeline
serially; a user's Keras layer must then carry a ``seed`` (see
:mod:`risc_tf.determinism`).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

__all__ = ["AUGMENT_PRESETS", "LIGHT", "Augmenter", "make_augmenter"]

#: The "light" preset: (Keras layer class, its arguments).
LIGHT: tuple[tuple[type, dict], ...] = (
    (keras.layers.RandomTranslation, {"height_factor": 0.05, "width_factor": 0.05,
                                      "fill_mode": "reflect"}),
    (keras.layers.RandomZoom, {"height_factor": 0.1, "fill_mode": "reflect"}),
    (keras.layers.RandomContrast, {"factor": 0.2, "value_range": (0.0, 1.0)}),
    (keras.layers.RandomBrightness, {"factor": 0.1, "value_range": (0.0, 1.0)}),
)
AUGMENT_PRESETS = {"light": LIGHT}

#: A batch augmentation: ``images (B, S, S, 3) float32 in [0, 1] -> images``.
Augmenter = Callable[[tf.Tensor], tf.Tensor]


def _preset(layers: tuple[tuple[type, dict], ...], seed: int | None) -> Augmenter:
    built = [cls(**kwargs, seed=None if seed is None else seed + i)
             for i, (cls, kwargs) in enumerate(layers)]
    return _user(keras.Sequential(built))


def _user(fn: Callable) -> Augmenter:
    def apply(images: tf.Tensor) -> tf.Tensor:
        if isinstance(fn, keras.layers.Layer):
            out = fn(images, training=True)
        else:
            out = fn(images)
        return tf.clip_by_value(tf.cast(out, tf.float32), 0.0, 1.0)

    return apply


def make_augmenter(augment, seed: int | None = None) -> Augmenter | None:
    """Turn an ``augment`` option into a batch augmentation (None: no augmentation).

    Parameters
    ----------
    augment : None, "light", callable or keras.Layer (e.g. ``keras.Sequential``)
    seed : int, optional
        Seeds a preset's layers (a user's callable brings its own randomness).

    Raises
    ------
    ValueError
        An unknown preset name or an object that is not callable.

    Examples
    --------
    >>> make_augmenter(None) is None
    True
    """
    if augment is None:
        return None
    if isinstance(augment, str):
        if augment not in AUGMENT_PRESETS:
            raise ValueError(
                f"augment must be None, one of {sorted(AUGMENT_PRESETS)}, a callable or a "
                f"keras layer / Sequential; got {augment!r}"
            )
        return _preset(AUGMENT_PRESETS[augment], seed)
    if not callable(augment):
        raise ValueError(
            f"augment must be None, one of {sorted(AUGMENT_PRESETS)}, a callable or a keras "
            f"layer / Sequential; got {type(augment).__name__}"
        )
    return _user(augment)
