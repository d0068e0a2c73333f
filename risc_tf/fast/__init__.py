"""Fast CPU training and inference: one subsystem, below the models.

At RISC's 32x32 input, ResNet50 runs its last stages on 4x4 to 1x1 feature
maps, where TensorFlow's CPU convolution and BatchNorm kernels and Keras's Adam
update cost far more than their arithmetic. This package holds what makes that
fast, each piece computing exactly what the stock Keras piece computes:

* :mod:`~risc_tf.fast.conv` -- :class:`FastConv2D` and its per-backend
  :class:`ConvPolicy`; :mod:`~risc_tf.fast.plans` -- the shape arithmetic;
* :mod:`~risc_tf.fast.batchnorm` -- :class:`FastBatchNormalization` (one fused kernel);
* :mod:`~risc_tf.fast.convert` -- :func:`use_fast_conv` / :func:`use_stock_layers`;
* :mod:`~risc_tf.fast.optimizers` -- :class:`FusedAdam` (Keras's Adam on the fused kernel);
* :mod:`~risc_tf.fast.folding` -- :func:`fold_batchnorm`, an inference copy with
  BatchNorm folded into the convolutions.

Measurements: docs/performance.md.
"""

from risc_tf.fast.batchnorm import FastBatchNormalization
from risc_tf.fast.conv import (
    EIGEN_POLICY,
    ONEDNN_POLICY,
    POLICIES,
    ConvPolicy,
    FastConv2D,
    active_policy,
    onednn_enabled,
)
from risc_tf.fast.convert import replace_layers, use_fast_conv, use_stock_layers
from risc_tf.fast.folding import (
    FoldedBatchNormalization,
    batchnorm_folder,
    batchnorm_pairs,
    fold_batchnorm,
)
from risc_tf.fast.optimizers import FusedAdam
from risc_tf.fast.plans import DensePlan, FlipPlan, TapPlan, dense_conv_taps, fast_conv_plan

__all__ = [
    "EIGEN_POLICY",
    "ONEDNN_POLICY",
    "POLICIES",
    "ConvPolicy",
    "DensePlan",
    "FastBatchNormalization",
    "FastConv2D",
    "FlipPlan",
    "FoldedBatchNormalization",
    "FusedAdam",
    "TapPlan",
    "active_policy",
    "batchnorm_folder",
    "batchnorm_pairs",
    "dense_conv_taps",
    "fast_conv_plan",
    "fold_batchnorm",
    "onednn_enabled",
    "replace_layers",
    "use_fast_conv",
    "use_stock_layers",
]
