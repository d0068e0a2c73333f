"""Calibrated probabilities: temperature scaling, expected calibration error, reliability data.

A model is calibrated when, of the images it answers with confidence 0.8,
eight in ten are right. Networks trained to a low loss are often
over-confident; temperature scaling (Guo et al. 2017) divides the logits by
one number ``T > 0`` fitted on held-out data, which leaves every arg-max (and
so the accuracy) unchanged and spreads (``T > 1``) or sharpens (``T < 1``) the
probabilities.

risc_tf's models end in a softmax, so the logits are known up to a constant
per image: ``log p``. :func:`apply_temperature` computes
``softmax(log p / T)``, which is exactly ``softmax(z / T)`` for ``p = softmax(z)``
(and, for any probability vector, the tempered distribution ``p**(1/T)``
renormalised). It is made of TensorFlow operations only, so the same function
serves numpy arrays and a traced graph (a SavedModel or LiteRT export).
:func:`fit_temperature` picks ``T`` minimising the negative log-likelihood on
validation data, never test data.

Expected calibration error (:func:`reliability_data`) uses ``bins`` equal-width
bins of the confidence (the largest probability): bin ``m`` holds the
confidences in ``(m/M, (m+1)/M]`` (the first bin also holds 0), and

    ECE = sum_m |B_m| / N * |accuracy(B_m) - mean confidence(B_m)|.

The per-bin numbers are a reliability diagram's data;
:func:`risc_tf.trust.plot_reliability` draws it.

An ECE measured on a few hundred images is not zero even for a perfectly
calibrated model: each bin's accuracy is a sample. :func:`ece_consistency`
gives the ECE such a model would show on the same images (consistency
resampling, Broecker and Smith 2007: each image's outcome drawn right with the
probability its confidence states), so a measured ECE can be read against
what its test set can resolve.

References
----------
.. [1] C. Guo, G. Pleiss, Y. Sun, K. Q. Weinberger, "On calibration of modern
   neural networks", ICML 2017 (temperature scaling; ECE with 15 equal-width bins).
.. [2] M. P. Naeini, G. F. Cooper, M. Hauskrecht, "Obtaining well calibrated
   probabilities using Bayesian binning", AAAI 2015 (expected calibration error).
.. [3] J. Broecker, L. A. Smith, "Increasing the reliability of reliability
   diagrams", Weather and Forecasting 22(3), 2007 (consistency resampling).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import tensorflow as tf

from risc_tf.validation import check_int, check_labels, check_number

__all__ = [
    "apply_temperature",
    "check_temperature",
    "ece_consistency",
    "expected_calibration_error",
    "fit_temperature",
    "fit_review_temperature",
    "negative_log_likelihood",
    "reliability_data",
]

#: Probabilities are clipped below at float32's smallest normal number before the log,
#: so a probability of exactly 0 stays (numerically) 0 at every temperature.
_TINY = float(np.finfo(np.float32).tiny)
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def check_temperature(name: str, value) -> float:
    """``value`` as a float if it is a finite number > 0 (a temperature).

    Raises
    ------
    ValueError
        Zero, negative, NaN, infinite or not a number; the message names ``name``.
    """
    return check_number(name, value, 0.0, include_minimum=False)


def _check_proba(proba, name: str = "proba", batch: bool = True) -> np.ndarray:
    p = np.asarray(proba, np.float64)
    if (batch and p.ndim != 2) or p.ndim < 1 or p.shape[-1] < 2 or p.size == 0:
        shape = "(N, C>=2)" if batch else "(..., C>=2)"
        raise ValueError(f"{name} must be {shape} class probabilities; got shape {p.shape}")
    if not np.all(np.isfinite(p)) or p.min() < 0.0 or p.max() > 1.0:
        raise ValueError(f"{name} must hold probabilities in [0, 1] (finite)")
    worst = float(np.max(np.abs(p.sum(axis=-1) - 1.0)))
    if worst > 1e-3:
        raise ValueError(
            f"{name} rows must sum to 1 (softmax outputs, not logits); a row sums to "
            f"{1.0 + worst:.4g} or {1.0 - worst:.4g}"
        )
    return p


def _scaled_logits(proba: tf.Tensor, temperature: float) -> tf.Tensor:
    """``log p / T``: the logits of the calibrated softmax (the one formula of the module)."""
    return tf.math.log(tf.maximum(proba, tf.constant(_TINY, proba.dtype))) / tf.constant(
        temperature, proba.dtype)


def apply_temperature(proba, temperature: float):
    """Calibrated probabilities ``softmax(log(proba) / temperature)``.

    One implementation for numpy and TensorFlow: made of TensorFlow operations
    (log, divide, softmax), so it can be called inside ``tf.function`` and
    exported; a numpy array (or list) gives a numpy array, a tensor gives a tensor.

    Parameters
    ----------
    proba : array_like or tf.Tensor, (..., C)
        Softmax probabilities over the last axis (a batch ``(N, C)`` or one ``(C,)``).
    temperature : float
        ``T > 0``; 1 leaves ``proba`` as it is (up to rounding), ``T > 1``
        softens, ``T < 1`` sharpens. The arg-max never changes.

    Returns
    -------
    np.ndarray or tf.Tensor
        Same shape; float32 unless ``proba`` is float64.

    Raises
    ------
    ValueError
        ``temperature`` not a finite number > 0; a numpy ``proba`` that is not
        probabilities over a last axis of at least 2 classes.

    Examples
    --------
    >>> apply_temperature(np.array([[0.9, 0.1]]), 2.0).round(4).tolist()
    [[0.75, 0.25]]
    """
    temperature = check_temperature("temperature", temperature)
    if isinstance(proba, (tf.Tensor, tf.Variable)):
        if proba.shape.rank == 0 or proba.shape[-1] == 1:
            raise ValueError(f"proba must be (..., C>=2) probabilities; got shape {proba.shape}")
        p = proba if proba.dtype in (tf.float32, tf.float64) else tf.cast(proba, tf.float32)
        return tf.nn.softmax(_scaled_logits(p, temperature), axis=-1)
    dtype = np.float64 if np.asarray(proba).dtype == np.float64 else np.float32
    p = tf.constant(_check_proba(proba, batch=False), dtype)
    return tf.nn.softmax(_scaled_logits(p, temperature), axis=-1).numpy()


def _nll(log_p_labels: tuple[tf.Tensor, np.ndarray], temperature: float) -> float:
    p, y = log_p_labels
    return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
        y, _scaled_logits(p, temperature))))


def _checked(proba, labels) -> tuple[np.ndarray, np.ndarray]:
    p = _check_proba(proba)
    return p, check_labels(labels, n=len(p), num_classes=p.shape[1])


def negative_log_likelihood(proba, labels, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood (nats) of ``labels`` under the calibrated ``proba``.

    Parameters
    ----------
    proba : array_like, (N, C)
        Softmax probabilities.
    labels : array_like, (N,)
        Integer classes (see :func:`risc_tf.validation.check_labels`).
    temperature : float, default 1
        Applied first (:func:`apply_temperature`).

    Returns
    -------
    float
    """
    p, y = _checked(proba, labels)
    return _nll((tf.constant(p), y), check_temperature("temperature", temperature))


def fit_temperature(proba, labels, *, bounds: tuple[float, float] = (0.05, 20.0),
                    tolerance: float = 1e-7) -> float:
    """The temperature minimising the negative log-likelihood of ``labels`` (Guo et al.).

    Fit it on validation data (never on the test set). The NLL is convex in
    ``1/T``, so a golden-section search over ``log T`` within ``bounds`` finds
    the global minimum (to ``tolerance`` in ``log T``).

    Parameters
    ----------
    proba : array_like, (N, C)
        The model's softmax probabilities on validation images.
    labels : array_like, (N,)
        Their true classes.
    bounds : (float, float), default (0.05, 20)
        The search interval; both > 0, the first smaller.
    tolerance : float, default 1e-7
        Width of the final interval, in ``log T``.

    Returns
    -------
    float
        ``T``; a warning is issued when it lies on a bound (e.g. every
        validation prediction right: the NLL falls as ``T`` goes to 0).

    Raises
    ------
    ValueError
        ``proba`` not ``(N, C)`` probabilities, labels of another length or
        outside ``[0, C)``, bad ``bounds`` or ``tolerance``.

    Examples
    --------
    >>> p = np.array([[0.1, 0.9]] * 4)  # 90 % sure, right 3 times in 4
    >>> round(fit_temperature(p, [1, 1, 1, 0]), 4)  # log 9 / log 3
    2.0
    """
    p, y = _checked(proba, labels)
    try:
        lo, hi = (check_temperature("bounds", b) for b in bounds)
    except TypeError:
        raise ValueError(f"bounds must be two numbers > 0; got {bounds!r}") from None
    if not lo < hi:
        raise ValueError(f"bounds must be (lower, upper) with lower < upper; got {bounds!r}")
    tolerance = check_number("tolerance", tolerance, 0.0, include_minimum=False)
    data = (tf.constant(p), y)
    a, b = math.log(lo), math.log(hi)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = _nll(data, math.exp(c)), _nll(data, math.exp(d))
    while b - a > tolerance:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = _nll(data, math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = _nll(data, math.exp(d))
    temperature = math.exp((a + b) / 2.0)
    if min(abs(math.log(temperature / lo)), abs(math.log(temperature / hi))) < 1e-3:
        warnings.warn(
            f"fit_temperature: the best temperature {temperature:.4g} lies on a bound of "
            f"{(lo, hi)}: the validation predictions may be too few, all right (T -> 0) or "
            "no better than chance (T -> infinity)",
            stacklevel=2,
        )
    return temperature


def fit_review_temperature(proba, labels, **kwargs) -> tuple[float, str | None]:
    """:func:`fit_temperature` for probabilities that review thresholds will read.

    When every validation prediction is right, the likelihood keeps rising as
    ``T`` goes to 0: the fit would sharpen every probability to 1, and a
    confidence threshold could no longer tell a sure image from an unsure one
    (an image turned by an angle a RotNet cannot undo would score 1 too). The
    validation set then says nothing about how confident the model should be,
    so the probabilities are left as they are (``T = 1``) and the reason is
    returned.

    Parameters
    ----------
    proba, labels, **kwargs
        As for :func:`fit_temperature`.

    Returns
    -------
    temperature : float
    note : str or None
        Why the temperature was not fitted, or None.

    Examples
    --------
    >>> fit_review_temperature(np.array([[0.2, 0.8], [0.7, 0.3]]), [1, 0])
    (1.0, 'every validation prediction right (2 images): not sharpened, T = 1')
    """
    p, y = _checked(proba, labels)
    if np.all(p.argmax(axis=1) == y):
        return 1.0, (f"every validation prediction right ({len(y)} images): not sharpened, "
                     "T = 1")
    return fit_temperature(p, y, **kwargs), None


def _bins(confidence: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``bins + 1`` equal-width edges and each confidence's bin (the one binning)."""
    bins = check_int("bins", bins, 1)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return edges, np.searchsorted(edges[1:-1], confidence, side="left")


def reliability_data(proba, labels, *, bins: int = 15) -> dict:
    """Per-bin confidence, accuracy and count of the top-class predictions, and the ECE.

    Parameters
    ----------
    proba : array_like, (N, C)
        Softmax probabilities (calibrated or not).
    labels : array_like, (N,)
        True classes.
    bins : int, default 15
        Equal-width confidence bins over [0, 1] (Guo et al.); bin ``m`` holds
        ``(m/bins, (m+1)/bins]``, the first also 0.

    Returns
    -------
    dict
        JSON-ready: ``edges`` (``bins + 1`` floats), ``confidence`` and
        ``accuracy`` (mean per bin, None for an empty bin), ``count`` (per bin),
        ``n``, ``accuracy_overall``, ``ece`` (expected calibration error, the
        count-weighted mean gap) and ``mce`` (the largest gap of a non-empty bin).

    Examples
    --------
    >>> data = reliability_data([[0.9, 0.1], [0.6, 0.4]], [0, 1], bins=10)
    >>> round(data["ece"], 6)  # |1 - 0.9| / 2 + |0 - 0.6| / 2
    0.35
    """
    p, y = _checked(proba, labels)
    confidence, correct = p.max(axis=1), p.argmax(axis=1) == y
    edges, index = _bins(confidence, bins)
    count = np.bincount(index, minlength=bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=bins)
    right = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    filled = count > 0
    mean_conf = np.where(filled, conf_sum / np.maximum(count, 1), np.nan)
    accuracy = np.where(filled, right / np.maximum(count, 1), np.nan)
    gap = np.abs(accuracy - mean_conf)[filled]
    return {
        "edges": edges.tolist(),
        "confidence": [float(v) if f else None for v, f in zip(mean_conf, filled)],
        "accuracy": [float(v) if f else None for v, f in zip(accuracy, filled)],
        "count": count.astype(int).tolist(),
        "n": int(len(y)),
        "accuracy_overall": float(correct.mean()),
        "ece": float(np.sum(count[filled] / len(y) * gap)),
        "mce": float(gap.max()),
    }


def expected_calibration_error(proba, labels, *, bins: int = 15) -> float:
    """Expected calibration error with ``bins`` equal-width bins (see :func:`reliability_data`)."""
    return reliability_data(proba, labels, bins=bins)["ece"]


def ece_consistency(proba, labels, *, bins: int = 15, draws: int = 2000, seed: int = 0) -> dict:
    """The ECE a perfectly calibrated model would show on these images, and where the
    measured one falls (consistency resampling).

    Each draw keeps every image's confidence and bin and makes its top-class answer
    right with probability equal to that confidence, then computes the ECE as
    :func:`reliability_data` does. The draws' ECEs are what sampling alone gives on
    ``N`` images; a measured ECE inside them is no evidence of miscalibration, and a
    goal below them cannot be shown met on this test set.

    Parameters
    ----------
    proba : array_like, (N, C)
        The probabilities whose calibration is measured (e.g. after temperature scaling).
    labels : array_like, (N,)
        True classes.
    bins : int, default 15
        As in :func:`reliability_data`.
    draws : int, default 2000
        Resampled outcome sets.
    seed : int, default 0
        Seeds the draws.

    Returns
    -------
    dict
        JSON-ready: ``ece`` (measured), ``null_mean`` and ``null_p95`` (mean and 95th
        percentile of the draws' ECE), ``p_value`` (share of draws whose ECE is at
        least the measured one, counting the measurement: ``(k + 1) / (draws + 1)``),
        ``draws``.

    Examples
    --------
    >>> p = np.tile([[0.7, 0.3]], (100, 1))
    >>> y = np.r_[np.zeros(70, int), np.ones(30, int)]  # exactly 70 % right at 0.7
    >>> out = ece_consistency(p, y, bins=10, draws=500)
    >>> round(out["ece"], 6), out["null_mean"] > 0.02, out["p_value"] == 1.0
    (0.0, True, True)
    """
    p, y = _checked(proba, labels)
    draws = check_int("draws", draws, 1)
    observed = reliability_data(p, y, bins=bins)["ece"]
    confidence = p.max(axis=1)
    _, index = _bins(confidence, bins)
    # each draw's ECE: sum over bins of |sum over the bin's images of (right - confidence)| / N
    member = np.zeros((len(y), bins))
    member[np.arange(len(y)), index] = 1.0
    right = np.random.default_rng(seed).random((draws, len(y))) < confidence
    null = np.abs((right - confidence) @ member).sum(axis=1) / len(y)
    return {"ece": observed, "null_mean": float(null.mean()),
            "null_p95": float(np.percentile(null, 95)),
            "p_value": float((np.sum(null >= observed - 1e-12) + 1) / (draws + 1)),
            "draws": draws}
