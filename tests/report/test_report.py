"""Report pieces on record files: plots (valid PNGs), the generic status grid (model x path and
operator x path), the "what should I ship?" picks, and the self-contained HTML."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from conftest import ROOT
from pipeline import provenance
from pipeline.report import html as html_report
from pipeline.report import plots
from pipeline.report import ship as recommend
from pipeline.report import markdown as report
from pipeline.report.view import build
from pipeline.schema import Record, read_records
from pipeline.bench.stats import latency_quantiles

BASELINE = ROOT / "baselines" / "digits_cnn.jsonl"
PNG = b"\x89PNG\r\n\x1a\n"


def _bench(source, path, runtime, size, p50, acc=None, ref=0.99, framework="tensorflow", quant="fp32",
           profile="big-core", fmt="tflite", quantiles=None):
    m = {"size_bytes": float(size), "latency_p50_ms": p50, "latency_p90_ms": p50 * 1.2, "latency_p99_ms": p50 * 2,
         "latency_min_ms": p50 * 0.9}
    if acc is not None:
        m.update(accuracy=acc, reference_accuracy=ref, top1_agreement=1.0)
    return Record(kind="bench", model="m", status="ok", source=source, path=path, runtime=runtime,
                  profile=profile, framework=framework, quantization=quant, format=fmt, metrics=m,
                  info={"latency_quantiles_ms": quantiles} if quantiles else {})


def test_pareto_front():
    pts = [(10, 5.0), (20, 1.0), (15, 6.0), (5, 9.0), (30, 1.0)]
    assert plots.pareto_front(pts) == [3, 0, 1]   # (5,9) -> (10,5) -> (20,1); (30,1) is dominated


def test_latency_quantiles_are_50_ordered_numbers():
    q = latency_quantiles(np.arange(1, 1001) / 1e6)   # 1..1000 us
    assert len(q) == 50 and q == sorted(q)
    assert q[0] == pytest.approx(10.99 / 1000, rel=1e-3) and q[-1] == pytest.approx(990.01 / 1000, rel=1e-3)


def test_recommendation_picks():
    recs = [_bench("keras", "tflite_fp32", "litert", 80_000, 0.03, acc=0.99),
            _bench("keras", "tflite_int8", "litert", 25_000, 0.09, acc=0.985, quant="int8"),
            _bench("keras", "tflite_bad", "litert", 10_000, 0.01, acc=0.95, quant="int8"),   # 4 points off
            _bench("torch", "et_xnnpack_int8", "executorch", 29_000, 0.07, acc=0.99, framework="pytorch",
                   fmt="pte", quant="int8")]
    prof, chosen, good = recommend.picks(build(recs), "m")
    roles = {role: f"{r.source}__{r.path}" for role, r in chosen}
    assert prof == "big-core" and len(good) == 3
    assert roles == {"smallest": "keras__tflite_int8", "fastest": "keras__tflite_fp32",
                     "best pytorch": "torch__et_xnnpack_int8", "best tensorflow": "keras__tflite_fp32"}
    text = "\n".join(recommend.ship_section(build(recs), "m"))
    assert f"`{provenance.record_id(recs[1])}`" in text and "24.4 |" in text   # KiB and record id cited


def test_int8_pairs_match_their_fp32_counterpart():
    recs = [_bench("torch", "et_portable_fp32", "executorch", 83_000, 2.2, framework="pytorch", fmt="pte"),
            _bench("torch", "et_xnnpack_fp32", "executorch", 80_000, 0.12, framework="pytorch", fmt="pte"),
            _bench("torch", "et_xnnpack_int8", "executorch", 29_000, 0.07, framework="pytorch", fmt="pte",
                   quant="int8")]
    pairs = build(recs).int8_pairs("m", "big-core")
    assert [(f.path, q.path) for f, q in pairs] == [("et_xnnpack_fp32", "et_xnnpack_int8")]


def test_status_grid_is_generic_and_draws_probe_records(tmp_path):
    probes = [Record(kind="probe", model="probe", status=st, path=path, error="" if st == "ok" else "E: x",
                     info={"probe": op}) for op, path, st in
              [("conv2d", "tflite_fp32", "ok"), ("conv2d", "et_xnnpack_fp32", "ok"),
               ("grid_sample", "tflite_fp32", "unsupported"), ("grid_sample", "et_xnnpack_fp32", "failed")]]
    rows, cols, st = plots.probe_cells(build(probes))
    assert rows == ["conv2d", "grid_sample"] and cols == ["et_xnnpack_fp32", "tflite_fp32"]
    assert st[("grid_sample", "tflite_fp32")] == "unsupported"
    out = plots.write_all(build(probes), tmp_path)
    assert set(out) == {"probe_matrix"}
    assert out["probe_matrix"].read_bytes()[:8] == PNG


def test_report_from_the_committed_baseline(tmp_path):
    """The whole report (md + html + plots) from a real run's records (the committed baseline);
    quantiles are added to two records so both box-plot modes are drawn."""
    recs = read_records(BASELINE)
    bench = [r for r in recs if r.kind == "bench" and r.status == "ok"]
    for r in bench[:2]:
        r.info["latency_quantiles_ms"] = list(np.linspace(0.8, 1.6, 50) * r.metrics["latency_p50_ms"])
    for r in bench:  # the slim baseline keeps only what the gate reads: give the picks their reference
        if "accuracy" in r.metrics:
            r.metrics["reference_accuracy"] = 0.99
    written = report.write(recs, tmp_path / "report.md")
    md = (tmp_path / "report.md").read_text()
    names = {p.name for p in written[2:]}
    assert {"support_matrix.png", "digits_cnn__latency_vs_size.png", "digits_cnn__quality_vs_size.png",
            "digits_cnn__int8_vs_fp32.png", "digits_cnn__latency_dist.png"} <= names, names
    for p in written[2:]:
        assert p.read_bytes()[:8] == PNG
        assert f"]({p.relative_to(tmp_path)})" in md, f"{p.name} not referenced in report.md"
    assert "### What should I ship?" in md and "**smallest**" in md
    run = provenance.latest(recs)
    assert provenance.record_id(run) in md and run.info["versions"]["torch"] in md
    assert "`big-core`: 1 thread pinned to one CPU" in md
    html = (tmp_path / "report.html").read_text()
    # self-contained: every image is a data URI, no reference to any other file or URL
    imgs = re.findall(r'<img[^>]* src="([^"]+)"', html)
    assert len(imgs) == len(written) - 2
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    assert base64.b64decode(imgs[0].split(",", 1)[1])[:8] == PNG
    assert not re.search(r'(src|href)="(https?:|plots/)', html)
    assert "<table>" in html and '<h3 id="what-should-i-ship">What should I ship?</h3>' in html


def test_html_converter_escapes_and_formats(tmp_path):
    html = html_report.to_html("# T\n\nA `x<y` and **b**\n\n| a | b |\n|---|---|\n| 1 | <2> |\n\n- item\n",
                               tmp_path)
    assert "<code>x&lt;y</code>" in html and "<strong>b</strong>" in html
    assert "<td>&lt;2&gt;</td>" in html and "<li>item</li>" in html


def test_run_record_names_machine_and_versions():
    r = provenance.run_record(("big-core",))
    assert r.info["machine"]["cores"] >= 1 and r.info["machine"]["cpu"]
    assert r.info["versions"]["torch"].startswith("2.13")
    assert set(r.info["profiles"]) == {"big-core"}
    json.loads(r.to_json())


def test_detector_picks_are_the_records_that_passed_parity():
    """A detector has no labels and no reference value: its candidates are the parity-ok records (the
    bench judged int8 by the SQNR floor), and the section states that rule instead of an accuracy bound."""
    import dataclasses as dc
    from pipeline import parity
    recs = [dc.replace(_bench("torch", p, "executorch", size, p50, framework="pytorch", fmt="pte", quant=q),
                       model="mtcnn_pnet")
            for p, size, p50, q in (("et_xnnpack_fp32", 30_000, 0.05, "fp32"), ("et_xnnpack_int8", 9_000, 0.04, "int8"))]
    for r, db in zip(recs, (120.0, 31.0)):
        r.metrics["sqnr_db"] = db
    prof, chosen, good = recommend.picks(build(recs), "mtcnn_pnet")
    assert len(good) == 2 and dict((role, r.path) for role, r in chosen)["smallest"] == "et_xnnpack_int8"
    text = "\n".join(recommend.ship_section(build(recs), "mtcnn_pnet"))
    assert "pass parity with their twin" in text and "SQNR 31.0 dB" in text
    import models
    assert parity.for_zoo(models.get("mtcnn_pnet"), "int8").min_sqnr_db == parity.DEFAULTS["int8"].min_sqnr_db


def test_report_stage_reuses_an_up_to_date_report_and_redraws_when_a_record_changes(tmp_path):
    from pipeline import stages
    recs = [_bench("keras", "tflite_fp32", "litert", 1000, 0.5, acc=0.98),
            _bench("torch", "et_xnnpack_fp32", "executorch", 900, 0.4, acc=0.98, framework="pytorch", fmt="pte")]
    stages.save_records(tmp_path, recs)
    said = []
    assert stages.report(tmp_path, log=said.append) == 0 and "[report] wrote" in said[0]
    md = tmp_path / "report.md"
    first = md.stat().st_mtime_ns
    assert stages.report(tmp_path, log=said.append) == 0 and "[report] up to date" in said[-1]
    assert md.stat().st_mtime_ns == first
    # a lost output is not up to date, and neither is a changed measurement
    next(tmp_path.glob("plots/*.png")).unlink()
    assert stages.report(tmp_path, log=said.append) == 0 and "[report] wrote" in said[-2]
    stages.save_records(tmp_path, [_bench("keras", "tflite_fp32", "litert", 1000, 0.3, acc=0.98)])
    assert stages.report(tmp_path, log=said.append) == 0 and "[report] wrote" in said[-2]
    assert "| 0.3 ms host p50 |" in md.read_text()     # the pick's cost, at a glance
