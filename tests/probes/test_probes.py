"""Operator probes with the real toolchains: a supported operator is `ok`, a known-unsupported one
is reported as such (2 probes x 2 paths, plus unit checks of the comparison and the crash protocol)."""
from __future__ import annotations

import re

import numpy as np
import pytest



@pytest.fixture(scope="module")
def probe_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("probes")   # cold: every run exports and runs, so its lines are seen


@pytest.fixture(scope="module")
def probe_run(probe_cache):
    from probes import harness
    lines = []
    recs = harness.run(["conv2d", "argmax"], ["tflite_fp32", "et_xnnpack_fp32"], probe_cache / "artifacts",
                       probe_cache / "results", jobs=2, log=lines.append)
    return {(r.info["probe"], r.path, r.runtime): r for r in recs}, lines


@pytest.fixture(scope="module")
def probe_records(probe_run):
    return probe_run[0]


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
def test_every_item_has_a_progress_line_with_its_count_and_cell(probe_run):
    records, lines = probe_run
    for stage in ("export", "run"):
        mine = [ln for ln in lines if ln.startswith(f"[probe {stage} ")]
        counts = [tuple(map(int, re.match(rf"\[probe {stage} (\d+)/(\d+)", ln).groups())) for ln in mine]
        # export: 2 probes x 2 sources x (reference + 1 path); run: every exported cell x its runtimes
        total = 8 if stage == "export" else max(2, len(counts))
        # each item once, counted in the order it finished, time left on all but the last
        assert counts == [(k, total) for k in range(1, total + 1)], (stage, mine)
        assert all(", ~" in ln and " left] " in ln for ln in mine[:-1]) and " left]" not in mine[-1], mine
    cells = {ln.split("] ", 1)[1] for ln in lines if ln.startswith("[probe run ")}
    assert "conv2d/tflite_fp32 litert: ok" in cells, cells
    assert "argmax/et_xnnpack_fp32 executorch: not_delegated" in cells, cells


@pytest.mark.slow   # the probe matrix's real exports (~30 s): make test-slow, make probes
def test_rerun_is_cached_and_report_renders(probe_records, probe_cache):
    import time
    from probes import harness
    from pipeline.report.view import build
    from probes.report import matrix
    t0 = time.perf_counter()
    again = harness.run(["conv2d", "argmax"], ["tflite_fp32", "et_xnnpack_fp32"], probe_cache / "artifacts",
                        probe_cache / "results", jobs=2, log=lambda m: None)
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
