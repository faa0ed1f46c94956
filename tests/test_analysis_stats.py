"""Step-to-step statistics against values computed by hand (the arithmetic is in the comments)."""
import math

import numpy as np
import pytest

from roadmap.analysis.stats import agreement, change, ranks, spearman, t_quantile

# two-sided 95% critical values of Student's t (any table): df 1, 2, 3, 4, 10, 30
T95 = {1: 12.7062, 2: 4.3027, 3: 3.1824, 4: 2.7764, 10: 2.2281, 30: 2.0423}


@pytest.mark.parametrize("df", sorted(T95))
def test_t_quantiles_match_the_table(df):
    assert t_quantile(0.95, df) == pytest.approx(T95[df], abs=1e-4)


def test_a_paired_change_whose_interval_excludes_zero_is_real():
    # diffs 1.0, 1.2, 0.8: mean 1.0, sd 0.2, se 0.2/sqrt(3) = 0.11547; half-width 4.3027 * 0.11547 = 0.49683
    c = change({0: 70.0, 1: 71.0, 2: 72.0}, {0: 71.0, 1: 72.2, 2: 72.8})
    assert (c.method, c.n) == ("paired", 3)
    assert c.delta == pytest.approx(1.0)
    assert (c.low, c.high) == (pytest.approx(0.50317, abs=1e-4), pytest.approx(1.49683, abs=1e-4))
    assert c.real is True


def test_a_paired_change_whose_interval_spans_zero_is_not_real():
    # diffs 1.0 and -0.5: mean 0.25, sd 1.06066, se 0.75; half-width 12.7062 * 0.75 = 9.5297
    c = change({0: 70.0, 1: 71.0}, {0: 71.0, 1: 70.5})
    assert c.delta == pytest.approx(0.25)
    assert (c.low, c.high) == (pytest.approx(-9.2797, abs=1e-3), pytest.approx(9.7797, abs=1e-3))
    assert c.real is False


def test_a_drop_is_real_when_its_interval_is_below_zero():
    c = change({0: 75.0, 1: 76.0, 2: 77.0}, {0: 73.0, 1: 74.1, 2: 74.9})  # diffs -2.0, -1.9, -2.1
    assert c.high < 0 and c.real is True and c.delta == pytest.approx(-2.0)


def test_unequal_seeds_use_welchs_interval():
    # a: 70, 71, 72 (mean 71, variance 1); b: 71, 72.2 (mean 71.6, variance 0.72)
    # se^2 = 1/3 + 0.72/2 = 0.69333; df = 0.69333^2 / ((1/3)^2/2 + 0.36^2/1) = 2.596 -> 2 (rounded down)
    # half-width = 4.3027 * sqrt(0.69333) = 3.5827
    c = change({0: 70.0, 1: 71.0, 2: 72.0}, {0: 71.0, 1: 72.2})
    assert c.method == "welch" and c.delta == pytest.approx(0.6)
    assert (c.low, c.high) == (pytest.approx(-2.9827, abs=1e-3), pytest.approx(4.1827, abs=1e-3))
    assert c.real is False


def test_one_run_on_a_side_has_no_interval_and_no_verdict():
    c = change({0: 70.0, 1: 72.0}, {0: 75.0})
    assert c.method == "single run" and c.delta == pytest.approx(4.0)
    assert c.low is None and c.high is None and c.real is None
    assert change({}, {0: 1.0}) is None


def test_ranks_average_ties_and_spearman_matches_the_textbook_formula():
    assert ranks([10.0, 30.0, 20.0, 20.0]) == [1.0, 4.0, 2.5, 2.5]
    # ranks 1,2,3,4 vs 1,3,2,4: sum d^2 = 2, rho = 1 - 6*2 / (4 * (16 - 1)) = 0.8
    assert spearman([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert spearman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert spearman([1.0, 2.0], [1.0, 2.0]) is None  # too few to rank


def test_agreement_counts_signs_and_ranks_over_the_steps_both_have():
    ours = [1.0, -0.5, 0.2, None, 2.0]
    paper = [0.3, 0.1, 0.4, 0.5, None]
    a = agreement(ours, paper)
    assert a["steps"] == 3 and (a["sign_agree"], a["sign_compared"]) == (2, 3)
    assert a["sign_agreement"] == pytest.approx(2 / 3)
    # ours 1.0, -0.5, 0.2 -> ranks 3, 1, 2; paper 0.3, 0.1, 0.4 -> ranks 2, 1, 3: sum d^2 = 2, rho = 1 - 12/24
    assert a["spearman"] == pytest.approx(0.5)
    assert math.isclose(agreement([], [])["steps"], 0) and agreement([], [])["spearman"] is None


def test_paired_bootstrap_matches_a_hand_computed_case_over_seeds():
    """Seed 0: step b right on both images where a was wrong; seed 1: no difference. Images do not matter within a
    seed, so a replicate draws (0,0) -> 100 points, (0,1) or (1,0) -> 50, (1,1) -> 0, with chances 1/4, 1/2, 1/4:
    the 95% percentile interval is [0, 100] around the observed 50."""
    from roadmap.analysis.stats import bootstrap_replicates, paired_bootstrap
    diffs = [[1, 1], [0, 0]]
    b = paired_bootstrap(diffs, replicates=20000)
    assert (b.delta, b.low, b.high, b.seeds, b.images) == (50.0, 0.0, 100.0, 2, 2) and not b.real
    values, counts = np.unique(bootstrap_replicates(diffs, 20000), return_counts=True)
    assert values.tolist() == [0.0, 0.5, 1.0]
    assert np.allclose(counts / 20000, [0.25, 0.5, 0.25], atol=0.015)


def test_paired_bootstrap_matches_a_hand_computed_case_over_images():
    """One seed, four images, b better on one: a replicate's change is (draws of that image) / 4, Binomial(4, 1/4):
    P = 81, 108, 54, 12, 1 in 256 for 0..4 draws; the 2.5% point is 0 and the 97.5% point 3 draws (P(<=2) = 0.949)."""
    from roadmap.analysis.stats import bootstrap_replicates, paired_bootstrap
    b = paired_bootstrap([[1, 0, 0, 0]], replicates=20000)
    assert (b.delta, b.low, b.high) == (25.0, 0.0, 75.0)
    values, counts = np.unique(bootstrap_replicates([[1, 0, 0, 0]], 20000), return_counts=True)
    assert values.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(counts / 20000, np.array([81, 108, 54, 12, 1]) / 256, atol=0.012)


def test_paired_bootstrap_draws_the_test_images_once_for_all_seeds():
    """Two seeds with the same differences: drawn jointly, both seeds see the same images, so a replicate is 0, 1/2
    or 1; drawn apart per seed it could also be 1/4 or 3/4."""
    from roadmap.analysis.stats import bootstrap_replicates, paired_bootstrap
    assert set(np.unique(bootstrap_replicates([[1, 0], [1, 0]], 5000)).tolist()) == {0.0, 0.5, 1.0}
    same = paired_bootstrap(np.zeros((3, 100)))
    assert (same.low, same.high) == (0.0, 0.0)
    assert paired_bootstrap([[1] * 50], replicates=500).real
    with pytest.raises(ValueError, match="seeds, images"):
        paired_bootstrap([])
