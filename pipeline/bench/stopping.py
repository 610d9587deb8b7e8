"""When one timing repeat has measured enough: the stopping rule, in one place. The worker times with it;
the report states it with `describe`, from the same settings (BenchConfig -> the run record).

    from pipeline.bench.stopping import Rule, repeat
    lat = repeat(call, Rule(min_runs=100, min_seconds=0.1, max_runs=20000, max_seconds=1.5, ci_pct=1.0))

A repeat stops once its median is known well enough: the 95% confidence interval of the median, from
order statistics (no assumption about the shape of a latency distribution, which is skewed with a long
tail), is narrower than +-`ci_pct` % of the median; but never before `min_runs` runs and `min_seconds`
(a window too short to meet the machine's background load once), and always at `max_runs` or
`max_seconds` (a slow or noisy artifact ends there; its record says how precise it got). `ci_pct` 0 =
no precision test: stop at the minimums, a fixed budget (the helper loops use that).

Imports only numpy and the standard library (the worker runs under `.venv-tflite-runtime` too).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054     # two-sided 95% normal quantile
CHECK_GROWTH = 8            # the interval is recomputed after every 1/8 more runs: sorting stays cheap


@dataclass(frozen=True)
class Rule:
    min_runs: int
    min_seconds: float
    max_runs: int
    max_seconds: float
    ci_pct: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_runs <= self.max_runs:
            raise ValueError(f"stopping rule: need 1 <= min_runs <= max_runs: {self}")
        if self.min_seconds < 0 or self.max_seconds <= 0 or self.ci_pct < 0:
            raise ValueError(f"stopping rule: seconds and ci_pct must not be negative: {self}")


def median_ci(samples) -> tuple[float, float, float]:
    """(median, low, high): the distribution-free 95% confidence interval of the median. The number of
    samples below the true median is binomial(n, 1/2), so the interval runs between the order
    statistics at ranks n/2 -+ 1.96 sqrt(n)/2 (normal approximation, rounded outwards)."""
    a = np.sort(np.asarray(samples, dtype=np.float64))
    n = a.size
    if n == 0:
        raise ValueError("median_ci: no samples")
    half = Z95 * math.sqrt(n) / 2
    lo = max(math.floor(n / 2 - half) - 1, 0)          # 1-based rank floor(n/2 - h), 0-based here
    hi = min(math.ceil(n / 2 + half + 1) - 1, n - 1)   # 1-based rank ceil(1 + n/2 + h)
    return float(np.median(a)), float(a[lo]), float(a[hi])


def ci_halfwidth_pct(samples) -> float:
    """Half the median's 95% confidence interval, in % of the median."""
    med, lo, hi = median_ci(samples)
    return (hi - lo) / 2 / med * 100 if med > 0 else float("inf")


def repeat(call, rule: Rule, clock=time.perf_counter) -> list[float]:
    """Seconds of each `call()`, back to back, until `rule` says the repeat has enough."""
    lat: list[float] = []
    next_check = rule.min_runs
    start = clock()
    while True:
        elapsed = clock() - start
        n = len(lat)
        if n >= rule.max_runs or elapsed >= rule.max_seconds:
            break
        if n >= next_check and elapsed >= rule.min_seconds:
            if not rule.ci_pct or ci_halfwidth_pct(lat) <= rule.ci_pct:
                break
            next_check = n + max(n // CHECK_GROWTH, 1)
        t = clock()
        call()
        lat.append(clock() - t)
    return lat


def describe(rule: Rule) -> str:
    """The rule in words, for the report (from the settings the run used)."""
    stop = (f"once the 95% confidence interval of its median (order statistics) is within +-{rule.ci_pct:g}% "
            f"of the median, after at least {rule.min_runs} runs and {rule.min_seconds:g} s"
            if rule.ci_pct else f"after {rule.min_runs} runs and {rule.min_seconds:g} s")
    return (f"Each timing repeat stops {stop}, and at the latest after {rule.max_runs} runs or "
            f"{rule.max_seconds:g} s (a slow or noisy artifact; `ci %` in the table says how precise it got).")
