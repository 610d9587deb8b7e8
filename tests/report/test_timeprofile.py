"""Where the pipeline's time goes (pipeline/report/timeprofile.py): phase totals per stage from any
record's time_<phase>_s metrics, the largest costs, the report section, and `bench --profile` counting
only the records its run made."""
from __future__ import annotations

import pytest

from pipeline import stages
from pipeline.report import timeprofile
from pipeline.report.view import build
from pipeline.schema import Record, read_records


def _rec(kind, path="", runtime="", profile="", created=1000.0, **times):
    return Record(kind=kind, model="m", status="ok", source="torch" if path else "", path=path, runtime=runtime,
                  profile=profile, created=created, metrics={f"time_{k}_s": v for k, v in times.items()} | {"x_s": 9.0})


RECORDS = [
    _rec("train", train_torch=30.0, train_keras=50.0),
    _rec("export", "et_xnnpack_fp32", lower=20.0, serialize=1.0),
    _rec("export", "ptl_fp32", lower=2.0),
    _rec("bench", "et_xnnpack_fp32", "executorch", "big-core", worker_start=6.0, timing=1.0),
    _rec("bench", "et_xnnpack_fp32", "executorch", "2-core", timing=0.5, load=float("nan")),
]


def test_phases_sum_per_stage_and_name_the_largest_record():
    ph = {(p.stage, p.phase): p for p in timeprofile.phases(RECORDS)}
    assert [k for k in ph] == [("train", "train_keras"), ("train", "train_torch"), ("export", "lower"),
                               ("export", "serialize"), ("bench", "worker_start"), ("bench", "timing")]
    assert ph[("export", "lower")].seconds == pytest.approx(22.0) and ph[("export", "lower")].records == 2
    assert ph[("export", "lower")].top == "m/torch__et_xnnpack_fp32" and ph[("export", "lower")].top_seconds == 20.0
    assert ph[("bench", "timing")].seconds == pytest.approx(1.5)
    assert ph[("bench", "timing")].top == "m/torch__et_xnnpack_fp32 executorch/big-core"
    assert ("bench", "load") not in ph       # a NaN clock is left out, not summed
    assert timeprofile.totals(RECORDS)["train"] == {"train_keras": 50.0, "train_torch": 30.0}


def test_table_adds_what_no_phase_accounts_for_and_the_section_lists_top_costs():
    lines = timeprofile.phase_table(RECORDS, {"bench": 10.0})
    assert "| bench | not in any phase | 2.5 | 25% | | |" in lines, lines
    assert "| export | **all phases** | 23 | 100% | | |" in lines, lines
    sec = timeprofile.section(build(RECORDS))
    assert sec[0] == f"## {timeprofile.TITLE}"
    top = sec[sec.index("Largest single costs:") + 4]
    assert top.startswith("| 50 | train | train_keras |"), top
    assert timeprofile.section(build([_rec("bench", "ptl_fp32")])) == []   # no phase times: no section


def test_bench_profile_counts_only_the_records_this_run_made():
    cached = _rec("bench", "ptl_fp32", "lite_interpreter", "big-core", created=10.0, timing=99.0)
    fresh = _rec("bench", "ptl_fp32", "lite_interpreter", "2-core", created=200.0, timing=2.0)
    text = stages._profile([cached, fresh], started=100.0, walls={"bench": 4.0, "report": 1.0})
    assert "1 of 2 records made now" in text
    assert "| bench | timing | 2 | 50% | 1 |" in text and "99" not in text, text


def test_a_run_that_measured_nothing_keeps_the_cpu_peak_of_the_run_that_did(tmp_path):
    """A warm bench (every record cached) does not spend 3-5 s measuring this CPU's peak again."""
    from pipeline import provenance
    from pipeline.bench import profiles
    old = provenance.run_record(("big-core",), measured={"cpu_peak_gflops_1_core": 12.5})
    stages.save_records(tmp_path, [old])
    cached = _rec("bench", "ptl_fp32", "lite_interpreter", "big-core", created=10.0, timing=1.0)
    new = stages._run_record(read_records(stages.results_file(tmp_path)), profiles.BenchConfig(), [cached],
                             started=100.0)
    assert new.metrics == {"cpu_peak_gflops_1_core": 12.5}
    assert new.info["bench_settings"]["ci_pct"] == profiles.BenchConfig().ci_pct
