"""Verdicts between methods (risc_tf.verdicts): better or worse only when the test over the
images and the test over the seeds agree."""

import numpy as np
import pytest

from risc_tf.statistics import holm, mcnemar_exact
from risc_tf.verdicts import combined_verdict, compare_paired, compare_scores


def _pair(a_only: int, b_only: int, both: int = 0, neither: int = 0, seed: int = 0):
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * neither, bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * neither, bool)
    order = np.random.default_rng(seed).permutation(a.size)
    return a[order], b[order]


@pytest.mark.parametrize("image, seed, verdict", [
    ((0.001, 0.05), (0.01, 0.04), "better"),
    ((0.001, -0.05), (0.01, -0.04), "worse"),
    ((0.3, 0.01), (0.4, 0.01), "at par"),
    ((0.001, 0.05), (0.2, 0.04), "inconclusive"),  # the images say so, the seeds do not
    ((0.2, 0.05), (0.01, 0.04), "inconclusive"),
    ((0.001, 0.05), (0.001, -0.01), "inconclusive"),  # opposite directions
])
def test_the_two_tests_must_agree(image, seed, verdict):
    assert combined_verdict(*image, *seed) == verdict


def _methods(risc, others: dict) -> dict:
    return {"risc_hard": risc, **others}


def test_verdict_better_at_par_and_worse_follow_from_images_and_seeds():
    rng = np.random.default_rng(0)
    base = [rng.random(400) < 0.7 for _ in range(3)]
    better = [b | (rng.random(400) < 0.5) for b in base]  # right wherever base is, and more
    worse = [b & (rng.random(400) < 0.7) for b in base]
    out = compare_paired("risc_hard", _methods(better, {"base": base}), ["base"])["base"]
    assert out["verdict"] == "better" and out["p_holm"] < 0.001 and out["seeds_p_holm"] < 0.05
    assert out["combined"]["mean_difference"] > 0.1 and out["seeds"]["ahead"] == 3
    assert [s["b_only"] for s in out["per_seed"]] == [0, 0, 0]
    assert compare_paired("risc_hard", _methods(worse, {"base": base}), ["base"])["base"][
        "verdict"] == "worse"
    same = compare_paired("risc_hard", _methods(base, {"base": base}), ["base"])["base"]
    assert same["verdict"] == "at par" and same["p_holm"] == 1.0 and same["seeds_p_holm"] == 1.0


def test_one_seed_is_never_a_verdict():
    """McNemar 14 / 4 discordant images, p = 0.031: significant over the images, but one
    training run says nothing about the next: inconclusive, not better."""
    a, b = _pair(14, 4, both=50, neither=20)
    alone = compare_paired("risc_hard", {"risc_hard": [a], "b1": [b]}, ["b1"])["b1"]
    assert alone["p_holm"] < 0.05 and alone["seeds_p_holm"] == 1.0
    assert alone["verdict"] == "inconclusive"


def test_both_tests_are_holm_corrected_over_the_baselines():
    a = [_pair(14, 4, both=50, neither=20, seed=s)[0] for s in range(3)]
    b = [_pair(14, 4, both=50, neither=20, seed=s)[1] for s in range(3)]
    b2 = [x.copy() for x in b]
    b2[0][np.flatnonzero(~b2[0])[:2]] = True  # the seeds' differences vary a little
    together = compare_paired("risc_hard", {"risc_hard": a, "b1": b, "b2": b2}, ["b1", "b2"])
    raw = {k: v["combined"]["p_value"] for k, v in together.items()}
    seeds = {k: v["seeds"]["p_value"] for k, v in together.items()}
    for name, t in together.items():
        assert t["p_holm"] == holm(raw)[name] and t["seeds_p_holm"] == holm(seeds)[name]
    assert mcnemar_exact(a[0], b[0])["a_only"] == 14


def test_compare_scores_for_a_sweep():
    """Per-image fractions of a sweep's angles: a method right at more angles of every image,
    in every seed, is better; the same scores are at par."""
    rng = np.random.default_rng(2)
    base = [rng.integers(0, 30, 200) / 36 for _ in range(3)]
    ahead = [np.minimum(b + rng.integers(1, 6, 200) / 36, 1.0) for b in base]
    out = compare_scores("risc_angle", {"risc_angle": ahead, "rotation_augmented": base},
                         ["rotation_augmented"])["rotation_augmented"]
    assert out["verdict"] == "better" and out["combined"]["mean_difference"] > 0
    same = compare_scores("risc_angle", {"risc_angle": base, "rotation_augmented": base},
                          ["rotation_augmented"])["rotation_augmented"]
    assert same["verdict"] == "at par"


def test_compare_paired_refuses_missing_or_mismatched_methods():
    a, b = _pair(3, 1)
    with pytest.raises(ValueError, match=r"per_seed_correct has no 'risc_soft' \(it has "):
        compare_paired("risc_soft", {"risc_hard": [a], "base": [b]}, ["base"])
    with pytest.raises(ValueError, match="per_seed_correct has no 'tta'"):
        compare_paired("risc_hard", {"risc_hard": [a], "base": [b]}, ["base", "tta"])
    with pytest.raises(ValueError, match="risc_hard and base were not scored on the same"):
        compare_paired("risc_hard", {"risc_hard": [a], "base": [b[:-1]]}, ["base"])
    with pytest.raises(ValueError, match="alpha must be"):
        compare_paired("risc_hard", {"risc_hard": [a], "base": [b]}, ["base"], alpha=2.0)
    with pytest.raises(TypeError):
        compare_paired("risc_hard", {"risc_hard": [a], "base": [b]}, ["base"], 0.01)
