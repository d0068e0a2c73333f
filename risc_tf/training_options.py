"""Training options, resolved the Keras way: optimizer, learning-rate schedule, class weights.

Used by :mod:`risc_tf.training` (and public there): each option is checked
when the training helpers are called, before anything is compiled.
:class:`FitOptions` is the one definition of the options both training helpers
take; :func:`history_record` is the one summary of a ``fit`` that every report uses.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence

import keras
import numpy as np

from risc_tf.angles import check_fill
from risc_tf.determinism import check_deterministic
from risc_tf.fast import FusedAdam
from risc_tf.validation import check_bool, check_choice, check_int, check_number, check_seed

__all__ = [
    "LR_SCHEDULES",
    "FitOptions",
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


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """The options :func:`~risc_tf.train_rotnet` and :func:`~risc_tf.train_classifier` share.

    One definition of their names, defaults and checks: both helpers take these
    as keyword arguments (documented in :func:`~risc_tf.train_rotnet`) and check
    them once by building this object, which raises on the first bad one.
    :meth:`as_kwargs` gives them back as keyword arguments, e.g. to train both
    stages alike::

        options = FitOptions(epochs=5, seed=1, deterministic=True)
        train_rotnet(rotnet, x, xv, **options.as_kwargs())
        train_classifier(clf, x, y, xv, yv, **options.as_kwargs())

    Checked values are stored normalised: ``patience=0`` becomes None,
    ``callbacks`` a tuple, numpy scalars Python ones.

    Raises
    ------
    ValueError
        The first bad option, named, with what it accepts and the value received.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str | keras.optimizers.Optimizer | None = None
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule | None = None
    lr_schedule: str = "constant"
    fill: str = "constant"
    patience: int | None = 5
    seed: int = 0
    deterministic: bool = False
    recalibrate_bn: bool = True
    recalibration_batches: int = 50
    jit_compile: bool = False
    verbose: int = 1
    callbacks: Sequence[keras.callbacks.Callback] | None = None

    def __post_init__(self):
        def store(name, value):
            object.__setattr__(self, name, value)

        store("epochs", check_int("epochs", self.epochs))
        store("batch_size", check_int("batch_size", self.batch_size))
        resolve_optimizer(self.optimizer, self.learning_rate, self.lr_schedule,
                          total_steps=1)  # checks the three; the real steps come at training
        store("fill", check_fill(self.fill))
        patience = None if self.patience is None else check_int("patience", self.patience, 0)
        store("patience", patience or None)  # 0: no early stopping, as None
        store("seed", check_seed(self.seed))
        store("deterministic", check_deterministic(self.deterministic))
        store("recalibrate_bn", check_bool("recalibrate_bn", self.recalibrate_bn))
        store("recalibration_batches", check_int("recalibration_batches",
                                                 self.recalibration_batches))
        store("jit_compile", check_bool("jit_compile", self.jit_compile))
        store("verbose", check_int("verbose", self.verbose, 0, 2))
        callbacks = self.callbacks
        if callbacks is not None:
            if isinstance(callbacks, keras.callbacks.Callback) or not all(
                    isinstance(c, keras.callbacks.Callback) for c in callbacks):
                raise ValueError(f"callbacks must be a list of keras.callbacks.Callback; got "
                                 f"{callbacks!r}")
            store("callbacks", tuple(callbacks))

    def as_kwargs(self) -> dict:
        """The options as keyword arguments of the training helpers."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def optimizer_factory(self, total_steps: int):
        """A function creating the optimizer in the model's strategy scope, later."""
        return optimizer_factory(self.optimizer, self.learning_rate, self.lr_schedule,
                                 total_steps)


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
