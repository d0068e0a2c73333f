"""Training options, resolved the Keras way: optimizer, learning-rate schedule, class weights.

Used by :mod:`risc_tf.training` (and public there): each option is checked
when the training helpers are called, before anything is compiled.
:func:`history_record` is the one summary of a ``fit`` that every report uses.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import keras
import numpy as np

from risc_tf.fast import FusedAdam
from risc_tf.validation import check_choice, check_int, check_number

__all__ = [
    "LR_SCHEDULES",
    "history_record",
    "optimizer_factory",
    "resolve_class_weight",
    "resolve_optimizer",
]

#: ``lr_schedule`` values: a constant rate, or a cosine decay to 0 over all epochs.
LR_SCHEDULES = ("constant", "cosine")


def resolve_optimizer(
    optimizer=None,
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None,
    lr_schedule: str = "constant",
    total_steps: int | None = None,
) -> keras.optimizers.Optimizer:
    """The optimizer the training helpers compile with.

    Parameters
    ----------
    optimizer : None, str or keras.optimizers.Optimizer
        None: :class:`risc_tf.fast.FusedAdam` (same update as Keras's Adam); a
        name Keras knows (``"adam"`` is also FusedAdam); an instance is used as is.
    learning_rate : float or LearningRateSchedule, optional
        Default 1e-3. Not allowed with an optimizer instance (set it there).
    lr_schedule : {"constant", "cosine"}, default "constant"
        ``"cosine"``: ``keras.optimizers.schedules.CosineDecay`` from
        ``learning_rate`` to 0 over ``total_steps``.
    total_steps : int, optional
        Training steps in all (needed by ``"cosine"``).

    Raises
    ------
    ValueError
        Unknown optimizer name or schedule, a learning rate that is not positive,
        or both an instance and a learning rate.
    """
    check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    if isinstance(optimizer, keras.optimizers.Optimizer):
        if learning_rate is not None or lr_schedule != "constant":
            raise ValueError(
                "learning_rate / lr_schedule cannot be combined with an optimizer instance; "
                "set the learning rate on the optimizer"
            )
        return optimizer
    rate = 1e-3 if learning_rate is None else learning_rate
    if not isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        rate = check_number("learning_rate", rate, 0.0, include_minimum=False)
        if lr_schedule == "cosine":
            steps = check_int("total_steps", total_steps)
            rate = keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps)
    elif lr_schedule != "constant":
        raise ValueError("lr_schedule applies to a number; learning_rate is already a schedule")
    if optimizer is None or (isinstance(optimizer, str) and optimizer.lower() == "adam"):
        return FusedAdam(rate)
    if not isinstance(optimizer, str):
        raise ValueError(
            f"optimizer must be None, a Keras optimizer name such as 'adam', 'adamw', 'sgd', "
            f"or a keras.optimizers.Optimizer; got {type(optimizer).__name__}"
        )
    try:
        return keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": rate}})
    except (ValueError, TypeError):
        raise ValueError(
            f"unknown optimizer {optimizer!r}; use a Keras optimizer name such as 'adam', "
            "'adamw', 'sgd', 'rmsprop', or an instance"
        ) from None


def resolve_class_weight(class_weight, labels: np.ndarray, num_classes: int) -> dict | None:
    """``class_weight`` as Keras's ``{class index: weight}``.

    ``"balanced"`` computes ``n_samples / (n_classes * count)`` with
    scikit-learn's ``compute_class_weight``. A dict must name exactly the
    classes present in ``labels``, with positive weights.

    Raises
    ------
    ValueError
        Not None, "balanced" or a dict; a dict that names absent classes, misses
        present ones, or has weights that are not positive.
    """
    present = np.unique(labels)
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        check_choice("class_weight", class_weight, ("balanced",))
        from sklearn.utils.class_weight import compute_class_weight

        weights = compute_class_weight("balanced", classes=present, y=labels)
        return {int(c): float(w) for c, w in zip(present, weights)}
    if not isinstance(class_weight, Mapping):
        raise ValueError(
            f"class_weight must be None, 'balanced' or a dict {{class: weight}}; "
            f"got {type(class_weight).__name__}"
        )
    keys = {check_int("class_weight key", k, 0, num_classes - 1) for k in class_weight}
    missing, extra = sorted(set(present.tolist()) - keys), sorted(keys - set(present.tolist()))
    if missing or extra:
        raise ValueError(
            f"class_weight must name exactly the classes in the labels {present.tolist()}: "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"not in the labels {extra}" if extra else "")
        )
    return {int(k): check_number(f"class_weight[{k}]", v, 0.0, include_minimum=False)
            for k, v in class_weight.items()}


def optimizer_factory(optimizer, learning_rate, lr_schedule, total_steps):
    """Check the options now; create the optimizer later, in the model's strategy scope."""
    resolve_optimizer(optimizer, learning_rate, lr_schedule, total_steps)  # validates
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return lambda: optimizer
    return functools.partial(resolve_optimizer, optimizer, learning_rate, lr_schedule,
                             total_steps)


def history_record(history: keras.callbacks.History, seconds: float, model: keras.Model) -> dict:
    """A JSON-ready summary of a ``fit``: per-epoch logs, best epoch, time, parameters."""
    logs = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    val = logs.get("val_accuracy")
    return {
        "history": logs,
        "epochs_run": len(logs.get("loss", [])),
        "best_epoch": int(np.argmax(val)) + 1 if val else None,
        "best_val_accuracy": float(np.max(val)) if val else None,
        "train_time_s": float(seconds),
        "parameters": int(model.count_params()),
    }
