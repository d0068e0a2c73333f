"""tf.distribute strategies by name, and what Keras 3.15 needs to train under several workers.

The library follows the Keras convention: build the models and call the
training helpers inside ``with strategy.scope():``. :func:`make_strategy`
creates the strategy the ``--strategy`` option names; docs/training.md
explains multi-GPU and multi-machine runs.

``model.fit`` under ``tf.distribute.MultiWorkerMirroredStrategy`` fails in
Keras 3.15 (keras-team/keras#20585), at two places of
``keras/src/backend/tensorflow/trainer.py``: the first-batch build reduces a
nested structure of ``PerReplica`` values ("Attempt to convert a value
(PerReplica:{...}) with an unsupported type"), and the per-step log reduction
reduces scalar losses along axis 0 ("Invalid reduction dimension 0 for input
with 0 dimensions"). :func:`prepare_multi_worker_fit` works around both for
one model (and is called by the training helpers under such a strategy); the
test suite runs two worker processes to keep it honest.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from risc_tf.validation import check_choice

__all__ = [
    "STRATEGIES",
    "check_strategy",
    "is_multi_worker",
    "make_strategy",
    "prepare_multi_worker_fit",
]

#: ``--strategy`` values.
STRATEGIES = ("none", "mirrored", "multiworker")


def make_strategy(name: str = "none") -> tf.distribute.Strategy:
    """The strategy called ``name``.

    Parameters
    ----------
    name : {"none", "mirrored", "multiworker"}
        ``"none"``: TensorFlow's default (one device); ``"mirrored"``:
        ``tf.distribute.MirroredStrategy`` over every local GPU, or every
        (logical) CPU device when there is no GPU; ``"multiworker"``:
        ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines that
        the ``TF_CONFIG`` environment variable lists.

    Raises
    ------
    ValueError
        An unknown name, or ``"multiworker"`` without a valid ``TF_CONFIG``.
    """
    check_choice("strategy", name, STRATEGIES)
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices)
    config = os.environ.get("TF_CONFIG")
    try:
        cluster = json.loads(config or "")["cluster"]["worker"]
        json.loads(config)["task"]["index"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(
            "strategy 'multiworker' needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}; see docs/training.md'
        ) from None
    if not isinstance(cluster, list) or not cluster:
        raise ValueError("TF_CONFIG must list at least one worker under cluster.worker")
    return tf.distribute.MultiWorkerMirroredStrategy()


def check_strategy(strategy: tf.distribute.Strategy) -> tf.distribute.Strategy:
    """``strategy`` if risc_tf can train under it, else a ValueError naming the ones it can.

    Tested: TensorFlow's default (one device), ``OneDeviceStrategy``,
    ``MirroredStrategy`` and ``MultiWorkerMirroredStrategy``. Parameter servers,
    central storage and TPUs place variables or run steps in ways the training
    helpers (BatchNorm re-estimation, the fused optimizer) were not built for.
    """
    supported = (tf.distribute.OneDeviceStrategy, tf.distribute.MirroredStrategy,
                 tf.distribute.MultiWorkerMirroredStrategy)
    default = type(tf.distribute.get_strategy()) if not tf.distribute.has_strategy() else None
    if isinstance(strategy, supported) or type(strategy) is default:
        return strategy
    raise ValueError(
        f"risc_tf cannot train under {type(strategy).__name__}; use one device, "
        "OneDeviceStrategy, MirroredStrategy or MultiWorkerMirroredStrategy"
    )


def is_multi_worker(strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether ``strategy`` (default: the current one) spans several worker processes."""
    strategy = strategy or tf.distribute.get_strategy()
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and \
        strategy.extended._in_multi_worker_mode()


def _first_local(strategy, value):
    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def prepare_multi_worker_fit(model) -> None:
    """Let ``model.fit`` run under MultiWorkerMirroredStrategy with Keras 3.15 (see above).

    1. ``model._maybe_symbolic_build`` builds from the first batch's shapes only:
       it now takes each leaf's first local value instead of reducing them.
    2. ``trainer.reduce_per_replica`` averages scalar step logs over workers with
       ``axis=None`` (patched once per process; other values as before).
    """
    import types

    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, it in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: _first_local(self.distribute_strategy, v), next(it))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(_maybe_symbolic_build, model)
    if getattr(trainer.reduce_per_replica, "_risc_tf", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(
                strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if v.shape.rank == 0 else 0),
                values)
        return original(values, strategy, reduction)

    reduce_per_replica._risc_tf = True
    trainer.reduce_per_replica = reduce_per_replica
