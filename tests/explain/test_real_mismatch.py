"""A real conversion whose mismatch has a known pattern: a Keras `isinf` model through the registry's
`tflite_fp32` path, run by LiteRT. Known (tensorflow#45312): the converter stores infinity as FLT_MAX,
so the file computes |x| == FLT_MAX and misses every ±inf input. The probe comparison must find exactly
those values, the file reader the FLT_MAX constant, and the rules name the cause from both.

One conversion (~3 s once TensorFlow is imported, which the suite's Keras tests do anyway)."""
from __future__ import annotations

import numpy as np


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
