"""The report's one view of the records: first profile from the run record, fp32<->int8 pairing by the
registry's rule, thresholds from the model's tolerances, every status styled and counted; and the report
from the committed baseline, locked to what the pre-view code wrote (records built by hand or read from
the baseline: this tests the report, not a runtime).

Regenerate the golden file only for an intended change of the report's text:
    TZ=UTC .venv/bin/python -c "from tests.report.test_view import render_baseline as r; r(write=True)"
"""
from __future__ import annotations

import json
import os
import time

import pytest

import models
from conftest import ROOT
from models.spec import Tolerances
from pipeline import provenance
from pipeline.report import markdown as report
from pipeline.report import plots
from pipeline.report.ship import picks
from pipeline.parity import STATUS_COLOR, STATUS_MARK
from pipeline.report.view import build
from pipeline.schema import STATUSES, Record, read_records
from probes.report import summaries

BASELINE = ROOT / "baselines" / "digits_cnn.jsonl"
GOLDEN = ROOT / "tests" / "report" / "data" / "baseline_report.md"


def _bench(path, quant="fp32", profile="big-core", source="torch", fmt="pte", runtime="executorch", p50=0.1,
           acc=0.99, model="m", status="ok", **metrics):
    m = {"size_bytes": 1e5, "latency_p50_ms": p50, "accuracy": acc, "reference_accuracy": 0.99, **metrics}
    return Record(kind="bench", model=model, status=status, source=source, path=path, format=fmt, runtime=runtime,
                  framework="pytorch", quantization=quant, profile=profile, metrics=m,
                  error="" if status == "ok" else "E: x")


def _run(order=None):
    info = {"profiles": {}} if order is None else {"profiles": {}, "profile_order": order}
    return Record(kind="pipeline", model="", path="provenance", status="ok", info=info)


def render_baseline(write: bool = False) -> str:
    """The report text of the committed baseline, without plots, with times in UTC."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        text = report.render(build(read_records(BASELINE)))
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
    if write:
        GOLDEN.write_text(text)
    return text


def test_report_from_the_baseline_is_what_the_code_before_the_view_wrote():
    # golden written by the pre-view commit 2bd19ba from the same baseline (TZ=UTC, no plots)
    assert render_baseline().splitlines() == GOLDEN.read_text().splitlines()


def test_first_profile_comes_from_the_run_record():
    recs = [_bench("et_xnnpack_fp32", profile=p) for p in ("big-core", "2-core", "constrained")]
    assert build(recs).first_profile("m") == "big-core"                      # no run record: defaults' order
    assert build(recs + [_run()]).profiles("m") == ["big-core", "2-core", "constrained"]  # older run record
    v = build(recs + [_run(["2-core", "constrained"])])
    assert v.profiles("m") == ["2-core", "constrained", "big-core"]
    assert v.first_profile("m") == v.first_profile() == "2-core"
    # the picks read latency on that profile
    assert picks(v, "m")[0] == "2-core"


def test_run_record_keeps_the_profile_order():
    r = provenance.run_record(("2-core", "big-core"))
    assert provenance.profile_order(r) == ["2-core", "big-core"]
    assert provenance.profile_order(Record.from_dict(json.loads(r.to_json()))) == ["2-core", "big-core"]


def test_int8_pairs_follow_the_registry_sibling():
    recs = [_bench("et_portable_fp32", p50=2.2), _bench("et_xnnpack_int8", "int8", p50=0.07),
            _bench("tflite_fp32", source="keras", fmt="tflite", runtime="litert"),
            _bench("tflite_fp16", "fp16", source="keras", fmt="tflite", runtime="litert"),
            _bench("tflite_dynamic_int8", "dynamic_int8", source="keras", fmt="tflite", runtime="litert"),
            _bench("tflite_int8", "int8", source="keras", fmt="tflite", runtime="tflite_runtime")]
    pairs = [(f.path, q.path) for f, q in build(recs).int8_pairs("m")]
    # et_xnnpack_int8's sibling is et_xnnpack_fp32 (not measured): never the portable one; fp16 is no int8;
    # an int8 artifact is compared on its own runtime only
    assert pairs == [("tflite_fp32", "tflite_dynamic_int8")], pairs


def test_thresholds_come_from_the_model_tolerances():
    v = build([])
    assert v.tolerances("digits_cnn") is models.get("digits_cnn").tolerances
    assert v.tolerances("no_longer_registered") == Tolerances()
    recs = [_bench("et_xnnpack_fp32", acc=0.99), _bench("et_xnnpack_int8", "int8", acc=0.96, p50=0.05)]
    v = build(recs)
    assert [r.path for _, r in picks(v, "m")[1]] == ["et_xnnpack_fp32"] * 3     # 3 points off: not a candidate
    v._tolerances["m"] = Tolerances(accuracy_drop_points=5.0)
    assert {r.path for _, r in picks(v, "m")[1]} == {"et_xnnpack_int8"}


def test_quality_metric_fits_the_task():
    v = build([])
    both = {"accuracy": 0.5, "reconstruction_mse": 0.2, "reference_reconstruction_mse": 0.1}
    assert v.quality_of("anomaly_ae", both) == v.quality_of("anomaly_ae", both, "bench")
    assert v.quality_of("anomaly_ae", both).metric == "reconstruction_mse"
    assert v.quality_of("anomaly_ae", both).reference == 0.1
    assert v.quality_of("digits_cnn", both).metric == "accuracy"
    assert v.quality_of("digits_cnn", {"reconstruction_mse": 1.0}).metric == ""
    assert v.quality_of("m", {"accuracy": 0.9, "fp32_accuracy": 0.95}, "quant_debug").reference == 0.95


def test_every_status_has_a_mark_and_a_colour():
    assert set(STATUSES) <= set(STATUS_MARK) and set(STATUSES) <= set(STATUS_COLOR)
    assert len(set(STATUS_COLOR.values())) == len(STATUS_COLOR)     # each status its own colour


def test_mismatch_and_apple_only_in_the_support_matrix(tmp_path):
    exp = dict(kind="export", model="m", source="torch", format="pte", framework="pytorch")
    recs = [Record(status="ok", path="et_xnnpack_fp32", **exp),
            Record(status="ok", path="et_portable_fp32", **exp),
            Record(status="apple_only", path="coreml_fp32", error="AppleOnly: needs Core ML", **exp),
            _bench("et_xnnpack_fp32", status="mismatch", acc=0.5),
            _bench("et_portable_fp32", runtime="executorch"), _bench("et_portable_fp32", runtime="other",
                                                                     status="mismatch")]
    v = build(recs)
    st = {k[0]: c.status for k, c in v.support.items()}
    assert st == {"torch__et_xnnpack_fp32": "mismatch", "torch__et_portable_fp32": "partial",
                  "torch__coreml_fp32": "apple_only"}
    text = "\n".join(report.support_matrix(v))
    # each cell: a status word and its causes' ids, linked to "Errors by cause", the cause's name the tooltip
    assert '| PyTorch | torch__coreml_fp32 | Apple only [c2](#cause-2 "c2 export Apple only: AppleOnly: needs ' \
        'Core ML") |' in text, text
    assert '| torch__et_xnnpack_fp32 | MISMATCH [c1](#cause-1 "c1 executorch MISMATCH: E: x") ([why](#m-' in text
    assert '| torch__et_portable_fp32 | partial [c1](#cause-1 "c1 other MISMATCH: E: x") ([why](#m-' in text
    fig = plots.status_grid_figure(*plots.support_cells(v), "t")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["partial", "mismatch", "apple_only"], labels


def test_probe_summaries_count_apple_only_and_mismatch_separately():
    def probe(op, status, cell=None, runtime="rt"):
        return Record(kind="probe", model="probe", status=status, path="coreml_fp32", framework="pytorch",
                      runtime=runtime, error="" if status == "ok" else "E: x",
                      info={"probe": op, **({"cell": cell} if cell else {})})
    recs = [probe("conv2d", "ok", "ok"), probe("gelu", "apple_only", runtime=""), probe("gru", "mismatch")]
    text = "\n".join(summaries(build(recs)))
    assert "`coreml_fp32`: 3/3 exported, 1/3 ran and matched; Apple only: gelu; mismatch: gru" in text, text


@pytest.mark.parametrize("status", [s for s in STATUSES if s != "ok"])
def test_every_status_draws_in_the_grid(status):
    fig = plots.status_grid_figure(["p"], ["m"], {("p", "m"): status}, "t")
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [status]
