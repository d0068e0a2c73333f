"""risc_tf.statistics against references: scipy, exact enumeration, hand-computed values and the
coverage of the bootstrap interval on synthetic data whose true accuracy is known."""

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from risc_tf.statistics import (
    bootstrap_accuracy_ci,
    holm,
    mcnemar_exact,
    mean_std,
    paired_permutation_test,
    paired_score_test,
    paired_seed_test,
)


def _pair(a_only: int, b_only: int, both: int = 0, neither: int = 0, seed: int = 0):
    """Correctness of methods A and B on the same images, in a shuffled order."""
    a = np.array([1] * a_only + [0] * b_only + [1] * both + [0] * neither, bool)
    b = np.array([0] * a_only + [1] * b_only + [1] * both + [0] * neither, bool)
    order = np.random.default_rng(seed).permutation(a.size)
    return a[order], b[order]


def _two_sided_sign_test(b: int, c: int) -> float:
    """Exact McNemar by hand: twice the smaller binomial(b + c, 1/2) tail, capped at 1."""
    n, k = b + c, min(b, c)
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n)


def _mc_tolerance(p: float, draws: int) -> float:
    """Five standard errors of a Monte Carlo p-value, plus its +1 correction."""
    return 5 * math.sqrt(max(p * (1 - p), 1e-4) / draws) + 1.0 / draws


# ---- McNemar -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a_only", "b_only", "expected"),
    [
        (1, 9, 22 / 1024),  # 2 * (C(10,0) + C(10,1)) / 2**10
        (9, 1, 22 / 1024),
        (0, 6, 2 / 64),
        (5, 5, 1.0),
        (0, 0, 1.0),  # no discordant image: no evidence either way
        (12, 3, None),
        (30, 45, None),
    ],
)
def test_mcnemar_exact_is_the_two_sided_sign_test_on_the_discordant_images(a_only, b_only,
                                                                           expected):
    a, b = _pair(a_only, b_only, both=40, neither=17)
    result = mcnemar_exact(a, b)
    assert (result["a_only"], result["b_only"]) == (a_only, b_only)
    reference = _two_sided_sign_test(a_only, b_only)
    if expected is not None:
        assert reference == pytest.approx(expected, rel=1e-12)
    assert result["p_value"] == pytest.approx(reference, rel=1e-9)
    if a_only + b_only:
        scipy_p = stats.binomtest(b_only, a_only + b_only, 0.5).pvalue  # the other direction
        assert result["p_value"] == pytest.approx(scipy_p, rel=1e-9)
    # concordant images do not count: the same discordant pairs and one shared right answer
    assert mcnemar_exact(*_pair(a_only, b_only, both=1))["p_value"] == result["p_value"]
    assert mcnemar_exact(b, a)["p_value"] == result["p_value"]  # symmetric


def test_mcnemar_exact_takes_zero_one_integers_and_refuses_what_is_not_correctness():
    a, b = _pair(7, 2, both=5)
    assert mcnemar_exact(a.astype(int), b.astype(np.uint8)) == mcnemar_exact(a, b)
    with pytest.raises(ValueError, match="same images"):
        mcnemar_exact(a, b[:-1])
    with pytest.raises(ValueError, match=r"a_correct must hold booleans .*got values \[0 1 2\]"):
        mcnemar_exact([0, 1, 2], [1, 1, 0])  # predicted labels, not correctness
    with pytest.raises(ValueError, match="b_correct must hold booleans"):
        mcnemar_exact([1, 0], [0.5, 1.0])
    with pytest.raises(ValueError, match="at least one image"):
        mcnemar_exact([], [])


# ---- paired permutation test ---------------------------------------------------------------


def _enumerated_p(a: np.ndarray, b: np.ndarray) -> float:
    """The exact sign-flip p-value: every sign pattern of the per-image differences."""
    d = (a.astype(float) - b).mean(axis=0)
    d = d[d != 0]
    signs = np.array(list(itertools.product((-1.0, 1.0), repeat=d.size)))
    return float(np.mean(np.abs(signs @ np.abs(d)) >= abs(d.sum()) - 1e-12))


def _scipy_exact_p(a: np.ndarray, b: np.ndarray) -> float:
    """scipy's paired permutation test of the mean difference, all 2**n sign patterns."""
    result = stats.permutation_test(
        (a.mean(axis=0), b.mean(axis=0)), lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples", n_resamples=np.inf, vectorized=True)
    return float(result.pvalue)


def _seeds(rng: np.random.Generator, n: int, seeds: int, p_a: float, p_b: float):
    """Two methods on the same ``n`` images over ``seeds`` seeds; each image has a difficulty
    shared by every seed and both methods (the correlation the image-level test is for)."""
    easy = rng.random(n)
    a = np.stack([rng.random(n) < p_a * (0.5 + easy) for _ in range(seeds)])
    b = np.stack([rng.random(n) < p_b * (0.5 + easy) for _ in range(seeds)])
    return a, b


@pytest.mark.parametrize("case", range(4))
def test_permutation_p_value_matches_exact_enumeration_and_scipy(case):
    rng = np.random.default_rng(case)
    a, b = _seeds(rng, n=14, seeds=[1, 2, 3, 3][case], p_a=0.7, p_b=[0.4, 0.6, 0.7, 0.45][case])
    draws = 40000
    result = paired_permutation_test(a, b, permutations=draws, seed=case)
    exact = _enumerated_p(a, b)
    assert exact == pytest.approx(_scipy_exact_p(a, b), abs=1e-12)
    assert result["p_value"] == pytest.approx(exact, abs=_mc_tolerance(exact, draws))
    assert result["mean_difference"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert result["images_differing"] == int(np.sum(a.mean(0) != b.mean(0)))
    assert result["permutations"] == draws


def test_permutation_test_with_one_seed_is_mcnemars_exact_test():
    for a_only, b_only in ((3, 12), (20, 9), (4, 4)):
        a, b = _pair(a_only, b_only, both=30, neither=10)
        draws = 40000
        perm = paired_permutation_test([a], [b], permutations=draws, seed=1)["p_value"]
        exact = mcnemar_exact(a, b)["p_value"]
        assert perm == pytest.approx(exact, abs=_mc_tolerance(exact, draws))


def test_permutation_test_is_seeded_and_says_nothing_when_the_methods_agree():
    a, b = _seeds(np.random.default_rng(5), n=200, seeds=3, p_a=0.6, p_b=0.5)
    first = paired_permutation_test(a, b, permutations=2000, seed=3)
    assert paired_permutation_test(a, b, permutations=2000, seed=3) == first
    assert paired_permutation_test(b, a, permutations=2000, seed=3)["mean_difference"] == \
        pytest.approx(-first["mean_difference"])
    same = paired_permutation_test(a, a)
    assert same["p_value"] == 1.0 and same["images_differing"] == 0
    assert same["mean_difference"] == 0.0
    # the smallest Monte Carlo p-value is 1 / (permutations + 1), never 0
    a, b = _pair(200, 0)
    assert paired_permutation_test([a], [b], permutations=999)["p_value"] == 1 / 1000


def test_permutation_test_refuses_mismatched_or_malformed_input():
    a, b = _seeds(np.random.default_rng(0), n=10, seeds=2, p_a=0.5, p_b=0.5)
    with pytest.raises(ValueError, match="same seeds and images"):
        paired_permutation_test(a, b[:1])
    with pytest.raises(ValueError, match="same seeds and images"):
        paired_permutation_test(a, b[:, :-1])
    with pytest.raises(ValueError, match="one equally long boolean array per seed"):
        paired_permutation_test([a[0], a[1][:-1]], b)
    with pytest.raises(ValueError, match="one equally long boolean array per seed"):
        paired_permutation_test([], [])
    with pytest.raises(ValueError, match="permutations must be an int >= 1"):
        paired_permutation_test(a, b, permutations=0)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        paired_permutation_test(a, b, seed=-1)
    with pytest.raises(TypeError):
        paired_permutation_test(a, b, 100)  # options are keyword-only


# ---- bootstrap interval --------------------------------------------------------------------


def test_bootstrap_interval_covers_the_true_accuracy_about_95_percent_of_the_time():
    """One seed: each test set is 300 fresh images of a classifier that is right with
    probability 0.8; the 95 % interval should hold 0.8 in about 95 % of 400 test sets."""
    rng = np.random.default_rng(0)
    hits = [
        (ci := bootstrap_accuracy_ci([rng.random(300) < 0.8], resamples=1000, seed=i))["low"]
        <= 0.8 <= ci["high"]
        for i in range(400)
    ]
    assert 0.92 <= np.mean(hits) <= 0.98  # 0.95 +- 2.7 standard errors


def test_bootstrap_interval_over_seeds_covers_the_mean_difficulty():
    """Three seeds on the same images: an image's chance to be right (its difficulty, drawn
    from Beta(4, 1), mean 0.8) is shared by the seeds, so the images, not the 3 x N
    predictions, are the sampling unit; the interval must still hold 0.8 about 95 % of
    the time (treating predictions as independent would cover far less)."""
    rng = np.random.default_rng(1)
    hits = []
    for i in range(400):
        q = rng.beta(4.0, 1.0, size=250)
        correct = [rng.random(250) < q for _ in range(3)]
        ci = bootstrap_accuracy_ci(correct, level=0.95, resamples=1000, seed=i)
        hits.append(ci["low"] <= 0.8 <= ci["high"])
    assert 0.92 <= np.mean(hits) <= 0.98


def test_bootstrap_interval_agrees_with_scipy_percentile_bootstrap():
    correct = np.random.default_rng(2).random(500) < 0.7
    ours = bootstrap_accuracy_ci([correct], level=0.9, resamples=20000, seed=0)
    theirs = stats.bootstrap((correct.astype(float),), np.mean, confidence_level=0.9,
                             n_resamples=20000, method="percentile", rng=0).confidence_interval
    assert ours["low"] == pytest.approx(theirs.low, abs=0.004)
    assert ours["high"] == pytest.approx(theirs.high, abs=0.004)
    assert ours["level"] == 0.9 and ours["resamples"] == 20000
    assert bootstrap_accuracy_ci([correct], level=0.9, resamples=20000, seed=0) == ours
    narrow = bootstrap_accuracy_ci([correct], level=0.5, resamples=20000, seed=0)
    assert ours["low"] < narrow["low"] < correct.mean() < narrow["high"] < ours["high"]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"level": 0.0}, r"level must be a finite number in \(0, 1\)"),
        ({"level": 1.0}, r"level must be a finite number in \(0, 1\)"),
        ({"level": 95}, r"level must be a finite number in \(0, 1\)"),
        ({"resamples": 0}, "resamples must be an int >= 1"),
        ({"seed": -2}, "seed must be an int >= 0"),
    ],
)
def test_bootstrap_refuses_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bootstrap_accuracy_ci([[True, False, True]], **kwargs)


def test_bootstrap_refuses_bad_correctness():
    with pytest.raises(ValueError, match="one equally long boolean array per seed"):
        bootstrap_accuracy_ci([[True, False], [True]])
    with pytest.raises(ValueError, match="at least one image"):
        bootstrap_accuracy_ci([[]])
    with pytest.raises(ValueError, match="correct must hold booleans"):
        bootstrap_accuracy_ci([[0, 1, 1, 2]])
    with pytest.raises(TypeError):
        bootstrap_accuracy_ci([[True, False]], 0.9)  # options are keyword-only


# ---- Holm ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        # R: p.adjust(c(.01, .02, .03, .04, .05), "holm")
        ({"a": 0.01, "b": 0.02, "c": 0.03, "d": 0.04, "e": 0.05},
         {"a": 0.05, "b": 0.08, "c": 0.09, "d": 0.09, "e": 0.09}),
        # by hand, unsorted: 4 x .005 = .02; 3 x .01 = .03; 2 x .03 = .06; max(.06, 1 x .04)
        ({"x": 0.01, "y": 0.04, "z": 0.03, "w": 0.005},
         {"x": 0.03, "y": 0.06, "z": 0.06, "w": 0.02}),
        ({"a": 0.5, "b": 0.6}, {"a": 1.0, "b": 1.0}),  # capped at 1
        ({"a": 0.02, "b": 0.02}, {"a": 0.04, "b": 0.04}),  # ties
        ({"only": 0.03}, {"only": 0.03}),  # one test: nothing to correct
        ({}, {}),
    ],
)
def test_holm_matches_hand_computed_adjusted_p_values(p, expected):
    adjusted = holm(p)
    assert adjusted.keys() == expected.keys()
    for name, value in expected.items():
        assert adjusted[name] == pytest.approx(value, abs=1e-12)
        # never below the raw p, never above Bonferroni's
        assert p[name] <= adjusted[name] <= min(1.0, len(p) * p[name]) + 1e-12


@pytest.mark.parametrize("bad", [-0.1, 1.2, float("nan"), "0.3"])
def test_holm_refuses_what_is_not_a_p_value(bad):
    with pytest.raises(ValueError, match=r"p_values\['b'\] must be"):
        holm({"a": 0.1, "b": bad})


# ---- mean_std ------------------------------------------------------------------------------


def test_mean_std_is_the_sample_standard_deviation():
    result = mean_std([0.8, 0.9, None, 0.7])
    assert result["n"] == 3 and result["values"] == [0.8, 0.9, 0.7]
    assert result["mean"] == pytest.approx(0.8)
    assert result["std"] == pytest.approx(np.std([0.8, 0.9, 0.7], ddof=1)) == \
        pytest.approx(0.1)
    assert mean_std([0.5])["std"] == 0.0
    assert mean_std([None]) == {"mean": None, "std": None, "n": 0, "values": []}


# ---- per-image scores and seeds ----------------------------------------------------------


def test_score_test_on_booleans_is_the_permutation_test():
    a, b = _pair(14, 4, both=50, neither=20)
    assert paired_score_test([a.astype(float)], [b.astype(float)]) == \
        paired_permutation_test([a], [b])
    with pytest.raises(ValueError, match="must lie in \\[0, 1\\]"):
        paired_score_test([[0.5, 1.5]], [[0.5, 0.5]])


def test_seed_test_is_scipys_paired_t_test():
    a, b = [0.86, 0.84, 0.88, 0.85, 0.87], [0.83, 0.84, 0.85, 0.82, 0.86]
    out = paired_seed_test(a, b)
    assert out["p_value"] == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert out["mean_difference"] == pytest.approx(0.02) and out["ahead"] == 4
    assert out["seeds"] == 5 and len(out["differences"]) == 5
    # no spread to test against: one seed, or the same difference every seed
    assert paired_seed_test([0.9], [0.8])["p_value"] == 1.0
    assert paired_seed_test([0.9, 0.9], [0.9, 0.9])["p_value"] == 1.0
    assert paired_seed_test([0.9, 0.8], [0.8, 0.7])["p_value"] == 0.0
    with pytest.raises(ValueError, match="one number per seed"):
        paired_seed_test([0.9, 0.8], [0.8])
