"""Where outputs differ and why (`pipeline/explain`): evidence on arrays with a known pattern, the file
facts of the checked-in one-op models, and the rules on evidence they must (or must not) explain."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.explain import evidence, filefacts, rules

DATA = Path(__file__).resolve().parents[2] / "pipeline" / "bench" / "data"


def _isinf_case(n=64, seed=0):
    """An isinf-like output computed wrong at exactly the ±inf inputs (NaN inputs left alone)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, n)).astype(np.float32)
    x[0, [3, 17, 40]] = np.inf
    x[0, [8, 50]] = -np.inf
    x[0, [11, 30]] = np.nan
    expected = np.isinf(x).astype(np.float32)
    got = np.zeros_like(expected)
    return x, expected, got


def test_evidence_names_the_differing_inputs_and_is_small_json():
    x, expected, got = _isinf_case()
    ev = evidence.of(expected, got, [x], 0.0)
    assert ev["differ"] == 5 and ev["compared"] == 64 and ev["map"] == "element"
    assert ev["inputs"]["tag"] == "inf" and ev["inputs"]["text"].startswith("exactly the 5 ±inf inputs")
    assert "none of the 2 NaN inputs differs" in ev["inputs"]["text"]
    assert ev["outputs"]["tags"] == ["constant"] and ev["outputs"]["text"] == "expected 1, got 0 at all 5"
    assert len(ev["pairs"]) == evidence.MAX_PAIRS
    assert {p["input"][0] for p in ev["pairs"]} <= {"inf", "-inf"}
    text = json.dumps(ev, allow_nan=False)          # strict JSON: infinities are strings
    assert len(text) < 2000
    # bounded whatever the size: a million values give the same few pairs
    big = np.zeros((1, 1_000_000), np.float32)
    assert len(json.dumps(evidence.of(big, big + 1, [big], 0.0))) < 2000


def test_position_and_magnitude_patterns():
    x = np.linspace(-4, 4, 8 * 16, dtype=np.float32).reshape(1, 8, 16)
    got = x.copy()
    got[0, :, 5] += 1                                        # one column wrong
    ev = evidence.of(x, got, [x], 1e-3)
    assert ev["where"]["kind"] == "one_index" and ev["where"]["axis"] == 2 and ev["where"]["index"] == 5
    big = np.abs(x) >= np.sort(np.abs(x).reshape(-1))[-4]   # only the largest |x| wrong
    got = np.where(big, x * 1.5, x)
    ev = evidence.of(x, got, [x], 1e-3)
    assert ev["inputs"]["tag"] == "largest", ev["inputs"]
    assert rules.explain(ev, {}, "fp32").rule == "input_extremes"


def test_per_sample_when_shapes_differ_and_top1_flips():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 3, 4, 4)).astype(np.float32)
    x[[5, 9]] *= 50                                          # two samples far larger than the rest
    logits = rng.standard_normal((32, 10)).astype(np.float32)
    got = logits.copy()
    for s in (5, 9):
        got[s] = logits[s][::-1]                             # their top-1 flips
    got[5, logits[5].argmax()] = -9
    ev = evidence.of_outputs(logits, got, [x])
    assert ev["rule"] == "top-1 differs" and ev["map"] == "unit" and ev["differ"] == 2
    assert ev["inputs"]["text"].startswith("no element-wise map (per sample)")
    # no leading axes in common: the inputs are summarised as a whole
    ev = evidence.of(np.zeros((1, 17)), np.ones((1, 17)), [np.full((2, 32), np.nan)], 0.0)
    assert ev["map"] == "none" and "no element-wise map" in ev["inputs"]["text"] and "64 NaN" in ev["inputs"]["text"]


def test_bound_free_evidence_finds_the_outlier():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((4, 64))
    got = ref + 1e-4 * rng.standard_normal(ref.shape)
    got[2, 7] = 50.0
    ev = evidence.of(ref, got, [ref])
    assert ev["differ"] == 1 and ev["pairs"][0]["at"] == [2, 7]


def test_rules_name_a_saturated_infinity_from_the_file_facts():
    x, expected, got = _isinf_case()
    ev = evidence.of(expected, got, [x], 0.0)
    facts = {"operators": ["ABS", "EQUAL", "CAST"], "n_constants": 1, "constants": [
        {"name": "model/IsInf", "dtype": "float32", "shape": [], "values": [3.4028235e38], "flags": ["flt_max"],
         "used_by": [{"op": "EQUAL", "with": ["ABS"]}]}]}
    e = rules.explain(ev, facts, "fp32")
    assert e.rule == "saturated_infinity" and e.explained
    assert "`|x| == FLT_MAX`" in e.cause and "no infinity is ever detected" in e.cause
    assert "exactly the 5 ±inf inputs" in e.cause and "`model/IsInf` = 3.4028235e+38" in e.cause
    # the same evidence without the constant: the kernels, not a constant, handle infinity differently
    assert rules.explain(ev, {"operators": ["ISINF"], "constants": []}, "fp32").rule == "nonfinite_inputs"
    # no evidence, or no pattern: "unexplained", with what the evidence shows
    assert rules.explain(None).cause.startswith("unexplained")
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((1, 200))
    noisy = evidence.of(ref, ref + rng.standard_normal(ref.shape), [ref], 0.5)
    e = rules.explain(noisy, {}, "fp32")
    assert e.rule == rules.UNEXPLAINED and "no input pattern" in e.cause
    assert rules.explain(noisy, {}, "int8").rule == "spread_rounding"


def test_a_file_that_matches_with_its_delegate_off_blames_the_delegate():
    x, expected, got = _isinf_case()
    ev = {**evidence.of(expected, got, [x], 0.0), "without_delegate": {"cell": "ok", "delegates": 0}}
    e = rules.explain(ev, {}, "fp32")
    assert e.rule == "delegate" and "with the delegate off, the same file matches" in e.cause
    ev["without_delegate"] = {"cell": "mismatch", "delegates": 0, "same_outputs": True}
    assert rules.explain(ev, {}, "fp32").rule == "nonfinite_inputs"


def test_a_condition_flipped_by_int8_rounding_to_zero_is_named():
    """where(a > 0, a, b) in int8: an `a` within half a step of 0 quantizes to 0 and picks b."""
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((2, 1, 64)).astype(np.float32)
    a[0, 9] = 0.004
    expected = np.where(a > 0, a, b)
    got = expected.copy()
    got[0, 9] = b[0, 9]
    ev = evidence.of(expected, got, [a, b], 0.1)
    facts = {"operators": ["GREATER", "SELECT_V2"], "inputs": [{"name": "in0", "quantized_range": [-4.0, 4.0]},
                                                                {"name": "in1", "quantized_range": [-4.0, 4.0]}]}
    e = rules.explain(ev, facts, "int8")
    assert e.rule == "quantized_to_zero" and "input 0 is within 0.004 of 0" in e.cause, e
    # the same flip at an input far from zero is not this rule
    facts["inputs"] = [{"name": "in0", "quantized_range": [-0.2, 0.2]}] * 2
    assert rules.explain(ev, facts, "int8").rule != "quantized_to_zero"


def test_clipped_output_is_named():
    x = np.linspace(-3, 3, 60, dtype=np.float32).reshape(1, 60)
    got = np.clip(x, -2, 2)
    e = rules.explain(evidence.of(x, got, [x], 0.05), {}, "int8")
    assert e.rule == "clipped" and "calibration" in e.cause


@pytest.mark.parametrize("name,fmt", [("trivial.tflite", "tflite"), ("trivial.pte", "pte"), ("trivial.onnx", "onnx")])
def test_file_facts_of_the_one_op_models(name, fmt):
    f = filefacts.of(DATA / name, fmt)
    assert "error" not in f, f
    assert f["n_operators"] >= 1 and f["operators"], f
    assert any(c["values"] == [1.0] for c in f["constants"]) or f["format"] == "pte", f   # x + 1
    json.dumps(f, allow_nan=False)


def test_file_facts_of_a_corrupt_or_unknown_file(tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x10\x00\x00\x00TFL3" + b"\xff" * 40)
    assert "error" in filefacts.of(bad, "tflite")
    assert filefacts.of(bad, "ptl")["error"].startswith("no reader")


def test_file_facts_read_the_quantized_input_and_output_ranges():
    f = filefacts.of(DATA / "ceiling_int8.tflite", "tflite")
    (i,), (o,) = f["inputs"], f["outputs"]
    assert i["dtype"] == "int8" and i["quantized_range"][0] < 0 < i["quantized_range"][1], f
    assert o["quantized_range"][0] < o["quantized_range"][1], f
    assert "quantized_range" not in filefacts.of(DATA / "trivial.tflite", "tflite")["inputs"][0]
