"""The benchmark harness: real runtimes in isolated workers; crashes and hangs become records."""
from __future__ import annotations

import stat
import sys

import pytest

from pipeline import workers
from pipeline.bench import harness as bench
from pipeline.bench import profiles


@pytest.fixture(scope="module")
def fast_cfg():
    return bench.config_with(min_runs=20, min_seconds=0.0, warmup=2, timeout_s=120.0)


def _target(digits_exports, source, path, root):
    (t,) = bench.targets_from_exports([digits_exports[(source, path)]], root / ".cache" / "test-artifacts")
    return t


@pytest.mark.parametrize("source,path,runtime", [
    ("keras", "tflite_int8", "litert"), ("torch", "et_xnnpack_int8", "executorch"),
    ("torch", "ptl_fp32", "lite_interpreter")])
def test_measure_real_runtime(digits_exports, fast_cfg, tmp_path, source, path, runtime):
    from conftest import ROOT
    t = _target(digits_exports, source, path, ROOT)
    o = bench.measure_one(t, runtime, profiles.get("big-core"), fast_cfg, tmp_path, want_outputs=True)
    r = o.record
    assert r.status == "ok", r.error
    m = r.metrics
    assert m["runs"] >= 20
    assert 0 < m["latency_min_ms"] <= m["latency_p50_ms"] <= m["latency_p90_ms"] <= m["latency_p99_ms"]
    assert m["size_zipped_bytes"] < m["size_bytes"]
    assert m["peak_rss_mb"] > m["baseline_rss_mb"] > 0
    assert m["top1_agreement"] >= 0.97, m["top1_agreement"]
    assert m["accuracy"] > 0.9
    assert m["eval_samples"] == 360  # the whole digits test split
    # a second call is served from the content-hash cache
    assert bench.measure_one(t, runtime, profiles.get("big-core"), fast_cfg, tmp_path, True).cached


def _fake_python(tmp_path, body: str):
    exe = tmp_path / "fake-python"
    exe.write_text(f"#!/bin/sh\n{body}\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return str(exe)


def _run(jobs, py, timeout_s):
    return list(workers.run(bench.worker_job(jobs, py, timeout_s)).values())


def test_crashing_worker_is_recorded(tmp_path):
    py = _fake_python(tmp_path, "kill -SEGV $$")
    (res,) = _run([{"artifact": "x"}], py, timeout_s=30)
    assert res["status"] == "failed" and "SIGSEGV" in res["error"], res


def test_hanging_worker_is_killed_and_recorded(tmp_path):
    py = _fake_python(tmp_path, "sleep 60")
    (res,) = _run([{"artifact": "x"}], py, timeout_s=1)
    assert res["status"] == "failed" and "timed out after 1s" in res["error"], res


def test_crash_in_a_later_profile_keeps_the_earlier_ones(tmp_path):
    # the worker wrote the first profile's result, then died in the second
    write_first = ("import json,sys; j=json.load(open(sys.argv[1])); open(j['progress'],'w').write("
                   "json.dumps({'start': 0}) + chr(10) + json.dumps({'done': 0, 'result': "
                   "{'status': 'ok', 'metrics': {}, 'info': {}}}) + chr(10) + json.dumps({'start': 1}) + chr(10))")
    py = _fake_python(tmp_path, f'{sys.executable} -c "{write_first}" "$3"; kill -SEGV $$')
    first, second = _run([{"artifact": "x"}, {"artifact": "x"}], py, timeout_s=30)
    assert first["status"] == "ok", first
    assert second["status"] == "failed" and "SIGSEGV" in second["error"], second


def test_one_worker_measures_several_profiles(digits_exports, fast_cfg, tmp_path):
    from conftest import ROOT
    t = _target(digits_exports, "keras", "tflite_fp32", ROOT)
    big, two = profiles.get("big-core"), profiles.get("2-core")
    a, b = bench.measure_profiles(t, "litert", [(big, True), (two, False)], fast_cfg, tmp_path)
    assert a.record.status == b.record.status == "ok", (a.record.error, b.record.error)
    assert (a.record.profile, a.record.threads, b.record.profile, b.record.threads) == ("big-core", 1, "2-core", 2)
    assert "accuracy" in a.record.metrics and "accuracy" not in b.record.metrics
    assert 0 < b.record.metrics["latency_p50_ms"] < 5, b.record.metrics["latency_p50_ms"]
    # each profile is cached on its own: asking for the second alone reuses it
    assert bench.measure_one(t, "litert", two, fast_cfg, tmp_path, False).cached


def test_missing_runtime_is_skipped_with_install_hint(digits_exports, fast_cfg, tmp_path, monkeypatch):
    from conftest import ROOT
    from pipeline.runtimes import tflite_runtime
    monkeypatch.setattr(tflite_runtime, "PYTHON", tmp_path / "no-such-venv" / "python")
    t = _target(digits_exports, "keras", "tflite_fp32", ROOT)
    r = bench.measure_one(t, "tflite_runtime", profiles.get("big-core"), fast_cfg, tmp_path, False).record
    assert r.status == "skipped" and "make setup-tflite-runtime" in r.error


def test_memory_limit_failure_is_a_record(digits_exports, fast_cfg, tmp_path, monkeypatch):
    from conftest import ROOT
    tiny = profiles.Profile("tiny", threads=1, mem_limit_mb=64)
    t = _target(digits_exports, "torch", "et_xnnpack_fp32", ROOT)
    r = bench.measure_one(t, "executorch", tiny, fast_cfg, tmp_path, False).record
    assert r.status == "failed" and r.error, r


def test_bad_profile_and_numbers_are_rejected():
    with pytest.raises(KeyError, match="valid profiles: big-core"):
        profiles.get("pixel-9")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        profiles.Profile("zero", threads=0)
    with pytest.raises(ValueError, match="min_runs"):
        bench.config_with(min_runs=-5)
