"""The answer at a glance, from one view: the report's opening section and the lines a run ends with.

    python -m pipeline report     # "## At a glance" opens results/report.md (and .html); the terminal ends
                                  # with the same answer (`end_lines`), as `make bench-mobile` does

Per model the Android and the iOS pick (`picks.pick`: file, size, ARM64 cost or host p50, quality vs the
reference), the run's counts (`counts`: per artifact x runtime, host runtimes and emulated ARM64 cores),
what did not work grouped by cause (`view.causes`, numbered as in "Errors by cause"), and where to read on.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path

from pipeline.artifact import ArtifactId
from pipeline.parity import ELSEWHERE_STATUSES, SEVERITY, STATUS_MARK, STATUSES, elsewhere, ran
from pipeline.report import links
from pipeline.report.picks import PLATFORM_NAME, Pick, picks, rule_text
from pipeline.report.ship import _quality
from pipeline.report.table import table
from pipeline.report.view import View

TITLE = "At a glance"
# always named in the counts, even at 0 (the four: ok / mismatch / failed / runs elsewhere): the
# statuses that ran, the "runs elsewhere" family and the worst
ALWAYS = tuple(s for s in STATUSES if ran(s) or s in ELSEWHERE_STATUSES) + (max(SEVERITY, key=SEVERITY.get),)
# causes named one line each, worst first: what is worse than "runs elsewhere" (the rest is counted only)
NAMED = tuple(sorted((s for s in STATUSES if SEVERITY[s] > max(SEVERITY[e] for e in ELSEWHERE_STATUSES)),
                     key=lambda s: -SEVERITY[s]))
TERMINAL_CAUSES = 4
MAX_LINES = 15             # the answer a run ends with: at most ~15 lines (the picks of many models may take more)
PLOT = "tradeoff"          # plots.write_all's name suffix of the picture per model


def models(view: View) -> list[str]:
    """The zoo models that were measured (a user's own file has no reference to pick against)."""
    return sorted({r.model for r in view.kind("bench") if r.path != "user"})


def counts(view: View) -> tuple[Counter, Counter]:
    """(export statuses per artifact, statuses per artifact x runtime: the host runtimes with the worst
    profile, and every emulated ARM64 core)."""
    exports, runs = Counter(), Counter()
    for (_, column), by_model in view.outcomes().items():
        for r in by_model.values():
            if r.path != "user":
                (exports if column == "export" else runs)[r.status] += 1
    return exports, runs


def status_word(status: str) -> str:
    e = elsewhere(status)
    return e.label if e else status


def counts_text(view: View) -> tuple[str, str]:
    """(the exports' counts, the runs' counts): two short sentences."""
    exports, runs = counts(view)
    n_models = len({r.model for r in view.kind("export") if r.path != "user"})
    ex = (f"{sum(exports.values())} artifacts ({n_models} model{'s' if n_models != 1 else ''} x export paths): " +
          ", ".join(f"{n} {'exported' if s == 'ok' else status_word(s)}" for s, n in _ordered(exports, ("ok",)))
          if exports else "nothing exported")
    ran = (f"{sum(runs.values())} runs (artifact x runtime, host and emulated ARM64): " +
           ", ".join(f"{n} {status_word(s)}" for s, n in _ordered(runs, ALWAYS))) if runs else "nothing ran"
    return ex, ran


def _ordered(c: Counter, always: tuple[str, ...]) -> list[tuple[str, int]]:
    return [(s, c.get(s, 0)) for s in STATUSES if s in always or c.get(s)]


def _pick_cells(view: View, p: Pick) -> list[str]:
    if p.record is None:
        return [f"none: {p.why}", "–", "–", "–"]
    r = p.record
    tier = f", {p.tier}" if p.tier else ""
    return [f"`{ArtifactId.of(r).stem}` ({r.runtime}{tier})", f"{r.metrics['size_bytes'] / 1024:.1f}",
            p.cost_text(), _quality(view, r)]


def headline(view: View, plots: dict[str, str] | None = None) -> list[str]:
    """The report's first section: one row per model, then one picture per model."""
    plots = plots or {}
    ms = models(view)
    if not ms:
        return []
    rows = []
    for m in ms:
        ps = picks(view, m)
        rows.append([links.section(m)] + [c for p in ps for c in _pick_cells(view, p)])
    header = ["model"] + [h for p in picks(view, ms[0]) for h in
                          (f"{PLATFORM_NAME[p.platform]} pick", "KiB", "cost", "quality")]
    lines = [f"## {TITLE}", ""] + table(header, rows)
    lines += [f"Picks: {rule_text()}. Every candidate: the model's section.", ""]
    # consecutive image lines: one row of pictures (html.py), side by side on GitHub too
    lines += [f"![{m}: size vs cost, every artifact, the picks ringed]({plots[f'{m}__{PLOT}']})"
              for m in ms if f"{m}__{PLOT}" in plots] + [""]
    return lines


def _pick_line(view: View, p: Pick, names: str) -> str:
    if p.record is None:
        return f"{names:<11} none: {p.why}"
    r = p.record
    return (f"{names:<11} {ArtifactId.of(r).stem + ' (' + r.runtime + ')':<40} {r.metrics['size_bytes'] / 1024:>7.1f} KiB"
            f"  {p.cost_text():<18} {_quality(view, r)}")


def _pick_groups(ps: list[Pick]) -> list[tuple[str, Pick]]:
    """The picks with one entry per file: ("Android+iOS", pick) when both platforms chose the same file."""
    groups: list[tuple[list[str], Pick]] = []
    for p in ps:
        same = next((g for g in groups if p.record is not None and g[1].record is p.record), None)
        if same:
            same[0].append(PLATFORM_NAME[p.platform])
        else:
            groups.append(([PLATFORM_NAME[p.platform]], p))
    return [("+".join(names), p) for names, p in groups]


def end_lines(view: View, report: Path | None = None, table_hint: bool = True, max_lines: int = MAX_LINES) -> list[str]:
    """What a run ends with (~15 lines): the picks per model, the counts, what did not work (one line per
    cause) and the report's path."""
    ms = models(view)
    ex, runs = counts_text(view)
    out = [f"[answer] {ex}", f"         {runs}"]
    width = max((len(m) for m in ms), default=0)
    for m in ms:
        for i, (names, p) in enumerate(_pick_groups(picks(view, m))):
            out.append(f"  {m if i == 0 else '':<{width}}  {_pick_line(view, p, names)}")
    bad = [(n, c, rs) for n, (c, rs) in enumerate(view.causes(), 1) if any(r.status in NAMED for r in rs)]
    # as many cause lines as the ~15 lines leave beside the header and the report's path (at least one, at
    # most TERMINAL_CAUSES), and a "+N more" line when some are left out
    room = max_lines - len(out) - 2
    shown = min(len(bad), TERMINAL_CAUSES, room)
    if shown < len(bad):
        shown = max(1, min(shown, room - 1))
    if bad:
        out.append("  not ok, by cause (the report's Errors by cause):")
        for n, c, rs in bad[:shown]:
            arts = sorted({ArtifactId.of(r).label for r in rs})
            worst = next(s for s in NAMED if any(r.status == s for r in rs))
            out.append(f"    c{n} {STATUS_MARK[worst]}: {c.short} ({arts[0]}"
                       + (f" +{len(arts) - 1} more" if len(arts) > 1 else "") + ")")
        if len(bad) > shown:
            out.append(f"    +{len(bad) - shown} more cause{'s' if len(bad) - shown != 1 else ''} in the report")
    if report is not None:
        out.append(f"  report: {report.with_suffix('.html')} (and {report.name})"
                   + ("; every measurement: python -m pipeline report --table" if table_hint else ""))
    return out
