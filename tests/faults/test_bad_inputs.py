"""Bad inputs reach the real runtimes in isolated workers and come back as one clear line.

    .venv/bin/python -m pytest -q tests/faults/test_bad_inputs.py
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from pipeline import runtimes

from pipeline.bench import harness as bench
from pipeline.bench import profiles

CFG = bench.config_with(min_runs=3, min_seconds=0.0, ci_pct=0.0, warmup=0, timeout_s=300.0, eval_limit=20)
BIG = profiles.get("big-core")


def _target(digits_exports, source, path):
    from conftest import TEST_ARTIFACTS
    (t,) = bench.targets_from_exports([digits_exports[(source, path)]], TEST_ARTIFACTS)
    return t


def _one_line(err: str, *needles: str) -> None:
    assert err and "\n" not in err and "Traceback" not in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"


@pytest.fixture(scope="module")
def pte_without_forward(tmp_path_factory):
    """A valid ExecuTorch program whose only method is 'other' (ours load 'forward')."""
    import torch
    from executorch.exir import to_edge_transform_and_lower

    ep = torch.export.export(torch.nn.Linear(4, 2).eval(), (torch.zeros(1, 4),), strict=False)
    prog = to_edge_transform_and_lower({"other": ep}).to_executorch()
    f = tmp_path_factory.mktemp("pte") / "other_method.pte"
    f.write_bytes(prog.buffer)
    return f


def test_pte_without_forward_method(pte_without_forward, tmp_path):
    t = bench.byom_target(pte_without_forward)  # a valid file: passes the cheap checks
    r = bench.measure_one(t, "executorch", BIG, CFG, tmp_path, want_outputs=False).record
    assert r.status == "failed"
    _one_line(r.error, str(pte_without_forward), "no 'forward' method", "'other'")


@pytest.mark.parametrize("source,path,runtime", [("keras", "tflite_fp32", "litert"),
                                                 ("keras", "tflite_fp32", "tflite_runtime"),
                                                 ("torch", "et_portable_fp32", "executorch"),
                                                 ("torch", "ptl_fp32", "lite_interpreter")])
def test_shape_override_that_does_not_fit(digits_exports, tmp_path, source, path, runtime):
    t = _target(digits_exports, source, path)
    t = dataclasses.replace(bench.byom_target(t.artifact, ((1, 3, 5, 7),)))
    r = bench.measure_one(t, runtime, BIG, CFG, tmp_path, want_outputs=False).record
    assert r.status == "failed", r
    _one_line(r.error)
    assert any(w in r.error.lower() for w in ("shape", "size", "channels", "dimension")), r.error


def test_too_many_shape_overrides(digits_exports, tmp_path):
    t = _target(digits_exports, "keras", "tflite_fp32")
    t = bench.byom_target(t.artifact, ((1, 8, 8, 1), (1, 8, 8, 1)))
    r = bench.measure_one(t, "litert", BIG, CFG, tmp_path, want_outputs=False).record
    assert r.status == "failed"
    _one_line(r.error, "keras__tflite_fp32.tflite", "2 --shape given but the model takes 1 inputs")


def _with_eval(t, tmp_path, x):
    with np.load(t.eval_npz) as z:
        arrays = dict(z)
    arrays["x"] = x
    f = tmp_path / "eval.npz"
    np.savez(f, **arrays)
    return dataclasses.replace(t, eval_npz=f)


@pytest.mark.parametrize("source,path,runtime", [("keras", "tflite_fp32", "litert"),
                                                 # the same check in the other runtimes: ~33 s, make test-slow
                                                 pytest.param("torch", "et_xnnpack_fp32", "executorch", marks=pytest.mark.slow),
                                                 pytest.param("torch", "ptl_fp32", "lite_interpreter", marks=pytest.mark.slow)])
def test_nan_inf_inputs_are_reported(digits_exports, digits_eval, tmp_path, source, path, runtime):
    t = _target(digits_exports, source, path)
    x = digits_eval["x"].copy()
    x[:, :, 0, 0] = np.nan
    x[:, :, 1, 1] = np.inf
    t = _with_eval(t, tmp_path, x)
    r = bench.measure_one(t, runtime, BIG, CFG, tmp_path, want_outputs=True).record
    assert r.status == "ok", r.error
    assert r.info["inputs_have_nan_or_inf"] is True
    assert r.info["outputs_have_nan_or_inf"] is True   # NaN propagates through an fp32 conv net
    clean = bench.measure_one(_target(digits_exports, source, path), runtime, BIG, CFG, tmp_path / "c", False).record
    assert clean.info["inputs_have_nan_or_inf"] is False and clean.info["outputs_have_nan_or_inf"] is False


def test_wrong_input_dtype(digits_exports, digits_eval, tmp_path):
    t = _target(digits_exports, "keras", "tflite_fp32")
    t = _with_eval(t, tmp_path, digits_eval["x"].astype(np.complex64))
    r = bench.measure_one(t, "litert", BIG, CFG, tmp_path, want_outputs=False).record
    assert r.status == "failed"
    _one_line(r.error, "eval.npz", "dtype complex64")


# a runtime that is not installed: simulated by hiding its package from the import system in a fresh
# process (the adapters' own available() check runs for real); the other runtimes still measure
_HIDE = """
import importlib.abc, json, sys
sys.path.insert(0, {root!r})
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == {mod!r} or name.startswith({mod!r} + "."):
            raise ImportError("hidden by the test: " + name)
sys.meta_path.insert(0, Hide())
from pathlib import Path
from pipeline import runtimes
from pipeline.bench import harness as bench
from pipeline.bench import profiles
if {hide_py!r}:
    import pipeline.runtimes.tflite_runtime as tflite_runtime
    tflite_runtime.PYTHON = Path("/nonexistent/python")
cfg = bench.config_with(min_runs=3, min_seconds=0.0, ci_pct=0.0, warmup=0, eval_limit=5, profiles=("big-core",))
t = bench.byom_target(Path({art!r}))
t = bench.Target(artifact=t.artifact, format=t.format, runtimes=tuple({rts!r}), shapes={shapes!r})
recs = bench.run([t], cfg, Path({cache!r}), log=lambda m: None)
print(json.dumps([[r.runtime, r.status, r.error] for r in recs]))
"""


@pytest.mark.parametrize("hidden,mod,art_key,others,shapes", [
    ("litert", "ai_edge_litert", ("keras", "tflite_fp32"), ["tflite_runtime"], ()),
    ("tflite_runtime", "", ("keras", "tflite_fp32"), ["litert"], ()),
    ("executorch", "executorch", ("torch", "et_portable_fp32"), [], ()),
    ("lite_interpreter", "torch", ("torch", "ptl_fp32"), ["litert"], ((1, 1, 8, 8),)),
])
def test_missing_runtime_is_skipped_with_install_hint(digits_exports, tmp_path, hidden, mod, art_key,
                                                      others, shapes):
    from conftest import ROOT
    art = str(ROOT / digits_exports[art_key].artifact)
    rts = [hidden] + [o for o in others if art.endswith(tuple("." + f for f in runtimes.get(o).FORMATS))]
    code = _HIDE.format(root=str(ROOT), mod=mod or "no_such_module_hidden", hide_py=hidden == "tflite_runtime",
                        art=art, rts=rts, cache=str(tmp_path), shapes=shapes)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    recs = {rt: (st, err) for rt, st, err in json.loads(p.stdout.strip().splitlines()[-1])}
    st, err = recs[hidden]
    assert st == "skipped"
    _one_line(err, f"runtime {hidden} is not installed", runtimes.get(hidden).INSTALL_HINT)
    for o in rts[1:]:
        assert recs[o][0] == "ok", recs[o]
