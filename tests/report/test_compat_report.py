"""The report's runtime-version section and findings lines from `compat` records: the matrix (status
colour, what the release lacks in the cell and its title), the oldest release per export path, and a
file that claims a runtime it cannot run on, named."""
from __future__ import annotations

from pathlib import Path

from pipeline.compat import ladder
from pipeline.report import compat, html
from pipeline.report.view import build
from pipeline.schema import Record

FC12 = ("ValueError: Didn't find op for builtin opcode 'FULLY_CONNECTED' version '12'. An older version of this "
        "builtin might be supported.")


def _rec(model, path, rung_id, status, declared, lack=None):
    g = ladder.by_id(rung_id)
    return Record(kind="compat", model=model, source="keras", path=path, format="tflite", framework="tensorflow",
                  quantization="dynamic_int8" if "dynamic" in path else "int8", runtime=g.id, status=status,
                  error=FC12 if status == "failed" else "", artifact=f"artifacts/{model}/keras__{path}.tflite",
                  info={"release": {"label": g.label, "product": g.product, "dist": g.dist, "version": g.version,
                                    "position": ladder.position(g)},
                        "lacks": lack or {}, "declared": {"min_runtime_version": declared}, "stage": "load"})


def _records():
    fc = {"kind": "op", "op": "FULLY_CONNECTED", "version": 12}
    out = []
    for m in ("a", "b"):
        out += [_rec(m, "tflite_dynamic_int8", "tflite-runtime==2.14.0", "failed", "2.0.0", fc),
                _rec(m, "tflite_dynamic_int8", "ai-edge-litert==1.0.1", "ok", "2.0.0"),
                _rec(m, "tflite_dynamic_int8", "ai-edge-litert==2.3.0", "ok", "2.0.0"),
                _rec(m, "tflite_int8", "tflite-runtime==2.14.0", "ok", "1.14.0" if m == "a" else "2.15.0"),
                _rec(m, "tflite_int8", "ai-edge-litert==1.0.1", "ok", "1.14.0" if m == "a" else "2.15.0"),
                _rec(m, "tflite_int8", "ai-edge-litert==2.3.0", "ok", "1.14.0" if m == "a" else "2.15.0")]
    return out


def test_matrix_findings_and_the_false_claim_named():
    pte = Record(kind="export", model="a", source="torch", path="et_xnnpack_fp32", format="pte", status="ok")
    view = build(_records() + [pte])
    text = "\n".join(compat.section(view))
    assert "| model | artifact | declared | needs | TFLite 2.14.0 | LiteRT 1.0.1 | LiteRT 2.3.0 |" in text
    row = next(ln for ln in text.splitlines() if ln.startswith("| a | keras__tflite_dynamic_int8 |"))
    assert "| 2.0.0 | LiteRT >= 1.0.1 |" in row
    assert '<span class="st-failed" title="TFLite 2.14.0 lacks FULLY_CONNECTED v12: ValueError: Didn' in row
    assert ">FAILED: FULLY_CONNECTED v12<" in row
    assert row.count('class="st-ok"') == 2
    assert "a/keras__tflite_dynamic_int8 declares min_runtime_version 2.0.0 but TFLite 2.14.0 cannot run it" in text
    assert "**pte**: not measured: " in text and "**aimodel**" not in text    # formats exported here only
    assert ("1 file declares a newer minimum than needed: b/keras__tflite_int8 declares 2.15.0, loads and "
            "matches on TFLite 2.14.0.") in text
    lines = compat.findings(view)
    assert any(ln.startswith("- `tflite_dynamic_int8` (") and ln.endswith(
        "needs LiteRT >= 1.0.1 (not on TFLite 2.14.0: FULLY_CONNECTED v12)") for ln in lines), lines
    assert any(ln.startswith("- `tflite_int8` (") and ln.endswith("needs TFLite >= 2.14.0 (the oldest measured)")
               for ln in lines), lines
    # report.html: the cell keeps its colour class and the runtime's words on hover, escaped
    page = html.to_html(text, Path("."))
    assert '<span class="st-failed" title="TFLite 2.14.0 lacks FULLY_CONNECTED v12: ValueError: Didn&#x27;t' in page
    assert ".st-failed { background: #e53935" in page


def test_no_compat_records_says_how_to_run_it():
    assert "Not run: `make compat`" in "\n".join(compat.section(build([]))) and compat.findings(build([])) == []
