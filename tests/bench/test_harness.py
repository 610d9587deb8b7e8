"""The benchmark harness: real runtimes in isolated workers; crashes and hangs become records."""
from __future__ import annotations

import dataclasses
import stat
import sys

import pytest

from pipeline import workers
from pipeline.bench import harness as bench
from pipeline.bench import profiles


@pytest.fixture(scope="module")
def fast_cfg():
    return bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, timeout_s=120.0)


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
    # where the outputs differ, computed with the outputs (bound-free: judged later): samples whose
    # top-1 flips when some do, else the largest errors; a mismatch verdict adds what the file computes
    ev = r.info["evidence"]
    assert ev["rule"] in ("top-1 differs", "largest errors (half the squared error)") and ev["differ"] > 0, ev
    assert ev["compared"] == 3600 and ev["map"] == "unit" and ev["pairs"], ev
    judged = dataclasses.replace(r, status="mismatch", error="planted", info=dict(r.info))
    bench.explain_mismatch(t, [judged], ev)
    facts = judged.info["file"]
    assert judged.info["evidence"] == ev
    assert facts["operators"] if t.format in ("tflite", "pte") else facts["error"].startswith("no reader"), facts
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


def _worker_pids() -> list[int]:
    """This process's bench workers (children running pipeline.bench.worker)."""
    import os
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat_ = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat_[1]) == os.getpid() and b"pipeline.bench.worker" in cmd:
            out.append(int(pid))
    return out


def test_our_artifacts_share_a_worker_and_a_death_costs_one_measurement(digits_exports, tmp_path):
    """Two of our .tflite files x two profiles go through ONE litert worker (its start is paid once);
    a worker killed in the second measurement fails that one only, and a fresh worker measures the rest."""
    import os
    import signal
    from conftest import ROOT
    cfg = bench.config_with(min_runs=20, min_seconds=0.5, warmup=2, timeout_s=120.0, peer=False, op_profile=False)
    a, b = (_target(digits_exports, "keras", p, ROOT) for p in ("tflite_fp32", "tflite_int8"))
    big, two = profiles.get("big-core"), profiles.get("2-core")
    ms = [bench.Measurement(t, "litert", p, p is big) for t in (a, b) for p in (big, two)]
    order, killed = [], []

    def kill_during_the_second(i, o):
        order.append(i)
        if i == 0:   # the worker is now in measurement 1 (0.5 s of timing at least)
            (pid,) = _worker_pids()
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    out = bench.measure(ms, cfg, tmp_path, on_outcome=kill_during_the_second)
    recs = [o.record for o in out]
    assert killed and order == [0, 1, 2, 3], order
    assert [r.status for r in recs] == ["ok", "failed", "ok", "ok"], [(r.status, r.error) for r in recs]
    assert "SIGKILL" in recs[1].error, recs[1].error
    # two processes: the first, and the fresh one that resumed after the death (its first record pays its start)
    assert ["time_worker_start_s" in r.metrics for r in recs] == [True, False, True, False]
    assert "accuracy" in recs[0].metrics and "accuracy" in recs[2].metrics and "accuracy" not in recs[3].metrics
    # each measurement was cached as it came in (a failure too: the same inputs give the same record)
    assert [o.cached for o in bench.measure(ms, cfg, tmp_path)] == [True, True, True, True]


def test_a_users_file_gets_a_worker_of_its_own(digits_exports):
    from conftest import ROOT
    import dataclasses
    ours = _target(digits_exports, "keras", "tflite_fp32", ROOT)
    users = dataclasses.replace(ours, export=None, eval_npz=None)
    big = profiles.get("big-core")
    k_ours, k_other_ours = (bench._worker_key(bench.Measurement(t, "litert", big, False))
                            for t in (ours, _target(digits_exports, "keras", "tflite_int8", ROOT)))
    assert k_ours == k_other_ours
    assert bench._worker_key(bench.Measurement(users, "litert", big, False)) not in (k_ours,)
    tight = profiles.Profile("tight", threads=1, mem_limit_mb=512)
    assert bench._worker_key(bench.Measurement(ours, "litert", tight, False)) != k_ours   # another ceiling


def test_missing_runtime_is_skipped_with_install_hint(digits_exports, fast_cfg, tmp_path, monkeypatch):
    from conftest import ROOT
    from pipeline.runtimes import tflite_runtime
    monkeypatch.setattr(tflite_runtime, "PYTHON", tmp_path / "no-such-venv" / "python")
    t = _target(digits_exports, "keras", "tflite_fp32", ROOT)
    r = bench.measure_one(t, "tflite_runtime", profiles.get("big-core"), fast_cfg, tmp_path, False).record
    assert r.status == "skipped" and "make setup-tflite-runtime" in r.error


def test_memory_limit_failure_is_a_record(digits_exports, fast_cfg, tmp_path, monkeypatch):
    """A ceiling bounds each measurement (RLIMIT_AS of its process): the 64 MB one fails, the same
    artifact under the default ceiling, asked in the same call, is measured."""
    from conftest import ROOT
    tiny = profiles.Profile("tiny", threads=1, mem_limit_mb=64)
    t = _target(digits_exports, "torch", "et_xnnpack_fp32", ROOT)
    r, ok = (o.record for o in bench.measure_profiles(t, "executorch", [(tiny, False), (profiles.get("2-core"), False)],
                                                       fast_cfg, tmp_path))
    assert r.status == "failed" and r.error, r
    assert ok.status == "ok", ok.error


def test_bad_profile_and_numbers_are_rejected():
    with pytest.raises(KeyError, match="valid profiles: big-core"):
        profiles.get("pixel-9")
    with pytest.raises(ValueError, match="threads must be >= 1"):
        profiles.Profile("zero", threads=0)
    with pytest.raises(ValueError, match="min_runs"):
        bench.config_with(min_runs=-5)


def test_a_slow_eval_pass_stops_at_its_budget_and_says_on_what(digits_exports, tmp_path):
    """The eval pass stops once it has `eval_min_samples` and has run `eval_max_seconds` (here at once):
    every quality figure, the reference's included, is then on those first samples, and says so."""
    import numpy as np

    from conftest import ROOT
    from pipeline import parity
    t = _target(digits_exports, "keras", "tflite_fp32", ROOT)
    cfg = bench.config_with(min_runs=20, min_seconds=0.0, ci_pct=0.0, warmup=2, timeout_s=120.0, peer=False,
                            op_profile=False, eval_max_seconds=1e-9, eval_min_samples=40)
    r = bench.measure_one(t, "litert", profiles.get("big-core"), cfg, tmp_path, want_outputs=True).record
    assert r.status == "ok", r.error
    m = r.metrics
    assert (m["eval_samples"], m["eval_set_samples"]) == (40, 360), m
    with np.load(t.eval_npz) as z:
        ref, y = z["ref_keras"][:40], z["y"][:40]
    assert m["reference_accuracy"] == float((ref.argmax(-1) == y).mean())
    assert parity.eval_prefix(m) == "first 40 of 360 eval samples"
    whole = bench.measure_one(t, "litert", profiles.get("big-core"), dataclasses.replace(cfg, eval_max_seconds=0.0),
                              tmp_path, want_outputs=True).record.metrics
    assert (whole["eval_samples"], parity.eval_prefix(whole)) == (360, "")


def test_one_profile_runtimes_get_the_first_profile_only(tmp_path):
    """Core AI's Linux runtime takes no thread count, and the old interpreter's 2-thread figures are noise:
    both are measured on the first profile only; every other runtime on each profile."""
    cfg = profiles.BenchConfig()
    t = bench.Target(artifact=tmp_path / "m.aimodel", format="aimodel", runtimes=("coreai",))
    u = bench.Target(artifact=tmp_path / "m.tflite", format="tflite", runtimes=("litert", "tflite_runtime"))
    got = {(x.format, rt): [p.name for p in ps] for x, rt, ps in bench.plan([t, u], cfg)}
    assert got == {("aimodel", "coreai"): ["big-core"], ("tflite", "tflite_runtime"): ["big-core"],
                   ("tflite", "litert"): ["big-core", "2-core"]}
