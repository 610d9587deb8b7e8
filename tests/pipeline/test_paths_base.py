"""One base for paths (issue 28 item 4): `--artifacts`/`--results` given relative to the folder the
command runs in land there, though the workers run in the project root.

    .venv/bin/python -m pytest -q tests/pipeline/test_paths_base.py

A real export (one path of the digits model, trained copy from the test cache) and a real bench of it,
run from a folder that is neither the project root nor the trees' parent.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from conftest import ROOT
from pipeline.artifact import resolve
from pipeline.schema import read_records

FAST_BENCH = ["bench", "--models", "digits_cnn", "--profiles", "big-core", "--min-runs", "5", "--min-seconds", "0",
              "--ci-pct", "0", "--no-device", "--no-peer", "--no-op-profile"]


def _cli(cwd, *args):
    return subprocess.run([sys.executable, "-m", "pipeline", "--artifacts", "../art", "--results", "res", *args],
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          timeout=900)


def test_export_and_bench_with_relative_folders_from_elsewhere(tmp_path, digits_trained):
    shutil.copytree(digits_trained, tmp_path / "art" / "digits_cnn" / "train")
    here = tmp_path / "elsewhere"
    here.mkdir()
    p = _cli(here, "export", "--models", "digits_cnn", "--paths", "tflite_fp32")
    assert p.returncode == 0, p.stderr[-2000:]
    exported = sorted((tmp_path / "art" / "digits_cnn").glob("*__tflite_fp32.tflite"))
    assert exported, sorted(os.listdir(tmp_path / "art" / "digits_cnn"))

    p = _cli(here, *FAST_BENCH)
    assert p.returncode == 0, p.stderr[-2000:]
    bench = [r for r in read_records(here / "res" / "results.jsonl") if r.kind == "bench"]
    assert bench and all(r.status == "ok" for r in bench), [(r.path, r.status, r.error) for r in bench]
    # the artifact each record names is the one exported into the folder asked for, and the eval file the
    # bench judged accuracy with is that folder's (not one under the project root)
    assert {resolve(r.artifact) for r in bench} <= set(exported), {r.artifact for r in bench}
    assert all("accuracy" in r.metrics for r in bench), [sorted(r.metrics) for r in bench]
    # nothing under the project root or the trees' parent resolved against the wrong base
    for wrong in (ROOT / "res", ROOT.parent / "art", tmp_path / "res", here / "art"):
        assert not wrong.exists(), wrong
