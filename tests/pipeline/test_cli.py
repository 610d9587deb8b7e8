from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=ROOT, capture_output=True, text=True)


def test_help_lists_subcommands():
    p = _cli("--help")
    assert p.returncode == 0
    for cmd in ("train", "export", "bench", "report"):
        assert cmd in p.stdout


def test_unknown_model_lists_valid_ones(tmp_path):
    p = _cli("--results", str(tmp_path), "--artifacts", str(tmp_path / "a"), "export", "--models", "resnet9000")
    assert p.returncode == 2
    assert "unknown model 'resnet9000'; valid models: digits_cnn" in p.stderr


def test_zero_jobs_rejected():
    p = _cli("export", "--jobs", "0")
    assert p.returncode == 2 and "must be >= 1" in p.stderr


def test_bench_bad_file_is_one_line_error(tmp_path):
    f = tmp_path / "broken.tflite"
    f.write_bytes(b"\x00" * 3)
    p = _cli("--results", str(tmp_path / "r"), "bench", str(f), "--no-device")
    assert p.returncode == 2 and "| artifact" not in p.stdout     # a bad input: exit 2, nothing measured
    errs = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(errs) == 1 and f"error: {f}: not a TFLite flatbuffer" in errs[0], errs


BAD_CONFIGS = [
    (["export", "--models", "nope"], "unknown model 'nope'; valid models:"),
    (["train", "--models", "nope"], "unknown model 'nope'; valid models:"),
    (["bench", "--models", "nope"], "unknown model 'nope'; valid models:"),
    (["export", "--models", "digits_cnn", "--paths", "tflite_int4"], "unknown export path 'tflite_int4'; valid paths:"),
    (["bench", "--profiles", "pixel99"], "unknown device profile 'pixel99'; valid profiles: big-core"),
    (["bench", "--min-runs", "-3"], "must be >= 1, got -3"),
    (["bench", "--min-runs", "0"], "must be >= 1, got 0"),
    (["bench", "--min-runs", "many"], "expected a whole number >= 1, got 'many'"),
    (["bench", "--min-seconds", "-1"], "must be a finite number >= 0"),
    (["bench", "--min-seconds", "nan"], "must be a finite number >= 0"),
    (["bench", "--timeout", "0"], "must be > 0"),
    (["bench", "--shape", "1,0,8"], "every dimension must be >= 1"),
    (["bench", "--shape", "1,a"], "expected numbers like 1,3,96,96"),
    (["export", "--jobs", "0"], "must be >= 1, got 0"),
    (["frobnicate"], "invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize("args,message", BAD_CONFIGS, ids=[" ".join(a) for a, _ in BAD_CONFIGS])
def test_bad_configuration_is_one_line_exit_2(tmp_path, args, message):
    p = _cli("--artifacts", str(tmp_path / "a"), "--results", str(tmp_path / "r"), *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    errors = [ln for ln in p.stderr.splitlines() if "error:" in ln]
    assert len(errors) == 1 and message in errors[0], p.stderr


def test_torn_results_file_is_one_line_exit_2(tmp_path):
    (tmp_path / "results.jsonl").write_text('{"kind": "bench", "model": "x", "sta')
    p = _cli("--results", str(tmp_path), "report")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert p.stderr.strip() == f"error: {tmp_path / 'results.jsonl'}:1: bad record: " + p.stderr.split("bad record: ")[1].strip()


@pytest.mark.parametrize("name", ["missing.tflite", "missing.pte", "missing.ptl"])
def test_bench_missing_file(tmp_path, name):
    p = _cli("--results", str(tmp_path / "r"), "bench", str(tmp_path / name))
    assert p.returncode == 2 and "Traceback" not in p.stderr + p.stdout
    errs = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(errs) == 1 and f"error: {tmp_path / name}: no such file" in errs[0], errs


def test_ctrl_c_inside_string_compiled_code_exits_130(tmp_path):
    """CPython flags a KeyboardInterrupt that ends inside exec'd string code (a dataclass being created
    during an import, torch.fx codegen) as unhandled, and `python -m` would then die by SIGINT (-2)
    although main() caught it. The real entry point, with the interrupt raised where a Ctrl-C during an
    import lands (a sitecustomize swaps the stage for one that execs a string)."""
    (tmp_path / "sitecustomize.py").write_text(
        "import pipeline.cli\n"
        "pipeline.cli._dispatch = lambda args: exec('raise KeyboardInterrupt', {})\n")
    import os
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    p = subprocess.run([sys.executable, "-m", "pipeline", "list"], cwd=ROOT, capture_output=True, text=True,
                       env=env)
    assert p.returncode == 130, (p.returncode, p.stderr[-500:])
    assert p.stderr.strip() == "interrupted: list stopped; finished work is kept, run it again to resume"
