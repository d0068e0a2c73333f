"""The CAM methods risc_tf offers: a table of names and the tf-keras-vis class of each.

tf-keras-vis implements each method in a module of its own, as a small
callable object bound to one model (``Gradcam(model)(score, images)``), with
the score and model-modifier utilities beside them. risc_tf adds no method of
its own, so this table is all a method needs here: one entry makes it a
``method`` of :class:`~risc_tf.explain.CAM`, of the one-call functions and of
``risc-tf explain --method``.

Importable without TensorFlow (the command line reads :data:`METHODS` while
building its parser); a class is imported when :func:`engine` is first asked
for it.
"""

from __future__ import annotations

import importlib

from risc_tf.validation import check_choice

__all__ = ["METHODS", "engine"]

#: method name -> ``"module:class"`` of the tf-keras-vis object that computes it.
_ENGINES = {
    "gradcam": "tf_keras_vis.gradcam:Gradcam",
    "gradcam++": "tf_keras_vis.gradcam_plus_plus:GradcamPlusPlus",
    "scorecam": "tf_keras_vis.scorecam:Scorecam",
}

#: CAM methods; "scorecam" with ``max_n`` is Faster-Score-CAM.
METHODS = tuple(_ENGINES)


def engine(method: str) -> type:
    """The tf-keras-vis class that computes ``method``.

    Parameters
    ----------
    method : {"gradcam", "gradcam++", "scorecam"}
        One of :data:`METHODS`.

    Returns
    -------
    type
        A tf-keras-vis ``ModelVisualization`` subclass, called as
        ``cls(model, clone=False)(score, images, ...)``.

    Raises
    ------
    ValueError
        ``method`` is not one of :data:`METHODS`.

    Examples
    --------
    >>> engine("gradcam++").__name__  # doctest: +SKIP
    'GradcamPlusPlus'
    """
    check_choice("method", method, METHODS)
    module, _, name = _ENGINES[method].partition(":")
    return getattr(importlib.import_module(module), name)
