from __future__ import annotations

import numpy as np
import pytest

from pipeline.bench.stats import agreement, latency_stats


def test_latency_stats_percentiles():
    s = latency_stats(np.arange(1, 101) / 1e3)  # 1..100 ms
    assert s["latency_p50_ms"] == pytest.approx(50.5)
    assert s["latency_p90_ms"] == pytest.approx(90.1)
    assert s["latency_min_ms"] == pytest.approx(1.0)
    assert s["runs"] == 100
    assert s["latency_cv"] == pytest.approx(s["latency_std_ms"] / s["latency_mean_ms"])


def test_latency_stats_rejects_empty():
    with pytest.raises(ValueError):
        latency_stats([])


def test_agreement():
    ref = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.1]])
    out = np.array([[0.0, 1.1], [0.0, 1.0], [0.2, 0.1]])
    m = agreement(out, ref)
    assert m["top1_agreement"] == pytest.approx(2 / 3)
    assert m["max_abs_diff"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        agreement(out[:, :1], ref)
