"""Adam with TensorFlow's fused kernel, for the training helpers.

Keras 3's Adam updates each variable with about ten separate elementwise ops,
a sizeable share of a CPU training step for ResNet50's 23.5 M parameters
(measured in docs/performance.md). :class:`FusedAdam` computes exactly the same
update with one ``ResourceApplyAdam`` kernel per variable.
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["FusedAdam"]


@keras.saving.register_keras_serializable(package="risc_tf")
class FusedAdam(keras.optimizers.Adam):
    """``keras.optimizers.Adam`` whose update runs TensorFlow's fused Adam kernel.

    Same arguments, state variables and update rule as ``keras.optimizers.Adam``
    (``m += (g - m)(1 - beta_1)``, ``v += (g^2 - v)(1 - beta_2)``,
    ``w -= lr sqrt(1 - beta_2^t) / (1 - beta_1^t) m / (sqrt(v) + epsilon)``).
    Falls back to the Keras update with ``amsgrad=True``, on another Keras
    backend, for sparse gradients, and for a distributed variable seen as a
    whole (under a ``tf.distribute`` strategy Keras applies the update to each
    device's own copy, where the fused kernel runs as usual).

    Examples
    --------
    >>> model.compile(optimizer=FusedAdam(1e-3), loss="mse")  # doctest: +SKIP
    """

    def update_step(self, gradient, variable, learning_rate):
        raw = variable.value if isinstance(variable, keras.Variable) else variable
        if (
            self.amsgrad
            or keras.backend.backend() != "tensorflow"
            or isinstance(gradient, tf.IndexedSlices)
            or isinstance(raw, tf.distribute.DistributedValues)
        ):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = tf.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].handle,
            v=self._velocities[index].handle,
            beta1_power=tf.pow(tf.cast(self.beta_1, dtype), step),
            beta2_power=tf.pow(tf.cast(self.beta_2, dtype), step),
            lr=tf.cast(learning_rate, dtype),
            beta1=tf.cast(self.beta_1, dtype),
            beta2=tf.cast(self.beta_2, dtype),
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )
