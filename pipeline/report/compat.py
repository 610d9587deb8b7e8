"""Report section: will the app's runtime load it? Each artifact on a ladder of released runtime
versions (`compat` records, `python -m pipeline compat`), the measured minimum beside the declared one.

Also the findings' lines (`findings`): per export path, the oldest release its files need, and every
file that declares a runtime it cannot run on. Every reading of the ladder is `compat.minimum`'s.
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.compat import lacks, ladder, minimum
from pipeline.report import links
from pipeline.report.causes import clean
from pipeline.report.table import status_cell, table
from pipeline.parity import STATUS_MARK
from pipeline.report.view import View
from pipeline.schema import Record

TITLE = "Runtime versions: will the app's runtime load it?"


def _cell(r: Record | None) -> str | None:
    if r is None:
        return None
    lack = lacks.describe(r.info.get("lacks") or {})
    text = STATUS_MARK[r.status] + (f": {lack}" if lack else "")
    release, error = r.info.get("release", {}).get("label", r.runtime), clean(r.error)
    return status_cell(r.status, text, f"{release} lacks {lack}: {error}" if lack else
                       f"{release}: {error or 'loads and matches'}")


def _declared(m: minimum.Minimum, recs: list[Record]) -> str:
    said = recs[0].info.get("declared", {}) if recs else {}
    if m.format == "tflite":
        return said.get("min_runtime_version") or "(none)"
    if m.format == "onnx" and "ir_version" in said:
        # the ONNX operator set (a quantizer lists every contrib domain it registered, used or not)
        return f"IR {said['ir_version']}, opset {said.get('opsets', {}).get('ai.onnx', '?')}"
    return "–"


def _releases(n: int) -> str:
    return f"{n} release{'s' if n != 1 else ''}"


def section(view: View) -> list[str]:
    recs = view.kind("compat")
    lines = [f"## {TITLE}", ""]
    if not recs:
        return lines + ["Not run: `make compat` (`python -m pipeline compat`) runs every `.tflite` and `.onnx` "
                        "artifact on a ladder of released runtimes (docs/compat.md).", ""]
    lines += ["Each artifact on released runtimes, oldest first, each in its own environment, on the bench's "
              "eval samples, judged by the bench's parity rule: `ok` = loads and matches the reference, "
              "`MISMATCH` = loads but computes something else, `FAILED` = the release rejects the file (what "
              "it lacks, read from its error, after the colon; the whole first line on hover), `skipped` = no "
              "environment for that release here. **needs** = the lowest release from which every later one "
              "loads and matches; **declared** = what the file says (a .tflite's `min_runtime_version`).", ""]
    mins = minimum.by_artifact(recs)
    by_art: dict[tuple, dict[str, Record]] = defaultdict(dict)
    for r in recs:
        by_art[(r.model, r.source, r.path)][r.runtime] = r
    for fmt in ladder.formats():
        keys = sorted(k for k, m in mins.items() if m.format == fmt)
        if not keys:
            continue
        rungs = [g for g in ladder.LADDERS[fmt] if any(g.id in by_art[k] for k in keys)]
        rows = []
        for k in keys:
            m, got = mins[k], by_art[k]
            rows.append([k[0], ArtifactId(*k).stem, _declared(m, list(got.values())), minimum.needs(m),
                         *[_cell(got.get(g.id)) for g in rungs]])
        lines += [f"**{fmt}** ({_releases(len(rungs))}: {', '.join(g.label for g in rungs)}):", ""]
        lines += table(["model", "artifact", "declared", "needs", *[g.label for g in rungs]], rows)
    exported = {e.format for e in view.kind("export")}
    for fmt, why in ladder.NOT_MEASURED.items():
        if fmt in exported:
            lines += [f"**{fmt}**: {why}.", ""]
    lines += claims(view)
    return lines


def claims(view: View) -> list[str]:
    """Files whose declared minimum covers a release that cannot run them: the worst case, named."""
    out = []
    for (model, source, path), m in sorted(minimum.by_artifact(view.kind("compat")).items()):
        if m.false_claim:
            bad = m.false_claim[0]
            out.append(f"- **{model}/{ArtifactId(model, source, path).stem} declares min_runtime_version "
                       f"{m.declared} but {minimum.label(bad)} cannot run it** "
                       f"({lacks.describe(bad.info.get('lacks') or {}) or bad.error}); "
                       f"{len(m.false_claim)} declared-compatible release{'s' if len(m.false_claim) != 1 else ''} "
                       f"fail; records {links.records(list(m.false_claim), 3)}")
    stricter = [(k, m) for k, m in sorted(minimum.by_artifact(view.kind("compat")).items()) if m.older_than_declared]
    lines = ["Files that claim a runtime they cannot run on (the declared minimum covers these releases):", ""] + \
        out + [""] if out else []
    if stricter:
        lines += [f"{len(stricter)} file{'s declare' if len(stricter) != 1 else ' declares'} a newer minimum "
                  "than needed: " + "; ".join(f"{m_}/{ArtifactId(m_, s_, p_).stem} declares {m.declared}, loads and "
                                      f"matches on {minimum.label(m.older_than_declared[0])}"
                                      for (m_, s_, p_), m in stricter) + ".", ""]
    return lines


def findings(view: View) -> list[str]:
    """Per export path, the oldest release its files need (the highest `needs` over its models)."""
    from export.registry import all_paths
    mins = minimum.by_artifact(view.kind("compat"))
    if not mins:
        return []
    per_path: dict[str, list[tuple[str, minimum.Minimum]]] = defaultdict(list)
    for (model, _, path), m in mins.items():
        per_path[path].append((model, m))
    paths, out = all_paths(), []
    for path, ms in sorted(per_path.items()):
        need = [m for _, m in ms if m.matches_from is not None]
        none = sorted({model for model, m in ms if m.matches_from is None})
        parts = []
        if need:
            worst = max(need, key=lambda m: minimum.position(m.matches_from))
            parts.append(f"needs {minimum.needs(worst)}" + (f" (not on {minimum.label(worst.blocker)}: "
                                                            f"{worst.lack or worst.blocker.status})"
                                                            if worst.blocker is not None else ""))
        if none:
            parts.append(f"matches on no release for {', '.join(none)}")
        what = paths[path].description.rstrip(".") if path in paths else path
        n = max(len(m.measured) for _, m in ms)
        out.append(f"- `{path}` ({what}; {len(ms)} file{'s' if len(ms) != 1 else ''}, {_releases(n)}): "
                   + "; ".join(parts))
    lines = [f"**Oldest runtime per export path** ({links.section(TITLE, 'runtime versions')}):", ""] + out + [""]
    return lines + claims(view)
