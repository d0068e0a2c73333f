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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from risc_tf.validation import check_int, check_probability

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


def _correct_matrix(correct: Sequence[Sequence[bool]]) -> np.ndarray:
    rows = [np.asarray(c, bool).reshape(-1) for c in correct]
    if not rows or len({len(r) for r in rows}) != 1:
        raise ValueError("correct must hold one equally long boolean array per seed")
    return np.stack(rows)


def bootstrap_accuracy_ci(
    correct: Sequence[Sequence[bool]], level: float = 0.95, resamples: int = 2000, seed: int = 0
) -> dict:
    """Percentile bootstrap interval of the accuracy averaged over seeds.

    Parameters
    ----------
    correct : sequence of boolean arrays, one per seed, each ``(N,)``
        Whether each test image was classified correctly. Image ``i`` of every
        seed is resampled together (the test images are the sampling unit).
    level : float, default 0.95
    resamples : int, default 2000
    seed : int, default 0
        Seeds the resampling (the interval is reproducible).

    Returns
    -------
    dict
        ``{"low", "high", "level", "resamples"}``.
    """
    matrix = _correct_matrix(correct)
    level = check_probability("level", level)
    resamples = check_int("resamples", resamples)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    n = matrix.shape[1]
    idx = rng.integers(0, n, size=(resamples, n))
    per_image = matrix.mean(axis=0)  # averaged over seeds
    stats = per_image[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return {"low": float(low), "high": float(high), "level": level, "resamples": resamples}


def mcnemar_exact(a_correct, b_correct) -> dict:
    """Exact (binomial) McNemar test of two methods on the same images.

    Returns
    -------
    dict
        ``{"a_only", "b_only", "p_value"}``: images only A gets right, only B gets
        right, and the two-sided p-value of "A and B are equally accurate".
    """
    from scipy.stats import binomtest

    a = np.asarray(a_correct, bool).reshape(-1)
    b = np.asarray(b_correct, bool).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"the two methods must be scored on the same images: {a.shape} vs "
                         f"{b.shape}")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = a_only + b_only
    p = 1.0 if n == 0 else float(binomtest(a_only, n, 0.5).pvalue)
    return {"a_only": a_only, "b_only": b_only, "p_value": p}


def paired_permutation_test(a_correct: Sequence[Sequence[bool]],
                            b_correct: Sequence[Sequence[bool]], permutations: int = 20000,
                            seed: int = 0) -> dict:
    """Sign-flip permutation test of two methods on the same images, over seeds.

    Each image's difference ``d_i`` = (seeds where A is right - seeds where B is
    right) / seeds; under the null (A and B equally accurate) each ``d_i`` is as
    likely to be negative as positive, so flipping signs at random gives the
    null distribution of the mean difference. With one seed this is the
    two-sided sign test on the discordant images, i.e. McNemar's exact test.

    Parameters
    ----------
    a_correct, b_correct : one boolean array ``(N,)`` per seed, same seeds and images
    permutations : int, default 20000
    seed : int, default 0
        Seeds the Monte Carlo draw (the p-value is reproducible).

    Returns
    -------
    dict
        ``{"mean_difference", "images_differing", "p_value", "permutations"}``;
        ``mean_difference`` > 0 means A is more accurate.
    """
    a, b = _correct_matrix(a_correct), _correct_matrix(b_correct)
    if a.shape != b.shape:
        raise ValueError(f"the two methods must be scored on the same seeds and images: "
                         f"{a.shape} vs {b.shape}")
    permutations = check_int("permutations", permutations)
    d = (a.astype(np.float64) - b).mean(axis=0)
    d = d[d != 0]
    observed = float(d.sum())
    if d.size == 0:
        p = 1.0
    else:
        rng = np.random.default_rng(check_int("seed", seed, 0))
        signs = rng.choice(np.array([-1.0, 1.0]), size=(permutations, d.size))
        null = np.abs(signs @ np.abs(d))
        p = float((np.sum(null >= abs(observed) - 1e-12) + 1) / (permutations + 1))
    return {"mean_difference": observed / a.shape[1], "images_differing": int(d.size),
            "p_value": p, "permutations": permutations}


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (controls the family-wise error rate)."""
    names = sorted(p_values, key=lambda k: p_values[k])
    m, running, out = len(names), 0.0, {}
    for i, name in enumerate(names):
        running = max(running, min(1.0, (m - i) * p_values[name]))
        out[name] = running
    return out


def compare_paired(
    method: str, per_seed_correct: Mapping[str, Sequence[Sequence[bool]]],
    baselines: Sequence[str], alpha: float = ALPHA,
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

    Returns
    -------
    dict
        baseline -> ``{"per_seed": [mcnemar_exact...], "combined":
        paired_permutation_test, "p_holm", "verdict"}`` with verdict ``"better"``,
        ``"at par"`` or ``"worse"`` for ``method`` against that baseline.
    """
    alpha = check_probability("alpha", alpha)
    ours = _correct_matrix(per_seed_correct[method])
    out = {}
    for base in baselines:
        theirs = _correct_matrix(per_seed_correct[base])
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
