"""Where the pipeline's time goes: every `time_<phase>_s` metric of train, export and bench records (the
project-wide convention: `time_load_s`, `time_export_s`, ...), summed per stage and phase, with the
largest single costs. Plugged in via report.SECTIONS; `bench --profile` and `make bench-pipeline` print
and store the same totals.

    .venv/bin/python -m pipeline report            # results/report.md: "Where the pipeline's time goes"
    .venv/bin/python -m pipeline bench --profile   # the table for this run's fresh measurements, at the end

A record's seconds are its own, written when it was made: a measurement served from the cache shows
what it cost when it was measured, not what this run paid for it (`bench --profile` counts only the
records this run made).
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from pipeline.report.table import fmt, table
from pipeline.schema import Record

TITLE = "Where the pipeline's time goes"
STAGES = ("train", "export", "bench")          # the record kinds that carry phase times, in pipeline order
_PHASE = re.compile(r"^time_(\w+)_s$")


@dataclass(frozen=True)
class Phase:
    stage: str             # the record kind
    phase: str             # "load" for time_load_s
    seconds: float         # summed over the records
    records: int           # records with this phase
    top: str               # the record that spent the most in it
    top_seconds: float


def who(r: Record) -> str:
    """A record's name in the tables: model/artifact, plus runtime and profile for a measurement."""
    from pipeline.report.view import label
    name = label(r) if r.path else r.model
    return f"{name} {r.runtime}/{r.profile}" if r.kind == "bench" else name


def phase_times(r: Record) -> dict[str, float]:
    """phase -> seconds of one record (NaN and negative values left out: a clock that could not be read)."""
    out = {}
    for k, v in r.metrics.items():
        m = _PHASE.match(k)
        if m and isinstance(v, (int, float)) and v >= 0:
            out[m.group(1)] = float(v)
    return out


def phases(records: list[Record]) -> list[Phase]:
    """Per (stage, phase): the total, the record count and the largest single record; stages in
    pipeline order, phases largest first."""
    total: dict[tuple[str, str], float] = defaultdict(float)
    count: dict[tuple[str, str], int] = defaultdict(int)
    top: dict[tuple[str, str], tuple[float, str]] = {}
    for r in records:
        if r.kind not in STAGES:
            continue
        for ph, s in phase_times(r).items():
            key = (r.kind, ph)
            total[key] += s
            count[key] += 1
            if s > top.get(key, (-1.0, ""))[0]:
                top[key] = (s, who(r))
    return sorted((Phase(k[0], k[1], total[k], count[k], top[k][1], top[k][0]) for k in total),
                  key=lambda p: (STAGES.index(p.stage), -p.seconds))


def totals(records: list[Record]) -> dict[str, dict[str, float]]:
    """stage -> phase -> seconds (what `make bench-pipeline` stores in pipeline_timing.json)."""
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for p in phases(records):
        out[p.stage][p.phase] = round(p.seconds, 3)
    return dict(out)


def phase_table(records: list[Record], wall_s: dict[str, float] | None = None) -> list[str]:
    """stage | phase | seconds | share of the stage | records | largest single record. `wall_s` (stage ->
    wall-clock seconds of this run) adds what no phase accounts for (process spawns, waiting, hashing)."""
    ph = phases(records)
    if not ph:
        return []
    stage_sum = defaultdict(float)
    for p in ph:
        stage_sum[p.stage] += p.seconds
    wall_s = wall_s or {}
    rows = []
    for stage in STAGES:
        mine = [p for p in ph if p.stage == stage]
        if not mine:
            continue
        base = max(wall_s.get(stage, 0.0), stage_sum[stage])
        for p in mine:
            rows.append([stage, p.phase, p.seconds, f"{100 * p.seconds / base:.0f}%", p.records,
                         f"{p.top} ({fmt(p.top_seconds)} s)"])
        if stage in wall_s:
            rest = wall_s[stage] - stage_sum[stage]
            rows.append([stage, "not in any phase", rest, f"{100 * rest / base:.0f}%", "", ""])
            rows.append([stage, "**wall clock**", wall_s[stage], "100%", "", ""])
        else:
            rows.append([stage, "**all phases**", stage_sum[stage], "100%", "", ""])
    return table(["stage", "phase", "seconds", "share", "records", "largest (record: seconds)"], rows)


def top_costs(records: list[Record], n: int = 10) -> list[str]:
    """The `n` largest single (record, phase) times."""
    items = sorted(((s, r.kind, ph, who(r)) for r in records if r.kind in STAGES
                    for ph, s in phase_times(r).items()), reverse=True)[:n]
    if not items:
        return []
    return table(["seconds", "stage", "phase", "record"], [[s, k, ph, name] for s, k, ph, name in items])


def section(view) -> list[str]:
    recs = [r for r in view.records if r.kind in STAGES]
    body = phase_table(recs)
    if not body:
        return []
    return [f"## {TITLE}", "",
            "Every `time_<phase>_s` figure of the train, export and bench records, summed per stage and "
            "phase (`pipeline/report/timeprofile.py`). Each record's seconds are those of the run that made "
            "it: a cached result shows what it cost when it was made. Bench phases: `worker_start` = a "
            "worker process's start and its runtime's import (on the first measurement of each process), "
            "`load` = file check, load and inputs, `timing` = first run, warm-up and the timed loops, "
            "`quality` = the eval set and agreement, `trivial` = the one-op model, `opprofile` = the "
            "per-operator profile, `peer` = LiteRT's own benchmark, `cost` = FLOPs, `file` = sizes and "
            "the file's anatomy.", ""] + body + ["Largest single costs:", ""] + top_costs(recs)
