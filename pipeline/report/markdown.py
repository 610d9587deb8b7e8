"""Markdown report from the records alone (nothing re-parses logs).

    python -m pipeline report   # results/results.jsonl -> results/report.md
"""
from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

from pipeline import provenance
from pipeline.artifact import ArtifactId
from pipeline.parity import COUNT_LABEL, MEANING, STATUS_MARK, eval_prefix
from pipeline.provenance import record_id
from pipeline.report import links, mismatches
from pipeline.report.causes import cause
from pipeline.report.device import TITLE as DEVICE_TITLE
from pipeline.report.table import fmt, grid, kib, table
from pipeline.report.view import ARM_METRIC, DEVICE_COLUMN, View, build, generative, label
from pipeline.runtimes import names as runtime_names
from pipeline.schema import Record


SUPPORT_TITLE = "Support matrix (model x export path)"
ERRORS_TITLE = "Errors by cause"


def cause_ref(view: View, r: Record, text: str | None = None) -> str:
    """`cN`, linked to its entry in "Errors by cause", the cause's name as its tooltip."""
    n = view.cause_number(r)
    return links.cause(n, text, title=f"c{n}: {cause(r).short}")


def support_cell(view: View, cell) -> str:
    """A status word and the causes' ids (each with its name as the tooltip); a mismatch links its
    explanation. The word colours the cell in report.html (`html.py`, the policy's status colours)."""
    bad = [cell.export] if cell.export.status != "ok" else cell.not_ok()
    refs: dict[int, str] = {}
    for r in bad:
        n = view.cause_number(r)
        where = "export" if r.kind == "export" else r.runtime
        refs.setdefault(n, links.cause(n, title=f"c{n} {where} {STATUS_MARK[r.status]}: {cause(r).short}"))
    why = next((mismatches.link(r) for r in bad if mismatches.link(r)), "")
    return " ".join([STATUS_MARK[cell.status], *(refs[n] for n in sorted(refs))] + ([f"({why})"] if why else []))


def support_matrix(view: View) -> list[str]:
    from pipeline.report.findings import FRAMEWORK_NAME
    models = view.models("export")
    frameworks = {stem: FRAMEWORK_NAME.get(c.export.framework, c.export.framework or "other")
                  for (stem, _), c in view.support.items()}
    cols = sorted(frameworks, key=lambda stem: (frameworks[stem], stem))
    lines = [f"## {SUPPORT_TITLE}", "",
             "Per export path (grouped by framework) and model: `ok` = exported and ran in every host runtime that "
             "should run it; `partial` = some runtime did not; otherwise the export's status."
             + (f" `cN` = the cause, named in its tooltip and told once under {links.section(ERRORS_TITLE)}."
                if view.causes() else ""), ""]   # no causes: no "Errors by cause" section to link to
    rows = [[frameworks[r[0]], *r]
            for r in grid(cols, models, view.support, lambda _col, _model, cell: support_cell(view, cell))]
    return lines + table(["framework", "path", *models], rows) + support_counts(view) + runtime_matrix(view)


def support_counts(view: View) -> list[str]:
    """How deployment support differs, counted per artifact (the colours of the support matrix plot);
    artifacts that run elsewhere (Apple only, ...) are counted apart: exported, but nothing ran here,
    so neither ok nor failed."""
    n: dict[str, int] = {}
    for cell in view.support.values():
        n[cell.status] = n.get(cell.status, 0) + 1
    if not n:
        return []
    parts = [f"{n[k]} {label}" for k, label in COUNT_LABEL.items() if n.get(k)]
    return [f"Deployment support differs: of {sum(n.values())} artifacts, " + ", ".join(parts) + ".", ""]


def runtime_matrix(view: View) -> list[str]:
    """Export path x runtime (the host's runtimes, then the emulated ARM64 cores): how many models ran
    there ok, and every other outcome with its cause."""
    rts = [rt for rt in runtime_names() if any(r.runtime == rt for r in view.kind("bench"))]
    cores = view.cores()
    if not rts and not cores:
        return []
    per = view.outcomes()
    columns = ["export", *rts, *(DEVICE_COLUMN.format(core=c) for c in cores)]

    def counts(_stem, _col, got: dict[str, Record]) -> str:
        parts = [f"{sum(r.status == 'ok' for r in got.values())}/{len(got)} ok"]
        bad: dict[int, list[str]] = defaultdict(list)
        for m, r in sorted(got.items()):
            if r.status != "ok":
                bad[view.cause_number(r)].append(m)
        parts += [f"{STATUS_MARK[got[ms[0]].status]} {cause_ref(view, got[ms[0]])}: "
                  f"{', '.join(mismatches.with_link(m, got[m]) for m in ms)}" for _, ms in sorted(bad.items())]
        return "; ".join(parts)
    rows = grid(sorted({s for s, _ in per}), columns, per, counts)
    text = ("Per runtime: `k/n ok` = of the n models with this artifact, k ran there ok (host: on every "
            "profile; ARM64: parity with the host outputs on the emulated core, `runs on ARM64` below); "
            "the rest by status and cause.")
    return ["### Support per runtime (host runtimes and the emulated ARM64 device)", "", text, ""] + \
        table(["path", *columns], rows)


def errors_by_cause(view: View) -> list[str]:
    """Every cause once: its short name, what it hit (status, runtime, models, artifacts), the records,
    and the full error text folded (paths relative to the project)."""
    groups = view.causes()
    if not groups:
        return []
    lines = [f"## {ERRORS_TITLE}", "",
             "Every record that is not `ok`, grouped by cause (`pipeline/report/causes.py`: the error text "
             "without what is specific to one artifact). Statuses: "
             + ", ".join(f"`{STATUS_MARK[s]}` = {MEANING[s]}" for s in ("unsupported", "failed", "mismatch", "skipped"))
             + ".", ""]
    for n, (c, rs) in enumerate(groups, 1):
        where = sorted({f"{r.kind} {STATUS_MARK[r.status]}" + (f" on `{r.runtime}`" if r.runtime else "") +
                        (f" ({r.profile})" if r.kind == "device" else "") for r in rs})
        models = sorted({r.model for r in rs})
        arts = sorted({ArtifactId.of(r).stem for r in rs})
        lines += [f"{links.cause_anchor(n)}**c{n}. {c.short}**: {', '.join(where)}; {len(models)} model"
                  f"{'s' if len(models) != 1 else ''} ({', '.join(models)}); "
                  f"{', '.join(f'`{a}`' for a in arts)}; records {links.records(rs)}", ""]
        texts = list(dict.fromkeys(cause(r).text for r in rs))
        lines += ["<details>", f"<summary>full text ({len(texts)} distinct)</summary>", "", "```text",
                  *texts, "```", "", "</details>", ""]
    return lines


def arm_cell(view: View, r: Record, core: str):
    """r's artifact on the emulated core: net instructions per inference, else its status and cause."""
    d = view.on_device(r, core)
    if d is None:
        return None
    if d.status == "ok":
        return d.metrics.get(ARM_METRIC, f"{fmt(d.metrics.get('guest_instructions_per_inference'))} gross")
    return mismatches.with_link(f"{STATUS_MARK[d.status]} {cause_ref(view, d)}", d)


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
        quality = acc or mse or f"none for task {view.task(model)!r} (its artifacts are judged by parity: SQNR)"
        lines += [f"Training: {fmt(m.get('train_seconds'))} s; reference quality: {quality}; "
                  f"weight-transfer twin max abs diff {m.get('transfer_max_abs_diff', 0):.2e} "
                  f"({train.status}); {int(m.get('params', 0)):,} parameters.", ""]
    bench = view.bench_ok(model)
    profiles = view.profiles(model) or sorted({r.profile for r in bench})
    groups = defaultdict(dict)
    for r in bench:
        groups[(r.source, r.path, r.runtime)][r.profile] = r
    cores = view.cores()
    recon = view.task(model) == "reconstruction" or (
        view.task(model) is None and not any("accuracy" in r.metrics for r in bench))
    # the quality columns that fit the task: no top-1 agreement for a model whose output is not a class
    qcols = (["MSE (vs input)", "SQNR dB (vs reference)", "max abs err (output units)"] if recon else
             ["accuracy (0-1)", "top-1 agree (0-1)", "max abs err (output units)"])
    header = ["artifact", "runtime", "KiB", "zipped KiB", "load ms"] + \
        [f"p50 ms {p}" for p in profiles] + [f"ARM64 net instr/inference {c}" for c in cores] + \
        [f"p90 ms {profiles[0]}" if profiles else "p90 ms", "peak RSS MB", *qcols, "records"]
    rows = []
    for (src, path, rt), by_prof in sorted(groups.items()):
        first = by_prof.get(profiles[0]) or next(iter(by_prof.values()))
        m = dict(first.metrics)
        # accuracy/agreement are evaluated once per artifact (first profile of the run): take them from
        # whichever profile's record has them
        for r in by_prof.values():
            m.update({k: v for k, v in r.metrics.items() if k not in m})
        q, prefix = view.quality_of(model, m).value, eval_prefix(m)
        if q is not None and prefix:   # a slow artifact's eval pass stopped early: say on what
            q = f"{fmt(q)} ({prefix})"
        quality = ([q, m.get("sqnr_db"), m.get("max_abs_diff")] if recon else
                   [q, m.get("top1_agreement"), m.get("max_abs_diff")])
        rows.append([ArtifactId(model, src, path).stem, rt, kib(m.get("size_bytes")), kib(m.get("size_zipped_bytes")),
                     m.get("load_ms")] + [by_prof[p].metrics.get("latency_p50_ms") if p in by_prof else None
                                          for p in profiles] + [arm_cell(view, first, c) for c in cores] +
                    [m.get("latency_p90_ms"), m.get("peak_rss_mb"), *quality,
                     " ".join(f"`{record_id(by_prof[p])}`" for p in profiles if p in by_prof)])
    if bench:
        lines += ship_section(view, model)
    if rows:
        lines += ["### Every artifact", "", "`records` = the ids of the records each row comes from "
                  "(one per profile; see the Records appendix)." + (
                      " `ARM64 net instr/inference` = guest instructions per inference on the emulated core, "
                      "net of the runtime's fixed cost per call (see " + links.section(DEVICE_TITLE) + "): a "
                      "count, not a time." if cores else ""), ""]
        lines += table(header, rows)
    for name, caption in PLOT_CAPTIONS:
        if f"{model}__{name}" in plots:
            lines += [f"![{model}: {caption}]({plots[f'{model}__{name}']})", ""]
    return lines


PLOT_CAPTIONS = [("latency_vs_size", "latency vs size, Pareto front dashed"),
                 ("quality_vs_size", "quality vs size: accuracy, or reconstruction MSE for models without labels"),
                 ("int8_vs_fp32", "int8 vs fp32 speed-up and shrink per framework"),
                 ("latency_dist", "latency distribution per artifact (from 50 stored quantiles)")]


# Extra report sections: "module:function" names, each `fn(view) -> list[str]` of Markdown lines.
# Adding a section = one file with one function + one line here.
SECTIONS: list[str] = ["pipeline.report.int8:section", "pipeline.report.stacks:section",
                       "pipeline.report.rigor:sections", "probes.report:matrix", "pipeline.report.quant:section",
                       "pipeline.report.device:section", "pipeline.report.timeprofile:section",
                       "pipeline.report.mismatches:section", "pipeline.report.ios:section",
                       "pipeline.report.compat:section", "pipeline.report.generative:section"]


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


MEASURED_TITLE = "How this was measured"


def render(view: View, plots: dict[str, str] | None = None) -> str:
    from pipeline.report.findings import findings
    from pipeline.report.glance import headline
    plots = plots or {}
    byom = sorted({r.model for r in view.kind("bench") if r.path == "user"})
    lines = ["# mobilebench report", ""] + headline(view, plots) + findings(view) + [
        f"## {MEASURED_TITLE}", ""] + provenance_lines(view) + [
             "Host measurements under device profiles (CPU affinity, thread "
             "count, memory limit): these are not phone timings.", "",
             "Latency: steady-state percentiles after warm-up, measured in worker processes (our artifacts "
             "share one per runtime and memory ceiling; a user's file gets one of its own). "
             "Accuracy and agreement: the whole held-out set, batch 1; agreement compares each artifact "
             "with its own framework's reference model (torch, keras, or keras_tw = Keras with the "
             "PyTorch weights).", ""]
    lines += support_matrix(view)
    if "support_matrix" in plots:
        lines += [f"![support matrix]({plots['support_matrix']})", ""]
    lines += errors_by_cause(view)
    if "probe_matrix" in plots:
        lines += ["## Operator support (probes)", "", "One small model per operator, exported along each "
                  "path (records of kind `probe`).", "", f"![operator x path]({plots['probe_matrix']})", ""]
    for m in view.models("train", "export"):
        if not any(r.model == m and not generative(r) for r in view.kind("export")):
            continue   # a generative model: its own section (pipeline/report/generative.py)
        lines += model_section(view, m, plots)
    lines += _extra_sections(view)
    if byom:
        lines += ["## Your models", ""]
        for m in byom:
            lines += model_section(view, m)
    lines += records_appendix(view)
    return "\n".join(lines) + "\n"


RECORDS_TITLE = "Records"


def cited(r: Record) -> bool:
    """Records the report links to: measurements, run records, and exports that did not succeed."""
    return r.kind in ("bench", "pipeline", "device") or (r.kind == "export" and r.status != "ok")


def records_appendix(view: View) -> list[str]:
    """Every record id the report cites, with the identity it stands for (to find it in results.jsonl)."""
    rows = [[f"{links.record_anchor(r)}`{provenance.record_id(r)}`", r.kind, r.model or "–", ArtifactId.of(r).stem,
             r.runtime or "–", r.profile or "–", r.status, r.artifact_sha256[:12] or "–",
             time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created))]
            for r in view.records if cited(r)]
    if not rows:
        return []
    return [f"## {RECORDS_TITLE}", "", "Each id is the first 8 hex digits of sha256 of the record's identity key "
            "(kind, model, source, path, runtime, profile, threads, device, probe) in "
            "`results/results.jsonl`.", ""] + table(
        ["id", "kind", "model", "artifact", "runtime", "profile (device: core)", "status", "artifact sha256",
         "measured"], rows)


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
