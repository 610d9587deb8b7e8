"""The report's first section: the answer, generated from the records (no hand-written claims).

    python -m pipeline report     # "## Findings" opens results/report.md

Per framework, how many models x export paths exported and ran in each runtime (host runtimes, the old
tflite-runtime, the emulated ARM64 cores, Apple-only artifacts); every failure cause once with the models
it hits; runtime-version skew (an artifact one runtime of its format runs and another cannot); the int8
result per model and where it is judged; the picks of "what should I ship?" per model with their numbers.
Each line links to the section it summarises and to its records. Every rule it applies is the section's
own (view.causes, int8.judge, ship.picks): this file only counts and links.
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.report import links
from pipeline.report.device import TITLE as DEVICE_TITLE
from pipeline.report.int8 import TITLE as INT8_TITLE
from pipeline.report.int8 import judge, pairs
from pipeline.report.ship import picks
from pipeline.report.table import fmt
from pipeline.parity import ELSEWHERE, STATUS_MARK
from pipeline.report.view import ARM_JUDGE_CORE, View
from pipeline.schema import Record

TITLE = "Findings"
FRAMEWORK_NAME = {"pytorch": "PyTorch", "tensorflow": "TensorFlow/Keras"}


def findings(view: View) -> list[str]:
    if not view.kind("export") and not view.kind("bench"):
        return []
    lines = [f"## {TITLE}", "", "Generated from the records of this report: each line links to the section it "
             "summarises and to its record ids (the Records appendix).", ""]
    from pipeline.report.compat import findings as versions
    for part in (support, failures, skew, versions, int8, ship):
        lines += part(view)
    return lines


def _fw(r: Record) -> str:
    return r.framework or ArtifactId.of(r).framework or "other"


def _k_of_n(rs: dict) -> tuple[int, int]:
    return sum(all(r.status == "ok" for r in v) for v in rs.values()), len(rs)


def support(view: View) -> list[str]:
    from pipeline.report.markdown import SUPPORT_TITLE
    exports = view.kind("export")
    if not exports:
        return []
    out = [f"**Export and run, per framework** ({links.section(SUPPORT_TITLE, 'support matrix')}):", ""]
    for fw in sorted({_fw(e) for e in exports}):
        ex = [e for e in exports if _fw(e) == fw]
        models = sorted({e.model for e in ex})
        paths = sorted({ArtifactId.of(e).stem for e in ex})
        ok = [e for e in ex if e.status == "ok"]
        parts = [f"{len(ok)}/{len(ex)} of {len(models)} model{'s' if len(models) != 1 else ''} x {len(paths)} "
                 "artifacts exported"]
        for place in ELSEWHERE:
            there = [e for e in ex if e.status == place.status]
            if there:
                parts.append(f"{len(there)} exported for {place.devices} only (not run here)")
        per_rt: dict[str, dict] = defaultdict(lambda: defaultdict(list))
        for b in view.kind("bench"):
            if _fw(b) == fw and b.path != "user":
                per_rt[b.runtime][(b.model, ArtifactId.of(b).stem)].append(b)
        if per_rt:
            ran = []
            for rt, arts in sorted(per_rt.items()):
                k, n = _k_of_n(arts)
                skipped = sum(all(r.status == "skipped" for r in v) for v in arts.values())
                ver = next((b.info["runtime_version"] for v in arts.values() for b in v
                            if b.info.get("runtime_version")), "")
                ran.append(f"`{rt}`{' ' + ver if ver else ''} {k}/{n}" + (f" ({skipped} skipped)" if skipped else ""))
            parts.append("ran ok on the host: " + ", ".join(ran))
        dev = [d for d in view.kind("device") if _fw(d) == fw and d.path != "user"]
        for core in view.cores():
            on = [d for d in dev if d.profile == core]
            if on:
                counts = defaultdict(int)
                for d in on:
                    counts[d.status] += 1
                parts.append(f"emulated ARM64 `{core}`: {counts.pop('ok', 0)}/{len(on)} ok" +
                             "".join(f", {n} {STATUS_MARK[s]}" for s, n in sorted(counts.items())))
        out.append(f"- **{FRAMEWORK_NAME.get(fw, fw)}**: " + "; ".join(parts) + ".")
    return out + [""]


def failures(view: View) -> list[str]:
    from pipeline.report.markdown import ERRORS_TITLE
    groups = view.causes()
    if not groups:
        return ["**Failure causes**: none: every export and measurement is ok.", ""]
    out = [f"**Failure causes, each once** ({links.section(ERRORS_TITLE, 'errors by cause')}):", ""]
    for n, (c, rs) in enumerate(groups, 1):
        models = sorted({r.model for r in rs})
        what = sorted({f"{r.kind} {STATUS_MARK[r.status]}" + (f" on `{r.runtime}`" if r.runtime else "") for r in rs})
        arts = sorted({ArtifactId.of(r).stem for r in rs})
        out.append(f"- {links.cause(n, f'c{n}')} {c.short} — {len(models)} model{'s' if len(models) != 1 else ''} "
                   f"({', '.join(models)}): {', '.join(what)}; {', '.join(f'`{a}`' for a in arts)}; "
                   f"records {links.records(rs, 3)}")
    return out + [""]


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
    out = ["**Runtime-version skew** (the same file, another runtime of its format):", ""]
    for (good, bad), rs in sorted(hits.items()):
        arts = ", ".join(f"{ArtifactId.of(r).label} ({links.cause(view.cause_number(r))})" for r in rs)
        out.append(f"- `{bad}` {version.get(bad, '')} cannot run {len(rs)} artifact{'s' if len(rs) != 1 else ''} "
                   f"that `{good}` {version.get(good, '')} runs: {arts}; records {links.records(rs, 3)}")
    return out + [""]


def int8(view: View) -> list[str]:
    ps = pairs(view)
    if not ps:
        return []
    out = [f"**int8 vs fp32** ({links.section(INT8_TITLE, 'int8 vs fp32')}; size >= 3.5x, quality within the "
           f"model's tolerance, cheaper to run: judged on the emulated ARM64 `{ARM_JUDGE_CORE}` core's net "
           "instructions where both artifacts ran there, else on the host p50):", ""]
    by_model = defaultdict(list)
    for f, q in ps:
        by_model[q.model].append((f, q, judge(view, f, q)))
    for model, rows in sorted(by_model.items()):
        n = len(rows)
        all_ok = [q for _, q, v in rows if v.ok_size and v.ok_quality is not False and v.ok_faster]
        arm = [v.arm_x[ARM_JUDGE_CORE] for _, _, v in rows if v.judged_on != "host"]
        host = [v.speed_x for *_, v in rows]
        text = (f"- {model}: {len(all_ok)}/{n} int8 artifacts meet every target; size "
                f"{sum(v.ok_size for *_, v in rows)}/{n}, quality {sum(v.ok_quality is True for *_, v in rows)}/{n}, "
                f"cheaper {sum(v.ok_faster for *_, v in rows)}/{n}")
        if arm:
            text += (f" ({len(arm)} judged on `{ARM_JUDGE_CORE}`: fp32/int8 net instructions "
                     f"{min(arm):.2f}-{max(arm):.2f}x")
            text += f"; host p50 {min(host):.2f}-{max(host):.2f}x)"
        else:
            text += f" (on the host: fp32/int8 p50 {min(host):.2f}-{max(host):.2f}x)"
        out.append(text + f"; records {links.records([q for _, q, _ in rows], 3)}")
    return out + [""]


def ship(view: View) -> list[str]:
    out = []
    for model in view.models("bench"):
        prof, chosen, _ = picks(view, model)
        if not chosen:
            continue
        parts = []
        for role, r in chosen:
            m = r.metrics
            q = view.quality(r)
            qual = (f"{q.value * 100:.2f}%" if q.metric == "accuracy" else
                    f"MSE {q.value:.4g}" if q.metric == "reconstruction_mse" else "")
            cost = view.arm_cost(r, ARM_JUDGE_CORE)
            nums = [f"{m['size_bytes'] / 1024:.1f} KiB", f"p50 {m['latency_p50_ms']:.3f} ms"] + \
                ([f"{fmt(cost)} ARM64 instr"] if cost is not None else []) + ([qual] if qual else [])
            parts.append(f"{role} `{ArtifactId.of(r).stem}` on `{r.runtime}` ({', '.join(nums)}, {links.record(r)})")
        out.append(f"- {links.section(model)}: " + "; ".join(parts))
    if not out:
        return []
    return ["**What to ship** (per model, its \"What should I ship?\" picks; latency on its first profile):", ""] + \
        out + [""]
