"""A real `export` (and `bench`) reads like a tool: only our lines on the terminal, the libraries' output (TensorFlow's
SavedModel dumps, torchao, absl, ExecuTorch) in results/logs/, and all of it on the terminal with -v.

    .venv/bin/python -m pytest -q tests/pipeline/test_terminal.py
"""
from __future__ import annotations

import pytest

import re
import shutil
import subprocess
import sys

from answer import check_answer
from conftest import ROOT

# an absl/glog line ("W1206 06:12:25.356000 10854 file.py:630] ...") or the torchao kernels it cannot load
LIBRARY_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d|Failed to load|Saved artifact at")


def _export(tree, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline", "--artifacts", str(tree / "artifacts"),
                           "--results", str(tree / "results"), "export", "--models", "digits_cnn",
                           "--paths", "tflite_fp32,et_portable_fp32", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.mark.slow   # a real export + bench (~70 s); make test keeps the routing tests of test_runlog.py
def test_export_terminal_holds_our_lines_and_the_log_the_libraries(tmp_path, digits_trained):
    shutil.copytree(digits_trained, tmp_path / "artifacts" / "digits_cnn" / "train")
    p = _export(tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert p.stderr == "", p.stderr[-2000:]
    lines = p.stdout.splitlines()
    assert lines and all(ln.startswith(("[export", "[train")) for ln in lines), p.stdout
    exports = [ln for ln in lines if ln.startswith("[export digits_cnn")]
    assert len(exports) == 3, lines                     # keras + keras_tw tflite, torch pte
    assert re.match(r"\[export digits_cnn 1/3, ~(\d+m)?\d+s left\] keras__tflite_fp32: ok", exports[0]), exports
    logs = list((tmp_path / "results" / "logs").glob("export-*.log"))
    assert len(logs) == 1, logs
    text = logs[0].read_text()
    assert "Saved artifact at" in text                  # the Keras export's endpoint dump
    assert "export.run digits_cnn export| " in text     # tagged with the worker and the job it was on
    assert not any(LIBRARY_LINE.search(ln) for ln in lines)

    b = subprocess.run([sys.executable, "-m", "pipeline", "--artifacts", str(tmp_path / "artifacts"), "--results",
                        str(tmp_path / "results"), "bench", "--profiles", "big-core", "--min-runs", "5",
                        "--min-seconds", "0", "--ci-pct", "0", "--no-device", "--no-peer", "--no-op-profile"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert b.returncode == 0 and b.stderr == "", b.stderr[-2000:]
    assert not any(LIBRARY_LINE.search(ln) for ln in b.stdout.splitlines()), b.stdout
    benches = [ln for ln in b.stdout.splitlines() if ln.startswith("[bench ")]
    assert re.match(r"\[bench 1/\d+, ~(\d+m)?\d+s left\] digits_cnn/", benches[0]), benches
    (blog,) = (tmp_path / "results" / "logs").glob("bench-*.log")
    assert "pipeline.bench.worker " in blog.read_text()      # the workers' output, followed as it came
    check_answer(b.stdout.splitlines(), tmp_path / "results")  # it ends with the picks and the report's path

    v = _export(tmp_path, "--force", "-v")
    assert v.returncode == 0, v.stderr[-2000:]
    shown = (v.stdout + v.stderr).splitlines()
    assert any(LIBRARY_LINE.search(ln) for ln in shown), shown[:40]
    assert len(list((tmp_path / "results" / "logs").glob("export-*.log"))) == 1   # -v writes none
