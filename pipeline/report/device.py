"""Report section: which artifacts run on the emulated ARM64 device, parity with the host, and guest
instructions per inference per core model, from the `device` records: every `bench` writes them
(`pipeline/bench/device.py`), and `make device-tests` adds its own (results/device/records.jsonl,
merged by `python -m pipeline report`; the newer record of an artifact x core wins).
"""
from __future__ import annotations

from collections import defaultdict

from pipeline.artifact import ArtifactId
from pipeline.report import links
from pipeline.report.table import fmt, table
from pipeline.parity import DEVICE, PROXY_BAND, STATUS_MARK
from pipeline.report.view import ARM_METRIC, View, generative

TITLE = "Runs on ARM64 (emulated)"
LIMITS = ("The cost is guest instructions per inference, counted by a QEMU plugin in user-mode emulation: "
          "deterministic (identical across processes), but instructions, not time. The emulator has no "
          "caches, no memory latency, no thermal throttling and no frequency scaling, and every instruction "
          "counts 1 whatever its latency: a memory-bound model or a wide SIMD instruction is not weighed as "
          "on a phone. Read it to compare artifacts and cores, not as a latency.")


def section(view: View) -> list[str]:
    dev = [d for d in view.kind("device") if not generative(d)]   # per decoded token: the generative section
    lines = [f"## {TITLE}", ""]
    if not dev and view.kind("device"):
        return []    # only generative artifacts ran there: their section shows it
    if not dev:
        return lines + ["Not run: `python -m pipeline bench` measures every `.tflite` on the emulated ARM64 "
                        "device unless `--no-device` (`make device` builds it: qemu-user, a Debian arm64 "
                        "sysroot); `make device-tests` adds its records too.", ""]
    cores = view.cores()
    by_art = defaultdict(dict)
    for r in dev:
        by_art[(r.model, ArtifactId.of(r).stem, r.runtime)][r.profile] = r
    lines += ["Each artifact on emulated phone cores (`neoverse-n1`: Armv8.2 with the dot-product "
              "instruction, a phone big core; `cortex-a53`: Armv8.0 without, an older or little core), one "
              "guest process per core with the real aarch64 runtime, on the same inputs as the host. "
              f"Parity: {DEVICE.prose()}. `net` = instructions per "
              "inference minus the one-op model's (the runtime's fixed cost per call, as on the host); "
              "`gross` includes it.", "", LIMITS, ""]
    header = ["model", "artifact", "runtime"] + [f"{c}: status" for c in cores] + \
        [f"{c}: net instr/inference" for c in cores] + [f"{c}: gross instr/inference" for c in cores] + \
        ["max abs diff (quant steps, or x output scale)", "records"]
    rows = []
    for (model, art, rt), by_core in sorted(by_art.items()):
        status = []
        for c in cores:
            r = by_core.get(c)
            status.append(None if r is None else STATUS_MARK[r.status] if r.status == "ok" else
                          f"{STATUS_MARK[r.status]} {links.cause(view.cause_number(r))}")
        net = [by_core[c].metrics.get(ARM_METRIC) if c in by_core else None for c in cores]
        gross = [by_core[c].metrics.get("guest_instructions_per_inference") if c in by_core else None for c in cores]
        diffs = [d for d in (_diff(r) for r in by_core.values()) if d]
        rows.append([model, art, rt, *status, *net, *gross, max(diffs, key=lambda t: t[0])[1] if diffs else None,
                     links.records([by_core[c] for c in cores if c in by_core])])
    lines += table(header, rows)
    lines += dotprod_lines(view)
    lines += proxy_check(view)
    foot = {r.runtime: r.metrics["runtime_footprint_bytes"] for r in dev if r.metrics.get("runtime_footprint_bytes")}
    if foot:
        lines += ["Runtime footprint installed on the device (beside the artifact sizes above): " +
                  ", ".join(f"{rt} {b / 1e6:.0f} MB" for rt, b in sorted(foot.items())) + ".", ""]
    return lines


def _diff(r) -> tuple[float, str] | None:
    m = r.metrics
    if "max_abs_diff_steps" in m:
        return m["max_abs_diff_steps"], f"{fmt(m['max_abs_diff_steps'])} steps"
    if "max_abs_diff_rel" in m:
        return m["max_abs_diff_rel"] * 1e4, f"{m['max_abs_diff_rel']:.1e} x scale"
    return None


def dotprod_lines(view: View) -> list[str]:
    """What the dot-product instruction buys: int8/fp32 net instructions on each core, per pair."""
    from pipeline.report.int8 import arm_ratio, pairs
    cores = view.cores()
    if len(cores) < 2:
        return []
    out = []
    for f, q in pairs(view):
        ratios = [arm_ratio(view, f, q, c) for c in cores]
        if all(x is not None for x in ratios):
            out.append(f"{q.model} `{ArtifactId.of(q).stem}`: " +
                       ", ".join(f"{c} {x:.2f}" for c, x in zip(cores, ratios)))
    if not out:
        return []
    return ["int8 / fp32 net instructions per inference (each int8 artifact vs its fp32 twin, lower = int8 "
            "cheaper): " + "; ".join(out) + ". Where the dotprod core's ratio is the lower one, the int8 "
            "kernels use the dot-product instruction.", ""]


# PROXY_BAND (the policy): how far apart the instructions-per-host-microsecond of fp32 artifacts may be
# for the proxy to rank them as the host does (a memory-light fp32 model on one runtime)
PROXY_CORE = "neoverse-n1"


def proxy_check(view: View) -> list[str]:
    """Does the instruction count rank artifacts as time does? For fp32 .tflite artifacts on LiteRT
    (memory-light, one runtime on both sides): net guest instructions on the big core per microsecond of
    host p50 (first profile). A constant rate means instruction ratios read as time ratios; its spread
    (max / min) is the proxy's error band on this host."""
    rates = []
    for r in view.timed(profile=view.first_profile()):
        if r.runtime != "litert" or r.format != "tflite" or r.quantization != "fp32":
            continue
        d = view.on_device(r, PROXY_CORE)
        if d is None or d.status != "ok" or not d.metrics.get(ARM_METRIC) or not r.metrics.get("latency_p50_ms"):
            continue
        rates.append((d.metrics[ARM_METRIC] / (r.metrics["latency_p50_ms"] * 1e3), ArtifactId.of(r).label))
    if len(rates) < 2:
        return []
    rates.sort()
    spread = rates[-1][0] / rates[0][0]
    verdict = (f"within the {PROXY_BAND:g}x band: instruction ratios between these artifacts read as host time "
               "ratios" if spread <= PROXY_BAND else
               f"outside the {PROXY_BAND:g}x band: instruction ratios do not read as time ratios for all of them")
    return [f"Proxy check ({len(rates)} fp32 `.tflite` on LiteRT, {PROXY_CORE} net instructions per microsecond "
            f"of host p50 on `{view.first_profile()}`): from {rates[0][0]:,.0f} ({rates[0][1]}) to "
            f"{rates[-1][0]:,.0f} ({rates[-1][1]}), a spread of {spread:.1f}x, {verdict}. The host runs wider "
            "SIMD than the emulated core and has caches; a model whose time is memory traffic has fewer "
            "instructions per microsecond.", ""]
