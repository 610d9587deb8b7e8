"""The rigor report sections render every metric the bench records carry (records built by hand:
this tests the report's formatting, not a runtime)."""
from __future__ import annotations

from pipeline.report import markdown as report
from pipeline.report.view import build
from pipeline.schema import Record


def _rec(profile, p50, peer=None, ops=None):
    m = {"latency_p50_ms": p50, "latency_p90_ms": p50 * 1.2, "latency_p99_ms": p50 * 2, "latency_mean_ms": p50,
         "latency_min_ms": p50 * 0.9, "latency_cv": 0.1, "latency_p50_spread_pct": 4.0, "repeats": 3.0,
         "runs": 600.0, "latency_p50_with_io_ms": p50 + 0.01, "trivial_model_p50_us": 1.5, "load_ms": 3.0,
         "peak_rss_above_baseline_mb": 12.0, "size_bytes": 2048.0, "size_zipped_bytes": 1024.0,
         "flops": 2e6, "macs": 1e6, "params": 5000.0, "gflops_per_s": 2e6 / (p50 * 1e-3) / 1e9,
         "harness_overhead_us": 0.2}
    if peer:
        m.update(peer)
    info = {"op_profile": {"method": "x", "ops": ops}} if ops else {}
    return Record(kind="bench", model="digits_cnn", status="ok", source="keras", path="tflite_fp32",
                  format="tflite", runtime="litert", profile=profile, threads=1, metrics=m, info=info)


def test_rigor_sections_render_metrics_peer_cost_and_ops():
    recs = [_rec("big-core", 0.02, {"peer_median_ms": 0.024, "peer_diff_pct": -16.7, "peer_net_diff_pct": -6.0,
                                    "peer_trivial_median_ms": 0.005, "peer_agrees": 1.0},
                 [{"op": "CONV_2D #1", "ms": 0.01, "share": 0.6}, {"op": "MEAN #4", "ms": 0.002, "share": 0.1}]),
            _rec("2-core", 0.015)]
    text = report.render(build(recs))
    assert "not phone timings" in text
    assert "| digits_cnn/keras__tflite_fp32 | litert | big-core | 0.02 |" in text
    assert "| digits_cnn/keras__tflite_fp32 | litert | 2-core | 0.015 |" in text
    assert "3 x 200" in text and "GFLOP/s" in text
    assert "| digits_cnn/keras__tflite_fp32 | big-core | 0.02 | 0.024 | -16.7 |" in text and "| yes |" in text
    assert "| digits_cnn | 2 | 1 | 5000 |" in text
    assert "CONV_2D #1" in text and "60%" in text
