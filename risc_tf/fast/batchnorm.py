"""BatchNormalization computed by TensorFlow's one fused kernel."""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from risc_tf.determinism import op_determinism_enabled

__all__ = ["FastBatchNormalization"]

_STATISTICS = ("moving_mean", "moving_variance")
_warned_dtypes: set[str] = set()


@keras.saving.register_keras_serializable(package="risc_tf")
class FastBatchNormalization(keras.layers.BatchNormalization):
    """:class:`keras.layers.BatchNormalization` computed by one fused kernel.

    Keras computes training-mode batch normalisation from about ten elementwise
    ops (moments, then normalise), and autodiff doubles them; on CPU that costs
    more than the convolutions of a 32x32 ResNet50 stage. For the common case
    (4-D float32 input, channels-last axis, no mask, no renorm, not
    synchronised) this layer runs TensorFlow's ``FusedBatchNormV3`` instead, with
    the same formula, the same moving-statistics update (momentum, biased batch
    variance) and the same weights; inference (moving statistics) also uses the
    fused kernel. Every other case runs the stock layer; under a mixed-precision
    policy (bfloat16 or float16 compute) it says so once and steps aside.

    Under a ``tf.distribute`` strategy each replica normalises with its own
    batch's statistics (as the stock layer does); the moving statistics are
    created with ``aggregation="mean"``, so the replicas' updates are averaged
    and every replica (and worker) keeps the same copy (Keras's default, "none",
    lets the copies drift apart silently).

    Under TensorFlow's op determinism (``deterministic=True`` of the training
    helpers, :mod:`risc_tf.determinism`), a frozen layer (``trainable=False``)
    inside a training step runs the stock computation: the fused kernel's
    gradient with the moving statistics has no deterministic GPU implementation
    (TensorFlow raises ``UnimplementedError`` there). The fused kernel's other
    uses are deterministic on CPU and GPU.
    """

    def add_weight(self, *args, **kwargs):
        if kwargs.get("name") in _STATISTICS:
            kwargs["aggregation"] = "mean"
        return super().add_weight(*args, **kwargs)

    def _fusable(self, inputs, mask, training) -> bool:
        return bool(
            mask is None
            and not (training and not self.trainable and op_determinism_enabled())
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (3, -1)
            and inputs.dtype == tf.float32
            and self.compute_dtype == "float32"
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask, training):
            dtype = self.compute_dtype
            if dtype != "float32" and dtype not in _warned_dtypes:
                _warned_dtypes.add(dtype)
                warnings.warn(
                    f"FastBatchNormalization runs the stock Keras BatchNormalization under a "
                    f"{dtype} compute dtype (its fused kernel path is float32 only); the "
                    "results are the same, the speed is Keras's",
                    UserWarning,
                    stacklevel=2,
                )
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones([channels])
        beta = self.beta if self.center else tf.zeros([channels])
        learning = bool(training and self.trainable)
        empty = tf.constant([], tf.float32)
        y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
            x=inputs,
            scale=tf.convert_to_tensor(gamma),
            offset=tf.convert_to_tensor(beta),
            mean=empty if learning else tf.convert_to_tensor(self.moving_mean),
            variance=empty if learning else tf.convert_to_tensor(self.moving_variance),
            epsilon=self.epsilon,
            data_format="NHWC",
            is_training=learning,
        )
        if not learning:
            return y
        # The kernel returns the unbiased (Bessel-corrected) batch variance; Keras
        # tracks the biased one.
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), tf.float32)
        variance = variance * tf.maximum(count - 1.0, 0.0) / count
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(
            self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
        )
        return y
