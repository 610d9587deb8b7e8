"""Report section: the generative artifacts (language models with a KV cache), from the `bench` records
of the generation harness (pipeline/generative/) and its `device` records.

    python -m pipeline report      # "Generative models" in results/report.md, with its "what to ship"

Per artifact: size, time to first token, decode tokens/s (from the second decoded token on), peak RSS,
guest instructions per decoded token on the emulated ARM64 cores, held-out perplexity vs the
reference, greedy agreement; then what each runtime did at and past the declared bounds; then the
pick per model. Every bound and label comes from pipeline/parity.py (GENERATIVE, BOUND_OUTCOMES).
"""
from __future__ import annotations

from collections import defaultdict

from pipeline import parity
from pipeline.artifact import ArtifactId
from pipeline.generative import CONVENTIONS, session_class
from pipeline.generative.generate import probe_label
from pipeline.report import links
from pipeline.report.table import fmt, kib, table
from pipeline.parity import STATUS_MARK
from pipeline.report.picks import arm_per_token
from pipeline.report.view import ARM_JUDGE_CORE, View, generative
from pipeline.schema import Record

TITLE = "Generative models (prefill and decode with a KV cache)"


def _records(view: View) -> list[Record]:
    return [r for r in view.kind("bench") if generative(r)]


_arm = arm_per_token     # guest instructions per decoded token on a core (None: not run there)


def section(view: View) -> list[str]:
    recs = _records(view)
    if not recs:
        return []
    cores = [c for c in view.cores() if any(view.on_device(r, c) for r in recs)]
    first = {m: _first_profile(view, [r for r in recs if r.model == m]) for m in {r.model for r in recs}}
    lines = [f"## {TITLE}", "",
             "A prompt of N tokens, then M greedy steps, in each artifact's real runtime behind one interface "
             f"(`pipeline/generative/`: {', '.join(session_class(c).CACHE for c in CONVENTIONS)}), in worker "
             "processes under the device profiles. "
             "TTFT = the prefill's time to the first token's logits (median over the prompts, after one "
             "untimed run); decode tokens/s from the second decoded token on (the first decode call pays "
             "one-time setup in some runtimes). Parity is teacher-forced along the reference's greedy tokens "
             "(the source model run without a cache): `greedy` = prompts whose M tokens are all the "
             "reference's, and the fewest leading equal steps; perplexity on held-out windows, same positions "
             "as the reference. Host timings are not phone timings; ARM64 = guest instructions per decoded "
             "token on the emulated cores (not a latency).", "", _bounds_text(), ""]
    header = ["model", "artifact", "runtime", "quant", "status", "size KiB", "TTFT ms", "decode tok/s",
              "peak RSS MB", *(f"ARM64 {c} instr/token" for c in cores), "perplexity (ref)", "Δ ppl %",
              "greedy identical", "min SQNR dB", "records"]
    rows = []
    for r in sorted((r for r in recs if r.profile == first[r.model]), key=lambda r: (r.model, r.runtime, r.path)):
        m = r.metrics
        status = STATUS_MARK[r.status] if r.status == "ok" else f"{STATUS_MARK[r.status]} {links.cause(view.cause_number(r))}"
        greedy = (f"{m['greedy_identical_share']:.0%} (>= {m['greedy_steps_equal_min']:.0f}/{m['decode_steps']:.0f})"
                  if "greedy_identical_share" in m else None)
        ppl = f"{m['perplexity']:.2f} ({m['reference_perplexity']:.2f})" if "perplexity" in m else None
        rows.append([r.model, ArtifactId.of(r).stem, r.runtime, r.quantization, status, kib(m.get("size_bytes")),
                     m.get("ttft_ms"), m.get("decode_tokens_per_s"), m.get("peak_rss_mb"),
                     *(_arm(view, r, c) for c in cores), ppl, m.get("perplexity_increase_pct"), greedy,
                     m.get("logits_sqnr_db_min"), links.records([x for x in recs if ArtifactId.of(x) == ArtifactId.of(r)])])
    lines += table(header, rows)
    lines += _profiles(recs, first)
    lines += bounds(recs)
    lines += ship(view, recs, first)
    return lines


def _first_profile(view: View, rs: list[Record]) -> str:
    """The profile the parity set ran on: the run's first profile among these records."""
    have = {r.profile for r in rs if "sqnr_db" in r.metrics} or {r.profile for r in rs}
    order = [p for p in view.profile_order if p in have] + sorted(have - set(view.profile_order))
    return order[0] if order else ""


def _bounds_text() -> str:
    def one(q: str, t: parity.Thresholds) -> str:
        return (f"{q}: logits SQNR >= {t.min_sqnr_db:g} dB, top-1 agreement >= {t.min_top1_agreement:g} on the decisive "
                f"steps, held-out perplexity <= +{t.max_perplexity_increase_pct:g} %")
    return ("Judged (pipeline/parity.py GENERATIVE) on the logits of every step of every prompt; a step whose "
            "reference top-1 leads by less than the artifact's own noise can flip (a near-tie) and is not "
            "counted: " + "; ".join(one(q, t) for q, t in parity.GENERATIVE.items()) + ".")


def _profiles(recs: list[Record], first: dict) -> list[str]:
    """Decode rate and TTFT on every profile (the table shows the first)."""
    profs = sorted({r.profile for r in recs if r.profile and r.profile != first[r.model]})
    if not profs:
        return []
    by = defaultdict(dict)
    for r in recs:
        by[(r.model, ArtifactId.of(r).stem, r.runtime)][r.profile] = r
    header = ["model", "artifact", "runtime", *(f"{p}: decode tok/s" for p in profs), *(f"{p}: TTFT ms" for p in profs)]
    rows = [[m, a, rt, *(ps[p].metrics.get("decode_tokens_per_s") if p in ps else None for p in profs),
             *(ps[p].metrics.get("ttft_ms") if p in ps else None for p in profs)] for (m, a, rt), ps in sorted(by.items())]
    return ["On the other profiles:", ""] + table(header, rows)


def bounds(recs: list[Record]) -> list[str]:
    """What each runtime did at and past the declared bounds (raw calls, no harness check)."""
    probed = [r for r in recs if r.info.get("probes")]
    if not probed:
        return []
    lines = ["### Dynamic shapes: what each runtime did at and past the declared bounds", "",
             "Each artifact's own prefill entry point with 1 token, with its declared maximum and with one token "
             "more, and a decode one position past the cache, called directly (the harness's checks bypassed), "
             "each followed by a decode compared with the reference (executorch#20546: bounds not enforced at run "
             "time give silently wrong outputs). Outcomes: " +
             "; ".join(f"`{k}` {v}" for k, v in parity.BOUND_OUTCOMES.items()) + ". The harness's own API "
             "refuses every input past a bound with a one-line error (shown when it differs from the runtime).", ""]
    rows, unsafe = [], []
    for r in sorted(probed, key=lambda r: (r.model, r.runtime, r.path)):
        for p in r.info["probes"]:
            what = probe_label(p)
            said = p.get("error") or (f"SQNR {p['sqnr_db']:.1f} dB vs the reference" if "sqnr_db" in p else "")
            rows.append([r.model, ArtifactId.of(r).stem, r.runtime, what, "within" if p["within"] else "PAST",
                         f"**{p['outcome']}**" if p["outcome"] not in parity.SAFE_BOUND_OUTCOMES else p["outcome"],
                         said[:160], "" if p["within"] else p.get("harness", "")[:120]])
            if p["outcome"] not in parity.SAFE_BOUND_OUTCOMES:
                unsafe.append(f"{ArtifactId.of(r).label} on {r.runtime}: {what} ({p['outcome']})")
    lines += table(["model", "artifact", "runtime", "input", "bound", "outcome", "the runtime's answer",
                    "the harness's answer"], rows)
    if unsafe:
        lines += ["Unsafe without the harness's checks (an app must enforce these bounds itself; the bundle's "
                  "manifest lists them): " + "; ".join(unsafe) + ".", ""]
    return lines


def ship(view: View, recs: list[Record], first: dict) -> list[str]:
    """Per model: among the artifacts that passed parity on the first profile, the smallest, the
    fastest decode, the fewest instructions per token on the dotprod core, and the best perplexity."""
    lines = ["### What to ship (generative)", ""]
    for model in sorted({r.model for r in recs}):
        good = [r for r in recs if r.model == model and r.profile == first[model] and r.status == "ok"]
        if not good:
            lines += [f"- **{model}**: no artifact passed parity; nothing to ship.", ""]
            continue
        picks = [("smallest", min(good, key=lambda r: r.metrics.get("size_bytes", float("inf")))),
                 ("fastest decode (host)", max(good, key=lambda r: r.metrics.get("decode_tokens_per_s", 0.0)))]
        arm = [r for r in good if _arm(view, r, ARM_JUDGE_CORE) is not None]
        if arm:
            picks.append((f"fewest instructions per token ({ARM_JUDGE_CORE})",
                          min(arm, key=lambda r: _arm(view, r, ARM_JUDGE_CORE))))
        with_ppl = [r for r in good if "perplexity_increase_pct" in r.metrics]
        if with_ppl:
            picks.append(("closest to the reference (perplexity)",
                          min(with_ppl, key=lambda r: abs(r.metrics["perplexity_increase_pct"]))))
        lines.append(f"- **{model}** ({len(good)} artifact(s) passed parity):")
        for why, r in picks:
            m = r.metrics
            arm_cost = _arm(view, r, ARM_JUDGE_CORE)
            lines.append(f"  - {why}: `{ArtifactId.of(r).stem}` on {r.runtime} ({kib(m.get('size_bytes'))} KiB, "
                         f"{fmt(m.get('decode_tokens_per_s'))} tok/s, TTFT {fmt(m.get('ttft_ms'))} ms"
                         + (f", {arm_cost:,.0f} instr/token" if arm_cost is not None else "")
                         + (f", perplexity {m['perplexity_increase_pct']:+.2f} %" if "perplexity_increase_pct" in m else "")
                         + ")")
        unsafe = sorted({r.runtime for r in good for p in r.info.get("probes", [])
                         if p.get("outcome") not in parity.SAFE_BOUND_OUTCOMES})
        if unsafe:
            lines.append(f"  - bounds: {', '.join(unsafe)} returned wrong outputs past a declared bound without an "
                         "error (table above): keep prompts and positions within the manifest's bounds in the app.")
        lines.append("")
    return lines
