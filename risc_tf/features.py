"""Penultimate features of a risc_tf model: what the out-of-distribution score reads.

The features of an image are the input of the model's last layer (its softmax
``Dense``): for :func:`risc_tf.build_classifier` the globally pooled backbone
features (``avg_pool``), for a RotNet the output of its second hidden layer.
:func:`feature_model` gives them together with the probabilities, so the fused
pipeline gets both from one pass of the classifier; :func:`model_features`
computes them for an array (see :mod:`risc_tf.ood`).
"""

from __future__ import annotations

import keras
import numpy as np

from risc_tf.inputs import run_in_batches
from risc_tf.models import model_image_size

__all__ = ["feature_model", "model_features"]


def feature_model(model: keras.Model) -> keras.Model:
    """A model with two outputs, the penultimate features and the probabilities of ``model``.

    The features are the input of ``model``'s last layer (a softmax ``Dense``):
    for :func:`risc_tf.build_classifier` the pooled backbone features
    (``avg_pool``; dropout is inactive at inference). The new model shares
    ``model``'s layers and weights, so one pass gives both outputs: build it
    once and call it where the classifier is called (also inside ``tf.function``).

    Raises
    ------
    ValueError
        ``model``'s last layer is not a ``Dense`` layer.

    Examples
    --------
    >>> from risc_tf.models import build_classifier
    >>> both = feature_model(build_classifier(2, backbone="small"))
    >>> features, proba = both(np.zeros((1, 32, 32, 3), np.float32))
    >>> tuple(features.shape), tuple(proba.shape)
    ((1, 128), (1, 2))
    """
    if not isinstance(model, keras.Model) or not isinstance(model.layers[-1], keras.layers.Dense):
        raise ValueError(
            "feature_model needs a model ending in a Dense softmax layer (a risc_tf "
            f"classifier or RotNet); got {getattr(model, 'name', type(model).__name__)!r}"
        )
    return keras.Model(model.input, [model.layers[-1].input, model.outputs[0]],
                       name=f"{model.name}_features")


def model_features(model: keras.Model, images, *, batch_size: int = 256) -> np.ndarray:
    """Penultimate features ``(N, D)`` of ``model`` on model-input images.

    Parameters
    ----------
    model : keras.Model
        A risc_tf classifier (see :func:`feature_model`).
    images : array_like
        float32 ``(N, S, S, 3)`` in [0, 1] at the model's input size (what
        :func:`risc_tf.preprocess_images` or :meth:`risc_tf.RISCPipeline.correct` give).
    batch_size : int, default 256
    """
    size = model_image_size(model)
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise ValueError(
            f"images must be model input (N, {size}, {size}, 3) in [0, 1]; got shape {x.shape}")
    features = feature_model(model)
    # eager: a fit-time helper, called a few times per model (a new tf.function per call
    # would retrace every time)
    return run_in_batches(lambda t: features(t, training=False)[0], x, batch_size)
