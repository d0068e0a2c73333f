"""Statistics behind a verdict between methods: spread, intervals, paired tests.

Runs with several seeds give, per method, one accuracy per seed on the same
kind of test set. This module turns them into what a reader can trust:

* :func:`mean_std`: mean and sample standard deviation over seeds (run-to-run
  spread of training);
* :func:`bootstrap_accuracy_ci`: a percentile bootstrap interval of the
  seed-averaged accuracy, resampling test images (the test set's sampling
  error), seeded;
* :func:`mcnemar_exact`: the exact McNemar test of two methods on the same
  images (only the images one gets right and the other wrong count), from
  ``scipy.stats.binomtest``;
* :func:`paired_permutation_test`: the combined test over seeds, with the test
  image as the unit: each image's difference between the two methods,
  averaged over seeds, and a sign-flip permutation test of its mean (seeded
  Monte Carlo). Images are the sampling unit because every seed is scored on
  the same images, so an image one method gets right in one seed it tends to
  get right in the others: summing McNemar's discordant counts over seeds
  would treat those as independent and reject far too often;
* :func:`paired_seed_test`: the seed as the unit: a paired t-test of the
  per-seed accuracy differences (each seed is a whole training run; the
  image-level test above holds each seed's trained models fixed);
* :func:`holm`: the correction for the comparisons made together.

:mod:`risc_tf.verdicts` turns them into a verdict between two methods.

References
----------
.. [1] Q. McNemar, "Note on the sampling error of the difference between
   correlated proportions or percentages", *Psychometrika* 12(2):153-157, 1947
   (:func:`mcnemar_exact`; its use for two classifiers on one test set:
   T. G. Dietterich, *Neural Computation* 10(7):1895-1923, 1998).
.. [2] R. A. Fisher, *The Design of Experiments*, Oliver & Boyd, 1935, section 21;
   P. Good, *Permutation, Parametric, and Bootstrap Tests of Hypotheses*, 3rd ed.,
   Springer, 2005, section 3.6 (:func:`paired_permutation_test`, the paired
   sign-flip test); B. Phipson and G. K. Smyth, *Statistical Applications in
   Genetics and Molecular Biology* 9(1):39, 2010 (its Monte Carlo p-value).
.. [3] B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
   Hall, 1993, ch. 13 (:func:`bootstrap_accuracy_ci`, the percentile interval).
.. [4] S. Holm, "A simple sequentially rejective multiple test procedure",
   *Scandinavian Journal of Statistics* 6(2):65-70, 1979 (:func:`holm`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from risc_tf.validation import check_int, check_number, check_probability

__all__ = [
    "ALPHA",
    "bootstrap_accuracy_ci",
    "holm",
    "mcnemar_exact",
    "mean_std",
    "paired_permutation_test",
    "paired_score_test",
    "paired_seed_test",
]

#: Significance level of every verdict.
ALPHA = 0.05


def mean_std(values: Sequence[float]) -> dict:
    """``{"mean", "std", "n", "values"}``; std is the sample standard deviation (0 for one
    value); None values are left out."""
    v = np.asarray([x for x in values if x is not None], np.float64)
    if v.size == 0:
        return {"mean": None, "std": None, "n": 0, "values": []}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size), "values": v.tolist()}


def _booleans(name: str, values) -> np.ndarray:
    """``values`` as a flat boolean array; booleans or the numbers 0 and 1 only (predicted
    labels passed by mistake would otherwise turn silently into "correct")."""
    arr = np.asarray(values)
    if arr.dtype != bool:
        numeric = np.issubdtype(arr.dtype, np.number)
        if not numeric or not np.isin(arr, (0, 1)).all():
            shown = np.unique(arr)[:6] if numeric else arr.reshape(-1)[:6]
            raise ValueError(f"{name} must hold booleans (or 0 / 1), whether each image was "
                             f"classified correctly; got values {shown}")
        arr = arr.astype(bool)
    return arr.reshape(-1)


def _correct_matrix(name: str, correct: Sequence[Sequence[bool]]) -> np.ndarray:
    """One row per seed, one column per image; checked."""
    rows = [_booleans(name, c) for c in correct]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError(f"{name} must hold one equally long boolean array per seed; got "
                         f"lengths {[len(r) for r in rows]}")
    if rows[0].size == 0:
        raise ValueError(f"{name} must hold at least one image")
    return np.stack(rows)


def bootstrap_accuracy_ci(
    correct: Sequence[Sequence[bool]], *, level: float = 0.95, resamples: int = 2000,
    seed: int = 0,
) -> dict:
    """Percentile bootstrap interval of the accuracy averaged over seeds.

    Parameters
    ----------
    correct : sequence of boolean arrays, one per seed, each ``(N,)``
        Whether each test image was classified correctly. Image ``i`` of every
        seed is resampled together (the test images are the sampling unit).
    level : float, default 0.95
        Confidence level, strictly between 0 and 1.
    resamples : int, default 2000
        Bootstrap resamples of the ``N`` images.
    seed : int, default 0
        Seeds the resampling (the interval is reproducible).

    Returns
    -------
    dict
        ``{"low", "high", "level", "resamples"}``.

    Raises
    ------
    ValueError
        ``correct`` empty, of unequal lengths or not booleans; an option out of range.

    References
    ----------
    B. Efron and R. J. Tibshirani, *An Introduction to the Bootstrap*, Chapman &
    Hall, 1993, ch. 13 (the percentile interval).

    Examples
    --------
    >>> ci = bootstrap_accuracy_ci([[True, True, False, True]] * 3, level=0.9)
    >>> 0.0 <= ci["low"] <= 0.75 <= ci["high"] <= 1.0
    True
    """
    matrix = _correct_matrix("correct", correct)
    level = check_number("level", level, 0.0, 1.0, include_minimum=False,
                         include_maximum=False)
    resamples = check_int("resamples", resamples)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    n = matrix.shape[1]
    idx = rng.integers(0, n, size=(resamples, n))
    per_image = matrix.mean(axis=0)  # averaged over seeds
    stats = per_image[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return {"low": float(low), "high": float(high), "level": level, "resamples": resamples}


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """Exact (binomial) McNemar test of two methods on the same images.

    Only the discordant images count: under the null hypothesis "A and B are
    equally accurate" an image that exactly one of them gets right is as likely
    to be one of A's as one of B's, so A's count among them is binomial with
    probability 1/2. The two-sided p-value is ``scipy.stats.binomtest``'s.

    Parameters
    ----------
    a_correct, b_correct : boolean arrays ``(N,)``
        Whether method A (B) classified each image correctly, the same images in
        the same order (booleans or 0 / 1).

    Returns
    -------
    dict
        ``{"a_only", "b_only", "p_value"}``: images only A gets right, only B gets
        right, and the two-sided p-value of "A and B are equally accurate" (1 when
        no image is discordant).

    Raises
    ------
    ValueError
        Arrays of different lengths, without images, or not booleans.

    References
    ----------
    Q. McNemar, "Note on the sampling error of the difference between correlated
    proportions or percentages", *Psychometrika* 12(2):153-157, 1947.
    T. G. Dietterich, "Approximate statistical tests for comparing supervised
    classification learning algorithms", *Neural Computation* 10(7):1895-1923, 1998.
    M. W. Fagerland, S. Lydersen and P. Laake, "The McNemar test for binary
    matched-pairs data", *BMC Medical Research Methodology* 13:91, 2013 (the exact
    conditional version).

    Examples
    --------
    >>> r = mcnemar_exact([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    >>> r["a_only"], r["b_only"], round(r["p_value"], 4)  # 2 * (1 + 10) / 2**10
    (9, 1, 0.0215)
    """
    from scipy.stats import binomtest

    a = _booleans("a_correct", a_correct)
    b = _booleans("b_correct", b_correct)
    if a.shape != b.shape:
        raise ValueError(f"the two methods must be scored on the same images: {a.shape} vs "
                         f"{b.shape}")
    if a.size == 0:
        raise ValueError("a_correct and b_correct must hold at least one image")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def _sign_flip(d: np.ndarray, permutations: int, seed: int) -> float:
    """Two-sided Monte Carlo p-value of the mean of per-image differences ``d``."""
    d = d[d != 0]
    if d.size == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, d.size))
    null = np.abs(signs @ np.abs(d))
    return float((np.sum(null >= abs(float(d.sum())) - 1e-12) + 1) / (permutations + 1))


def paired_permutation_test(a_correct: Sequence[Sequence[bool]],
                            b_correct: Sequence[Sequence[bool]], *, permutations: int = 20000,
                            seed: int = 0) -> dict:
    """Sign-flip permutation test of two methods on the same images, over seeds.

    Each image's difference ``d_i`` = (seeds where A is right - seeds where B is
    right) / seeds; under the null (A and B equally accurate) each ``d_i`` is as
    likely to be negative as positive, so flipping signs at random gives the
    null distribution of the mean difference. With one seed this is the
    two-sided sign test on the discordant images, i.e. McNemar's exact test.
    The p-value counts the observed statistic among the draws, ``(hits + 1) /
    (permutations + 1)``, so it is never 0.

    Parameters
    ----------
    a_correct, b_correct : one boolean array ``(N,)`` per seed, same seeds and images
    permutations : int, default 20000
        Monte Carlo draws of the signs.
    seed : int, default 0
        Seeds the Monte Carlo draw (the p-value is reproducible).

    Returns
    -------
    dict
        ``{"mean_difference", "images_differing", "p_value", "permutations"}``;
        ``mean_difference`` > 0 means A is more accurate.

    Raises
    ------
    ValueError
        Inputs of different shapes, empty, or not booleans; an option out of range.

    References
    ----------
    R. A. Fisher, *The Design of Experiments*, Oliver & Boyd, 1935, section 21
    (the paired sign-flip test).
    P. Good, *Permutation, Parametric, and Bootstrap Tests of Hypotheses*, 3rd ed.,
    Springer, 2005, section 3.6 (matched pairs).
    B. Phipson and G. K. Smyth, "Permutation p-values should never be zero",
    *Statistical Applications in Genetics and Molecular Biology* 9(1):39, 2010.
    """
    a, b = _correct_matrix("a_correct", a_correct), _correct_matrix("b_correct", b_correct)
    if a.shape != b.shape:
        raise ValueError(f"the two methods must be scored on the same seeds and images: "
                         f"{a.shape} vs {b.shape}")
    return _image_test(a.astype(np.float64), b.astype(np.float64), permutations, seed)


def _image_test(a: np.ndarray, b: np.ndarray, permutations, seed) -> dict:
    permutations = check_int("permutations", permutations)
    d = (a - b).mean(axis=0)
    return {"mean_difference": float(d.mean()), "images_differing": int(np.sum(d != 0)),
            "p_value": _sign_flip(d, permutations, check_int("seed", seed, 0)),
            "permutations": permutations}


def paired_score_test(a_scores: Sequence[Sequence[float]], b_scores: Sequence[Sequence[float]],
                      *, permutations: int = 20000, seed: int = 0) -> dict:
    """:func:`paired_permutation_test` for per-image scores in [0, 1] instead of booleans.

    E.g. the fraction of the sweep's angles at which each image is classified
    correctly: each image's difference, averaged over seeds, sign-flipped.

    Parameters
    ----------
    a_scores, b_scores : one array ``(N,)`` of numbers in [0, 1] per seed

    Returns
    -------
    dict
        As :func:`paired_permutation_test`.
    """
    a, b = (np.stack([np.asarray(r, np.float64).reshape(-1) for r in x]) for x in (a_scores,
                                                                              b_scores))
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"the two methods must be scored on the same seeds and images: "
                         f"{a.shape} vs {b.shape}")
    if not (np.all((a >= 0) & (a <= 1)) and np.all((b >= 0) & (b <= 1))):
        raise ValueError("a_scores and b_scores must lie in [0, 1]")
    return _image_test(a, b, permutations, seed)


def paired_seed_test(a_values: Sequence[float], b_values: Sequence[float]) -> dict:
    """Paired t-test over seeds: is one method's accuracy ahead of another's, seed by seed?

    The image-level tests treat the trained models of each seed as fixed; this one
    takes the seed (a whole training run) as the unit: the per-seed differences
    ``a_s - b_s`` and Student's one-sample t-test of their mean against 0
    (``scipy.stats.ttest_rel``). With a single seed, or identical differences, there
    is no spread to test against: the p-value is 1 for a zero difference, 0 for a
    constant non-zero one.

    Parameters
    ----------
    a_values, b_values : sequence of float
        One score per seed (the same seeds, in the same order).

    Returns
    -------
    dict
        ``{"mean_difference", "differences", "seeds", "ahead", "p_value"}``; ``ahead``
        counts the seeds where A is ahead.

    References
    ----------
    Student, "The probable error of a mean", *Biometrika* 6(1):1-25, 1908; for its use
    over training runs: J. Demsar, "Statistical comparisons of classifiers over
    multiple data sets", *JMLR* 7:1-30, 2006.
    """
    a, b = np.asarray(a_values, np.float64), np.asarray(b_values, np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"a_values and b_values must hold one number per seed, the same "
                         f"seeds; got {a.shape} and {b.shape}")
    d = a - b
    if d.size < 2 or np.allclose(d, d[0]):
        p = 1.0 if np.allclose(d, 0.0) else (0.0 if d.size >= 2 else 1.0)
    else:
        from scipy.stats import ttest_rel

        p = float(ttest_rel(a, b).pvalue)
    return {"mean_difference": float(d.mean()), "differences": d.tolist(),
            "seeds": int(d.size), "ahead": int(np.sum(d > 0)), "p_value": p}


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate).

    The ``m`` p-values sorted ascending, the ``i``-th (from 0) is multiplied by
    ``m - i``, made non-decreasing and capped at 1; a hypothesis is rejected at
    level ``alpha`` when its adjusted p-value is below ``alpha``.

    Parameters
    ----------
    p_values : mapping of str to float
        Name -> raw p-value, each in [0, 1].

    Returns
    -------
    dict
        Name -> adjusted p-value (same names).

    Raises
    ------
    ValueError
        A p-value that is not a number in [0, 1].

    References
    ----------
    S. Holm, "A simple sequentially rejective multiple test procedure",
    *Scandinavian Journal of Statistics* 6(2):65-70, 1979.

    Examples
    --------
    >>> holm({"a": 0.01, "b": 0.04, "c": 0.03})
    {'a': 0.03, 'c': 0.06, 'b': 0.06}
    """
    checked = {name: check_probability(f"p_values[{name!r}]", p) for name, p in p_values.items()}
    names = sorted(checked, key=lambda k: checked[k])
    m, running, out = len(names), 0.0, {}
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * checked[name]))
        out[name] = running
    return out
