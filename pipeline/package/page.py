"""The package's report.html: every candidate, its parity per runtime and its timings, and the choice per
platform, written as the report's Markdown and rendered by the report's own renderer (pipeline/report/html.py:
its styles, status colours from pipeline.parity, escaping).

    text = page.html("mymodel", cands, choices, "big-core", notes)   # -> DIR/<name>/report.html
"""
from __future__ import annotations

from pathlib import Path

from pipeline.report import html as report_html
from pipeline.report.table import kib, status_cell, table

SHOWN = ("sqnr_db", "top1_agreement", "max_abs_diff", "accuracy")   # the parity figures a cell shows


def markdown(name: str, cands, choices, profile: str, notes) -> str:
    lines = [f"# {name}: package report", "", "## Choice", ""]
    lines += [f"- **{ch.platform}**: {ch.reason}" for ch in choices] or ["- no platform: nothing was checked"]
    if notes:
        lines += ["", "## Notes", "", *(f"- {n}" for n in notes)]
    lines += ["", "## Every candidate", "",
              "Parity: each artifact in each runtime vs the source model (status `mismatch`: it ran but computes "
              f"something else). Timings: host CPU under device profiles, p50 on {profile} first.", ""]
    rows = [[c.name, c.export.format, c.export.quantization, _export_cell(c), kib(c.size),
             "; ".join(_check_cell(rt, ch) for rt, ch in c.checks.items()),
             "; ".join(f"{r.runtime} {r.profile}: {r.metrics['latency_p50_ms']:.3f} ms"
                       for r in c.bench if "latency_p50_ms" in r.metrics)]
            for c in cands]
    lines += table(["export path", "format", "quantization", "export", "KiB", "parity per runtime", "p50"], rows)
    return "\n".join(lines) + "\n"


def _export_cell(c) -> str:
    e = c.export
    return status_cell(e.status, e.status, e.error) + (f": {e.error.splitlines()[0]}" if e.error else "")


def _check_cell(rt: str, ch) -> str:
    figures = "".join(f", {k} {ch.metrics[k]:.4g}" for k in SHOWN if k in ch.metrics)
    return (f"{rt}: " + status_cell(ch.status, ch.status, ch.error) + (f" ({ch.error})" if ch.error else "")
            + (f"; cause: {ch.cause}" if ch.cause else "") + figures)


def html(name: str, cands, choices, profile: str, notes) -> str:
    return report_html.to_html(markdown(name, cands, choices, profile, notes), Path("."),
                               title=f"{name}: package report")
