"""Explainability: where the classifier and the RotNet look (Grad-CAM, Grad-CAM++, Score-CAM).

Built on tf-keras-vis. Modules, one concern each:

* :mod:`~risc_tf.explain.layers` -- which layer a CAM is computed at (default,
  validation, stage outputs for layer comparisons);
* :mod:`~risc_tf.explain.methods` -- the CAM methods (:data:`METHODS`) and the
  tf-keras-vis class of each;
* :mod:`~risc_tf.explain.cam` -- :class:`CAM` and the one-call
  :func:`classifier_heatmaps`, :func:`rotnet_heatmaps`, :func:`layer_heatmaps`;
* :mod:`~risc_tf.explain.overlays` -- :func:`overlay`, heatmaps over images as RGB uint8;
* :mod:`~risc_tf.explain.panels` -- figures of image and heatmap panels: the
  paper's Fig. 4 and Fig. 5, a RISC before/after figure and a layer comparison
  (written as PNG by :func:`risc_tf.figures.save_figure`);
* ``risc-tf explain`` (:mod:`risc_tf.commands.explain`) wires them to files.

Names are imported on first use.

Examples
--------
>>> from risc_tf.explain import classifier_heatmaps, overlay  # doctest: +SKIP
>>> maps = classifier_heatmaps(pipe.classifier, x_test[:8])  # (8, 28, 28) in [0, 1]
>>> rgb = overlay(x_test[:8], maps)                          # (8, 28, 28, 3) uint8
"""

from __future__ import annotations

from risc_tf.lazy import lazy_exports

_EXPORTS = {
    "CAM": "risc_tf.explain.cam",
    "classifier_heatmaps": "risc_tf.explain.cam",
    "layer_heatmaps": "risc_tf.explain.cam",
    "rotnet_heatmaps": "risc_tf.explain.cam",
    "METHODS": "risc_tf.explain.methods",
    "classifier_rotation_figure": "risc_tf.explain.panels",
    "layer_figure": "risc_tf.explain.panels",
    "risc_figure": "risc_tf.explain.panels",
    "rotnet_rotation_figure": "risc_tf.explain.panels",
    "DEFAULT_MIN_SIDE": "risc_tf.explain.layers",
    "default_layer": "risc_tf.explain.layers",
    "feature_layers": "risc_tf.explain.layers",
    "resolve_layer": "risc_tf.explain.layers",
    "stage_layers": "risc_tf.explain.layers",
    "overlay": "risc_tf.explain.overlays",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
