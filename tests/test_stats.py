"""Statistics of training/evaluation/stats.py against values computed by hand or by the textbook formula."""
from __future__ import annotations

import math

import pytest

from training.evaluation import stats


def test_wilson_interval_known_values():
    # 8/10: the Wilson 95% interval is (0.4902, 0.9433) (Newcombe 1998, table I style computation).
    low, high = stats.wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    # the edge cases stay inside [0, 1] and are not degenerate
    assert stats.wilson_interval(0, 20)[0] == 0.0 and 0.1 < stats.wilson_interval(0, 20)[1] < 0.2
    assert stats.wilson_interval(20, 20)[1] == 1.0 and 0.8 < stats.wilson_interval(20, 20)[0] < 0.9
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="correct <= n"):
        stats.wilson_interval(5, 3)


def test_mcnemar_exact_matches_binomial_sum():
    # b=2, c=8, n=10: p = 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * 56/1024 = 0.109375
    assert stats.mcnemar_exact(2, 8) == pytest.approx(0.109375, abs=1e-12)
    assert stats.mcnemar_exact(8, 2) == pytest.approx(0.109375, abs=1e-12)
    # b=0, c=6: p = 2 / 64
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)
    assert stats.mcnemar_exact(5, 5) == 1.0
    assert stats.mcnemar_exact(0, 0) == 1.0
    # the pure-Python fallback agrees with the scipy path
    for b, c in [(3, 11), (0, 1), (17, 30), (40, 41)]:
        assert stats._binomial_two_sided_half(min(b, c), b + c) == pytest.approx(stats.mcnemar_exact(b, c), rel=1e-9)


def test_paired_bootstrap_is_seeded_and_brackets_the_difference():
    a = [True] * 30 + [False] * 10 + [True] * 10 + [False] * 50   # acc 0.40
    b = [True] * 30 + [False] * 10 + [False] * 10 + [False] * 50  # acc 0.30
    first = stats.paired_bootstrap(a, b, n_resamples=2000, seed=7)
    again = stats.paired_bootstrap(a, b, n_resamples=2000, seed=7)
    assert first == again
    assert first["difference"] == pytest.approx(0.10)
    assert first["low"] < 0.10 < first["high"]
    # only 10 discordant pairs, all one way: the difference per resample is (#discordant drawn)/100, which
    # is binomial(100, 0.1)/100 -> sd 0.03; the 95% interval is about 0.10 +- 0.06
    assert first["low"] == pytest.approx(0.04, abs=0.015)
    assert first["high"] == pytest.approx(0.16, abs=0.015)


def test_paired_bootstrap_identical_runs_has_zero_width():
    a = [True, False, True, True]
    result = stats.paired_bootstrap(a, a, n_resamples=500, seed=0)
    assert result["difference"] == 0 and result["low"] == 0 and result["high"] == 0


def test_paired_comparison_counts_discordant_pairs():
    a = [1, 1, 0, 0, 1, 0]
    b = [1, 0, 1, 0, 0, 0]
    result = stats.paired_comparison(a, b, n_resamples=500, seed=1)
    assert (result["only_a"], result["only_b"]) == (2, 1)
    assert result["accuracy_a"] == pytest.approx(0.5) and result["accuracy_b"] == pytest.approx(1 / 3)
    assert result["mcnemar_p"] == 1.0
    with pytest.raises(ValueError, match="equal lengths"):
        stats.paired_bootstrap([1], [1, 0])


def test_mean_sd_and_bootstrap_interval():
    mean, sd = stats.mean_sd([1.0, 2.0, 3.0, 4.0])
    assert mean == 2.5 and sd == pytest.approx(math.sqrt(5 / 3))
    assert stats.mean_sd([0.7]) == (0.7, 0.0)
    low, high = stats.bootstrap_interval([0, 1] * 50, n_resamples=2000, seed=3)
    assert low == pytest.approx(0.40, abs=0.03) and high == pytest.approx(0.60, abs=0.03)
