"""The regression gate (`python -m pipeline check`) on record files: the committed baseline passes
against itself, and each planted regression fails naming its cause and the offender."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import ROOT
from pipeline.bench import check
from pipeline.cli import main
from pipeline.schema import read_records

BASELINE = ROOT / "baselines" / "digits_cnn.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in BASELINE.read_text().splitlines() if line.strip()]


def _fresh(tmp_path: Path, rows: list[dict]) -> Path:
    """A results folder whose results.jsonl holds `rows` (what `make bench-mobile` would have written)."""
    d = tmp_path / "results"
    d.mkdir(exist_ok=True)
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


@pytest.fixture
def gate(capsys):
    """Run `python -m pipeline --results DIR check --baseline BASELINE ...` in-process (fast)."""
    def run(results: Path, *extra: str) -> SimpleNamespace:
        rc = main(["--results", str(results), "check", "--baseline", str(BASELINE), *extra])
        out = capsys.readouterr()
        return SimpleNamespace(returncode=rc, stdout=out.out, stderr=out.err)
    return run


def _find(rows, kind, source, path, runtime="", profile=""):
    hits = [r for r in rows if r["kind"] == kind and r.get("source") == source and r.get("path") == path
            and r.get("runtime", "") == runtime and r.get("profile", "") == profile]
    assert len(hits) == 1, f"expected one {kind} {source}__{path} {runtime} {profile} in the baseline, got {len(hits)}"
    return hits[0]


def test_committed_baseline_is_small_and_from_a_real_run():
    recs = read_records(BASELINE)
    bench = [r for r in recs if r.kind == "bench" and r.status == "ok"]
    assert len(bench) >= 20, f"only {len(bench)} ok bench records in {BASELINE}"
    assert any(r.kind == "pipeline" for r in recs), "no run record (machine + versions) in the baseline"
    assert all(set(r.metrics) <= set(check.GATE_METRICS) for r in recs)
    assert BASELINE.stat().st_size < 40_000, f"baseline is {BASELINE.stat().st_size} bytes"
    # a real run measures real accuracy on the 360-sample held-out set
    accs = [r.metrics["accuracy"] for r in bench if "accuracy" in r.metrics]
    assert accs and all(0.9 < a <= 1.0 for a in accs), accs


def test_baseline_passes_against_itself(tmp_path, gate):
    p = gate(_fresh(tmp_path, _rows()))
    assert p.returncode == 0, p.stdout + p.stderr
    assert "bench-check: ok: 0 regression(s)" in p.stdout


def test_noise_within_thresholds_passes(tmp_path, gate):
    rows = _rows()
    for r in rows:
        m = r.get("metrics", {})
        if "size_bytes" in m:
            m["size_bytes"] *= 1.03                      # +3 % < 5 %
        if "latency_p50_ms" in m:
            m["latency_p50_ms"] *= 1.8                   # +80 % < 150 %
        if "top1_agreement" in m:
            m["top1_agreement"] -= 0.005                 # -0.5 point < 1
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 0, p.stdout


def test_bigger_artifact_fails_naming_it(tmp_path, gate):
    rows = _rows()
    _find(rows, "export", "keras", "tflite_int8")["metrics"]["size_bytes"] *= 1.20
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 1, p.stdout
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(lines) == 1, p.stdout
    assert "size" in lines[0] and "digits_cnn/keras__tflite_int8 [export]" in lines[0] and "+20.0% > 5%" in lines[0]


def test_dropped_path_fails_naming_it(tmp_path, gate):
    rows = [r for r in _rows() if r.get("path") != "et_xnnpack_int8"]
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 1
    fails = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL")]
    # one line for the export; its measurements are not repeated as separate offenders
    assert len(fails) == 1 and "dropped" in fails[0] and "torch__et_xnnpack_int8 [export]" in fails[0], p.stdout
    assert "now missing" in fails[0]


def test_path_that_now_fails_names_the_error(tmp_path, gate):
    rows = _rows()
    r = _find(rows, "bench", "keras", "tflite_fp16", "litert", "big-core")
    r.update(status="failed", error="RuntimeError: Encountered unresolved custom op: Foo")
    r.pop("metrics")
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 1
    assert "digits_cnn/keras__tflite_fp16 [litert big-core]: was ok, now failed: RuntimeError: " \
           "Encountered unresolved custom op: Foo" in p.stdout


def test_lower_agreement_and_accuracy_fail(tmp_path, gate):
    rows = _rows()
    m = _find(rows, "bench", "torch", "litert_torch_int8", "litert", "big-core")["metrics"]
    m["top1_agreement"] -= 0.03
    m["accuracy"] -= 0.02
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 1
    fails = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 2, p.stdout
    assert any("agreement" in ln and "(-3.00 points > 1)" in ln for ln in fails), p.stdout
    assert any("accuracy" in ln and "(-2.00 points > 1)" in ln for ln in fails), p.stdout


def test_latency_regression_is_noise_aware(tmp_path, gate):
    rows = _rows()
    big = _find(rows, "bench", "keras", "tflite_fp32", "litert", "big-core")["metrics"]
    big["latency_p50_ms"] = big["latency_p50_ms"] * 3 + 0.2      # 3x and well above its p90 ...
    big["latency_min_ms"] *= 2                                  # ... and the floor moved: real
    two = _find(rows, "bench", "keras", "tflite_fp32", "litert", "2-core")["metrics"]
    two["latency_p50_ms"] *= 10                                 # 2-core is not gated (shared machine)
    res = _fresh(tmp_path, rows)
    p = gate(res)
    assert p.returncode == 1
    fails = [ln for ln in p.stdout.splitlines() if ln.startswith("FAIL")]
    assert len(fails) == 1 and "latency" in fails[0] and "[litert big-core]" in fails[0], p.stdout
    p = gate(res, "--latency", "warn")
    assert p.returncode == 0 and "WARN latency" in p.stdout, p.stdout
    assert gate(res, "--latency", "off").returncode == 0


def test_latency_under_contention_is_not_a_regression(tmp_path, gate):
    """p50 4.5x worse but the fastest run unchanged: the machine was busy, the code was not slower
    (what two real runs on the shared machine looked like for ExecuTorch portable)."""
    rows = _rows()
    m = _find(rows, "bench", "torch", "et_portable_fp32", "executorch", "big-core")["metrics"]
    m["latency_p50_ms"] *= 4.5
    m["latency_min_ms"] *= 1.04
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 0, p.stdout


def test_latency_against_another_machine_only_warns(tmp_path, gate):
    rows = _rows()
    m = _find(rows, "bench", "keras", "tflite_fp32", "litert", "big-core")["metrics"]
    m["latency_p50_ms"] *= 50
    m["latency_min_ms"] *= 50
    run = next(r for r in rows if r["kind"] == "pipeline")
    run["info"]["machine"]["cpu"] = "Some Other CPU"
    p = gate(_fresh(tmp_path, rows))
    assert p.returncode == 0, p.stdout
    assert "latency findings are 'warn'" in p.stdout and "WARN latency" in p.stdout


def test_missing_model_fails(tmp_path, gate):
    p = gate(_fresh(tmp_path, [r for r in _rows() if r["kind"] == "pipeline"]))
    assert p.returncode == 1 and "no records for this model in the fresh run" in p.stdout


def test_bad_config_is_one_line_error(tmp_path, gate):
    cfg = tmp_path / "gate.toml"
    cfg.write_text("[size]\nmax_growth = 5\n")
    p = gate(_fresh(tmp_path, _rows()), "--config", str(cfg))
    assert p.returncode == 2
    assert p.stderr.strip() == f"error: {cfg}: unknown key(s) ['max_growth'] in [size]"


def test_write_baseline_roundtrip(tmp_path, gate):
    res = _fresh(tmp_path, _rows())
    dest = tmp_path / "b.jsonl"
    p = subprocess.run([sys.executable, "-m", "pipeline", "--results", str(res), "check", "--write-baseline",
                        str(dest), "--models", "digits_cnn"], cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert [json.loads(x) for x in dest.read_text().splitlines()] == \
        [check.slim(r) for r in read_records(BASELINE)]


def test_shipped_config_parses():
    cfg = check.load_config()
    assert cfg["size"]["max_growth_pct"] == pytest.approx(5.0)
    assert cfg["latency"]["profiles"] == ["big-core"]
