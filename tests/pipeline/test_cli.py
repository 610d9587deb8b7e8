from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True)


def test_help_lists_subcommands():
    p = _cli("--help")
    assert p.returncode == 0
    for cmd in ("train", "export", "bench", "report"):
        assert cmd in p.stdout


def test_unknown_model_lists_valid_ones(tmp_path):
    p = _cli("--results", str(tmp_path), "export", "--models", "resnet9000")
    assert p.returncode == 2
    assert "unknown model 'resnet9000'; valid models: digits_cnn" in p.stderr


def test_zero_jobs_rejected():
    p = _cli("export", "--jobs", "0")
    assert p.returncode == 2 and "must be >= 1" in p.stderr


def test_bench_bad_file_is_one_line_error(tmp_path):
    f = tmp_path / "broken.tflite"
    f.write_bytes(b"\x00" * 3)
    p = _cli("--results", str(tmp_path / "r"), "bench", str(f))
    assert p.returncode == 1
    assert f"error: {f}: not a TFLite flatbuffer" in p.stdout
