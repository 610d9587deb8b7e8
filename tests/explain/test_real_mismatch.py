"""A real conversion whose mismatch has a known pattern: a Keras `isinf` model through the registry's
`tflite_fp32` path, run by LiteRT. Known (tensorflow#45312): the converter stores infinity as FLT_MAX,
so the file computes |x| == FLT_MAX and misses every ±inf input. The probe comparison must find exactly
those values, the file reader the FLT_MAX constant, and the rules name the cause from both.

One conversion (~3 s once TensorFlow is imported, which the suite's Keras tests do anyway)."""
from __future__ import annotations

import numpy as np
import pytest


def test_keras_isinf_to_tflite_mismatch_is_explained(tmp_path):
    import keras

    from export import registry
    from export.run import export_to
    from pipeline import runtimes
    from pipeline.explain import filefacts, rules
    from probes import ProbeSpec
    from probes.harness import compare

    inp = keras.Input((4, 16), name="in0")
    model = keras.Model(inp, keras.ops.cast(keras.ops.isinf(inp), "float32"))
    x = np.random.default_rng(0).standard_normal((1, 4, 16)).astype(np.float32)
    x[0, 1, [2, 9]] = np.inf
    x[0, 3, 5] = -np.inf
    x[0, 0, 7] = np.nan
    expected = np.asarray(model(x))

    p = registry.get("tflite_fp32")
    art = tmp_path / "isinf.tflite"
    ctx = registry.ExportContext(ProbeSpec("isinf", "same"), "keras", model, (x,), (x,), art, tmp_path)
    rec = export_to(p, ctx, dict(kind="probe", model="isinf", source="keras", path=p.name, format="tflite"))
    assert rec.status == "ok", rec.error

    rt = runtimes.get("litert")
    got = rt.run(rt.load(art, 1), [x])
    c = compare(got, [expected], ("exact",), "fp32", [x])
    assert c["error"].startswith("mismatch: output 0: 3/64 values differ"), c["error"]
    ev = c["evidence"]
    assert ev["inputs"]["tag"] == "inf" and ev["inputs"]["text"].startswith("exactly the 3 ±inf inputs"), ev
    assert sorted(tuple(p["at"]) for p in ev["pairs"]) == [(0, 1, 2), (0, 1, 9), (0, 3, 5)]

    facts = filefacts.of(art, "tflite")
    assert {"ABS", "EQUAL"} <= set(facts["operators"]), facts
    flagged = [k for k in facts["constants"] if "flt_max" in k["flags"]]
    assert flagged and flagged[0]["used_by"][0]["op"] == "EQUAL", facts

    e = rules.explain(ev, facts, "fp32")
    assert e.rule == "saturated_infinity", e
    assert "`|x| == FLT_MAX`" in e.cause and "exactly the 3 ±inf inputs" in e.cause, e.cause


@pytest.mark.slow   # the probe export and two runtimes, twice (~60 s): make test-slow
def test_the_probe_records_explain_isnan_isinf_on_keras_tflite(tmp_path):
    """`python -m pipeline probe --ops isnan_isinf --paths tflite_fp32` end to end: each runtime's record
    carries the evidence (with the delegate-off rerun) and the file's facts; the report's cause line is
    the rules' saturated-infinity cause, on every runtime and with the delegate off too."""
    from pipeline.report.view import build
    from probes import harness
    from probes.report import matrix
    recs = harness.run(["isnan_isinf"], ["tflite_fp32"], tmp_path / "artifacts", tmp_path / "results", jobs=2,
                       log=lambda m: None)
    ran = [r for r in recs if r.runtime]
    assert ran and all(r.info["cell"] == "mismatch" for r in ran), [(r.runtime, r.info.get("cell")) for r in ran]
    for r in ran:
        off = r.info["evidence"]["without_delegate"]
        assert off["cell"] == "mismatch" and off["same_outputs"] and off["delegates"] == 0, off
        assert [c for c in r.info["file"]["constants"] if "flt_max" in c["flags"]]
    line = next(ln for ln in matrix(build(recs)) if ln.startswith("- `isnan_isinf` / `tflite_fp32`"))
    assert "and with the delegate off too" in line and "`|x| == FLT_MAX`, so no infinity is ever detected" in line
