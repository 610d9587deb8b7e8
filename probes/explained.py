"""The probe section's explanations (hooked into `probes/report.py` `matrix`): per operator and path the
cause of a mismatch in one line (or "unexplained"), and a paragraph on each of the article's operators:
what each framework's export makes of it, with the evidence, generated from the probe records.

    python -m pipeline probe --ops flip,rfft,isnan_isinf     # then results/report.md, "Operator support matrix"

Causes come from `pipeline/explain/rules.py` (via `pipeline/report/mismatches.py`), the operators and
constants from each record's `info["file"]`; nothing here is written about one operator.
"""
from __future__ import annotations

from pipeline.explain import rules
from pipeline.parity import PROBE_GOOD, PROBE_LABEL
from pipeline.report import links, mismatches
from pipeline.report.view import View
from pipeline.schema import Record

# the article this project was seeded from compares the frameworks on these operators (probes/ops.py)
ARTICLE_OPS = ("flip", "rfft", "isnan_isinf")
FRAMEWORKS = (("pytorch", "PyTorch"), ("tensorflow", "TensorFlow/Keras"))


def cell_links(rs: list[Record]) -> str:
    """A grid cell's mismatch causes in short, each linked to its explanation (one per distinct cause)."""
    by: dict[str, Record] = {}
    for r in rs:
        if mismatches.is_mismatch(r):
            by.setdefault(mismatches.explanation(r).short, r)
    return "".join(f": {short} ({mismatches.link(r)})" for short, r in by.items())


def _ran(rs: list[Record]) -> list[Record]:
    """The records of runtimes that ran the file here (matched or not)."""
    return [r for r in rs if r.runtime and (r.info.get("cell") in PROBE_GOOD or mismatches.is_mismatch(r))]


def cause_line(op: str, path: str, rs: list[Record]) -> str | None:
    """`op` / `path` on its runtimes: the cause of its mismatch (one line per distinct explanation)."""
    bad = [r for r in rs if mismatches.is_mismatch(r)]
    if not bad:
        return None
    by: dict[str, list[Record]] = {}
    for r in bad:
        by.setdefault(mismatches.explanation(r).cause, []).append(r)
    ran = _ran(rs)
    parts = []
    for cause, group in by.items():
        rts = [r.runtime for r in group]
        same = len({repr(r.info.get("evidence")) for r in group}) == 1
        where = ("every runtime that ran it (" + ", ".join(rts) + ")" if len(group) == len(ran) and len(rts) > 1
                 else ", ".join(rts))
        note = ", the same values on each" if same and len(rts) > 1 else ""
        offs = [(r.info.get("evidence") or {}).get("without_delegate") or {} for r in group]
        if offs and all(o.get("cell") == "mismatch" and o.get("same_outputs") for o in offs):
            note += ", and with the delegate off too (the same outputs)"
        outside = "" if any(offs) else _outside(group[0])   # the delegate-off run says more
        parts.append(f"on {where}{note}: {cause}{outside} ({mismatches.link(group[0], 'evidence')})")
    return f"- `{op}` / `{path}` " + "; ".join(parts)


def _outside(r: Record) -> str:
    """Which of the file's operators the runtime's delegate left to its own kernels (as it ran)."""
    ops, outside = r.info.get("runtime_ops"), r.info.get("runtime_not_delegated")
    if not ops or not outside:
        return ""
    if set(outside) >= set(ops):
        return "; no operator ran inside the delegate"
    return f"; {', '.join(outside)} ran outside the delegate (the runtime's own kernels)"


def causes(ops: list[str], paths: list[str], grid: dict) -> list[str]:
    lines = [cause_line(op, p, grid.get((op, p), [])) for op in ops for p in paths]
    lines = [ln for ln in lines if ln]
    if not lines:
        return []
    return ["Why each mismatch differs (the rules of `pipeline/explain/rules.py` on each record's evidence; "
            f"`unexplained` when none fits; each links to its evidence under {links.section(mismatches.TITLE)}):",
            "", *lines, ""]


# ---------------------------------------------------------------- the article's operators

def _outcome(rs: list[Record]) -> str:
    """One path's outcome in words: the worst cell over its runtimes, with its cause or error."""
    from probes.report import _summarize
    worst, _ = _summarize(rs)
    # ran and matched: "ok", with the operators a delegate left out named as the matrix names them
    text = (PROBE_LABEL["ok"] + (f" ({PROBE_LABEL[worst]})" if worst != "ok" else "") if worst in PROBE_GOOD
            else PROBE_LABEL.get(worst, worst))
    if worst == "mismatch":
        r = next(r for r in rs if mismatches.is_mismatch(r))
        return f"{text}: {mismatches.explanation(r).short} ({mismatches.link(r, 'evidence')})"
    if worst in ("export_failed", "runtime_failed"):
        r = next(r for r in rs if r.error and (r.info.get("cell") == worst or not r.runtime))
        return f"{text}: {r.error.split(';')[0][:160]}"
    return text


def _computes(rs: list[Record]) -> str:
    """What the path's file computes: its operators, its XNNPACK nodes, its notable constants."""
    f = next((r.info["file"] for r in rs if r.info.get("file")), None)
    if not f or f.get("error"):
        return ""
    ops = list(dict.fromkeys(rules._short(o) for o in f.get("operators", [])))
    text = ", ".join(ops) or "no operator"
    nodes = [n for d in f.get("delegates", []) for n in d.get("nodes", [])]
    if nodes:
        text += f" (XNNPACK: {', '.join(dict.fromkeys(nodes))})"
    flagged = [c for c in f.get("constants", []) if c.get("flags")]
    for c in flagged[:2]:
        name = _short_name(c["name"])
        text += f"; constant{f' `{name}`' if name else ''} = {mismatches.fmt(c['values'][0])}" + \
            f" ({', '.join(mismatches.FLAG_TEXT.get(x, x) for x in c['flags'])})"
    return text


def _short_name(name: str) -> str:
    """A constant's name as the paragraph shows it; a converter's generated name says nothing."""
    stem = rules._stem(name)
    if not stem.isidentifier() or stem.lower() in rules.GENERIC_NAMES or len(stem) < 3:
        return ""
    return name if len(name) <= 32 else stem


def article(view: View, grid: dict, paths: list[str]) -> list[str]:
    """A paragraph per article operator: per framework, its paths grouped by what their files compute
    and how they fared."""
    present = [op for op in ARTICLE_OPS if any((op, p) in grid for p in paths)]
    if not present:
        return []
    lines = [f"### The article's operators: {', '.join(present)}", "",
             "What each framework's export makes of the operators the seed article compares, from the probe "
             "records: the operators in each file (read from the file), its notable constants, and how it ran.",
             ""]
    for op in present:
        parts = []
        for fw, name in FRAMEWORKS:
            groups: dict[tuple, list[str]] = {}
            for p in paths:
                rs = [r for r in grid.get((op, p), []) if r.framework == fw]
                if rs:
                    groups.setdefault((_computes(rs), _outcome(rs)), []).append(p)
            if not groups:
                continue
            said = [f"{', '.join(f'`{p}`' for p in ps)}: " + (f"{comp} -> " if comp else "") + outcome
                    for (comp, outcome), ps in groups.items()]
            parts.append(f"*{name}*: " + "; ".join(said) + ".")
        lines += [f"**{op}**. " + " ".join(parts), ""]
    return lines
