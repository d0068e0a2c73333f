"""The backbones a RotNet or classifier can be built on: names and input conventions.

A table and numpy at import (no TensorFlow), so that the command line can list the
choices without loading TensorFlow (:func:`small_backbone` imports Keras when called);
:mod:`risc_tf.models` turns a name into layers, and each input normalisation into the
affine map of :func:`normalization_weights`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from risc_tf.validation import check_choice

__all__ = [
    "BACKBONES",
    "NORMALIZATION_MODES",
    "check_backbone",
    "check_backbone_weights",
    "check_input_size",
    "min_input_size",
    "normalization_weights",
    "small_backbone",
]

#: backbone name -> (``keras.applications`` constructor, or None for risc_tf's own
#: ``"small"`` CNN; the input normalisation its ImageNet weights expect).
BACKBONES: dict[str, tuple[str | None, str]] = {
    "resnet50": ("ResNet50", "caffe"),
    "resnet101": ("ResNet101", "caffe"),
    "resnet152": ("ResNet152", "caffe"),
    "resnet50v2": ("ResNet50V2", "tf"),
    "vgg16": ("VGG16", "caffe"),
    "vgg19": ("VGG19", "caffe"),
    "mobilenetv2": ("MobileNetV2", "tf"),
    "densenet121": ("DenseNet121", "torch"),
    "efficientnetb0": ("EfficientNetB0", "raw"),
    "small": (None, "unit"),
}

#: Input normalisations: ``"unit"`` feeds [0, 1] images as they are (models
#: trained from scratch); ``"raw"`` scales to [0, 255] (backbones such as
#: EfficientNet that normalise internally); ``"caffe"``, ``"tf"`` and ``"torch"``
#: are keras.applications' ImageNet ``preprocess_input`` modes.
NORMALIZATION_MODES = ("unit", "raw", "caffe", "tf", "torch")


def check_backbone(backbone: str) -> str:
    """``backbone`` if it names a known backbone; a ValueError listing them otherwise."""
    if not isinstance(backbone, str) or backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(BACKBONES)}")
    return backbone


def min_input_size(backbone: str) -> int:
    """The smallest input side ``backbone`` is built for (8 for ``"small"``, else 32)."""
    return 8 if check_backbone(backbone) == "small" else 32


def check_input_size(backbone: str, size: int) -> int:
    """``size`` if ``backbone`` takes inputs of that side; a ValueError naming its minimum.

    ``size`` is an int (checked by the caller); the check the model builders and
    :meth:`risc_tf.experiments.ReproduceConfig.validate` share.
    """
    low = min_input_size(backbone)
    if size < low:
        raise ValueError(f"backbone {backbone!r} needs inputs of at least {low}x{low}; "
                         f"got {size}x{size}")
    return size


def check_backbone_weights(weights, backbone: str, *, rotnet_source: bool = False):
    """``weights`` if it is None, ``"imagenet"`` (not for ``"small"``) or the path of an
    existing file; a ValueError otherwise.

    The check of a name or path that the model builders and
    :meth:`risc_tf.experiments.ReproduceConfig.validate` share (a trained RotNet given as
    ``weights`` is the builders' own check); ``rotnet_source`` names it among the accepted
    values in the message.
    """
    check_backbone(backbone)
    if weights is None:
        return weights
    if isinstance(weights, str) and weights == "imagenet":
        if backbone == "small":
            raise ValueError('the "small" backbone has no ImageNet weights; use weights=None')
        return weights
    if not isinstance(weights, (str, os.PathLike)) or not Path(weights).is_file():
        what = "a trained RotNet, " if rotnet_source else ""
        raise ValueError(
            f'weights must be None, "imagenet", {what}or the path of a weights file; '
            f"got {weights!r}, which is not an existing file"
        )
    return weights


_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
_IMAGENET_STD = np.array([0.229, 0.224, 0.225])
_CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])


def normalization_weights(mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Kernel ``(3, 3)`` and bias ``(3,)`` of the affine map ``y = x @ W + b`` of a mode.

    ``x`` is an RGB pixel in [0, 1]; ``y`` is what keras.applications'
    ``preprocess_input(255 * x, mode)`` gives (``"unit"``: ``x``; ``"raw"``: ``255 x``).

    Examples
    --------
    >>> w, b = normalization_weights("tf")
    >>> (np.array([0.0, 0.5, 1.0]) @ w + b).tolist()
    [-1.0, 0.0, 1.0]
    """
    check_choice("normalization", mode, NORMALIZATION_MODES)
    eye = np.eye(3)
    if mode == "unit":
        w, b = eye, np.zeros(3)
    elif mode == "raw":
        w, b = 255.0 * eye, np.zeros(3)
    elif mode == "caffe":  # RGB -> BGR, then subtract the BGR mean (0-255 scale)
        w, b = 255.0 * eye[:, ::-1], -_CAFFE_MEAN_BGR
    elif mode == "tf":
        w, b = 2.0 * eye, -np.ones(3)
    else:  # torch
        w, b = np.diag(1.0 / _IMAGENET_STD), -_IMAGENET_MEAN / _IMAGENET_STD
    return w.astype(np.float32), b.astype(np.float32)


def small_backbone(include_top=False, weights=None, input_tensor=None, input_shape=None):
    """A small VGG-style CNN (about 0.3 M parameters) for tests and quick CPU runs.

    The ``"small"`` backbone, with ``keras.applications``' constructor signature.
    """
    import keras

    inputs = input_tensor if input_tensor is not None else keras.Input(input_shape)
    x = inputs
    for block, filters in enumerate((32, 64, 128), start=1):
        for i in (1, 2):
            x = keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"block{block}_conv{i}"
            )(x)
            x = keras.layers.BatchNormalization(name=f"block{block}_bn{i}")(x)
            x = keras.layers.Activation("relu", name=f"block{block}_relu{i}")(x)
        if block < 3:
            x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    source = keras.utils.get_source_inputs(inputs) if input_tensor is not None else inputs
    return keras.Model(source, x, name="small")
