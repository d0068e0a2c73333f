"""BatchNorm re-estimation: inference statistics that match the weights they normalise.

Trained from scratch for a few epochs at 32x32, ResNet50's inference-mode
BatchNorm statistics (an exponential moving average with momentum 0.99) lag far
behind the weights, so validation accuracy sits at the majority-class rate while
training accuracy is high. :func:`recalibrate_batchnorm` replaces each BatchNorm
layer's moving mean and variance with a plain average of its batch statistics
over a few training batches (as ``torch.optim.swa_utils.update_bn`` does);
:class:`BatchNormRecalibration` does it at the end of every epoch, before
validation.
"""

from __future__ import annotations

import warnings

import keras
import tensorflow as tf

from risc_tf.distribute import is_multi_worker

__all__ = ["BatchNormRecalibration", "recalibrate_batchnorm"]


class _BatchNormStatistics:
    """Average per-channel input statistics of every BatchNorm layer of a model.

    Built once per model (one probe model, one traced function), then called on
    a dataset each time the statistics are re-estimated.
    """

    def __init__(self, model: keras.Model):
        self.strategy = model.distribute_strategy
        # frozen layers (a frozen backbone, a linear probe) keep their statistics: they run
        # in inference mode, and re-estimating them would change what the probe measures
        self.layers = [
            layer for layer in model.layers
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
        ]
        if self.layers:
            probe = keras.Model(model.inputs, [bn.input for bn in self.layers])
            self._moments = tf.function(
                lambda x: self._batch_moments(probe, x), reduce_retracing=True
            )

    def _batch_moments(self, probe: keras.Model, x: tf.Tensor) -> list[tf.Tensor]:
        stats = []
        for bn, out in zip(self.layers, tf.nest.flatten(probe(x, training=True))):
            axes = [i for i in range(len(out.shape)) if i != bn.axis % len(out.shape)]
            stats += list(tf.nn.moments(tf.cast(out, tf.float32), axes))
        return stats

    def __call__(self, dataset: tf.data.Dataset, num_batches: int) -> int:
        if not self.layers:
            return 0
        totals, count = None, 0
        for batch in dataset.take(num_batches):
            stats = self._moments(batch[0] if isinstance(batch, tuple) else batch)
            totals = stats if totals is None else [t + s for t, s in zip(totals, stats)]
            count += 1
        if count == 0:
            raise ValueError("recalibrate_batchnorm got an empty dataset")
        stats = _same_on_every_worker([t / count for t in totals], self.strategy)
        for i, bn in enumerate(self.layers):
            bn.moving_mean.assign(stats[2 * i])
            bn.moving_variance.assign(stats[2 * i + 1])
        return len(self.layers)


def _same_on_every_worker(tensors: list[tf.Tensor],
                          strategy: tf.distribute.Strategy) -> list[tf.Tensor]:
    """Under several workers, the mean of each worker's estimate (identical everywhere).

    Each worker estimates the statistics from the same seeded batches, so the
    estimates agree already when the pipeline is deterministic; the all-reduce
    makes that a guarantee. One process (one device or MirroredStrategy): as is.
    """
    if not is_multi_worker(strategy):
        return tensors
    per_replica = strategy.experimental_distribute_values_from_function(lambda _: list(tensors))
    return [strategy.reduce(tf.distribute.ReduceOp.MEAN, p, axis=None) for p in per_replica]


def recalibrate_batchnorm(
    model: keras.Model, dataset: tf.data.Dataset, num_batches: int = 50
) -> int:
    """Set every trainable BatchNorm layer's moving statistics to the average batch statistics.

    The model runs in training mode on up to ``num_batches`` batches of
    ``dataset`` (whose elements are ``(images, ...)``); for each BatchNorm layer
    the per-channel mean and (biased) variance of its input are averaged over the
    batches and written to ``moving_mean`` / ``moving_variance``.

    Returns
    -------
    int
        Number of BatchNorm layers updated.
    """
    return _BatchNormStatistics(model)(dataset, num_batches)


class BatchNormRecalibration(keras.callbacks.Callback):
    """Re-estimate BatchNorm statistics after the last training step of each epoch.

    Runs after the epoch's last batch, i.e. before Keras evaluates the
    validation data, so validation metrics, early stopping and best-weight
    selection all see the re-estimated statistics. Put it first in the callback list.

    Parameters
    ----------
    dataset : tf.data.Dataset
        Training-distribution batches (fresh iteration every epoch).
    num_batches : int, default 50
        Batches averaged per re-estimation.
    """

    def __init__(self, dataset: tf.data.Dataset, num_batches: int = 50):
        super().__init__()
        self.dataset = dataset
        self.num_batches = num_batches

        self._statistics: _BatchNormStatistics | None = None

    def set_model(self, model: keras.Model) -> None:
        super().set_model(model)
        self._statistics = None

    def _recalibrate(self) -> None:
        if self._statistics is None:  # one probe and one trace for the whole fit
            self._statistics = _BatchNormStatistics(self.model)
        self._statistics(self.dataset, self.num_batches)

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps")
        if steps and batch + 1 == steps:
            self._recalibrate()

    def on_epoch_end(self, epoch, logs=None):
        if not self.params.get("steps"):
            warnings.warn(
                "steps per epoch unknown: BatchNorm re-estimated after validation", stacklevel=2
            )
            self._recalibrate()
