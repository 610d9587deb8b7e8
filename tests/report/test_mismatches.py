"""The report explains each mismatch: grid cells link to an entry of "Mismatches explained" (anchors that
exist), the probe section says the cause per operator and path, and the article's operators get a
paragraph, all from the records (built by hand here: this tests the report, not a runtime)."""
from __future__ import annotations

import re

import numpy as np

from pipeline.explain import evidence
from pipeline.report import markdown
from pipeline.report.view import build
from pipeline.schema import Record
from probes.report import matrix

FACTS = {"format": "tflite", "reader": "test", "operators": ["ABS", "EQUAL", "NOT_EQUAL", "LOGICAL_OR", "CAST"],
         "n_operators": 5, "n_constants": 1,
         "constants": [{"name": "functional_1_1/IsInf", "dtype": "float32", "shape": [], "values": [3.4028235e38],
                        "flags": ["flt_max"], "used_by": [{"op": "EQUAL", "with": ["ABS"]}]}]}


def _isinf_evidence() -> dict:
    x = np.zeros((1, 8, 16), np.float32)
    x[0, 1, :3] = np.inf
    x[0, 2, 4] = -np.inf
    x[0, 5, 6] = np.nan
    expected = (np.isinf(x) | np.isnan(x)).astype(np.float32)
    got = np.isnan(x).astype(np.float32)
    return {"output": 0, **evidence.of(expected, got, [x], 0.0)}


def _probe(path: str, runtime: str, cell: str, **info) -> Record:
    return Record(kind="probe", model="probe_isnan_isinf", status="ok" if cell == "ok" else "failed", source="keras",
                  path=path, format="tflite", framework="tensorflow", quantization="fp32", runtime=runtime,
                  error="" if cell == "ok" else "mismatch: output 0: 4/128 values differ (exact check)",
                  info={"probe": "isnan_isinf", "cell": cell, **info})


def _records() -> list[Record]:
    ev = _isinf_evidence()
    bad = {"evidence": ev, "file": FACTS, "runtime_ops": ["ABS", "CAST", "EQUAL"], "runtime_not_delegated": ["EQUAL"]}
    return [_probe("tflite_fp32", "litert", "mismatch", **bad),
            _probe("tflite_fp32", "tflite_runtime", "mismatch", **bad),
            _probe("tflite_fp16", "litert", "ok", file={**FACTS, "constants": []}),
            Record(kind="bench", model="m", status="mismatch", source="keras", path="tflite_int8", format="tflite",
                   framework="tensorflow", quantization="int8", runtime="litert", profile="big-core",
                   error="int8 parity: top-1 agreement 0.5 < 0.95"),
            Record(kind="export", model="m", status="ok", source="keras", path="tflite_int8", format="tflite",
                   framework="tensorflow", quantization="int8")]


def test_probe_cells_link_to_their_explanation_and_say_the_cause():
    view = build(_records())
    text = "\n".join(matrix(view))
    cell = re.search(r"\| isnan_isinf \|[^\n]*", text).group(0)
    ids = re.findall(r"\(\[why\]\(#(m-\w{8})\)\)", cell)
    assert len(ids) == 1, cell                                 # two runtimes, the same evidence: one link
    line = next(ln for ln in text.splitlines() if ln.startswith("- `isnan_isinf` / `tflite_fp32`"))
    assert "every runtime that ran it (litert, tflite_runtime), the same values on each" in line, line
    assert "the converter lowered `IsInf` to `|x| == FLT_MAX`, so no infinity is ever detected" in line, line
    assert "exactly the 4 ±inf inputs" in line and "EQUAL ran outside the delegate" in line, line
    article = text.split("### The article's operators")[1]
    assert "**isnan_isinf**." in article and "`tflite_fp32`: ABS, EQUAL" in article, article
    assert "constant `functional_1_1/IsInf` = 3.4028235e+38 (FLT_MAX)" in article, article
    full = markdown.render(view)
    for i in ids:                                             # the link lands on an anchor of the report
        assert f'<a id="{i}"></a>' in full


def test_every_mismatch_has_one_entry_with_its_evidence_or_says_unexplained():
    full = markdown.render(build(_records()))
    section = full.split("## Mismatches explained")[1]
    assert section.count("**operator `isnan_isinf` / `keras__tflite_fp32`**") == 1   # litert + tflite_runtime
    assert "on litert, tflite_runtime" in section
    assert "| position | input | expected | got |" in section and "| +inf | 1 | 0 |" in section
    assert "`functional_1_1/IsInf` float32[] = 3.4028235e+38 **FLT_MAX** -> EQUAL(ABS)" in section
    # the bench mismatch without evidence is listed and says so
    assert "**`m/keras__tflite_int8`**" in section and "unexplained: no evidence was recorded" in section
    # the support matrix's mismatch cell links to it
    bench_id = re.search(r'<a id="(m-\w{8})"></a>\*\*`m/keras__tflite_int8`', section).group(1)
    assert f"(#{bench_id})" in full.split("## Mismatches explained")[0]
