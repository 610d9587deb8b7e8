"""The answer a run ends with (pipeline/report/glance.py): within its line budget, every model's picks, the
causes worse than "runs elsewhere" one line each, and the rest said to be in the report.

    .venv/bin/python -m pytest -q tests/report/test_glance.py
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report import glance
from pipeline.report.picks import picks
from pipeline.report.view import build
from test_findings import _records


def test_the_answer_fits_its_budget_and_names_what_it_leaves_out():
    v = build(_records())
    full = glance.end_lines(v, Path("results/report.md"))
    assert full[-1].startswith("  report: results/report.html")
    causes = [ln for ln in full if ln.startswith("    c")]
    assert [ln.split()[1].rstrip(":") for ln in causes] == ["FAILED", "MISMATCH", "unsupported"], causes   # worst first
    for m in glance.models(v):
        for p in picks(v, m):
            assert p.record is not None and any(p.record.path in ln for ln in full), (m, p.platform, full)
    short = glance.end_lines(v, Path("results/report.md"), max_lines=len(full) - 1)
    assert len(short) <= len(full) - 1 and short[-2] == "    +2 more causes in the report", short
    assert short[:-3] == full[:-4]          # the picks and counts stay whole; only causes give way
