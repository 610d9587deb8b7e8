"""Markdown report from the records alone (nothing re-parses logs).

    python -m pipeline report   # results/results.jsonl -> results/report.md
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from pipeline import provenance
from pipeline.artifact import ArtifactId
from pipeline.provenance import record_id
from pipeline.report.table import fmt, kib, table
from pipeline.report.view import STATUS_MARK, View, build, label
from pipeline.schema import Record


def support_matrix(view: View) -> list[str]:
    models = view.models("export")
    cols = sorted({stem for stem, _ in view.support})
    lines = ["## Support matrix (model x export path)", "",
             "`ok` = exported and ran in every runtime that should run it; otherwise the first line "
             "of the toolchain's or runtime's own error.", ""]
    rows = []
    notes = []
    for col in cols:
        row = [col]
        for m in models:
            cell = view.support.get((col, m))
            if cell is None:
                row.append(None)
                continue
            e = cell.export
            if e.status != "ok":
                notes.append(f"- **{m} / {col}**: export {e.status}: `{e.error}`")
                row.append(f"export {STATUS_MARK[e.status]} [{len(notes)}]")
                continue
            marks = []
            for b in cell.not_ok():
                why = f" ({b.info['apple_only']})" if b.info.get("apple_only") else ""
                notes.append(f"- **{m} / {col}** on `{b.runtime}`: {b.status}{why}: `{b.error}`")
                marks.append(f"{b.runtime} {STATUS_MARK[b.status]} [{len(notes)}]")
            row.append("ok; " + ", ".join(marks) if marks else "ok")
        rows.append(row)
    return lines + table(["path", *models], rows) + [""] + support_counts(view) + notes + [""]


def support_counts(view: View) -> list[str]:
    """How deployment support differs, counted per artifact (the colours of the support matrix plot);
    Apple-only artifacts are counted apart: exported, but nothing ran here, so neither ok nor failed."""
    n: dict[str, int] = {}
    for cell in view.support.values():
        n[cell.status] = n.get(cell.status, 0) + 1
    if not n:
        return []
    parts = [f"{n[k]} {label}" for k, label in (
        ("ok", "ok everywhere"), ("partial", "partial (some runtime failed)"),
        ("apple_only", "Apple only (exported; runs on iOS/macOS only, nothing ran here)"),
        ("mismatch", "mismatch"), ("failed", "failed"), ("unsupported", "unsupported"), ("skipped", "skipped"))
        if n.get(k)]
    return [f"Deployment support differs: of {sum(n.values())} artifacts, " + ", ".join(parts) + ".", ""]


def model_section(view: View, model: str, plots: dict[str, str] | None = None) -> list[str]:
    from pipeline.report.ship import ship_section
    plots = plots or {}
    lines = [f"## {model}", ""]
    train = next((r for r in view.kind("train") if r.model == model), None)
    if train:
        m = train.metrics
        acc = ", ".join(f"{k.replace('_accuracy', '')} {v:.4f}" for k, v in m.items() if k.endswith("_accuracy"))
        mse = ", ".join(f"{k.replace('_reconstruction_mse', '')} {v:.4g}" for k, v in m.items()
                        if k.endswith("_reconstruction_mse"))
        lines += [f"Training: {fmt(m.get('train_seconds'))} s; reference quality: {acc or mse}; "
                  f"weight-transfer twin max abs diff {m.get('transfer_max_abs_diff', 0):.2e} "
                  f"({train.status}); {int(m.get('params', 0)):,} parameters.", ""]
    bench = view.bench_ok(model)
    profiles = view.profiles(model) or sorted({r.profile for r in bench})
    groups = defaultdict(dict)
    for r in bench:
        groups[(r.source, r.path, r.runtime)][r.profile] = r
    header = ["artifact", "runtime", "KiB", "zipped KiB", "load ms"] + \
        [f"p50 ms {p}" for p in profiles] + [f"p90 ms {profiles[0]}" if profiles else "p90 ms",
                                              "peak RSS MB", "accuracy", "top-1 agree", "max abs err", "records"]
    rows = []
    for (src, path, rt), by_prof in sorted(groups.items()):
        first = by_prof.get(profiles[0]) or next(iter(by_prof.values()))
        m = dict(first.metrics)
        # accuracy/agreement are evaluated once per artifact (first profile of the run): take them from
        # whichever profile's record has them
        for r in by_prof.values():
            m.update({k: v for k, v in r.metrics.items() if k not in m})
        rows.append([ArtifactId(model, src, path).stem, rt, kib(m.get("size_bytes")), kib(m.get("size_zipped_bytes")),
                     m.get("load_ms")] + [by_prof[p].metrics.get("latency_p50_ms") if p in by_prof else None
                                          for p in profiles] +
                    [m.get("latency_p90_ms"), m.get("peak_rss_mb"), view.quality_of(model, m).value,
                     m.get("top1_agreement"), m.get("max_abs_diff"),
                     " ".join(f"`{record_id(by_prof[p])}`" for p in profiles if p in by_prof)])
    if bench:
        lines += ship_section(view, model)
    if rows:
        lines += ["### Every artifact", "", "`records` = the ids of the records each row comes from "
                  "(one per profile; see the Records appendix).", ""]
        lines += table(header, rows)
    for name, caption in PLOT_CAPTIONS:
        if f"{model}__{name}" in plots:
            lines += [f"![{model}: {caption}]({plots[f'{model}__{name}']})", ""]
    return lines


PLOT_CAPTIONS = [("latency_vs_size", "latency vs size, Pareto front dashed"),
                 ("quality_vs_size", "accuracy (or agreement) vs size"),
                 ("int8_vs_fp32", "int8 vs fp32 speed-up and shrink per framework"),
                 ("latency_dist", "latency distribution per artifact (from 50 stored quantiles)")]


# Extra report sections: "module:function" names, each `fn(view) -> list[str]` of Markdown lines.
# Adding a section = one file with one function + one line here.
SECTIONS: list[str] = ["pipeline.report.int8:section", "pipeline.report.stacks:section",
                       "pipeline.report.rigor:sections", "probes.report:matrix", "pipeline.report.quant:section",
                       "pipeline.report.device:section"]


def _extra_sections(view: View) -> list[str]:
    import importlib
    lines = []
    for ref in SECTIONS:
        mod, fn = ref.split(":")
        lines += getattr(importlib.import_module(mod), fn)(view)
    return lines


def provenance_lines(view: View) -> list[str]:
    run = view.run
    if run is None:  # results from before runs stored their provenance: say where the header comes from
        run = provenance.run_record()
        where = "collected when this report was written: the results hold no run record"
    else:
        where = (f"recorded by the bench run of {time.strftime('%Y-%m-%d %H:%M', time.localtime(run.created))},"
                 f" record `{provenance.record_id(run)}`")
    used = sorted({r.profile for r in view.kind("bench") if r.profile})
    profs = "; ".join(f"`{n}`: {p.get('description') or ''} (threads {p.get('threads')}, cpus "
                      f"{p.get('cpus') or 'all'}, memory limit "
                      f"{str(p.get('mem_limit_mb')) + ' MB' if p.get('mem_limit_mb') else 'none'})"
                      for n, p in run.info.get("profiles", {}).items() if not used or n in used)
    return [f"Machine: {provenance.machine_line(run.info)}.", "",
            f"Packages: {provenance.versions_line(run.info)}.", "",
            f"Device profiles: {profs}.", "", f"(Machine, packages and profiles {where}.)", ""]


def render(view: View, plots: dict[str, str] | None = None) -> str:
    plots = plots or {}
    byom = sorted({r.model for r in view.kind("bench") if r.path == "user"})
    lines = ["# mobilebench report", ""] + provenance_lines(view) + [
             "Host measurements under device profiles (CPU affinity, thread "
             "count, memory limit): these are not phone timings.", "",
             "Latency: steady-state percentiles after warm-up, each artifact in a fresh worker process. "
             "Accuracy and agreement: the whole held-out set, batch 1; agreement compares each artifact "
             "with its own framework's reference model (torch, keras, or keras_tw = Keras with the "
             "PyTorch weights).", ""]
    lines += support_matrix(view)
    if "support_matrix" in plots:
        lines += [f"![support matrix]({plots['support_matrix']})", ""]
    if "probe_matrix" in plots:
        lines += ["## Operator support (probes)", "", "One small model per operator, exported along each "
                  "path (records of kind `probe`).", "", f"![operator x path]({plots['probe_matrix']})", ""]
    for m in view.models("train", "export"):
        lines += model_section(view, m, plots)
    lines += _extra_sections(view)
    if byom:
        lines += ["## Your models", ""]
        for m in byom:
            lines += model_section(view, m)
    lines += records_appendix(view)
    return "\n".join(lines) + "\n"


def records_appendix(view: View) -> list[str]:
    """Every record id the report cites, with the identity it stands for (to find it in results.jsonl)."""
    rows = [[f"`{provenance.record_id(r)}`", r.kind, r.model or "–", ArtifactId.of(r).stem,
             r.runtime or "–", r.profile or "–", r.status, r.artifact_sha256[:12] or "–",
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created))]
            for r in view.records if r.kind in ("bench", "pipeline")]
    if not rows:
        return []
    return ["## Records", "", "Each id is the first 8 hex digits of sha256 of the record's identity key "
            "(kind, model, source, path, runtime, profile, threads, device, probe) in "
            "`results/results.jsonl`.", ""] + table(
        ["id", "kind", "model", "artifact", "runtime", "profile", "status", "artifact sha256", "measured"], rows)


def write(records: list[Record], dest: Path) -> list[Path]:
    """report.md, the PNG plots beside it (plots/), and a self-contained report.html, from one view."""
    from pipeline import fsutil
    from pipeline.report import html as html_report
    from pipeline.report import plots
    view = build(records)
    pngs = plots.write_all(view, dest.parent / "plots")
    text = render(view, {k: str(v.relative_to(dest.parent)) for k, v in pngs.items()})
    fsutil.write_atomic(dest, text)
    html = dest.with_suffix(".html")
    fsutil.write_atomic(html, html_report.to_html(text, dest.parent, title="mobilebench report"))
    return [dest, html, *pngs.values()]


def summary_table(records: list[Record]) -> str:
    """The short table `bench` prints at the end: one line per measurement."""
    rows = [[label(r), r.runtime, r.profile, r.status, kib(r.metrics.get("size_bytes")),
             r.metrics.get("latency_p50_ms"), r.metrics.get("peak_rss_mb"), r.metrics.get("accuracy"),
             r.metrics.get("top1_agreement")] for r in records if r.kind == "bench"]
    return "\n".join(table(["artifact", "runtime", "profile", "status", "KiB", "p50 ms", "peak RSS MB",
                            "accuracy", "top-1 agree"], rows))
