"""The one policy (pipeline/policy.py, judged with by pipeline/parity.py): every status, label and bound is
defined there once, the report's tables and prose derive from it, and no other module defines a
threshold of its own."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from pipeline import parity, policy

ROOT = Path(__file__).resolve().parents[2]
# a constant or a default argument with one of these words in its name and a number as its value is a
# threshold; it belongs to the policy (resource limits such as MAX_FILES or TIMEOUT_S, and how long a
# measurement runs (BenchConfig's ci_pct, min_runs), are not judgements)
THRESHOLD_WORDS = re.compile(r"(?i)(tol\b|tolerance|ratio|target|band\b|slack|eps\b|epsilon|thresh|sqnr|"
                             r"steps?\b|sigmas?\b|percent|bound\b|agree|atol|rtol|_db\b|allowance|"
                             r"speedup|margin|growth_pct|slowdown|drop|share\b|min_pattern)")


def _numeric(node) -> bool:
    if isinstance(node, ast.Constant):
        return isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    if isinstance(node, ast.UnaryOp):
        return _numeric(node.operand)
    if isinstance(node, ast.BinOp):
        return _numeric(node.left) and _numeric(node.right)
    if isinstance(node, (ast.Tuple, ast.List)):
        return bool(node.elts) and all(_numeric(e) for e in node.elts)
    if isinstance(node, ast.Dict):
        return bool(node.values) and all(_numeric(v) for v in node.values)
    return False


def _thresholds_outside_policy(files) -> list[str]:
    out = []
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            where = f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f.name}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                names = [t.id for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                         if isinstance(t, ast.Name)]
                if _numeric(node.value) and any(THRESHOLD_WORDS.search(n) for n in names):
                    out.append(f"{where}: {names[0]}")
                if isinstance(node.value, ast.Dict):    # {"max_growth_pct": 5.0, ...}
                    out += [f"{where}: {k.value!r}" for k, v in zip(node.value.keys, node.value.values)
                            if isinstance(k, ast.Constant) and isinstance(k.value, str) and _numeric(v)
                            and THRESHOLD_WORDS.search(k.value)]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                pos = a.posonlyargs + a.args
                pairs = list(zip(pos[len(pos) - len(a.defaults):], a.defaults)) + list(zip(a.kwonlyargs, a.kw_defaults))
                out += [f"{where}: def {node.name}({arg.arg}=...)" for arg, d in pairs
                        if d is not None and _numeric(d) and THRESHOLD_WORDS.search(arg.arg)]
    return out


def test_no_threshold_is_defined_outside_the_policy():
    files = [f for pattern in ("pipeline/**/*.py", "export/**/*.py", "probes/**/*.py") for f in ROOT.glob(pattern)
             if f != ROOT / "pipeline" / "policy.py"]
    assert len(files) > 50
    found = _thresholds_outside_policy(files)
    assert not found, "thresholds defined outside pipeline/policy.py (import them from pipeline.parity):\n" + \
        "\n".join(found)


def test_the_scan_finds_a_threshold(tmp_path):
    """The scan above can fail: a constant, a dict key and a default argument, each a threshold."""
    f = tmp_path / "probe.py"
    f.write_text("MSE_RATIO = 1.05\nGATE = {'max_growth_pct': 5.0, 'runs': 3}\n"
                 "def ok(x, tol=1e-4, runs=3):\n    return x\nTIMEOUT_S = 900.0\n")
    found = _thresholds_outside_policy([f])
    assert [s.split(": ", 1)[1] for s in found] == ["MSE_RATIO", "'max_growth_pct'", "def ok(tol=...)"], found


def test_every_status_has_a_mark_colour_severity_and_meaning():
    for s in policy.STATUSES:
        assert s in policy.STATUS_MARK and s in policy.STATUS_COLOR and s in policy.SEVERITY and policy.MEANING[s]
    assert set(policy.CELL_STATUSES) == set(policy.STATUS_MARK) == set(policy.STATUS_COLOR)
    assert len(set(policy.STATUS_COLOR.values())) == len(policy.STATUS_COLOR)     # each its own colour
    assert set(policy.COUNT_LABEL) == set(policy.CELL_STATUSES) - {"missing"}
    assert set(policy.PROBE_LABEL) == set(policy.PROBE_CELLS)
    # the worst last: a failure outranks a mismatch, which outranks anything that did not run
    assert policy.SEVERITY["failed"] > policy.SEVERITY["mismatch"] > max(
        policy.SEVERITY[s] for s in policy.STATUSES if s not in ("failed", "mismatch"))
    assert policy.RAN == ("ok", "mismatch") and all(policy.ran(s) == (s in policy.RAN) for s in policy.STATUSES)


def test_a_new_runs_elsewhere_member_is_one_entry(tmp_path):
    """A kind of device that runs what this host cannot (here a made-up NPU) is one ELSEWHERE entry: the
    record status, its mark, colour, severity, count label and probe cell all follow from it."""
    import sys
    import types
    entry = ("    Elsewhere(\"npu_only\", \"NPU only\", \"phones with the vendor's NPU\", \"Android\", \"the NPU runtime\", "
             "\"#123456\", formats={\"npubin\": \"a compiled NPU program: only the vendor's driver runs it\"}),\n")
    src = Path(policy.__file__).read_text()
    head = "ELSEWHERE: tuple[Elsewhere, ...] = (\n"
    assert src.count(head) == 1
    mod = types.ModuleType("policy_with_npu")
    sys.modules[mod.__name__] = mod
    try:
        exec(compile(src.replace(head, head + entry), "policy_with_npu", "exec"), mod.__dict__)
    finally:
        del sys.modules[mod.__name__]
    assert "npu_only" in mod.STATUSES and mod.STATUS_MARK["npu_only"] == "NPU only"
    assert mod.STATUS_COLOR["npu_only"] == "#123456" and "npu_only" in mod.PROBE_CELLS
    assert mod.SEVERITY["skipped"] < mod.SEVERITY["npu_only"] < mod.SEVERITY["mismatch"]
    assert mod.COUNT_LABEL["npu_only"] == "NPU only (exported; runs on Android only, nothing ran here)"
    f = tmp_path / "m.npubin"
    f.write_bytes(b"x")
    assert mod.runs_elsewhere(f, "npubin") == ("npu_only", "a compiled NPU program: only the vendor's driver runs it")
    assert not mod.ran("npu_only") and "npu_only" not in policy.STATUSES


def test_prose_is_generated_from_the_bounds():
    assert policy.num(1e-4) == "1e-4" and policy.num(5e-2) == "5e-2" and policy.num(0.95) == "0.95"
    assert "1e-4 of the output's scale" in policy.DEVICE.prose() and "epsilon 1e-3" in policy.DEVICE.prose()
    rule = dataclasses.replace(policy.DEVICE, float_rel=2e-4, int8_steps=2)
    assert "2e-4 of the output's scale" in rule.prose() and "within 2 output quantization steps" in rule.prose()
    probe = dataclasses.replace(policy.PROBE, int8_sqnr_db=25.0)
    assert "SQNR >= 25 dB" in probe.prose() and "fp16: 1e-2" in probe.prose()


def test_device_rule_compares_in_steps_with_its_epsilon():
    m = {"top1_agreement": 1.0, "max_abs_diff_steps": 1.0 + 5e-4, "quant_step": 0.1, "max_abs_diff": 0.1,
         "output_scale": 1.0}
    assert parity.judge_device(m, int8=True) == []          # one step lost to float rounding passes
    m["max_abs_diff_steps"] = 1.01
    assert parity.judge_device(m, int8=True) == ["max abs diff 1.0100 quantization steps > 1 (step 0.1)"]
    m["top1_agreement"] = 0.9
    assert parity.judge_device(m, int8=True)[0] == "top-1 agreement 0.900 != 1"
    assert parity.judge_device({"max_abs_diff": 2e-4, "output_scale": 1.0}, int8=False)[0].startswith(
        "max abs diff 0.0002 > 0.0001 x output scale")


@pytest.mark.parametrize("metric,value,ref,ok", [
    ("accuracy", 0.98, 0.99, True), ("accuracy", 0.979, 0.99, False),
    ("reconstruction_mse", 1.0 + policy.Tolerances().mse_increase_pct / 100, 1.0, True),   # at the edge
    ("reconstruction_mse", 1.0 + policy.Tolerances().mse_increase_pct / 100 + 1e-3, 1.0, False)])
def test_quality_allowance_is_one_rule(metric, value, ref, ok):
    assert parity.quality_ok(metric, value, ref, policy.Tolerances()) is ok


def test_the_verdict_shows_the_figure_it_judged():
    """What a log prints is what was judged: the decisive samples' top-1 (0.938 raw, 1.000 decisive)."""
    m = {"sqnr_db": 30.0, "top1_agreement": 0.938, "top1_agreement_decisive": 1.0, "top1_decisive_samples": 100,
         "top1_decisive_share": 0.8}
    v = parity.judge(m, "int8", parity.DEFAULTS["int8"])
    assert v.status == "ok" and "top-1 agreement 1.000 on 100 decisive samples (>= 0.95)" in v.figures
    assert "0.938" not in v.figures
    bad = parity.judge({**m, "top1_agreement_decisive": 0.9}, "int8", parity.DEFAULTS["int8"])
    assert bad.status == "mismatch" and "top-1 agreement 0.900" in bad.figures and "0.900 < 0.95" in bad.reason
