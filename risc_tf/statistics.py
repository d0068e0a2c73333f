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
* :func:`compare_paired`: both, per baseline, with a verdict better / at par /
  worse at the 5 % level after Holm's correction over the comparisons made
  together (:func:`holm`).

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
    "compare_paired",
    "holm",
    "mcnemar_exact",
    "mean_std",
    "paired_permutation_test",
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
    permutations = check_int("permutations", permutations)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    d = (a.astype(np.float64) - b).mean(axis=0)
    d = d[d != 0]
    observed = float(d.sum())
    if d.size == 0:
        p = 1.0
    else:
        signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, d.size))
        null = np.abs(signs @ np.abs(d))
        p = float((np.sum(null >= abs(observed) - 1e-12) + 1) / (permutations + 1))
    return {"mean_difference": observed / a.shape[1], "images_differing": int(d.size),
            "p_value": p, "permutations": permutations}


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


def compare_paired(
    method: str, per_seed_correct: Mapping[str, Sequence[Sequence[bool]]],
    baselines: Sequence[str], *, alpha: float = ALPHA,
) -> dict:
    """Paired tests of one method against each baseline: McNemar per seed, and the combined
    image-level permutation test over seeds that the verdict rests on.

    Parameters
    ----------
    method : str
        The method under test (e.g. ``"risc_hard"``).
    per_seed_correct : mapping
        method -> one boolean array per seed (the same seeds, in the same order,
        for every method; seed ``s`` of every method scored on the same images).
    baselines : sequence of str
        The methods to compare against.
    alpha : float, default 0.05
        Significance level of the verdict, applied to the Holm-adjusted p-value.

    Returns
    -------
    dict
        baseline -> ``{"per_seed": [mcnemar_exact...], "combined":
        paired_permutation_test, "p_holm", "verdict"}`` with verdict ``"better"``,
        ``"at par"`` or ``"worse"`` for ``method`` against that baseline.

    Raises
    ------
    ValueError
        ``method`` or a baseline missing from ``per_seed_correct``; methods not
        scored on the same images; ``alpha`` out of [0, 1].

    References
    ----------
    See :func:`mcnemar_exact`, :func:`paired_permutation_test` and :func:`holm`.
    """
    alpha = check_probability("alpha", alpha)
    for name in (method, *baselines):
        if name not in per_seed_correct:
            raise ValueError(f"per_seed_correct has no {name!r} (it has "
                             f"{', '.join(map(repr, per_seed_correct))})")
    ours = _correct_matrix(f"per_seed_correct[{method!r}]", per_seed_correct[method])
    out = {}
    for base in baselines:
        theirs = _correct_matrix(f"per_seed_correct[{base!r}]", per_seed_correct[base])
        if theirs.shape != ours.shape:
            raise ValueError(f"{method} and {base} were not scored on the same images")
        per_seed = [mcnemar_exact(a, b) for a, b in zip(ours, theirs)]
        combined = paired_permutation_test(ours, theirs)
        out[base] = {"per_seed": per_seed, "combined": combined}
    adjusted = holm({b: r["combined"]["p_value"] for b, r in out.items()})
    for base, r in out.items():
        r["p_holm"] = adjusted[base]
        if r["p_holm"] >= alpha:
            r["verdict"] = "at par"
        else:
            r["verdict"] = "better" if r["combined"]["mean_difference"] > 0 else "worse"
    return out
