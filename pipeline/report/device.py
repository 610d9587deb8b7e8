"""Report section: which artifacts run on (emulated) ARM64, parity with the host, guest instructions
per inference per core model, and the runtime footprint the device needed. From `device` records
(`make device-tests` writes them to results/device/records.jsonl)."""
from __future__ import annotations

from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.report.table import table
from pipeline.report.view import View


def section(view: View) -> list[str]:
    dev = view.kind("device")
    lines = ["## Runs on ARM64 (emulated)", ""]
    if not dev:
        return lines + ["Not run: `make device-tests` builds the emulated ARM64 device (qemu-user, a Debian "
                        "arm64 sysroot) and writes these records.", ""]
    cores = sorted({r.profile for r in dev})
    by_art = defaultdict(dict)
    for r in dev:
        by_art[(r.model, ArtifactId.of(r).stem, r.runtime)][r.profile] = r
    lines += ["Emulated timings are not device timings: the cost column is guest instructions per inference "
              "(deterministic, counted by a QEMU plugin; includes the Python call). Parity: the same inputs "
              "on the host and the emulated core.", ""]
    header = ["model", "artifact", "runtime", "runs on ARM64"] + \
        [f"max rel diff {c}" for c in cores] + [f"instr/inference {c}" for c in cores] + ["top-1 agree"]
    rows = []
    for (model, art, rt), by_core in sorted(by_art.items()):
        ok = all(r.status == "ok" for r in by_core.values())
        cell = "yes" if ok else "NO: " + "; ".join(f"{c}: {r.error}" for c, r in by_core.items() if r.status != "ok")
        diffs = [f"{by_core[c].metrics.get('max_abs_diff_rel', float('nan')):.1e}" if c in by_core else "–" for c in cores]
        instr = [f"{by_core[c].metrics.get('guest_instructions_per_inference', 0):,.0f}" if c in by_core else "–"
                 for c in cores]
        agree = min((r.metrics.get("top1_agreement", 0) for r in by_core.values()), default=0)
        rows.append([model, art, rt, cell] + diffs + instr + [f"{agree:.3f}"])
    lines += table(header, rows)
    foot = {r.runtime: r.metrics["runtime_footprint_bytes"] for r in dev if "runtime_footprint_bytes" in r.metrics}
    if foot:
        lines += ["Runtime footprint installed on the device (beside the artifact sizes above): " +
                  ", ".join(f"{rt} {b / 1e6:.0f} MB" for rt, b in sorted(foot.items())) + ".", ""]
    return lines
