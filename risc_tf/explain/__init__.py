"""Explainability: where the classifier and the RotNet look (Grad-CAM, Grad-CAM++, Score-CAM).

Built on tf-keras-vis. Modules, one concern each:

* :mod:`~risc_tf.explain.layers` -- which layer a CAM is computed at (default,
  validation, stage outputs for layer comparisons);
* :mod:`~risc_tf.explain.cam` -- :class:`CAM` and the one-call
  :func:`classifier_heatmaps`, :func:`rotnet_heatmaps`, :func:`layer_heatmaps`;
* :mod:`~risc_tf.explain.overlay` -- :func:`overlay`, heatmaps over images as RGB uint8;
* :mod:`~risc_tf.explain.figures` -- the paper's Fig. 4 and Fig. 5, a RISC
  before/after figure and a layer comparison, saved as PNG;
* :mod:`~risc_tf.explain.command` -- ``risc-tf explain``.

Examples
--------
>>> from risc_tf.explain import classifier_heatmaps, overlay  # doctest: +SKIP
>>> maps = classifier_heatmaps(pipe.classifier, x_test[:8])  # (8, 28, 28) in [0, 1]
>>> rgb = overlay(x_test[:8], maps)                          # (8, 28, 28, 3) uint8
"""

from risc_tf.explain.cam import (
    CAM,
    METHODS,
    classifier_heatmaps,
    layer_heatmaps,
    rotnet_heatmaps,
)
from risc_tf.explain.figures import (
    classifier_rotation_figure,
    layer_figure,
    risc_figure,
    rotnet_rotation_figure,
    save_figure,
)
from risc_tf.explain.layers import (
    DEFAULT_MIN_SIDE,
    default_layer,
    feature_layers,
    resolve_layer,
    stage_layers,
)
from risc_tf.explain.overlay import overlay

__all__ = [
    "CAM",
    "DEFAULT_MIN_SIDE",
    "METHODS",
    "classifier_heatmaps",
    "classifier_rotation_figure",
    "default_layer",
    "feature_layers",
    "layer_figure",
    "layer_heatmaps",
    "overlay",
    "resolve_layer",
    "risc_figure",
    "rotnet_heatmaps",
    "rotnet_rotation_figure",
    "save_figure",
    "stage_layers",
]
