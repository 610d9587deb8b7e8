"""Operator probes with the real toolchains: a supported operator is `ok`, a known-unsupported one
is reported as such (2 probes x 2 paths, plus unit checks of the comparison and the crash protocol)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import ROOT

PROBE_CACHE = ROOT / ".cache" / "test-probes"


@pytest.fixture(scope="module")
def probe_records():
    from probes import harness
    recs = harness.run(["conv2d", "argmax"], ["tflite_fp32", "et_xnnpack_fp32"], PROBE_CACHE / "artifacts",
                       PROBE_CACHE / "results", jobs=2, log=lambda m: None)
    return {(r.info["probe"], r.path, r.runtime): r for r in recs}


@pytest.mark.slow   # the probe matrix's real exports (~30 s): make test-slow, make probes
def test_supported_operator_is_ok(probe_records):
    for key in [("conv2d", "tflite_fp32", "litert"), ("conv2d", "et_xnnpack_fp32", "executorch")]:
        r = probe_records[key]
        assert r.info["cell"] == "ok", (key, r.error, r.info.get("outside_xnnpack"))
        assert r.metrics["max_rel_diff"] <= 1e-4, r.metrics
        assert r.kind == "probe" and r.model == "probe_conv2d"


@pytest.mark.slow   # the probe matrix's real exports (~30 s): make test-slow, make probes
def test_known_unsupported_operator_is_reported(probe_records):
    # Keras 3's argmax lowers through BitwiseAnd, which the TFLite converter cannot translate
    r = probe_records[("argmax", "tflite_fp32", "")]
    assert r.info["cell"] == "export_failed" and r.status == "failed"
    assert "ConverterError" in r.error, r.error
    # ExecuTorch exports argmax, but XNNPACK does not take it: it runs on the portable kernel
    r = probe_records[("argmax", "et_xnnpack_fp32", "executorch")]
    assert r.info["cell"] == "not_delegated", (r.info["cell"], r.error)
    assert any("argmax" in op for op in r.info["outside_xnnpack"]), r.info["outside_xnnpack"]
    assert r.metrics["exact_mismatches"] == 0


@pytest.mark.slow   # the probe matrix's real exports (~30 s): make test-slow, make probes
def test_rerun_is_cached_and_report_renders(probe_records):
    import time
    from probes import harness
    from pipeline.report.view import build
    from probes.report import matrix
    t0 = time.perf_counter()
    again = harness.run(["conv2d", "argmax"], ["tflite_fp32", "et_xnnpack_fp32"], PROBE_CACHE / "artifacts",
                        PROBE_CACHE / "results", jobs=2, log=lambda m: None)
    seconds = time.perf_counter() - t0
    assert seconds < 20, f"cached rerun took {seconds:.1f}s"
    assert {(r.info["probe"], r.path, r.runtime): r.info["cell"] for r in again} == \
        {k: r.info["cell"] for k, r in probe_records.items()}
    text = "\n".join(matrix(build(again)))
    assert "| conv2d | ok | ok |" in text, text
    assert "export failed [" in text and "ConverterError" in text
    assert "**PyTorch**" in text and "**TensorFlow/Keras**" in text


def test_compare_reports_error_size_and_checks():
    from probes.harness import compare
    ref = [np.linspace(-1, 1, 50, dtype=np.float32)]
    assert compare([ref[0].copy()], ref, ("float",), "fp32")["error"] == ""
    c = compare([ref[0] + 1e-3], ref, ("float",), "fp32")
    assert c["error"].startswith("mismatch") and "0.001" in c["error"], c
    assert c["metrics"]["max_abs_diff"] == pytest.approx(1e-3, rel=1e-3)
    assert compare([ref[0] + 1e-3], ref, ("float",), "fp16")["error"] == ""
    idx = np.arange(5, dtype=np.float32)
    c = compare([idx[::-1].copy()], [idx], ("exact",), "int8")
    assert "4/5 values differ" in c["error"] and c["metrics"]["exact_mismatches"] == 4
    # TFLite may list outputs in another order: they are matched by size, then by difference
    a, b = np.ones(3, np.float32), np.zeros(7, np.float32)
    assert compare([b, a], [a, b], ("float", "float"), "fp32")["error"] == ""


def test_native_crash_costs_one_item():
    from pipeline import workers
    items = [{"id": 1}, {"id": 2, "crash": True}, {"id": 3}]
    out = workers.run(workers.Job("tests.pipeline.crashy_worker", items, timeout_s=60))
    assert out[1] == {"status": "ok", "value": 2} and out[3] == {"status": "ok", "value": 6}
    assert out[2]["status"] == "failed" and "SIGABRT" in out[2]["error"], out[2]


def test_probe_registry_is_deterministic():
    import probes
    ps = probes.all_probes()
    assert len(ps) >= 35
    p = ps["dynamic_seq_len"]
    a, b = p.input_sets(), p.input_sets()
    assert [x.shape for s in a for x in s] == [(1, 10, 16), (1, 23, 16)]
    assert all(np.array_equal(x, y) for s, t in zip(a, b) for x, y in zip(s, t))
    nan = ps["isnan_isinf"].input_sets()[0][0]
    assert np.isnan(nan).any() and np.isinf(nan).any()
