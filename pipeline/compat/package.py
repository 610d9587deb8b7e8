"""The version ladder for `python -m pipeline package`: every candidate that passed parity somewhere
runs on the released runtimes of its format, on the user's samples, judged by the package's own
parity bounds (the defaults of pipeline/parity.py with the user's --tolerance overrides).

    recs = compat.package.run(cands, samples_npz, refs, refs_key, thresholds, "default", cache, log)
    manifest_part = compat.package.manifest_entry(recs_of_the_pick, fmt)
"""
from __future__ import annotations

from pathlib import Path

from pipeline import parity
from pipeline.compat import ladder, minimum
from pipeline.compat import records as compat_records
from pipeline.schema import Record


def run(cands, samples_npz: Path, refs: list, refs_key: str, thresholds: dict, which: str, cache_dir: Path,
        log=print) -> list[Record]:
    exports = [c.export for c in cands if c.artifact is not None and c.export.format in ladder.formats()
               and any(ch.status == "ok" for ch in c.checks.values())]
    if not exports or which == "none":
        return []

    def judge(e: Record, metrics: dict) -> tuple[str, str]:
        v = parity.judge(metrics, e.quantization, thresholds[e.quantization])
        return v.status, v.reason
    # the candidates are made from the user's model: the releases open them in the OS sandbox, as verify does
    recs = compat_records.measure_exports(exports, lambda e: (samples_npz, refs_key),
                                          lambda e, outs: parity.compare(outs, refs), judge, which, cache_dir,
                                          log=log, sandboxed=True)
    for key, m in sorted(minimum.by_artifact(recs).items()):
        log(f"[package compat] {key[2]}: {minimum.sentence(m)}")
    return recs


def manifest_entry(recs: list[Record], fmt: str, which: str) -> dict:
    """`runtime.measured_minimum` of the manifest (docs/manifest.md): the ladder's answer for one file."""
    if fmt in ladder.NOT_MEASURED:
        return {"measured": False, "reason": ladder.NOT_MEASURED[fmt]}
    if not recs:
        return {"measured": False, "reason": "the version ladder was not run (--ladder none)" if which == "none"
                else "the version ladder was not run on this file (it matched in no runtime here)"}
    m = minimum.of(recs)

    def rel(r: Record | None) -> dict | None:
        return None if r is None else {"dist": r.info["release"]["dist"], "version": r.info["release"]["version"],
                                       "label": r.info["release"]["label"]}
    return {"measured": True, "ladder": which, "sentence": minimum.sentence(m), "needs": minimum.needs(m),
            "releases_measured": len(m.measured), "matches_from": rel(m.matches_from), "lowest": rel(m.lowest),
            "gaps": [rel(r) for r in m.gaps], "not_on": {**rel(m.blocker), "status": m.blocker.status,
                                                         "lacks": m.blocker.info.get("lacks", {}),
                                                         "error": m.blocker.error} if m.blocker else None,
            "declared_min_runtime_version": m.declared,
            "declared_but_fails_on": [rel(r) for r in m.false_claim],
            "releases": [{**rel(r), "status": r.status, **({"lacks": r.info["lacks"]} if r.info.get("lacks") else {}),
                          **({"error": r.error} if r.error else {})} for r in sorted(m.measured + m.not_measured,
                                                               key=minimum.position)]}
