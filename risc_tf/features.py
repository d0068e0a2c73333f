"""Features of a risc_tf model's layers: what the out-of-distribution score reads.

The penultimate features of an image are the input of the model's last layer
(its softmax ``Dense``): for :func:`risc_tf.build_classifier` the globally
pooled backbone features (``avg_pool``), for a RotNet the output of its second
hidden layer. Earlier layers give features too, each layer's output averaged
over its spatial positions: :func:`stage_layers` names the backbone's stage
outputs (the last layer at each spatial resolution), which see colour, texture
and intensity that the penultimate features may no longer tell apart.
:func:`feature_model` gives the features of any of these layers together with
the probabilities, so the fused pipeline gets both from one pass of the
classifier; :func:`layer_features` and :func:`model_features` compute them for
an array (see :mod:`risc_tf.ood_layers`).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from risc_tf.inputs import run_in_batches
from risc_tf.models import model_image_size

__all__ = ["PENULTIMATE", "feature_model", "layer_features", "model_features", "split_outputs",
           "stage_layers"]

#: The name that stands for the penultimate features (the input of the last, softmax
#: layer) in a list of layers.
PENULTIMATE = "penultimate"


def _spatial_side(layer: keras.layers.Layer) -> int | None:
    """The side of ``layer``'s square ``(N, S, S, C)`` output; None for any other output."""
    try:
        shape = tuple(layer.output.shape)
    except (AttributeError, ValueError):  # a layer called more than once, or never
        return None
    return shape[1] if len(shape) == 4 and shape[1] is not None and shape[1] == shape[2] \
        else None


def stage_layers(model: keras.Model) -> tuple[str, ...]:
    """The names of the backbone's stage outputs: the last layer at each spatial side.

    Walking ``model``'s layers in order, every time the spatial side falls below all
    sides seen before (the stem, then each downsampling stage), that side becomes a
    stage, and its output is the last layer whose output still has that side. The
    deepest stage is left out: the penultimate features are its pooled output.
    Padding layers, whose output is larger than the stage before, start no stage.

    Returns
    -------
    tuple of str
        For ResNet50 at 32x32: ``conv1_relu`` (16x16), ``conv2_block3_out`` (8x8),
        ``conv3_block4_out`` (4x4), ``conv4_block6_out`` (2x2); for the ``"small"``
        backbone at 32x32: ``block2_relu2`` (16x16). Empty for a model without
        spatial layers below its input side.

    Examples
    --------
    >>> from risc_tf.models import build_classifier
    >>> stage_layers(build_classifier(2, backbone="small"))
    ('block2_relu2',)
    """
    smallest, last = model_image_size(model), {}
    for layer in model.layers:
        side = _spatial_side(layer)
        if side is None:
            continue
        if side < smallest:
            smallest, last[side] = side, layer.name
        elif side in last:
            last[side] = layer.name
    return tuple(last.values())[:-1]


def _layer_output(model: keras.Model, name: str):
    if name == PENULTIMATE:
        return model.layers[-1].input
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {name!r} to read features "
                         "from") from None
    if _spatial_side(layer) is None:
        raise ValueError(f"layer {name!r} of model {model.name!r} has no square (N, S, S, C) "
                         "output to read features from")
    return keras.layers.GlobalAveragePooling2D(name=f"{name}_pooled")(layer.output)


def feature_model(model: keras.Model, layers: Sequence[str] = (PENULTIMATE,)) -> keras.Model:
    """A model whose outputs are the features of ``layers``, then the probabilities of ``model``.

    The penultimate features (:data:`PENULTIMATE`) are the input of ``model``'s
    last layer (a softmax ``Dense``): for :func:`risc_tf.build_classifier` the
    pooled backbone features (``avg_pool``; dropout is inactive at inference).
    Any other layer's features are its output averaged over its spatial positions
    (e.g. those of :func:`stage_layers`). The new model shares ``model``'s layers
    and weights, so one pass gives every output: build it once and call it where
    the classifier is called (also inside ``tf.function``).

    Parameters
    ----------
    model : keras.Model
        A risc_tf classifier or RotNet.
    layers : sequence of str, default (PENULTIMATE,)
        Names of ``model``'s layers, or :data:`PENULTIMATE`; one output each, in order.

    Raises
    ------
    ValueError
        ``model``'s last layer is not a ``Dense`` layer; ``layers`` empty, or
        naming a layer ``model`` lacks or one without a square spatial output.

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
    if isinstance(layers, str) or not layers or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"layers must be a non-empty sequence of layer names; got {layers!r}")
    return keras.Model(model.input, [*(_layer_output(model, n) for n in layers),
                                     model.outputs[0]], name=f"{model.name}_features")


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
    return layer_features(model, images, (PENULTIMATE,), batch_size=batch_size)[0]


def layer_features(model: keras.Model, images, layers: Sequence[str], *,
                   batch_size: int = 256) -> list[np.ndarray]:
    """The features ``(N, D_l)`` of each of ``layers`` of ``model`` on model-input images.

    Parameters
    ----------
    model, layers
        See :func:`feature_model`.
    images : array_like
        float32 ``(N, S, S, 3)`` in [0, 1] at the model's input size (what
        :func:`risc_tf.preprocess_images` or :meth:`risc_tf.RISCPipeline.correct` give).
    batch_size : int, default 256

    Returns
    -------
    list of np.ndarray
        One ``(N, D_l)`` array per layer, in the order of ``layers``.
    """
    size = model_image_size(model)
    x = np.asarray(images, np.float32)
    if x.ndim != 4 or x.shape[1:] != (size, size, 3):
        raise ValueError(
            f"images must be model input (N, {size}, {size}, 3) in [0, 1]; got shape {x.shape}")
    features = feature_model(model, layers)
    # eager: a fit-time helper, called a few times per model (a new tf.function per call
    # would retrace every time)
    out = run_in_batches(lambda t: keras.ops.concatenate(features(t, training=False), 1),
                         x, batch_size)
    return split_outputs(out, features)[:-1]


def split_outputs(joined: np.ndarray, model: keras.Model) -> list[np.ndarray]:
    """``model``'s outputs, concatenated along the last axis into ``joined``, apart again
    (one array per output, in order; e.g. a :func:`feature_model`'s features and
    probabilities, run in batches as one array)."""
    edges = np.cumsum([0, *(int(t.shape[-1]) for t in model.outputs)])
    return [joined[:, a:b] for a, b in zip(edges[:-1], edges[1:])]
