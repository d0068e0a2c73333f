"""Experiments: the paper's stages 1-5 end to end, over seeds, with statistics and reports.

* :mod:`~risc_tf.experiments.config` -- :class:`ReproduceConfig` and the recipes;
* :mod:`~risc_tf.experiments.run` -- :func:`reproduce`, one run (one seed);
* :mod:`~risc_tf.experiments.seeds` -- :func:`reproduce_seeds`, several seeds, resumable;
* :mod:`~risc_tf.experiments.aggregation` -- :func:`aggregate`, statistics over seeds;
* :mod:`~risc_tf.experiments.tune` -- :func:`tune_recipe`, the validation grid search;
* :mod:`~risc_tf.experiments.report`, :mod:`~risc_tf.experiments.plots`,
  :mod:`~risc_tf.experiments.rundir` -- reports, figures and run folders.

Names are imported on first use (the configs and recipes need no TensorFlow).
"""

from __future__ import annotations

from risc_tf.lazy import lazy_exports

_EXPORTS = {
    "RECIPES": "risc_tf.experiments.config",
    "ReproduceConfig": "risc_tf.experiments.config",
    "recipe_settings": "risc_tf.experiments.config",
    "reproduce": "risc_tf.experiments.run",
    "reproduce_seeds": "risc_tf.experiments.seeds",
    "aggregate": "risc_tf.experiments.aggregation",
    "tune_recipe": "risc_tf.experiments.tune",
}
__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
