"""The audit's intervals against independent references: SciPy's Wilson interval,
Newcombe's published example, explicit resamples for the bootstrap's AUC."""

from __future__ import annotations

import numpy as np
import pytest

from gender_cli.train import intervals
from gender_cli.train.metrics import roc_auc


@pytest.mark.parametrize("k,n", [(0, 20), (1, 20), (10, 20), (19, 20), (20, 20), (81, 263), (3, 1000)])
def test_wilson_matches_scipy(k, n):
    from scipy.stats import binomtest

    reference = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = intervals.wilson(k, n)
    assert low == pytest.approx(reference.low, abs=1e-12) and high == pytest.approx(reference.high, abs=1e-12)
    assert low <= k / n <= high


def test_newcombe_reproduces_the_published_example():
    # Newcombe (1998), Statistics in Medicine 17:873-890, table II, example (a): 56/70 - 48/80
    d, low, high = intervals.newcombe_difference(56, 70, 48, 80)
    assert d == pytest.approx(0.2)
    assert (round(low, 4), round(high, 4)) == (0.0524, 0.3339)


def test_newcombe_contains_the_difference_at_the_bounds():
    for k1, n1, k2, n2 in [(20, 20, 0, 20), (0, 25, 25, 25), (20, 20, 20, 20)]:
        d, low, high = intervals.newcombe_difference(k1, n1, k2, n2)
        assert -1 <= low <= d <= high <= 1


def test_resampled_auc_equals_the_auc_of_the_resample_written_out():
    rng = np.random.default_rng(1)
    positives = np.round(rng.random(15), 1)  # rounding makes ties, within and across classes
    negatives = np.sort(np.round(rng.random(12) * 0.8, 1))
    pos_counts = rng.multinomial(15, np.full(15, 1 / 15), size=6)
    neg_counts = rng.multinomial(12, np.full(12, 1 / 12), size=6)
    fast = intervals.resampled_auc(positives, negatives, pos_counts, neg_counts)
    for r in range(6):
        scores = np.r_[np.repeat(positives, pos_counts[r]), np.repeat(negatives, neg_counts[r])]
        labels = np.r_[np.ones(15, int), np.zeros(12, int)]
        assert fast[r] == pytest.approx(roc_auc(labels, scores), abs=1e-12)


def test_bootstrap_is_repeatable_and_its_intervals_hold_the_estimate():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(60, int), np.ones(40, int)]
    scores = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    predicted = (scores >= 0.5).astype(int)
    first = intervals.bootstrap(y, scores, predicted, intervals.stream("race=white"))
    again = intervals.bootstrap(y, scores, predicted, intervals.stream("race=white"))
    other = intervals.bootstrap(y, scores, predicted, intervals.stream("race=black"))
    np.testing.assert_array_equal(first["roc_auc"], again["roc_auc"])
    assert not np.array_equal(first["roc_auc"], other["roc_auc"])
    auc = roc_auc(y, scores)
    low, high = intervals.percentile_interval(first["roc_auc"], auc)
    assert low < auc < high and high - low < 0.3
    assert first["roc_auc"].mean() == pytest.approx(auc, abs=0.02)
    recalls = [(predicted[y == c] == c).mean() for c in (0, 1)]
    assert first["balanced_accuracy"].mean() == pytest.approx(np.mean(recalls), abs=0.02)


def test_percentile_interval_reaches_an_estimate_outside_the_replicates():
    assert intervals.percentile_interval(np.full(50, 0.9), 1.0) == (0.9, 1.0)
    assert intervals.percentile_interval(np.linspace(0, 1, 101), 0.5) == pytest.approx((0.025, 0.975))
