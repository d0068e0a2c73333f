"""The backbones a RotNet or classifier can be built on: names and input conventions.

A table only (no TensorFlow), so that the command line can list the choices
without loading TensorFlow; :mod:`risc_tf.models` turns a name into layers.
"""

from __future__ import annotations

__all__ = ["BACKBONES", "NORMALIZATION_MODES", "check_backbone"]

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
