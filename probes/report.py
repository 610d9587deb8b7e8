"""Report section: the operator x export path matrix and per-framework summaries, from the `probe`
records of the report's view (plugged into `pipeline/report/markdown.py` SECTIONS).

    python -m pipeline report
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.parity import ELSEWHERE, ELSEWHERE_STATUSES, PROBE, PROBE_CELLS, PROBE_GOOD, PROBE_LABEL as LABEL, ran
from pipeline.report.table import grid as rows_of, table
from pipeline.report.view import View
from pipeline.schema import Record
from probes import explained

FRAMEWORK_NAME = {"tensorflow": "TensorFlow/Keras", "pytorch": "PyTorch"}


def _cell(r: Record) -> str:
    if r.status == "skipped" or r.status in ELSEWHERE_STATUSES:
        return r.status
    if r.info.get("cell"):
        return r.info["cell"]
    if ran(r.status):
        return r.status
    return "export_failed" if not r.runtime else "runtime_failed"


def _grid(view: View) -> tuple[list[str], list[str], dict]:
    probes = view.kind("probe")
    ops = sorted({r.info.get("probe", r.model) for r in probes}, key=lambda n: _order(n))
    paths = sorted({(r.framework, r.path) for r in probes}, key=lambda fp: (fp[0] != "tensorflow", fp[1]))
    grid = defaultdict(list)
    for r in probes:
        grid[(r.info.get("probe", r.model), r.path)].append(r)
    return ops, [p for _, p in paths], grid


def _order(name: str) -> int:
    try:
        from probes import all_probes
        return list(all_probes()).index(name)
    except (ImportError, ValueError):
        return 10_000


def _summarize(rs: list[Record]) -> tuple[str, str]:
    """(worst cell over runtimes, text) for one operator x path."""
    cells = {r.runtime or "export": _cell(r) for r in rs}
    known = [c for c in cells.values() if c in PROBE_CELLS]
    worst = max(known, key=PROBE_CELLS.index) if known else "skipped"    # PROBE_CELLS: worst last
    if len(set(cells.values())) <= 1:
        return worst, LABEL.get(worst, worst)
    return worst, ", ".join(f"{rt}: {LABEL.get(c, c)}" for rt, c in sorted(cells.items()))


def matrix(view: View) -> list[str]:
    ops, paths, grid = _grid(view)
    if not ops:
        return []
    lines = ["## Operator support matrix (operator x export path)", "",
             "One-operator models built in both frameworks (`probes/ops.py`), exported along every path and "
             "run in that path's runtime(s); each artifact is compared with its own framework's output on "
             f"the same deterministic input. `ok` = exported, ran, matched ({PROBE.prose()}). `not delegated` = "
             "ran and matched, but operators ran outside XNNPACK (ExecuTorch's delegation info for "
             "`et_xnnpack_*`; the TFLite interpreter's own DELEGATE nodes for .tflite). "
             + "".join(f"`{e.label}` = exported for {e.runtime}, which only {e.systems} run: nothing ran here, "
                       "so neither ok nor failed. " for e in ELSEWHERE)
             + "Where runtimes differ, each is named.", ""]
    notes: dict[str, int] = {}

    def cell(op: str, p: str, rs: list[Record]) -> str:
        refs = []
        for r in rs:
            if r.error:
                note = f"`{op}` / `{p}`{' on `' + r.runtime + '`' if r.runtime else ''}: {r.error}"
                notes.setdefault(note, len(notes) + 1)
                refs.append(str(notes[note]))
        return _summarize(rs)[1] + (f" [{','.join(refs)}]" if refs else "") + explained.cell_links(rs)
    lines += table(["operator", *paths], rows_of(ops, paths, grid, cell))
    lines += ["Errors (first line of the toolchain's or runtime's own message, or the size of the mismatch):", ""]
    lines += [f"{n}. {text}" for text, n in notes.items()]
    lines += [""] + explained.causes(ops, paths, grid)
    lines += ["", "Operators left outside XNNPACK (ran correctly):", ""]
    for op in ops:
        for p in paths:
            for r in grid.get((op, p), []):
                if r.info.get("cell") == "not_delegated":
                    lines.append(f"- `{op}` / `{p}` on `{r.runtime}`: {', '.join(r.info.get('outside_xnnpack', []))}")
    return lines + [""] + summaries(view) + explained.article(view, grid, paths)


def summaries(view: View) -> list[str]:
    """One data-driven paragraph per framework: counts and names come from the records only."""
    ops, paths, grid = _grid(view)
    lines = ["### Summary per framework (generated from the probe records)", ""]
    for fw in ("pytorch", "tensorflow"):
        fw_paths = [p for p in paths if any(r.framework == fw for op in ops for r in grid.get((op, p), []))]
        if not fw_paths:
            continue
        n = len(ops)
        parts = []
        for p in fw_paths:
            by = {op: _summarize(grid[(op, p)])[0] for op in ops if (op, p) in grid}
            exported = [op for op, c in by.items() if c != "export_failed"]
            good = [op for op, c in by.items() if c in PROBE_GOOD]
            outside = [op for op, c in by.items() if c == "not_delegated"]
            bad = {c: [op for op, cc in by.items() if cc == c]
                   for c in (*ELSEWHERE_STATUSES, "export_failed", "runtime_failed", "mismatch")}
            s = f"`{p}`: {len(exported)}/{len(by)} exported, {len(good)}/{len(by)} ran and matched"
            if outside:
                s += f" ({len(outside)} with operators outside XNNPACK: {', '.join(outside)})"
            for c, lst in bad.items():
                if lst:
                    s += f"; {LABEL[c]}: {', '.join(lst)}"
            parts.append(s)
        anywhere = [op for op in ops if any(_summarize(grid[(op, p)])[0] in PROBE_GOOD
                                           for p in fw_paths if (op, p) in grid)]
        # a cell that runs elsewhere ran nowhere here: it neither confirms nor refutes "every path"
        everywhere = [op for op in anywhere if all(_summarize(grid[(op, p)])[0] in (*PROBE_GOOD, *ELSEWHERE_STATUSES)
                                                  for p in fw_paths if (op, p) in grid)]
        nowhere = [op for op in ops if op not in anywhere]
        away = [e for e in ELSEWHERE if any(_summarize(rs)[0] == e.status for (op, p), rs in grid.items()
                                            if p in fw_paths)]
        where = "; ".join(f"{e.runtime} paths: {e.label}" for e in away)
        head = (f"**{FRAMEWORK_NAME[fw]}**: {len(everywhere)}/{n} operators deploy correctly on every "
                f"{FRAMEWORK_NAME[fw]} path{f' that runs here ({where})' if away else ''}, "
                f"{len(anywhere)}/{n} on at least one"
                + (f"; on none: {', '.join(nowhere)}" if nowhere else "") + ". ")
        lines += [head + "; ".join(parts) + ".", ""]
    return lines
