"""The export stage's long-lived workers (`pipeline/stages.py: export`, `export/run.py: handle`): models
go through one worker per slot in turn; a worker killed mid-model yields `failed` records for that
model's unfinished paths, and a fresh worker exports the models still to do. Real processes.

    .venv/bin/python -m pytest -q tests/pipeline/test_export_workers.py
"""
from __future__ import annotations

import pytest

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import models
from pipeline.schema import read_records


def _children(pid: int, needle: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid and needle in cmd:
            out.append(int(d))
    return out


@pytest.mark.slow   # ~40 s; tests/pipeline/test_workers.py's queue tests (a crash fails its item, a fresh
#                     worker takes the next) check the protocol the export stage runs on, in make test
def test_killed_worker_fails_its_model_and_a_fresh_one_goes_on(tmp_path, digits_exports):
    from conftest import ROOT, TEST_ARTIFACTS
    # anomaly_ae is costlier, so it goes first; it is killed during its first training epoch (nothing
    # of it is cached)
    assert models.get("anomaly_ae").build_cost_s > models.get("digits_cnn").build_cost_s
    shutil.copytree(TEST_ARTIFACTS / "digits_cnn" / "train", tmp_path / "artifacts" / "digits_cnn" / "train")
    cmd = [sys.executable, "-m", "pipeline", "--artifacts", str(tmp_path / "artifacts"),
           "--results", str(tmp_path / "results"), "export", "--models", "anomaly_ae,digits_cnn",
           "--paths", "tflite_fp32", "--jobs", "1", "--profile"]
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stdout:
        lines.append(line.rstrip())
        if line.startswith("  [anomaly_ae] "):
            (worker,) = _children(p.pid, "export.run")
            os.kill(worker, signal.SIGKILL)
            break
    out, err = p.communicate(timeout=900)
    lines += out.splitlines()
    assert p.returncode == 0, err[-2000:]
    recs = {(r.model, r.source, r.path): r for r in read_records(tmp_path / "results" / "results.jsonl")}
    for src in ("keras", "keras_tw"):
        dead = recs[("anomaly_ae", src, "tflite_fp32")]
        assert dead.status == "failed" and "export worker died" in dead.error and "SIGKILL" in dead.error, dead
        assert recs[("digits_cnn", src, "tflite_fp32")].status == "ok"
    # --profile: the path's row shows the phase it timed
    header = next(ln for ln in lines if ln.startswith("export path"))
    assert "convert" in header.split() and any(ln.startswith("tflite_fp32") for ln in lines), lines[-8:]


@pytest.mark.slow   # ~15 s; the killed-worker test already hands a worker's models on to the next
def test_one_worker_takes_models_in_turn(tmp_path, digits_exports):
    """One export worker, three jobs in turn: a model that raises (an unknown name) ends only its own
    job, and the second digits_cnn finds the first's work."""
    from conftest import TEST_ARTIFACTS
    from pipeline import workers
    shutil.copytree(TEST_ARTIFACTS / "digits_cnn" / "train", tmp_path / "artifacts" / "digits_cnn" / "train")
    items = [{"id": i, "model": m, "step": "export"} for i, m in enumerate(["digits_cnn", "no_such_model", "digits_cnn"])]
    lines = []
    out = workers.run(workers.Job("export.run", items, {"artifacts": str(tmp_path / "artifacts"),
                                                         "paths": ["tflite_fp32"], "force": False}, timeout_s=600),
                      on_line=lines.append)
    assert [r["status"] for r in out.values()] == ["ok", "failed", "ok"], out
    assert "no_such_model" in out[1]["error"] and "death" not in out[1], out[1]
    assert "up to date" in [ln for ln in lines if ln.startswith("[export digits_cnn")][-1], lines
