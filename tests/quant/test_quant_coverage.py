"""Delegation coverage, quality vs fp32, caching and the report section of quant-debug.

Coverage runs the real runtimes (LiteRT + XNNPACK, ExecuTorch with ETDump) on the digits artifacts the
shared fixture exports; the cache and report tests use records only.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from models.spec import Tolerances
from pipeline.quant import delegation as quant_delegation
from pipeline.quant.plans import best_plan
from pipeline.report.view import build
from pipeline.quant import recover as quant_recover
from pipeline.schema import Record
from tests.conftest import ROOT


def _file(rec) -> Path:
    return ROOT / rec.artifact if not Path(rec.artifact).is_absolute() else Path(rec.artifact)


def test_coverage_tflite_int8_is_fully_delegated(digits_exports, digits_eval):
    import models
    rec = digits_exports[("keras_tw", "tflite_int8")]
    x = models.get("digits_cnn").to_keras(digits_eval["x"][:1])
    cov = quant_delegation.coverage(_file(rec), [x])
    assert cov["non_delegated_ops"] == 0 and cov["delegated_ops"] > 3, cov
    assert cov["time_outside_share"] == 0.0 and cov["time_kind"] == "exact", cov


def test_latency_is_timed_in_the_isolated_bench_worker(digits_exports, digits_eval, tmp_path):
    import models
    rec = digits_exports[("keras_tw", "tflite_int8")]
    x = models.get("digits_cnn").to_keras(digits_eval["x"][:1])
    p50 = quant_recover.latency_p50_ms("litert", _file(rec), x)
    assert 0 < p50 < 50, p50
    # a file the runtime cannot run costs this artifact's number with a clear error, not the stage
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(_file(rec).read_bytes()[:2000])
    with pytest.raises(RuntimeError, match="cut.tflite: timing with litert: "):
        quant_recover.latency_p50_ms("litert", bad, x)


def test_coverage_pte_time_outside_delegate(digits_exports, digits_eval):
    x = digits_eval["x"][:1]
    rec = digits_exports[("torch", "et_xnnpack_int8")]
    cov = quant_delegation.coverage(_file(rec), [x], rec.info)
    assert cov["delegated_ops"] == rec.info["delegated_ops"], cov
    assert 0.0 <= cov["time_outside_share"] < 0.5, f"XNNPACK int8 .pte spends {cov['time_outside_share']:.0%} outside"
    portable = digits_exports[("torch", "et_portable_fp32")]
    cov = quant_delegation.coverage(_file(portable), [x], {})
    # no delegate at all: every microsecond of Method::execute is outside (tolerance: timer rounding)
    assert cov["time_outside_share"] > 0.99, cov


def test_fp32_plan_has_zero_drop_and_mse_models_compare_mse():
    assert quant_recover.vs_fp32({"accuracy": 0.9}, {"accuracy": 0.9})["accuracy_drop_points"] == 0.0
    d = quant_recover.vs_fp32({"accuracy": 0.9}, {"accuracy": 0.95})
    assert abs(d["accuracy_drop_points"] - 5.0) < 1e-9, d
    d = quant_recover.vs_fp32({"reconstruction_mse": 0.011}, {"reconstruction_mse": 0.010})
    assert abs(d["mse_increase_pct"] - 10.0) < 1e-6 and "accuracy_drop_points" not in d, d


def _plan(path, q, drop, size, quant="int8"):
    return Record(kind="quant_debug", model="m", status="ok", source="torch", path=path, runtime="executorch",
                  quantization=quant, metrics={"accuracy": q, "accuracy_drop_points": drop, "size_bytes": size,
                                               "latency_p50_ms": 1.0, "ops_outside_share": 0.1,
                                               "time_outside_share": 0.05})


def test_best_plan_and_report_section():
    from pipeline.report import quant as report_quant
    layers = [{"layer": f"l{i}", "op": "CONV_2D", "sqnr_db": float(40 - i), "mse": 1e-3, "max_abs_error": 0.1}
              for i in range(7)]
    recs = [Record(kind="quant_debug", model="m", status="ok", source="torch", path="et_xnnpack_int8",
                   metrics={"worst_sqnr_db": 34.0}, info={"layers": layers, "debugger": "d"}),
            _plan("et_xnnpack_int8:fp32", 0.95, 0.0, 4000, "fp32"), _plan("et_xnnpack_int8:int8", 0.90, 5.0, 1000),
            _plan("et_xnnpack_int8:int8_fp32_worst1", 0.945, 0.5, 2000),
            _plan("et_xnnpack_int8:int8_fp32_worst2", 0.95, 0.0, 3000)]
    best = best_plan(recs, "et_xnnpack_int8", Tolerances())
    assert best.path == "et_xnnpack_int8:int8_fp32_worst1", best.path   # smallest within 1 point
    text = "\n".join(report_quant.section(build(recs)))
    assert "int8_fp32_worst1 **(best)**" in text
    top = [ln.split("|")[1].strip() for ln in text.splitlines() if ln.startswith("| l") and not ln.startswith("| layer")]
    assert top == ["l6", "l5", "l4", "l3", "l2"], top
    assert not math.isnan(best.metrics["time_outside_share"])


def test_rerun_with_unchanged_inputs_reuses_the_result(tmp_path, monkeypatch):
    import shutil
    from tests.conftest import TEST_ARTIFACTS
    import models
    from pipeline.train import train
    train(models.get("digits_cnn"), TEST_ARTIFACTS, log=lambda m: None)
    art = tmp_path / "artifacts"
    shutil.copytree(TEST_ARTIFACTS / "digits_cnn" / "train", art / "digits_cnn" / "train")
    calls = []

    def fake_compute(spec, artifacts, samples, plans, log, data):
        calls.append(samples)   # stands in for the minutes of debugger work; the cache logic is under test
        return [Record(kind="quant_debug", model=spec.name, status="skipped", path="x", error="e")], f"t{len(calls)}"
    monkeypatch.setattr(quant_recover, "_compute", fake_compute)
    kw = dict(log=lambda m: None, ensure_trained=False)
    r1, t1 = quant_recover.run("digits_cnn", art, 7, False, **kw)
    r2, t2 = quant_recover.run("digits_cnn", art, 7, False, **kw)
    assert calls == [7] and t2 == t1 == "t1" and r2[0].to_json().split('"created"')[0] == r1[0].to_json().split('"created"')[0]
    quant_recover.run("digits_cnn", art, 8, False, **kw)              # other options: recomputed
    assert calls == [7, 8]
    eval_npz = art / "digits_cnn" / "train" / "eval.npz"
    data = dict(np.load(eval_npz))
    data["x"] = data["x"] + 1.0
    np.savez(eval_npz, **data)                                        # other held-out data: recomputed
    quant_recover.run("digits_cnn", art, 8, False, **kw)
    assert calls == [7, 8, 8]
    quant_recover.run("digits_cnn", art, 8, False, force=True, **kw)
    assert len(calls) == 4


def test_rerun_replaces_the_models_quant_records(tmp_path):
    from pipeline import stages
    from pipeline.schema import read_records
    stale = Record(kind="quant_debug", model="m", status="failed", path="tflite_int8:int8_denylist_worst2",
                   error="KeyError: old bug")
    other = Record(kind="quant_debug", model="n", status="failed", path="tflite_int8:x", error="e")
    bench = Record(kind="bench", model="m", status="ok", path="tflite_int8", runtime="litert")
    stages.save_records(tmp_path, [stale, other, bench])
    fresh = Record(kind="quant_debug", model="m", status="ok", path="tflite_int8:int8_denylist_worst2",
                   runtime="litert", metrics={"accuracy": 1.0})
    stages.save_records(tmp_path, [fresh], drop=lambda r: r.kind == "quant_debug" and r.model == "m")
    got = {(r.kind, r.model, r.path, r.status) for r in read_records(stages.results_file(tmp_path))}
    assert got == {("quant_debug", "n", "tflite_int8:x", "failed"), ("bench", "m", "tflite_int8", "ok"),
                   ("quant_debug", "m", "tflite_int8:int8_denylist_worst2", "ok")}, got
