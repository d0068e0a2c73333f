"""Repeatable training: the ``deterministic`` option of the training helpers.

With ``deterministic=True``, :func:`risc_tf.train_rotnet` and
:func:`risc_tf.train_classifier` (and ``risc-tf reproduce / train-rotnet /
train-classifier / tune --deterministic``) train the same weights, bit for bit,
every time the same call runs on the same machine with the same versions:

* TensorFlow's op determinism is on while they train
  (``tf.config.experimental.enable_op_determinism``, switched off again after
  if it was off before: :func:`op_determinism`). On CPU it changes one
  computation risc_tf uses: the cross-entropy losses run TensorFlow's
  deterministic composite (log-softmax, then a gather) instead of its fused
  kernel, so a deterministic run's numbers differ from an ordinary run's of the
  same seed, as two seeds' do; tf.data runs a pipeline holding stateful ops
  (the ``"light"`` augmentation's layers) serially;
* Python's, numpy's, TensorFlow's and Keras's generators are seeded from
  ``seed`` (``keras.utils.set_random_seed``), so that every tf.data draw
  (shuffles, rotations, tilts, the ``"light"`` augmentation) derives from it;
  the rotations and tilts are stateless draws from per-batch seeds
  (:mod:`risc_tf.datasets`), and the pipelines keep their order;
* risc_tf's fast layers run kernels that are deterministic under op
  determinism, except one case on a GPU, where
  :class:`~risc_tf.fast.FastBatchNormalization` falls back to the stock Keras
  computation (see its documentation).

The model's initial weights are drawn when it is built: build it after
``keras.utils.set_random_seed(seed)`` (``risc-tf`` and :func:`risc_tf.reproduce` do).

What the option refuses, before anything trains (:func:`check_deterministic`):
an ``augment`` Keras layer holding a random layer built without a ``seed``.
Its generator was seeded from Python's random state when it was built, not
from the run's seed: built before any seeding, it draws other augmentations in
every process, and two runs differ although op determinism is on.

Checked to repeat bit for bit on this project's CPU machine (two runs each, in
fresh processes, small backbone on real PneumoniaMNIST): the plain settings,
``augment="light"``, a plain ``augment`` callable drawing from TensorFlow's
random ops, ``jit_compile=True``, the ``mixed_bfloat16`` policy,
``MirroredStrategy`` over two CPU devices and ``MultiWorkerMirroredStrategy``
over two local workers (every worker calls the helper with
``deterministic=True``). docs/training.md has the measurements.

What it cannot promise: the same numbers on another machine (another CPU
instruction set or thread count splits sums differently), with other versions
of TensorFlow, Keras or numpy, or with callbacks or an ``augment`` callable
that draw randomness from outside the seeded generators.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import keras
import tensorflow as tf

from risc_tf.validation import check_bool

__all__ = ["check_deterministic", "op_determinism", "op_determinism_enabled", "unseeded_layers"]


def _private_switch():
    try:  # TensorFlow exports enable_op_determinism only; these sit beside it
        from tensorflow.python.framework.config import (
            disable_op_determinism,
            is_op_determinism_enabled,
        )
    except ImportError:  # pragma: no cover - moved in another TensorFlow
        return None, None
    return is_op_determinism_enabled, disable_op_determinism


def op_determinism_enabled() -> bool:
    """Whether TensorFlow's op determinism is on in this process."""
    is_enabled, _ = _private_switch()
    return bool(is_enabled()) if is_enabled is not None else False


@contextlib.contextmanager
def op_determinism(enabled: bool = True) -> Iterator[None]:
    """TensorFlow's op determinism for the block, then as it was before.

    ``enabled=False`` changes nothing. If op determinism was already on (e.g.
    the user turned it on for the whole program), it stays on.

    Examples
    --------
    >>> with op_determinism():
    ...     op_determinism_enabled()
    True
    """
    if not enabled:
        yield
        return
    is_enabled, disable = _private_switch()
    was = bool(is_enabled()) if is_enabled is not None else True
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            disable()
        elif is_enabled is None:  # pragma: no cover
            warnings.warn("op determinism stays on: this TensorFlow offers no way to turn it "
                          "off again", RuntimeWarning, stacklevel=3)


def unseeded_layers(layer) -> list[str]:
    """Names of the random Keras layers inside ``layer`` (itself included) built without a seed.

    A Keras random layer (``RandomContrast``, ``Dropout``, ...) keeps a
    ``seed`` attribute and a ``keras.random.SeedGenerator``; with ``seed=None``
    the generator's seed came from Python's random state when it was built.
    """
    if not isinstance(layer, keras.layers.Layer):
        return []
    found = []
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        generators = [v for v in vars(sub).values() if isinstance(v, keras.random.SeedGenerator)]
        if generators and getattr(sub, "seed", 0) is None:
            found.append(f"{type(sub).__name__} {sub.name!r}")
    return found


def check_deterministic(deterministic, *, augment=None) -> bool:
    """``deterministic`` as a bool, refused with a setting that cannot be made deterministic.

    Parameters
    ----------
    deterministic : bool
    augment : optional
        The classifier's ``augment`` option (see :mod:`risc_tf.augment`).

    Raises
    ------
    ValueError
        ``deterministic`` is not True or False; or it is True with an
        ``augment`` layer whose random layers have no seed (the message names them).

    Examples
    --------
    >>> check_deterministic(True, augment="light")
    True
    """
    if not check_bool("deterministic", deterministic):
        return False
    unseeded = unseeded_layers(augment)
    if unseeded:
        raise ValueError(
            f"deterministic=True needs every random layer of augment to have a seed; "
            f"{', '.join(unseeded)} has seed=None: its draws would follow Python's random "
            "state when it was built, not the run's seed; build it with seed=<int>"
        )
    return True
