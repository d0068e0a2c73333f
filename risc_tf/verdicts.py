"""Verdicts between methods: better, worse, at par or inconclusive, from two tests that agree.

A method is compared with each baseline twice (:mod:`risc_tf.statistics`):

* over the test images (:func:`~risc_tf.statistics.paired_permutation_test`, or
  :func:`~risc_tf.statistics.paired_score_test` for per-image scores such as the
  fraction of a sweep's angles): the sampling error of the test set, each seed's
  trained models held fixed;
* over the seeds (:func:`~risc_tf.statistics.paired_seed_test`): each seed is a
  whole training run, so this is the spread of training.

Each is Holm-corrected over the baselines compared together; the verdict
(:func:`combined_verdict`) says "better" or "worse" only when both are
significant in the same direction, "at par" when neither is, and
"inconclusive" otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from risc_tf.statistics import (
    ALPHA,
    _correct_matrix,
    holm,
    mcnemar_exact,
    paired_permutation_test,
    paired_score_test,
    paired_seed_test,
)
from risc_tf.validation import check_probability

__all__ = ["VERDICTS", "combined_verdict", "compare_paired", "compare_scores"]

#: The verdicts of :func:`combined_verdict`.
VERDICTS = ("better", "worse", "at par", "inconclusive")


def combined_verdict(image_p: float, image_difference: float, seed_p: float,
                     seed_difference: float, *, alpha: float = ALPHA) -> str:
    """"better" / "worse" only when the image-level and the seed-level test agree.

    Both significant at ``alpha`` in the same direction: ``"better"`` or
    ``"worse"``; neither significant: ``"at par"``; one significant, or both in
    opposite directions: ``"inconclusive"``.
    """
    image = 0 if image_p >= alpha else int(np.sign(image_difference))
    seed = 0 if seed_p >= alpha else int(np.sign(seed_difference))
    if image == seed:
        return {1: "better", -1: "worse", 0: "at par"}[image]
    return "inconclusive"


def compare_paired(
    method: str, per_seed_correct: Mapping[str, Sequence[Sequence[bool]]],
    baselines: Sequence[str], *, alpha: float = ALPHA,
) -> dict:
    """Paired tests of one method against each baseline: McNemar per seed, the image-level
    permutation test over seeds, and the seed-level t-test; the verdict needs both.

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
        paired_permutation_test, "p_holm", "seeds": paired_seed_test of the per-seed
        accuracies, "seeds_p_holm", "verdict"}``; both tests are Holm-adjusted over
        the baselines and the verdict (:func:`combined_verdict`) is ``"better"`` or
        ``"worse"`` only when they agree, else ``"at par"`` or ``"inconclusive"``.

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
        seeds = paired_seed_test(ours.mean(axis=1), theirs.mean(axis=1))
        out[base] = {"per_seed": per_seed, "combined": combined, "seeds": seeds}
    return _adjust_and_judge(out, alpha)


def _adjust_and_judge(out: dict, alpha: float) -> dict:
    """Holm over the baselines for both tests, then the verdict of each comparison."""
    adjusted = holm({b: r["combined"]["p_value"] for b, r in out.items()})
    seeds = holm({b: r["seeds"]["p_value"] for b, r in out.items()})
    for base, r in out.items():
        r["p_holm"], r["seeds_p_holm"] = adjusted[base], seeds[base]
        r["verdict"] = combined_verdict(r["p_holm"], r["combined"]["mean_difference"],
                                        r["seeds_p_holm"], r["seeds"]["mean_difference"],
                                        alpha=alpha)
    return out


def compare_scores(
    method: str, per_seed_scores: Mapping[str, Sequence[Sequence[float]]],
    baselines: Sequence[str], *, alpha: float = ALPHA,
) -> dict:
    """:func:`compare_paired` for per-image scores in [0, 1] (e.g. the fraction of a sweep's
    angles an image is classified correctly at): the image-level test
    (:func:`paired_score_test`) and the seed-level t-test on the per-seed mean scores.

    Returns
    -------
    dict
        baseline -> ``{"combined", "p_holm", "seeds", "seeds_p_holm", "verdict"}``.
    """
    alpha = check_probability("alpha", alpha)
    for name in (method, *baselines):
        if name not in per_seed_scores:
            raise ValueError(f"per_seed_scores has no {name!r}")
    ours = np.asarray(per_seed_scores[method], np.float64)
    out = {}
    for base in baselines:
        theirs = np.asarray(per_seed_scores[base], np.float64)
        out[base] = {"combined": paired_score_test(ours, theirs),
                     "seeds": paired_seed_test(ours.mean(axis=1), theirs.mean(axis=1))}
    return _adjust_and_judge(out, alpha)
