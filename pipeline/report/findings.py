"""The findings under "At a glance": short bullets generated from the records (no hand-written claims).

    python -m pipeline report     # "## Findings" follows "## At a glance" in results/report.md

One fact per bullet, the detail folded beneath it (`<details>`): the run's counts; per framework, how
many artifacts exported and ran ok on the host and on the emulated ARM64 cores (folded: per runtime with
its version, per core); every failure cause once (folded: what it hit, the records); runtime-version
skew (an artifact one runtime of its format runs and another cannot); the int8 result per model (folded:
where it is judged, the ratios). Every rule it applies is the section's own (view.causes, int8.judge,
glance.counts): this file only counts and links.
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.report import links
from pipeline.report.int8 import TITLE as INT8_TITLE
from pipeline.report.int8 import judge, pairs
from pipeline import parity
from pipeline.parity import ELSEWHERE, SEVERITY, STATUS_MARK
from pipeline.report.view import ARM_JUDGE_CORE, View
from pipeline.schema import Record

TITLE = "Findings"
FRAMEWORK_NAME = {"pytorch": "PyTorch", "tensorflow": "TensorFlow/Keras"}


def findings(view: View) -> list[str]:
    if not view.kind("export") and not view.kind("bench"):
        return []
    from pipeline.report.glance import counts_text
    ex, ran = counts_text(view)
    lines = [f"## {TITLE}", "", f"- **This run**: {ex}; {ran}.", ""]
    for part in (support, failures, skew, versions, int8):
        lines += part(view)
    return lines


def folded(summary: str, lines: list[str], see: str = "") -> list[str]:
    """`lines` behind a `<details>` (GitHub and html.py both fold it), blank lines around the Markdown;
    `see` (a link) opens the folded text: GitHub renders no Markdown inside `<summary>`."""
    if not lines:
        return []
    return ["<details>", f"<summary>{summary}</summary>", "", *([f"See {see}.", ""] if see else []), *lines, "",
            "</details>", ""]


def _fw(r: Record) -> str:
    return r.framework or ArtifactId.of(r).framework or "other"


def _k_of_n(rs: dict) -> tuple[int, int]:
    return sum(all(r.status == "ok" for r in v) for v in rs.values()), len(rs)


def support(view: View) -> list[str]:
    from pipeline.report.markdown import SUPPORT_TITLE
    exports = view.kind("export")
    if not exports:
        return []
    short, detail = [], []
    for fw in sorted({_fw(e) for e in exports}):
        ex = [e for e in exports if _fw(e) == fw]
        models = sorted({e.model for e in ex})
        paths = sorted({ArtifactId.of(e).stem for e in ex})
        ok = [e for e in ex if e.status == "ok"]
        parts = [f"{len(ok)}/{len(ex)} of {len(models)} model{'s' if len(models) != 1 else ''} x {len(paths)} "
                 "artifacts exported"]
        brief = [f"{len(ok)}/{len(ex)} artifacts exported"]
        for place in ELSEWHERE:
            there = [e for e in ex if e.status == place.status]
            if there:
                parts.append(f"{len(there)} exported for {place.devices} only (not run here)")
        per_rt: dict[str, dict] = defaultdict(lambda: defaultdict(list))
        for b in view.kind("bench"):
            if _fw(b) == fw and b.path != "user":
                per_rt[b.runtime][(b.model, ArtifactId.of(b).stem)].append(b)
        if per_rt:
            ran, k_all, n_all = [], 0, 0
            for rt, arts in sorted(per_rt.items()):
                k, n = _k_of_n(arts)
                k_all, n_all = k_all + k, n_all + n
                skipped = sum(all(r.status == "skipped" for r in v) for v in arts.values())
                ver = next((b.info["runtime_version"] for v in arts.values() for b in v
                            if b.info.get("runtime_version")), "")
                ran.append(f"`{rt}`{' ' + ver if ver else ''} {k}/{n}" + (f" ({skipped} skipped)" if skipped else ""))
            parts.append("ran ok on the host: " + ", ".join(ran))
            brief.append(f"{k_all}/{n_all} ran ok on the host")
        dev = [d for d in view.kind("device") if _fw(d) == fw and d.path != "user"]
        if dev:
            brief.append(f"{sum(d.status == 'ok' for d in dev)}/{len(dev)} on the emulated ARM64 cores")
        for core in view.cores():
            on = [d for d in dev if d.profile == core]
            if on:
                counts = defaultdict(int)
                for d in on:
                    counts[d.status] += 1
                parts.append(f"emulated ARM64 `{core}`: {counts.pop('ok', 0)}/{len(on)} ok" +
                             "".join(f", {n} {STATUS_MARK[s]}" for s, n in sorted(counts.items())))
        name = FRAMEWORK_NAME.get(fw, fw)
        short.append(f"- **{name}**: " + ", ".join(brief) + ".")
        detail.append(f"- **{name}**: " + "; ".join(parts) + ".")
    return short + [""] + folded("per runtime and core", detail, links.section(SUPPORT_TITLE, "the support matrix"))


def failures(view: View) -> list[str]:
    """Causes worse than "runs elsewhere" one bullet each (`glance.NAMED`), the rest counted in one."""
    from pipeline.report.glance import NAMED
    from pipeline.report.markdown import ERRORS_TITLE
    groups = view.causes()
    if not groups:
        return ["- **Failure causes**: none: every export and measurement is ok.", ""]
    short, rest, detail = [], [], []
    for n, (c, rs) in enumerate(groups, 1):
        models = sorted({r.model for r in rs})
        what = sorted({f"{r.kind} {STATUS_MARK[r.status]}" + (f" on `{r.runtime}`" if r.runtime else "") for r in rs})
        arts = sorted({ArtifactId.of(r).stem for r in rs})
        worst = max(rs, key=lambda r: SEVERITY[r.status]).status
        if worst in NAMED:
            short.append(f"- {links.cause(n, f'c{n}')} {STATUS_MARK[worst]}: {c.short} ("
                         + (", ".join(models) if len(models) <= 3 else f"{len(models)} models") + ")")
        else:
            rest.append((n, worst))
        detail.append(f"- {links.cause(n, f'c{n}')} {c.short} — {len(models)} model{'s' if len(models) != 1 else ''} "
                      f"({', '.join(models)}): {', '.join(what)}; {', '.join(f'`{a}`' for a in arts)}; "
                      f"records {links.records(rs, 3)}")
    if rest:
        kinds = sorted({STATUS_MARK[w] for _, w in rest})
        short.append(f"- {len(rest)} other cause{'s' if len(rest) != 1 else ''} of not running here ("
                     f"{', '.join(kinds)}): " + ", ".join(links.cause(n, f"c{n}") for n, _ in rest))
    return short + [""] + folded("every cause, what it hit and its records", detail,
                                 links.section(ERRORS_TITLE, "errors by cause"))


def skew(view: View) -> list[str]:
    """Artifacts that one runtime of their format runs ok and another does not (runtime versions)."""
    by_art: dict[tuple, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for b in view.kind("bench"):
        by_art[(b.model, b.source, b.path, b.format)][b.runtime].append(b)
    version = {}
    for b in view.kind("bench"):
        if b.info.get("runtime_version"):
            version.setdefault(b.runtime, b.info["runtime_version"])
    hits: dict[tuple[str, str], list[Record]] = defaultdict(list)   # (good runtime, bad runtime) -> bad records
    for rts in by_art.values():
        good = [rt for rt, rs in rts.items() if all(r.status == "ok" for r in rs)]
        for rt, rs in rts.items():
            bad = [r for r in rs if r.status not in ("ok", "skipped")]
            if bad and good:
                hits[(good[0], rt)].append(bad[0])
    if not hits:
        return []
    short, detail = [], []
    for (good, bad), rs in sorted(hits.items()):
        causes = sorted({view.cause_number(r) for r in rs})
        short.append(f"- **Runtime-version skew**: `{bad}` {version.get(bad, '')} cannot run {len(rs)} "
                     f"artifact{'s' if len(rs) != 1 else ''} that `{good}` {version.get(good, '')} runs ("
                     + ", ".join(links.cause(n) for n in causes) + ")")
        arts = ", ".join(f"{ArtifactId.of(r).label} ({links.cause(view.cause_number(r))})" for r in rs)
        detail.append(f"- `{bad}` vs `{good}`: {arts}; records {links.records(rs, 3)}")
    return short + [""] + folded("which artifacts", detail)


def versions(view: View) -> list[str]:
    """The runtime-version ladder's answer (`report/compat.findings`): one bullet, the per-path lines folded."""
    from pipeline.report.compat import TITLE as COMPAT_TITLE
    from pipeline.report.compat import findings as per_path
    detail = per_path(view)
    if not detail:
        return []
    paths = sum(ln.startswith("- `") for ln in detail)
    claims = sum(ln.startswith("- **") for ln in detail)
    short = (f"- **Oldest runtime** measured for {paths} export path{'s' if paths != 1 else ''}"
             + (f"; {claims} file{'s claim' if claims != 1 else ' claims'} a runtime it cannot run on" if claims else "")
             + f" ({links.section(COMPAT_TITLE, 'runtime versions')})")
    return [short, ""] + folded("the oldest release per export path", detail[2:])


def int8(view: View) -> list[str]:
    ps = pairs(view)
    if not ps:
        return []
    short, detail = [], []
    by_model = defaultdict(list)
    for f, q in ps:
        by_model[q.model].append((f, q, judge(view, f, q)))
    for model, rows in sorted(by_model.items()):
        n = len(rows)
        all_ok = [q for _, q, v in rows if v.ok_size and v.ok_quality is not False and v.ok_faster]
        arm = [v.arm_x[ARM_JUDGE_CORE] for _, _, v in rows if v.judged_on != "host"]
        host = [v.speed_x for *_, v in rows]
        short.append(f"- **int8, {model}**: {len(all_ok)}/{n} int8 artifacts meet every target (size "
                     f"{sum(v.ok_size for *_, v in rows)}/{n}, quality {sum(v.ok_quality is True for *_, v in rows)}/{n}"
                     f", cheaper {sum(v.ok_faster for *_, v in rows)}/{n})")
        if arm:
            text = (f"- {model}: {len(arm)} judged on `{ARM_JUDGE_CORE}`: fp32/int8 net instructions "
                    f"{min(arm):.2f}-{max(arm):.2f}x; host p50 {min(host):.2f}-{max(host):.2f}x")
        else:
            text = f"- {model}: on the host: fp32/int8 p50 {min(host):.2f}-{max(host):.2f}x"
        detail.append(text + f"; records {links.records([q for _, q, _ in rows], 3)}")
    rule = (f"Targets: size >= {parity.INT8_SIZE_TARGET:g}x smaller, quality within the model's tolerance, cheaper to "
            f"run: judged on the emulated ARM64 `{ARM_JUDGE_CORE}` core's net instructions where both artifacts ran "
            f"there, else on the host p50. Details: {links.section(INT8_TITLE, 'int8 vs fp32')}")
    return short + [""] + folded("where int8 is judged, the ratios", [rule, ""] + detail)
