"""The timing repeat's stopping rule (pipeline/bench/stopping.py): the median's confidence interval is
a true 95% interval, and a repeat stops when it is narrow enough, not before the minimums, and at the
maximums at the latest. Calls are scripted on a fake clock: the rule, not this machine, is tested."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from pipeline.bench.stopping import Rule, ci_halfwidth_pct, describe, median_ci, repeat


def test_median_ci_is_the_textbook_order_statistics():
    # n = 100: the 40th and 61st smallest (e.g. Conover, Practical Nonparametric Statistics, table A3)
    assert median_ci(np.arange(1.0, 101.0)) == (50.5, 40.0, 61.0)


def test_median_ci_covers_the_true_median_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    true_median = 1.0   # lognormal(0, 0.3): skewed like a latency distribution, median e^0 = 1
    hits = [lo <= true_median <= hi for lo, hi in
            (median_ci(rng.lognormal(0.0, 0.3, size=200))[1:] for _ in range(2000))]
    assert 0.935 <= np.mean(hits) <= 0.975, np.mean(hits)


class FakeClock:
    """Each call() takes the next scripted duration."""

    def __init__(self, durations) -> None:
        self.now, self.durations = 0.0, iter(durations)

    def clock(self) -> float:
        return self.now

    def call(self) -> None:
        self.now += next(self.durations)


def _repeat(durations, rule: Rule) -> list[float]:
    c = FakeClock(durations)
    return repeat(c.call, rule, clock=c.clock)


def test_a_steady_call_stops_at_the_minimums():
    lat = _repeat(itertools.repeat(1e-3), Rule(min_runs=50, min_seconds=0.0, max_runs=10_000, max_seconds=5.0, ci_pct=1.0))
    assert len(lat) == 50


def test_the_minimum_seconds_hold_even_when_precise():
    lat = _repeat(itertools.repeat(1e-4), Rule(min_runs=10, min_seconds=0.05, max_runs=10_000, max_seconds=5.0, ci_pct=1.0))
    assert 500 <= len(lat) <= 500 + 500 // 8 + 1, len(lat)


def test_a_noisy_call_runs_until_precise_or_the_maximum():
    rng = np.random.default_rng(1)
    noisy = Rule(min_runs=50, min_seconds=0.0, max_runs=100_000, max_seconds=5.0, ci_pct=1.0)
    # lognormal(0, 0.1) around 1 ms: the interval's half-width is ~1.96 * 0.1 * sqrt(pi / 2) / sqrt(n)
    # of the median, so +-1% takes ~600 runs
    lat = _repeat((1e-3 * x for x in rng.lognormal(0, 0.1, size=100_000)), noisy)
    assert 400 < len(lat) < 1200 and ci_halfwidth_pct(lat) <= 1.0, (len(lat), ci_halfwidth_pct(lat))
    # two values half and half: the median is never known within 1%, so the repeat ends at max_seconds
    lat = _repeat(itertools.cycle([1e-3, 3e-3]), noisy)
    assert sum(lat) == pytest.approx(5.0, abs=3e-3) and ci_halfwidth_pct(lat) > 1.0


def test_without_a_precision_target_it_is_a_fixed_budget():
    lat = _repeat(itertools.cycle([1e-3, 3e-3]), Rule(min_runs=200, min_seconds=0.0, max_runs=10_000, max_seconds=5.0))
    assert len(lat) == 200


def test_rule_is_validated_and_described_from_its_settings():
    with pytest.raises(ValueError, match="min_runs"):
        Rule(min_runs=0, min_seconds=0.0, max_runs=10, max_seconds=1.0)
    text = describe(Rule(min_runs=123, min_seconds=0.25, max_runs=4567, max_seconds=1.5, ci_pct=0.5))
    assert all(s in text for s in ("123 runs", "0.25 s", "4567 runs", "1.5 s", "+-0.5%")), text
