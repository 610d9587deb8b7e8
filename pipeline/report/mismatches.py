"""Report section "Mismatches explained": every mismatch once (an artifact whose runtimes differ from the
reference in the same way is one entry), with where the outputs differ, the inputs and outputs there, the
first pairs, what the file computes, and the cause the rules name (`pipeline/explain/rules.py`) or
"unexplained". Grid cells elsewhere link here with `link(r)`.

    python -m pipeline report      # results/report.md: "## Mismatches explained"

Everything comes from the records (`info["evidence"]`, `info["file"]`): nothing is re-run or re-read.
"""
from __future__ import annotations

import json
from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.explain import rules
from pipeline.explain.evidence import fmt
from pipeline.provenance import record_id
from pipeline.report import links
from pipeline.report.table import table
from pipeline.report.view import View
from pipeline.schema import Record

TITLE = "Mismatches explained"
KINDS = ("bench", "device", "probe")
SHOW_OPS = 24
SHOW_CONSTANTS = 6
SHOW_DELEGATES = 3


def is_mismatch(r: Record) -> bool:
    """Ran, but computes something else than the reference (probe cells keep it in info["cell"])."""
    return r.status == "mismatch" or (r.kind == "probe" and r.info.get("cell") == "mismatch")


def explanation(r: Record) -> rules.Explanation:
    return rules.explain(r.info.get("evidence"), r.info.get("file"), r.quantization)


def anchor_id(r: Record) -> str:
    return f"m-{record_id(r)}"


def link(r: Record, text: str = "why") -> str:
    """A link to r's entry in this section ("" when r is no mismatch)."""
    return f"[{text}](#{anchor_id(r)})" if is_mismatch(r) else ""


def with_link(text: str, r: Record) -> str:
    """A grid cell's text, followed by the link to its explanation when r is a mismatch."""
    ln = link(r)
    return f"{text} ({ln})" if ln else text


def where_ran(r: Record) -> str:
    if r.kind == "device":
        return f"ARM64 {r.profile}"
    return r.runtime + (f" ({r.profile})" if r.kind == "bench" and r.profile else "")


def subject(r: Record) -> str:
    if r.kind == "probe":
        return f"operator `{r.info.get('probe', r.model)}` / `{ArtifactId.of(r).stem}`"
    return f"`{ArtifactId.of(r).label}`" if r.path != "user" else f"`{r.artifact}`"


def groups(view: View) -> list[list[Record]]:
    """Mismatches of one artifact with the same evidence (its runtimes, profiles, cores) as one group."""
    by: dict[tuple, list[Record]] = defaultdict(list)
    for kind in KINDS:
        for r in view.kind(kind):
            if is_mismatch(r):
                ev = r.info.get("evidence")
                by[(kind, r.model, r.source, r.path, r.info.get("probe", ""),
                    json.dumps(ev, sort_keys=True, default=str))].append(r)
    return list(by.values())


def section(view: View) -> list[str]:
    gs = groups(view)
    if not gs:
        return []
    lines = [f"## {TITLE}", "",
             "Every artifact that ran but computes something else than its reference: where the outputs "
             "differ (by the bound it was judged with), the input values there, the first pairs, what the "
             "file computes (its operators in order and its small constants, read from the file), and the "
             "cause the rules of `pipeline/explain/rules.py` find in that evidence, or `unexplained`.", ""]
    for rs in gs:
        lines += entry(rs)
    return lines


def entry(rs: list[Record]) -> list[str]:
    r = rs[0]
    e = explanation(r)
    anchors = "".join(f'<a id="{anchor_id(x)}"></a>' for x in rs)
    runs = ", ".join(dict.fromkeys(where_ran(x) for x in rs))
    lines = [f"{anchors}**{subject(r)}** ({r.kind}, {r.quantization or 'no quantization'}; on {runs}; "
             f"records {record_ids(rs)})", "",
             f"- **cause**: {e.cause}" if e.explained else f"- **{e.cause}**",
             f"- judged: {r.error}" if r.error else ""]
    ev = r.info.get("evidence") or {}
    if ev:
        out = f"output {ev['output']}" + (f", input set {ev['input_set']}" if ev.get("input_set") else "") \
            if "output" in ev else "the output"
        lines += [f"- where ({out}, rule: {ev.get('rule', '?')}): {ev.get('where', {}).get('text', '')}",
                  f"- inputs there: {ev.get('inputs', {}).get('text') or 'no pattern'}"]
        if ev.get("outputs", {}).get("text"):
            lines.append(f"- outputs there: {ev['outputs']['text']}")
        if ev.get("without_delegate"):
            lines.append(f"- run again with the runtime's default delegate off: {delegate_off(ev['without_delegate'])}")
    lines += [f"- the file: {x}" for x in file_lines(r.info.get("file"))]
    lines = [ln for ln in lines if ln] + [""]
    if ev.get("pairs"):
        lines += pairs_table(ev)
    return lines


def delegate_off(off: dict) -> str:
    same = {True: ", the same outputs", False: ", other outputs"}.get(off.get("same_outputs"), "")
    return (f"{off['cell']}{same} ({off.get('delegates')} delegates applied)"
            + (f"; {off['error']}" if off.get("error") else ""))


def record_ids(rs: list[Record]) -> str:
    """Links to the Records appendix for the kinds it lists; the bare ids (results.jsonl) for the rest."""
    from pipeline.report.markdown import cited
    if all(cited(r) for r in rs):
        return links.records(rs)
    return " ".join(f"`{record_id(r)}`" for r in rs)


def pairs_table(ev: dict) -> list[str]:
    elem = any("input" in p for p in ev["pairs"])
    head = ["position", "input" if elem else "unit", "expected", "got"]
    rows = [[str(tuple(p["at"])), ", ".join(fmt(v) for v in p["input"]) if elem else str(tuple(p.get("unit", ()))),
             fmt(p["expected"]), fmt(p["got"])] for p in ev["pairs"]]
    return table(head, rows)


def file_lines(facts: dict | None) -> list[str]:
    """What the file computes, in a few lines: operators in order, delegates, small constants (flagged first)."""
    if not facts:
        return []
    if facts.get("error"):
        return [f"not read ({facts['error']})"]
    ops = facts.get("operators", [])
    more = facts.get("n_operators", len(ops)) - len(ops[:SHOW_OPS])
    out = [f"{facts.get('n_operators', len(ops))} operators in order: " + ", ".join(ops[:SHOW_OPS])
           + (f", ... (+{more})" if more > 0 else "")]
    ranges = [f"{side[:-1]} `{t['name']}` [{fmt(t['quantized_range'][0])}, {fmt(t['quantized_range'][1])}]"
              for side in ("inputs", "outputs") for t in facts.get(side, []) if t.get("quantized_range")]
    if ranges:
        out.append("quantized ranges: " + "; ".join(ranges))
    dels = facts.get("delegates", [])
    for d in dels[:SHOW_DELEGATES]:
        if d.get("nodes"):
            out.append(f"delegate {d['id']}: {', '.join(d['nodes'][:SHOW_OPS])}")
    if facts.get("n_delegates", len(dels)) > SHOW_DELEGATES:
        out.append(f"... {facts.get('n_delegates', len(dels)) - SHOW_DELEGATES} more delegates")
    consts = facts.get("constants", [])
    if consts:
        shown = [constant_text(c) for c in consts[:SHOW_CONSTANTS]]
        n = facts.get("n_constants", len(consts))
        out.append(f"{n} small constant{'s' if n != 1 else ''}: " + "; ".join(shown)
                   + (" ..." if len(consts) > SHOW_CONSTANTS else ""))
    elif "n_constants" in facts:
        out.append("no small constants")
    return out


FLAG_TEXT = {"flt_max": "FLT_MAX", "fp16_max": "float16 max", "inf": "infinity", "nan": "NaN",
             "denormal": "denormal"}


def constant_text(c: dict) -> str:
    vals = ", ".join(fmt(v) for v in c.get("values", []))
    flags = " ".join(f"**{FLAG_TEXT.get(f, f)}**" for f in c.get("flags", []))
    users = "; ".join(u["op"] + (f"({', '.join(u['with'])})" if u.get("with") else "") for u in c.get("used_by", []))
    return f"`{c['name']}` {c['dtype']}{list(c['shape'])} = {vals}" + (f" {flags}" if flags else "") + \
        (f" -> {users}" if users else "")
