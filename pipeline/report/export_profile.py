"""Where the export stage's seconds went, from the records' `time_<phase>_s` metrics:

    python -m pipeline export --profile      # this table at the end of the run

One row per model for training (data, train_torch, train_keras, transfer, eval), one row per export
path for its phases summed over the models (export, quantize, lower, serialize, convert, trace);
`other` is what the path's total (`export_seconds`) leaves outside its phases (the driver's hashing
and writing, the toolchain's own setup). An up-to-date record counts the seconds of the run that made it.
"""
from __future__ import annotations

from pipeline.report.timeprofile import phase_times   # the one reader of time_<phase>_s
from pipeline.schema import Record


def _table(label: str, rows: dict[str, dict[str, float]], first: list[str]) -> list[str]:
    """Fixed-width text: the label column, `first` columns, then every phase met, then total."""
    phases = [p for p in first if any(p in r for r in rows.values())]
    phases += sorted({p for r in rows.values() for p in r} - set(phases) - {"n", "total", "other"})
    cols = (["n"] if any("n" in r for r in rows.values()) else []) + phases \
        + (["other"] if any("other" in r for r in rows.values()) else []) + ["total"]
    width = max([len(label), *map(len, rows)]) + 2
    lines = [label.ljust(width) + "".join(c.rjust(max(8, len(c) + 2)) for c in cols)]
    for name, r in rows.items():
        cells = [(f"{r[c]:.0f}" if c == "n" else f"{r[c]:.1f}") if c in r else "-" for c in cols]
        lines.append(name.ljust(width) + "".join(v.rjust(max(8, len(c) + 2)) for v, c in zip(cells, cols)))
    return lines


def export_profile(records: list[Record]) -> str:
    train = {r.model: {**phase_times(r), "total": r.metrics.get("train_seconds", 0.0)}
             for r in records if r.kind == "train"}
    paths: dict[str, dict[str, float]] = {}
    for r in records:
        if r.kind != "export" or "export_seconds" not in r.metrics:
            continue
        row = paths.setdefault(r.path, {"n": 0, "total": 0.0, "other": 0.0})
        phases = phase_times(r)
        for k, v in phases.items():
            row[k] = row.get(k, 0.0) + v
        row["n"] += 1
        row["total"] += r.metrics["export_seconds"]
        row["other"] += max(0.0, r.metrics["export_seconds"] - sum(phases.values()))
    paths = dict(sorted(paths.items(), key=lambda kv: -kv[1]["total"]))
    if paths:
        paths["all paths"] = {k: sum(r.get(k, 0.0) for r in paths.values())
                              for k in {k for r in paths.values() for k in r}}
    out = ["[profile] seconds per phase (time_<phase>_s of the records; worker seconds, summed)"]
    if train:
        out += _table("train", train, ["data", "train_torch", "train_keras", "transfer", "eval"])
    if paths:
        out += _table("export path", paths, ["export", "quantize", "lower", "serialize", "convert", "trace"])
    return "\n".join(out)
