"""Step-to-step statistics against values computed by hand (the arithmetic is in the comments)."""
import math

import pytest

from roadmap.stats import agreement, change, ranks, spearman, t_quantile

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
