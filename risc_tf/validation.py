"""Argument checks shared by the whole library, like scikit-learn's ``utils.validation``.

Every public function validates its arguments once, at the boundary, with these
helpers, so that the same mistake gets the same message everywhere: the message
names the argument, says what is accepted and quotes what was received.
Numpy scalars are accepted wherever a Python number is (``np.int64(2)`` is an
int), booleans never are (``True`` is not a batch size).

This module imports only numpy, so the command line can use it without
loading TensorFlow.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

__all__ = [
    "MAX_SEED",
    "MIN_SIDE",
    "check_bool",
    "check_choice",
    "check_fraction",
    "check_int",
    "check_labels",
    "check_number",
    "check_optional_int",
    "check_probability",
    "check_seed",
]


#: Smallest height and width of an image anywhere in risc_tf (pixels).
MIN_SIDE = 4


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(name: str, value, minimum: int | None = 1, maximum: int | None = None) -> int:
    """``value`` as a Python int within ``[minimum, maximum]``.

    Parameters
    ----------
    name : str
        The argument's name, for the message.
    value : int or numpy integer
        The value to check (``bool`` is refused).
    minimum, maximum : int or None, default 1 and None
        Inclusive bounds (None: unbounded).

    Returns
    -------
    int

    Raises
    ------
    ValueError
        Not an integer, or out of bounds.

    Examples
    --------
    >>> check_int("batch_size", np.int64(64))
    64
    """
    if not _is_int(value):
        raise ValueError(f"{name} must be an int{_bounds(minimum, maximum)}; got {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int{_bounds(minimum, maximum)}; got {value!r}")
    return value


def check_bool(name: str, value) -> bool:
    """``value`` as a Python bool: True or False (numpy booleans too), nothing else.

    Examples
    --------
    >>> check_bool("deterministic", np.True_)
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_optional_int(name: str, value, minimum: int | None = 1) -> int | None:
    """:func:`check_int`, with ``None`` passed through."""
    return None if value is None else check_int(name, value, minimum)


def _bounds(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def check_number(
    name: str,
    value,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    include_minimum: bool = True,
    include_maximum: bool = True,
) -> float:
    """``value`` as a finite Python float within the given bounds.

    Raises
    ------
    ValueError
        Not a real number (``bool`` is refused), NaN or infinite, or out of bounds.

    Examples
    --------
    >>> check_number("learning_rate", 1e-3, 0, include_minimum=False)
    0.001
    """
    lo = "" if minimum is None else ("[" if include_minimum else "(") + f"{minimum:g}"
    hi = "" if maximum is None else f"{maximum:g}" + ("]" if include_maximum else ")")
    what = {
        (True, True): f" in {lo}, {hi}",
        (True, False): f" {'>=' if include_minimum else '>'} {minimum:g}" if lo else "",
        (False, True): f" {'<=' if include_maximum else '<'} {maximum:g}" if hi else "",
        (False, False): "",
    }[(bool(lo), bool(hi))]
    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
    if ok:
        value = float(value)
        ok = math.isfinite(value)
    if ok and minimum is not None:
        ok = value >= minimum if include_minimum else value > minimum
    if ok and maximum is not None:
        ok = value <= maximum if include_maximum else value < maximum
    if not ok:
        raise ValueError(f"{name} must be a finite number{what}; got {value!r}")
    return value


def check_probability(name: str, value) -> float:
    """A number in [0, 1] (a threshold, a confidence)."""
    return check_number(name, value, 0.0, 1.0)


def check_fraction(name: str, value) -> float:
    """A number in [0, 1) (dropout, label smoothing)."""
    return check_number(name, value, 0.0, 1.0, include_maximum=False)


def check_choice(name: str, value, choices: Sequence):
    """``value`` if it is one of ``choices``; the message lists them."""
    try:
        ok = value in choices
    except TypeError:  # unhashable against a set
        ok = False
    if not ok:
        shown = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {shown}; got {value!r}")
    return value


def check_labels(
    labels, n: int | None = None, num_classes: int | None = None, name: str = "labels"
) -> np.ndarray:
    """Integer class labels as an int64 ``(N,)`` array.

    Accepted: ``(N,)`` integer labels, ``(N, 1)`` (MedMNIST's layout) and
    one-hot ``(N, C)`` rows (exactly one 1 per row, every other entry 0),
    which become their arg-max. Integer-valued floats are accepted too.

    Parameters
    ----------
    labels : array_like
    n : int, optional
        The number of labels expected (one per image).
    num_classes : int, optional
        Labels must lie in ``[0, num_classes)``.
    name : str, default "labels"

    Returns
    -------
    np.ndarray
        int64 ``(N,)``.

    Raises
    ------
    ValueError
        Ragged or non-numeric input, multi-label rows, non-integer values,
        negative or too large labels, or a count other than ``n``.

    Examples
    --------
    >>> check_labels([[0, 1], [1, 0]]).tolist()
    [1, 0]
    """
    try:
        y = np.asarray(labels)
    except ValueError:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular array of class indices") from None
    if y.dtype == object or not (
        np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
        or y.dtype == bool
    ):
        raise ValueError(
            f"{name} must be integer class indices; got dtype {y.dtype} with shape {y.shape}"
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    elif y.ndim == 2:
        rows_ok = np.isin(y, (0, 1)).all() and (y.sum(axis=1) == 1).all()
        if not rows_ok:
            raise ValueError(
                f"{name} of shape {y.shape} is neither (N,) class indices nor one-hot rows "
                "(one 1 per row): multi-label targets are not supported"
            )
        y = y.argmax(axis=1)
    if y.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), (N, 1) or one-hot (N, C); got {y.shape}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{name} must be whole numbers (class indices); got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n is not None and len(y) != n:
        raise ValueError(f"{name} must hold one label per image: {n} images but {len(y)} labels")
    if y.size and y.min() < 0:
        raise ValueError(f"{name} must be >= 0; got minimum {y.min()}")
    if num_classes is not None and y.size and y.max() >= num_classes:
        raise ValueError(
            f"{name} must lie in [0, {num_classes}) for a {num_classes}-class model; "
            f"got values in [{y.min()}, {y.max()}]"
        )
    return y


#: The largest seed: Keras seeds numpy's legacy generator, which takes 32-bit seeds.
MAX_SEED = 2**32 - 1


def check_seed(value, name: str = "seed") -> int:
    """A random seed: an int in ``[0, 2**32 - 1]`` (what ``keras.utils.set_random_seed`` takes).

    Examples
    --------
    >>> check_seed(np.uint8(7))
    7
    """
    return check_int(name, value, 0, MAX_SEED)
