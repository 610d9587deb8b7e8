"""Markdown report from the records alone (nothing re-parses logs).

    python -m pipeline report   # results/results.jsonl -> results/report.md
"""
from __future__ import annotations

import platform
from collections import defaultdict
from pathlib import Path

from pipeline.schema import Record

STATUS_MARK = {"ok": "ok", "failed": "FAILED", "unsupported": "unsupported", "skipped": "skipped"}


def _fmt(v, digits=3) -> str:
    if v is None or v == "":
        return "–"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.{digits}g}" if abs(v) < 1 else f"{v:.{digits}f}".rstrip("0").rstrip(".")
    return str(v)


def _table(header: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(_fmt(c) for c in r) + " |" for r in rows]
    return out + [""]


def _kib(b) -> str:
    return f"{b / 1024:.1f}" if b else "–"


def machine() -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os
    return f"{cpu or platform.processor()} ({os.cpu_count()} CPUs), {platform.system()} {platform.machine()}, Python {platform.python_version()}"


def support_matrix(records: list[Record]) -> list[str]:
    exports = [r for r in records if r.kind == "export"]
    models = sorted({r.model for r in exports})
    cols = sorted({f"{r.source}__{r.path}" for r in exports})
    lines = ["## Support matrix (model x export path)", "",
             "`ok` = exported and ran in every runtime that should run it; otherwise the first line "
             "of the toolchain's or runtime's own error.", ""]
    bench = defaultdict(list)
    for r in records:
        if r.kind == "bench":
            bench[(r.model, f"{r.source}__{r.path}")].append(r)
    rows = []
    notes = []
    for col in cols:
        row = [col]
        for m in models:
            e = next((r for r in exports if r.model == m and f"{r.source}__{r.path}" == col), None)
            if e is None:
                row.append("–")
                continue
            if e.status != "ok":
                notes.append(f"- **{m} / {col}**: export {e.status}: `{e.error}`")
                row.append(f"export {STATUS_MARK[e.status]} [{len(notes)}]")
                continue
            bad = [b for b in bench.get((m, col), []) if b.status != "ok"]
            if bad:
                cell = []
                for b in {b.runtime: b for b in bad}.values():
                    notes.append(f"- **{m} / {col}** on `{b.runtime}`: {b.status}: `{b.error}`")
                    cell.append(f"{b.runtime} {STATUS_MARK[b.status]} [{len(notes)}]")
                row.append("ok; " + ", ".join(cell))
            else:
                row.append("ok")
        rows.append(row)
    lines += ["| path | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines += ["| " + " | ".join(r) + " |" for r in rows] + [""] + notes + [""]
    return lines


def model_section(model: str, records: list[Record]) -> list[str]:
    lines = [f"## {model}", ""]
    train = next((r for r in records if r.kind == "train" and r.model == model), None)
    if train:
        m = train.metrics
        acc = ", ".join(f"{k.replace('_accuracy', '')} {v:.4f}" for k, v in m.items() if k.endswith("_accuracy"))
        mse = ", ".join(f"{k.replace('_reconstruction_mse', '')} {v:.4g}" for k, v in m.items()
                        if k.endswith("_reconstruction_mse"))
        lines += [f"Training: {_fmt(m.get('train_seconds'))} s; reference quality: {acc or mse}; "
                  f"weight-transfer twin max abs diff {m.get('transfer_max_abs_diff', 0):.2e} "
                  f"({train.status}); {int(m.get('params', 0)):,} parameters.", ""]
    bench = [r for r in records if r.kind == "bench" and r.model == model and r.status == "ok"]
    profiles = sorted({r.profile for r in bench})
    groups = defaultdict(dict)
    for r in bench:
        groups[(r.source, r.path, r.runtime)][r.profile] = r
    header = ["artifact", "runtime", "KiB", "zipped KiB", "load ms"] + \
        [f"p50 ms {p}" for p in profiles] + [f"p90 ms {profiles[0]}" if profiles else "p90 ms",
                                              "peak RSS MB", "accuracy", "top-1 agree", "max abs err"]
    rows = []
    for (src, path, rt), by_prof in sorted(groups.items()):
        first = by_prof.get(profiles[0]) or next(iter(by_prof.values()))
        m = first.metrics
        quality = m.get("accuracy", m.get("reconstruction_mse"))
        rows.append([f"{src}__{path}", rt, _kib(m.get("size_bytes")), _kib(m.get("size_zipped_bytes")),
                     m.get("load_ms")] + [by_prof[p].metrics.get("latency_p50_ms") if p in by_prof else None
                                          for p in profiles] +
                    [m.get("latency_p90_ms"), m.get("peak_rss_mb"), quality, m.get("top1_agreement"),
                     m.get("max_abs_diff")])
    if rows:
        lines += _table(header, rows)
    return lines


# Extra report sections: "module:function" names, each `fn(records) -> list[str]` of Markdown lines.
# Adding a section = one file with one function + one line here.
SECTIONS: list[str] = ["pipeline.report_quant:section"]


def _extra_sections(records: list[Record]) -> list[str]:
    import importlib
    lines = []
    for ref in SECTIONS:
        mod, fn = ref.split(":")
        lines += getattr(importlib.import_module(mod), fn)(records)
    return lines


def render(records: list[Record]) -> str:
    models = sorted({r.model for r in records if r.kind in ("train", "export")})
    byom = sorted({r.model for r in records if r.kind == "bench" and r.path == "user"})
    lines = ["# mobilebench report", "",
             f"Machine: {machine()}. Host measurements under device profiles (CPU affinity, thread "
             "count, memory limit): these are not phone timings.", "",
             "Latency: steady-state percentiles after warm-up, each artifact in a fresh worker process. "
             "Accuracy and agreement: the whole held-out set, batch 1; agreement compares each artifact "
             "with its own framework's reference model (torch, keras, or keras_tw = Keras with the "
             "PyTorch weights).", ""]
    lines += support_matrix(records)
    for m in models:
        lines += model_section(m, records)
    lines += _extra_sections(records)
    if byom:
        lines += ["## Your models", ""]
        for m in byom:
            lines += model_section(m, records)
    return "\n".join(lines) + "\n"


def write(records: list[Record], dest: Path) -> None:
    from pipeline import fsutil
    fsutil.write_atomic(dest, render(records))


def summary_table(records: list[Record]) -> str:
    """The short table `bench` prints at the end: one line per measurement."""
    rows = []
    for r in records:
        if r.kind != "bench":
            continue
        m = r.metrics
        name = f"{r.model}/{r.source}__{r.path}" if r.path != "user" else r.artifact
        rows.append([name, r.runtime, r.profile, r.status, _kib(m.get("size_bytes")),
                     m.get("latency_p50_ms"), m.get("peak_rss_mb"), m.get("accuracy"), m.get("top1_agreement")])
    return "\n".join(_table(["artifact", "runtime", "profile", "status", "KiB", "p50 ms", "peak RSS MB",
                             "accuracy", "top-1 agree"], rows))
