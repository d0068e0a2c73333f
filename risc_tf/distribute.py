"""tf.distribute strategies by name, for the command line and scripts.

The library follows the Keras convention: build the models and call the
training helpers inside ``with strategy.scope():``. :func:`make_strategy`
creates the strategy the ``--strategy`` option names; docs/training.md
explains multi-GPU and multi-machine runs.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

from risc_tf.validation import check_choice

__all__ = ["STRATEGIES", "make_strategy"]

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
